//! Enter on a call: who it is for, where it stands, and every create attempt with its HTTP
//! status, outcome, error and the delay before the next one (the persisted retry log).
//! Long text wraps; the popup scrolls with the movement keys.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use chrono::{DateTime, Utc};

use super::{age, call_status_style, centered, clock, duration_ms, label, pane_block};
use crate::app::{App, Details};
use crate::keys::{KeyAction, KeyRegistry};
use crate::model::{AttemptOutcome, CallStatus};

/// What the details popup draws: the call and its history, the clock for its age, and the
/// keys its hint line names.
pub struct DetailsPane<'a> {
    pub details: &'a Details,
    pub now: DateTime<Utc>,
    pub keys: &'a KeyRegistry,
    /// Read-only consoles do not offer the retry.
    pub read_only: bool,
}

impl<'a> DetailsPane<'a> {
    pub fn of(app: &'a App, details: &'a Details) -> DetailsPane<'a> {
        DetailsPane {
            details,
            now: app.now,
            keys: &app.keys,
            read_only: app.options.read_only,
        }
    }
}

fn outcome_style(outcome: AttemptOutcome) -> Style {
    match outcome {
        AttemptOutcome::Created | AttemptOutcome::Adopted => Style::new().fg(Color::Green),
        AttemptOutcome::InFlight => Style::new().fg(Color::Cyan),
        AttemptOutcome::Refused
        | AttemptOutcome::RateLimited
        | AttemptOutcome::Ambiguous
        | AttemptOutcome::NotCreated => Style::new().fg(Color::Yellow),
        AttemptOutcome::Rejected | AttemptOutcome::AuthFailed => {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        }
    }
}

/// Every line of the popup; long values are wrapped by the paragraph, not cut.
fn lines(pane: &DetailsPane) -> Vec<Line<'static>> {
    let details = pane.details;
    let call = &details.call;
    let mut lines = vec![
        Line::from(vec![
            Span::styled("contact ", label()),
            Span::raw(format!(
                "{} (#{}) {}",
                call.contact_name.as_deref().unwrap_or("—"),
                call.contact_id,
                call.phone
            )),
            Span::styled("  status ", label()),
            Span::styled(call.status.as_str(), call_status_style(call.status)),
            Span::styled("  attempts ", label()),
            Span::raw(call.attempt_count.to_string()),
        ]),
        Line::from(vec![
            Span::styled("age ", label()),
            Span::raw(age(&call.created_at, pane.now)),
            Span::styled("  provider id ", label()),
            Span::raw(
                call.provider_call_id
                    .clone()
                    .unwrap_or_else(|| "— (not created at Vapi)".into()),
            ),
            Span::styled("  cost ", label()),
            Span::raw(call.cost_usd.map_or("—".to_string(), super::money)),
        ]),
        Line::from(vec![
            // Which call of its contact this is, and the redials the contact has had.
            Span::styled("dial ", label()),
            Span::raw(call.sequence.to_string()),
            Span::styled("  redials ", label()),
            Span::raw(call.redials.to_string()),
            Span::styled("  ended reason ", label()),
            Span::raw(call.ended_reason.clone().unwrap_or_else(|| "—".into())),
        ]),
    ];
    transcript(details, &mut lines);
    // The end-of-call report's analysis (when a report brought one), in full.
    if let Some(a) = &details.analysis {
        for (key, value) in [
            ("summary    ", &a.summary),
            ("evaluation ", &a.success_evaluation),
            ("data       ", &a.structured_data),
            ("recording  ", &a.recording_url),
        ] {
            if let Some(value) = value {
                lines.push(Line::from(vec![
                    Span::styled(key, label()),
                    Span::raw(value.replace(['\n', '\r'], " ")),
                ]));
            }
        }
    }
    lines.push(Line::from(""));
    let Some(attempts) = &details.attempts else {
        lines.push(Line::from(Span::styled("loading attempts…", label())));
        return lines;
    };
    if attempts.is_empty() {
        lines.push(Line::from(Span::styled("no attempts recorded", label())));
        return lines;
    }
    lines.push(Line::from(Span::styled(
        format!(
            "{:<3}{:<9}{:<9}{:<5}{:<14}{}",
            "#", "started", "finished", "http", "outcome", "retry in"
        ),
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    )));
    for a in attempts {
        lines.push(Line::from(vec![
            Span::raw(format!(
                "{:<3}{:<9}{:<9}{:<5}",
                a.attempt,
                clock(&a.started_at),
                a.finished_at.as_deref().map(clock).unwrap_or_default(),
                a.http_status.map(|s| s.to_string()).unwrap_or_default(),
            )),
            Span::styled(
                format!("{:<14}", a.outcome.as_str()),
                outcome_style(a.outcome),
            ),
            Span::raw(
                a.retry_delay_ms
                    .and_then(|d| u64::try_from(d).ok())
                    .map(duration_ms)
                    .unwrap_or_default(),
            ),
        ]));
        if let Some(error) = &a.error {
            // Its own line, indented, wrapped: errors are the longest thing here.
            lines.push(Line::from(vec![
                Span::raw("   "),
                Span::styled(
                    error.replace(['\n', '\r'], " "),
                    Style::new().fg(Color::Gray),
                ),
            ]));
        }
    }
    lines
}

