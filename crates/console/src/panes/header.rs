//! Top two lines: which campaign, its state and the dispatcher's, and the badges that change
//! how to read the rest of the screen (demo, read-only, frozen, stopping).

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{campaign_status_style, duration_ms, label};
use crate::app::App;
use crate::dispatch::snapshot::BreakerState;
pub use crate::dispatch_state::{DispatchState, dispatch_state};

/// What the header needs: the snapshot and campaign shown, the badges, and the alert.
pub struct HeaderPane<'a> {
    pub title: &'a str,
    pub snapshot: &'a crate::dispatch::Snapshot,
    pub campaign: Option<&'a crate::dispatch::CampaignView>,
    pub demo: bool,
    pub read_only: bool,
    pub frozen: bool,
    pub quitting: bool,
    /// Attached to an engine elsewhere (from the newest snapshot, frozen or not).
    pub attached_to: Option<&'a str>,
    /// The key that acknowledges an alert, while one is unacknowledged.
    pub alert_key: Option<String>,
}

impl<'a> HeaderPane<'a> {
    pub fn of(app: &'a App) -> HeaderPane<'a> {
        HeaderPane {
            title: &app.options.title,
            snapshot: &app.snapshot,
            campaign: app.campaign(),
            demo: app.options.demo,
            read_only: app.options.read_only,
            frozen: app.frozen,
            quitting: app.quitting,
            attached_to: app.latest().attached_to.as_deref(),
            alert_key: app
                .alert_unacknowledged()
                .then(|| app.keys.key_label(crate::KeyAction::Acknowledge)),
        }
    }
}

pub fn render(pane: &HeaderPane, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let snap = pane.snapshot;
    let bold = Style::new().add_modifier(Modifier::BOLD);

    // Line 1: title, campaign, its status and why it is paused.
    let mut first = vec![Span::styled(
        format!(" {} ", pane.title),
        bold.fg(Color::Cyan),
    )];
    match pane.campaign {
        Some(c) => {
            first.push(Span::styled("▸ ", label()));
            first.push(Span::styled(c.name.clone(), bold));
            if snap.campaigns.len() > 1 {
                let at = snap
                    .campaigns
                    .iter()
                    .position(|x| x.id == c.id)
                    .unwrap_or(0)
                    + 1;
                first.push(Span::styled(
                    format!(" [{at}/{}]", snap.campaigns.len()),
                    label(),
                ));
            }
            first.push(Span::raw(" "));
            first.push(Span::styled(
                c.status.as_str(),
                campaign_status_style(c.status),
            ));
            if let Some(reason) = &c.pause_reason {
                first.push(Span::styled(
                    format!(" — {reason}"),
                    Style::new().fg(Color::Yellow),
                ));
            }
        }
        None => first.push(Span::styled("no campaign", label())),
    }
    Paragraph::new(Line::from(first)).render(Rect { height: 1, ..area }, buf);

    let badges = badges(pane);
    if !badges.is_empty() {
        Paragraph::new(Line::from(badges))
            .alignment(Alignment::Right)
            .render(Rect { height: 1, ..area }, buf);
    }

    if area.height < 2 {
        return;
    }
    let second = second_line(pane);
    Paragraph::new(second).render(
        Rect {
            y: area.y + 1,
            height: 1,
            ..area
        },
        buf,
    );
}

/// The badges, right-aligned over line 1: they matter more than a long campaign name.
fn badges(pane: &HeaderPane) -> Vec<Span<'static>> {
    let mut badges = Vec::new();
    let badge = |text: &'static str, bg: Color| {
        Span::styled(
            text,
            Style::new()
                .fg(Color::Black)
                .bg(bg)
                .add_modifier(Modifier::BOLD),
        )
    };
    if pane.demo {
        badges.push(badge(" DEMO · Vapi is simulated ", Color::Magenta));
    }
    if let Some(holder) = pane.attached_to {
        badges.push(Span::raw(" "));
        badges.push(Span::styled(
            format!(" attached to {holder} "),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if pane.read_only {
        badges.push(Span::raw(" "));
        badges.push(badge(" READ-ONLY ", Color::Blue));
    }
    if pane.frozen {
        badges.push(Span::raw(" "));
        badges.push(badge(" FROZEN ", Color::Cyan));
    }
    if pane.quitting {
        badges.push(Span::raw(" "));
        badges.push(badge(" STOPPING ", Color::Yellow));
    }
    badges
}

/// Line 2: the dispatcher as a whole.
fn second_line(pane: &HeaderPane) -> Line<'static> {
    let snap = pane.snapshot;
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut second = vec![Span::styled(" dispatch ", label())];
    let state = dispatch_state(snap, pane.campaign);
    let word = bold.fg(Color::Black).bg(state.colour);
    if pane.alert_key.is_some() {
        // Highlighted until the operator says they saw it.
        second.push(Span::styled(
            format!("▶ {} ◀", state.word),
            word.add_modifier(Modifier::SLOW_BLINK),
        ));
    } else {
        second.push(Span::styled(state.word, word));
    }
    if let Some(next) = &state.next {
        second.push(Span::styled(format!(" {next}"), bold.fg(state.colour)));
    }
    if let Some(key) = &pane.alert_key {
        second.push(Span::styled(format!(" ({key}: seen)"), label()));
    }
    second.push(Span::styled(" · rate ", label()));
    second.push(Span::styled(format!("{:.1}/s", snap.rate_per_second), bold));
    second.push(Span::styled(" · breaker ", label()));
    let breaker = &snap.breaker;
    let (text, style) = match breaker.state {
        BreakerState::Closed => (
            format!(
                "closed {}/{}",
                breaker.consecutive_failures, breaker.threshold
            ),
            Style::new().fg(Color::Green),
        ),
        BreakerState::Open => (
            format!("OPEN, probe in {}", duration_ms(breaker.retry_in_ms)),
            bold.fg(Color::Red),
        ),
        BreakerState::HalfOpen => ("HALF-OPEN".to_string(), bold.fg(Color::Yellow)),
    };
    second.push(Span::styled(text, style));
    if snap.backoff_ms > 0 {
        second.push(Span::styled(" · backoff ", label()));
        second.push(Span::styled(
            duration_ms(snap.backoff_ms),
            bold.fg(Color::Yellow),
        ));
    }
    // Creating and active per campaign are on the call tabs; these are all campaigns.
    second.push(Span::styled(
        format!(
            " · pending {} · in flight {}",
            super::count(snap.pending),
            super::count(snap.creating + snap.active)
        ),
        label(),
    ));
    Line::from(second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{CampaignView, Snapshot};
    use crate::model::{CampaignStatus, Pause, StopCause};

    fn campaign(status: CampaignStatus, pause: Option<(StopCause, &str)>) -> CampaignView {
        CampaignView {
            id: 1,
            name: "c".into(),
            status,
            pause_reason: pause.map(|(_, reason)| reason.to_string()),
            pause_cause: pause.map(|(cause, _)| cause),
            started_at: None,
            completed_at: None,
            contacts_total: 0,
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

    #[test]
    fn the_header_says_what_dispatch_is_doing_and_what_to_do_next() {
        let mut s = Snapshot::default();
        assert_eq!(dispatch_state(&s, None).word, "RUNNING");

        s.breaker.state = BreakerState::Open;
        s.breaker.retry_in_ms = 12_000;
        let open = dispatch_state(&s, None);
        assert_eq!((open.word, open.colour), ("BREAKER OPEN", Color::Red));
        assert!(open.needs_operator);
        assert!(open.next.unwrap().contains("probe"));

        s.breaker.state = BreakerState::Closed;
        let credits = campaign(
            CampaignStatus::Paused,
            Some((
                StopCause::Credits,
                "Vapi: insufficient credits; add credits, then resume",
            )),
        );
        let blocked = dispatch_state(&s, Some(&credits));
        assert_eq!((blocked.word, blocked.colour), ("BLOCKED", Color::Red));
        assert!(blocked.needs_operator);
        assert!(blocked.next.unwrap().contains("add credits"));
        // An operator's pause of the campaign is not a block.
        let operator = campaign(
            CampaignStatus::Paused,
            Some((StopCause::Operator, "paused by operator")),
        );
        assert_eq!(dispatch_state(&s, Some(&operator)).word, "RUNNING");
        // The cause decides, whatever the words: an engine's stop worded like an operator's
        // is a block, an operator's pause worded like an engine's is not.
        let reworded = campaign(
            CampaignStatus::Paused,
            Some((StopCause::Engine, "paused by operator")),
        );
        assert_eq!(dispatch_state(&s, Some(&reworded)).word, "BLOCKED");
        let reworded = campaign(
            CampaignStatus::Paused,
            Some((StopCause::Operator, "Vapi: fix the number, then resume")),
        );
        assert_eq!(dispatch_state(&s, Some(&reworded)).word, "RUNNING");

        s.dispatch_paused = Some(Pause::new(
            StopCause::Credentials,
            "Vapi rejected the API key (HTTP 401): fix it",
        ));
        let key = dispatch_state(&s, None);
        assert_eq!(key.word, "PAUSED");
        assert!(key.needs_operator, "a rejected key needs the operator");
        assert!(key.next.unwrap().contains("fix the key"));

        s.dispatch_paused = Some(Pause::new(StopCause::Credentials, "zzz"));
        let key = dispatch_state(&s, None);
        assert!(key.needs_operator && key.next.unwrap().contains("fix the key"));
        s.dispatch_paused = Some(Pause::new(StopCause::Operator, "paused by operator"));
        assert!(!dispatch_state(&s, None).needs_operator);
        s.dispatch_paused = Some(Pause::new(StopCause::Operator, "Vapi rejected the API key"));
        assert!(!dispatch_state(&s, None).needs_operator);
        s.dispatch_paused = None;
        s.backoff_ms = 4_000;
        assert_eq!(dispatch_state(&s, None).word, "BACKING OFF");
        s.stopped = true;
        assert_eq!(dispatch_state(&s, None).word, "STOPPED");
    }
}
