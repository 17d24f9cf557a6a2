//! Headless mode: the same engine, no console. Logs go to stdout; a progress line every few
//! seconds; Ctrl-C quits gracefully; `--until-done` exits when every started campaign is
//! finished, or when only a fix outside switchboard can move it on.

use std::time::Duration;

use crate::dispatch::{Command, EngineClient, Snapshot};
use crate::model::{CampaignStatus, Pause};

/// How a headless run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every started campaign is COMPLETED or CANCELLED.
    Completed(String),
    /// A stop that needs a fix outside switchboard (or, with `--exit-on-pause`, any pause).
    NeedsOperator(String),
    /// Stopped by Ctrl-C.
    Interrupted,
}

/// What `--until-done` does about an operator's pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UntilDone {
    /// Wait through it: an operator paused, an operator will resume.
    WaitThroughPauses,
    /// Exit (2) on any pause with no call in flight: the behaviour before 0.2.
    ExitOnPause,
}

pub use crate::model::StopCause;

/// Runs until Ctrl-C, or with `until_done` until [`decide`] says so; then quits the engine.
/// Progress lines are printed, or logged when the log is JSON (`json_log`): then every line
/// on stdout is one JSON object.
pub async fn run(client: EngineClient, until_done: Option<UntilDone>, json_log: bool) -> Outcome {
    let say = |line: String| say(&line, json_log);
    let mut snapshots = client.snapshots();
    let mut progress = tokio::time::interval(Duration::from_secs(2));
    let outcome = loop {
        tokio::select! {
            signal = crate::shutdown::requested() => {
                tracing::info!(target: "switchboard::engine", "{signal}: stopping gracefully (no new calls; requests in flight are recorded)");
                break Outcome::Interrupted;
            }
            _ = progress.tick() => say(progress_line(&snapshots.borrow())),
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break Outcome::Interrupted;
                }
                if let Some(mode) = until_done
                    && let Some(outcome) = decide(&snapshots.borrow_and_update(), mode)
                {
                    break outcome;
                }
            }
        }
    };
    if let Err(e) = client.send(Command::Quit).await {
        tracing::warn!(target: "switchboard::engine", "{e}");
    }
    say(progress_line(&snapshots.borrow()));
    outcome
}

/// A headless run's own line on stdout: printed, or logged (target `switchboard::progress`)
/// when the log is JSON, so that stdout stays one JSON object a line.
pub fn say(line: &str, json_log: bool) {
    if json_log {
        tracing::info!(target: "switchboard::progress", "{line}");
    } else {
        println!("{line}");
    }
}

/// The `--until-done` decision, `None` = keep running. Exits 0 when every started campaign is
/// finished; 2 when nothing can move without a fix outside switchboard (saying which); an
/// operator's pause is waited through unless `ExitOnPause`. Nothing exits while a call is
/// being created or, for a paused scope, still active, nor while an ended conversation's
/// end-of-call report is awaited (it may book a callback).
pub fn decide(s: &Snapshot, mode: UntilDone) -> Option<Outcome> {
    // A conversation's report may still ask for a callback that re-opens its campaign.
    if s.creating > 0 || s.awaiting_reports > 0 {
        return None;
    }
    let stops = |pause: &Pause| match pause.cause {
        StopCause::Operator => mode == UntilDone::ExitOnPause,
        StopCause::Credentials
        | StopCause::Credits
        | StopCause::Budget
        | StopCause::DailyLimit
        | StopCause::Engine => true,
        // Not a stop: the campaign is done as scheduled (counted below as finished).
        StopCause::Schedule => false,
    };
    let describe =
        |scope: &str, pause: &Pause| format!("{scope} paused ({}): {pause}", pause.cause.label());
    let mut unfinished = false;
    let mut stopped = Vec::new();
    let mut finished = Vec::new();
    for c in &s.campaigns {
        match c.status {
            CampaignStatus::Draft => {}
            CampaignStatus::Completed | CampaignStatus::Cancelled => {
                finished.push(format!("{} {}", c.name, c.status))
            }
            CampaignStatus::Dialing => unfinished = true,
            CampaignStatus::Paused if c.pause_cause == Some(StopCause::Schedule) => {
                if c.active > 0 {
                    return None;
                }
                finished.push(format!("{} done at its end-by time", c.name))
            }
            CampaignStatus::Paused => {
                let pause = Pause::stored(c.pause_cause, c.pause_reason.as_deref());
                if c.active > 0 || !stops(&pause) {
                    return None;
                }
                stopped.push(describe(&c.name, &pause));
            }
        }
    }
    if unfinished {
        // Dialling campaigns move on their own unless dispatch as a whole is stopped.
        let global = s.dispatch_paused.as_ref()?;
        if s.active > 0 || !stops(global) {
            return None;
        }
        stopped.insert(0, describe("dispatch", global));
    }
    if !stopped.is_empty() {
        return Some(Outcome::NeedsOperator(stopped.join("; ")));
    }
    if finished.is_empty() {
        return Some(Outcome::Completed(
            "no started campaign: nothing to dispatch".into(),
        ));
    }
    Some(Outcome::Completed(finished.join(", ")))
}