/// What was said, a line per utterance with its time from the call's start; a live call's
/// follows the conversation.
fn transcript(details: &Details, lines: &mut Vec<Line<'static>>) {
    use crate::model::live::Speaker;
    let live = details.call.status.is_at_vapi();
    if details.transcript.is_empty() && !live {
        return;
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        if live {
            "transcript (live)"
        } else {
            "transcript"
        },
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    )));
    if details.transcript.is_empty() {
        lines.push(Line::from(Span::styled("nothing said yet…", label())));
    }
    for line in &details.transcript {
        let style = match line.speaker {
            Speaker::Assistant => Style::new().fg(Color::Cyan),
            Speaker::Customer => Style::new().fg(Color::Yellow),
            Speaker::Operator => Style::new().fg(Color::Magenta),
            Speaker::Tool => Style::new().fg(Color::Gray),
        };
        let at = line.at_s.max(0.0) as u64;
        lines.push(Line::from(vec![
            Span::styled(format!("{:>2}:{:02} ", at / 60, at % 60), label()),
            Span::styled(format!("{:<10}", line.speaker.label()), style),
            Span::raw(line.text.replace(['\n', '\r'], " ")),
        ]));
    }
}

/// Lines once wrapped at `width` (roughly: words may wrap a little earlier).
fn wrapped_height(lines: &[Line], width: u16) -> usize {
    let width = usize::from(width.max(1));
    lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum()
}

/// The popup's rectangle and how far its content scrolls, for `lines` on `area`.
fn geometry(lines: &[Line], area: Rect) -> (Rect, u16) {
    let width = area.width.saturating_sub(4).min(120);
    let content = wrapped_height(lines, width.saturating_sub(2));
    let height = u16::try_from(content + 2)
        .unwrap_or(u16::MAX)
        .min(area.height.saturating_sub(2));
    let visible = usize::from(height.saturating_sub(2));
    let max_scroll = u16::try_from(content.saturating_sub(visible)).unwrap_or(u16::MAX);
    (centered(area, width, height), max_scroll)
}

/// How far the popup scrolls on `area` (the app clamps its scroll to this).
pub fn max_scroll(pane: &DetailsPane, area: Rect) -> u16 {
    geometry(&lines(pane), area).1
}

pub fn render(pane: &DetailsPane, area: Rect, buf: &mut Buffer) {
    let call = &pane.details.call;
    let lines = lines(pane);
    let (popup, max_scroll) = geometry(&lines, area);
    let scroll = pane.details.scroll.min(max_scroll);
    let key = |action| pane.keys.key_label(action);
    let mut hint = String::from(" ");
    if max_scroll > 0 {
        hint.push_str(&format!(
            "{}/{} scroll ({}/{}) · ",
            key(KeyAction::Down),
            key(KeyAction::Up),
            scroll,
            max_scroll
        ));
    }
    if !pane.read_only && call.status == CallStatus::Failed {
        hint.push_str(&format!("{} retries · ", key(KeyAction::RetryCall)));
    }
    if !pane.read_only && call.status.is_at_vapi() {
        hint.push_str(&format!(
            "{} say · {} whisper · {} mute · {} transfer · {} end · {} listen · ",
            key(KeyAction::Say),
            key(KeyAction::Whisper),
            key(KeyAction::Mute),
            key(KeyAction::Transfer),
            key(KeyAction::EndCall),
            key(KeyAction::Listen),
        ));
    }
    hint.push_str(&format!("{} closes ", key(KeyAction::Close)));
    let block = pane_block(format!(" Call {} ", call.id), true)
        .title_bottom(Line::from(Span::styled(hint, label())).right_aligned());
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((scroll, 0))
        .render(popup, buf);
}
