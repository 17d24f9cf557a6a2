//! Headless mode: the same engine, no console. Logs go to stdout; a progress line every few
//! seconds; Ctrl-C quits gracefully; `--until-done` exits when nothing is left to dispatch.

use std::time::Duration;

use crate::dispatch::{Command, EngineClient, Snapshot};
use crate::model::CampaignStatus;

/// How a headless run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every started campaign is COMPLETED (or cancelled).
    Completed(String),
    /// Something only an operator can fix stopped dispatch.
    NeedsOperator(String),
    /// Stopped by Ctrl-C.
    Interrupted,
}

/// Runs until Ctrl-C, or with `until_done` until [`done`] says so; then quits the engine.
pub async fn run(client: EngineClient, until_done: bool) -> Outcome {
    let mut snapshots = client.snapshots();
    let mut progress = tokio::time::interval(Duration::from_secs(2));
    let outcome = loop {
        tokio::select! {
            signal = crate::shutdown::requested() => {
                tracing::info!(target: "switchboard::engine", "{signal}: stopping gracefully (no new calls; requests in flight are recorded)");
                break Outcome::Interrupted;
            }
            _ = progress.tick() => println!("{}", progress_line(&snapshots.borrow())),
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break Outcome::Interrupted;
                }
                if until_done && let Some(outcome) = done(&snapshots.borrow_and_update()) {
                    break outcome;
                }
            }
        }
    };
    if let Err(e) = client.send(Command::Quit).await {
        tracing::warn!(target: "switchboard::engine", "{e}");
    }
    println!("{}", progress_line(&snapshots.borrow()));
    outcome
}

/// Whether nothing is left to dispatch: every started campaign COMPLETED, or paused with no
/// call active (and why).
pub fn done(s: &Snapshot) -> Option<Outcome> {
    if s.creating > 0 {
        return None;
    }
    if let Some(reason) = &s.dispatch_paused {
        return (s.active == 0)
            .then(|| Outcome::NeedsOperator(format!("dispatch paused: {reason}")));
    }
    let mut paused = Vec::new();
    let mut completed = Vec::new();
    for c in &s.campaigns {
        match c.status {
            CampaignStatus::Draft => {}
            CampaignStatus::Dialing => return None,
            CampaignStatus::Paused if c.active > 0 => return None,
            CampaignStatus::Paused => paused.push(format!(
                "{} paused: {}",
                c.name,
                c.pause_reason.as_deref().unwrap_or("no reason given")
            )),
            CampaignStatus::Completed | CampaignStatus::Cancelled => {
                completed.push(format!("{} {}", c.name, c.status))
            }
        }
    }
    if !paused.is_empty() {
        return Some(Outcome::NeedsOperator(paused.join("; ")));
    }
    if completed.is_empty() {
        return Some(Outcome::Completed(
            "no started campaign: nothing to dispatch".into(),
        ));
    }
    Some(Outcome::Completed(completed.join(", ")))
}

pub fn progress_line(s: &Snapshot) -> String {
    let ended: i64 = s.campaigns.iter().map(|c| c.ended).sum();
    let cost: f64 = s.campaigns.iter().map(|c| c.cost_usd).sum();
    format!(
        "progress: pending={} creating={} active={} ended={} failed={} rate={:.1}/s breaker={:?} 429s={} cost=${:.2}{}",
        s.pending,
        s.creating,
        s.active,
        ended,
        s.failed,
        s.rate_per_second,
        s.breaker.state,
        s.quota.rate_limited_total,
        cost,
        s.dispatch_paused
            .as_ref()
            .map(|r| format!(" PAUSED: {r}"))
            .unwrap_or_default()
    )
}