/// [`decide`] with the default `--until-done` behaviour (waits through operator pauses).
pub fn done(s: &Snapshot) -> Option<Outcome> {
    decide(s, UntilDone::WaitThroughPauses)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::CampaignView;
    use UntilDone::{ExitOnPause, WaitThroughPauses};

    fn campaign(name: &str, status: CampaignStatus, pause: Option<Stop>) -> CampaignView {
        CampaignView {
            id: 1,
            name: name.into(),
            status,
            pause_reason: pause.map(|(_, reason)| reason.into()),
            pause_cause: pause.map(|(cause, _)| cause),
            started_at: None,
            completed_at: None,
            contacts_total: 10,
            contacts_done: 0,
            pending: 0,
            creating: 0,
            active: 0,
            created: 0,
            ended: 0,
            failed: 0,
            cost_usd: 0.0,
            success_rate: None,
            estimated_remaining_usd: None,
            reasons: Vec::new(),
            waiting: None,
            rules: None,
            reach: None,
        }
    }

    fn snapshot(campaigns: Vec<CampaignView>, dispatch_paused: Option<Stop>) -> Snapshot {
        Snapshot {
            campaigns,
            dispatch_paused: dispatch_paused.map(|(cause, reason)| Pause::new(cause, reason)),
            ..Snapshot::default()
        }
    }

    fn exit_code(outcome: Option<Outcome>) -> Option<u8> {
        outcome.map(|o| match o {
            Outcome::Completed(_) => 0,
            Outcome::NeedsOperator(_) => 2,
            Outcome::Interrupted => 130,
        })
    }

    use CampaignStatus::{Cancelled, Completed, Dialing, Draft, Paused};

    /// A pause: its cause and its text.
    type Stop = (StopCause, &'static str);

    const OPERATOR: Stop = (StopCause::Operator, "paused by operator (CLI)");
    const LUNCH: Stop = (StopCause::Operator, "lunch");
    const KEY: Stop = (
        StopCause::Credentials,
        "Vapi rejected the API key (HTTP 401): every call would fail the same way",
    );
    const BUDGET: Stop = (
        StopCause::Budget,
        "budget of $1.00 reached (spent $1.02, $0.00 committed)",
    );
    const DAILY: Stop = (StopCause::DailyLimit, "daily call limit of 5 reached");
    const CREDITS: Stop = (
        StopCause::Credits,
        "call.start.error-subscription-insufficient-credits",
    );
    const ENGINE: Stop = (
        StopCause::Engine,
        "3 calls in a row refused with the same message (HTTP 400: x): fix the campaign's settings, then resume it",
    );

    #[test]
    fn until_done_decision_table() {
        // (campaigns, global pause, mode, expected exit: None = keep running)
        type Row = (Vec<CampaignView>, Option<Stop>, UntilDone, Option<u8>);
        let table: Vec<Row> = vec![
            (
                vec![campaign("a", Completed, None)],
                None,
                WaitThroughPauses,
                Some(0),
            ),
            (
                vec![
                    campaign("a", Completed, None),
                    campaign("b", Cancelled, None),
                ],
                None,
                WaitThroughPauses,
                Some(0),
            ),
            (
                vec![campaign("a", Dialing, None)],
                None,
                WaitThroughPauses,
                None,
            ),
            // An operator's pause is waited through, global or a campaign's...
            (
                vec![campaign("a", Dialing, None)],
                Some(OPERATOR),
                WaitThroughPauses,
                None,
            ),
            (
                vec![campaign("a", Paused, Some(OPERATOR))],
                None,
                WaitThroughPauses,
                None,
            ),
            (
                vec![campaign("a", Dialing, None)],
                Some(LUNCH),
                WaitThroughPauses,
                None,
            ),
            // ...unless --exit-on-pause.
            (
                vec![campaign("a", Dialing, None)],
                Some(OPERATOR),
                ExitOnPause,
                Some(2),
            ),
            (
                vec![campaign("a", Paused, Some(OPERATOR))],
                None,
                ExitOnPause,
                Some(2),
            ),
            // A stop that needs a fix outside switchboard ends the run either way.
            (
                vec![campaign("a", Dialing, None)],
                Some(KEY),
                WaitThroughPauses,
                Some(2),
            ),
            (
                vec![campaign("a", Paused, Some(BUDGET))],
                None,
                WaitThroughPauses,
                Some(2),
            ),
            (
                vec![campaign("a", Paused, Some(DAILY))],
                None,
                WaitThroughPauses,
                Some(2),
            ),
            (
                vec![campaign("a", Paused, Some(CREDITS))],
                None,
                WaitThroughPauses,
                Some(2),
            ),
            (
                vec![campaign("a", Paused, Some(ENGINE))],
                None,
                WaitThroughPauses,
                Some(2),
            ),
            // One campaign stopped, another still dialling: wait for the other.
            (
                vec![
                    campaign("a", Paused, Some(BUDGET)),
                    campaign("b", Dialing, None),
                ],
                None,
                WaitThroughPauses,
                None,
            ),
            // Finished campaigns end the run even with dispatch paused.
            (
                vec![campaign("a", Completed, None)],
                Some(OPERATOR),
                WaitThroughPauses,
                Some(0),
            ),
            // Drafts were never started; nothing started is nothing to wait for.
            (
                vec![campaign("a", Draft, None)],
                None,
                WaitThroughPauses,
                Some(0),
            ),
        ];
        for (i, (campaigns, global, mode, expected)) in table.into_iter().enumerate() {
            let s = snapshot(campaigns, global);
            assert_eq!(exit_code(decide(&s, mode)), expected, "row {i}: {s:?}");
        }
    }

    #[test]
    fn nothing_exits_while_calls_are_in_flight() {
        let mut s = snapshot(vec![campaign("a", Completed, None)], None);
        s.creating = 1;
        assert_eq!(decide(&s, WaitThroughPauses), None);
        let mut stopped = campaign("a", Paused, Some(BUDGET));
        stopped.active = 2;
        assert_eq!(decide(&snapshot(vec![stopped], None), ExitOnPause), None);
        let mut s = snapshot(vec![campaign("a", Dialing, None)], Some(KEY));
        s.active = 1;
        assert_eq!(decide(&s, WaitThroughPauses), None);
        // A finished campaign whose last conversation's report is still to come (it may
        // book a callback): wait for it; once it is in, exit.
        let mut s = snapshot(vec![campaign("a", Completed, None)], None);
        s.awaiting_reports = 1;
        assert_eq!(decide(&s, WaitThroughPauses), None);
        s.awaiting_reports = 0;
        assert_eq!(exit_code(decide(&s, WaitThroughPauses)), Some(0));
    }

    #[test]
    fn the_exit_message_says_what_to_fix() {
        let s = snapshot(vec![campaign("spring", Paused, Some(BUDGET))], None);
        let Some(Outcome::NeedsOperator(message)) = decide(&s, WaitThroughPauses) else {
            panic!("expected a stop");
        };
        assert_eq!(message, format!("spring paused (budget): {}", BUDGET.1));
        let s = snapshot(vec![campaign("a", Dialing, None)], Some(KEY));
        let Some(Outcome::NeedsOperator(message)) = decide(&s, WaitThroughPauses) else {
            panic!("expected a stop");
        };
        assert!(
            message.starts_with("dispatch paused (credentials)"),
            "{message}"
        );
    }

    /// The exit code follows the cause, never the words: every pause reworded (to the words
    /// of another cause, or to nonsense) ends the run the same way.
    #[test]
    fn rewording_a_pause_changes_no_exit_code() {
        let stops = [OPERATOR, LUNCH, KEY, BUDGET, DAILY, CREDITS, ENGINE];
        let texts: Vec<&str> = stops
            .iter()
            .map(|(_, text)| *text)
            .chain(["", "zz"])
            .collect();
        for mode in [WaitThroughPauses, ExitOnPause] {
            for (cause, text) in stops {
                let campaign_paused =
                    |text| snapshot(vec![campaign("a", Paused, Some((cause, text)))], None);
                let dispatch_paused =
                    |text| snapshot(vec![campaign("a", Dialing, None)], Some((cause, text)));
                let expected = (
                    exit_code(decide(&campaign_paused(text), mode)),
                    exit_code(decide(&dispatch_paused(text), mode)),
                );
                for other in &texts {
                    let got = (
                        exit_code(decide(&campaign_paused(other), mode)),
                        exit_code(decide(&dispatch_paused(other), mode)),
                    );
                    assert_eq!(got, expected, "{cause} worded {other:?}");
                }
            }
        }
    }
}
