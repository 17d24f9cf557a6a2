//! What dispatch is doing, read from the engine's snapshot: the header shows it and the app
//! rings the bell when it needs the operator.

use ratatui::style::Color;

use crate::dispatch::snapshot::BreakerState;
use crate::model::StopCause;
use crate::panes::duration_ms;

/// What dispatch is doing, in one word with its colour, and what the operator should do next
/// when it needs them. Pure, so each state is tested on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchState {
    pub word: &'static str,
    pub colour: Color,
    pub next: Option<String>,
    /// Dispatch stopped for a reason only the operator can clear: the console rings the
    /// bell once and highlights the state until it is acknowledged.
    pub needs_operator: bool,
}

pub fn dispatch_state(
    snap: &crate::dispatch::Snapshot,
    campaign: Option<&crate::dispatch::CampaignView>,
) -> DispatchState {
    let state = |word, colour, next: Option<String>| DispatchState {
        word,
        colour,
        next,
        needs_operator: false,
    };
    let alert = |word, colour, next: Option<String>| DispatchState {
        needs_operator: true,
        ..state(word, colour, next)
    };
    if snap.stopped {
        return state("STOPPED", Color::Red, None);
    }
    if let Some(pause) = &snap.dispatch_paused {
        let next = match pause.cause {
            StopCause::Credentials => "— fix the key in the environment, then press p".to_string(),
            _ => format!("— {pause} · press p to resume"),
        };
        if pause.cause.is_operator() {
            return state("PAUSED", Color::Yellow, Some(next));
        }
        return alert("PAUSED", Color::Yellow, Some(next));
    }
    if snap.breaker.state == BreakerState::Open {
        return alert(
            "BREAKER OPEN",
            Color::Red,
            Some(format!(
                "— Vapi keeps failing; a probe goes in {}",
                duration_ms(snap.breaker.retry_in_ms)
            )),
        );
    }
    if let Some(c) = campaign
        && c.status == crate::model::CampaignStatus::Paused
        && c.pause_cause == Some(StopCause::Schedule)
        && let Some(reason) = &c.pause_reason
    {
        // Done as scheduled: nothing to fix, P goes on past the end-by.
        return state(
            "ENDED",
            Color::Cyan,
            Some(format!("— {reason} · P goes on")),
        );
    }
    if let Some(c) = campaign
        && c.status == crate::model::CampaignStatus::Paused
        && let Some(reason) = &c.pause_reason
        && c.pause_cause.is_some_and(|cause| !cause.is_operator())
    {
        return alert(
            "BLOCKED",
            Color::Red,
            Some(format!("— {reason} · then press P")),
        );
    }
    if snap.backoff_ms > 0 {
        return state(
            "BACKING OFF",
            Color::Yellow,
            Some(format!(
                "— Vapi said 429: {} left",
                duration_ms(snap.backoff_ms)
            )),
        );
    }
    if let Some(c) = campaign
        && c.status == crate::model::CampaignStatus::Dialing
        && let Some(waiting) = &c.waiting
    {
        return state("WAITING", Color::Yellow, Some(format!("— {waiting}")));
    }
    state("RUNNING", Color::Green, None)
}
