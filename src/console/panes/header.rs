//! Top two lines: which campaign, its state and the dispatcher's, and the badges that change
//! how to read the rest of the screen (demo, read-only, frozen, stopping).

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{campaign_status_style, duration_ms, label};
use crate::console::app::App;
use crate::dispatch::snapshot::BreakerState;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let snap = &app.snapshot;
    let bold = Style::new().add_modifier(Modifier::BOLD);

    // Line 1: title, campaign, its status and why it is paused.
    let mut first = vec![Span::styled(
        format!(" {} ", app.options.title),
        bold.fg(Color::Cyan),
    )];
    match app.campaign() {
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

    // Badges, right-aligned over line 1: they matter more than a long campaign name.
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
    if app.options.demo {
        badges.push(badge(" DEMO · Vapi is simulated ", Color::Magenta));
    }
    if let Some(holder) = &app.latest().attached_to {
        badges.push(Span::raw(" "));
        badges.push(Span::styled(
            format!(" attached to {holder} "),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if app.options.read_only {
        badges.push(Span::raw(" "));
        badges.push(badge(" READ-ONLY ", Color::Blue));
    }
    if app.frozen {
        badges.push(Span::raw(" "));
        badges.push(badge(" FROZEN ", Color::Cyan));
    }
    if app.quitting {
        badges.push(Span::raw(" "));
        badges.push(badge(" STOPPING ", Color::Yellow));
    }
    if !badges.is_empty() {
        Paragraph::new(Line::from(badges))
            .alignment(Alignment::Right)
            .render(Rect { height: 1, ..area }, buf);
    }

    if area.height < 2 {
        return;
    }
    // Line 2: the dispatcher as a whole.
    let mut second = vec![Span::styled(" dispatch ", label())];
    match &snap.dispatch_paused {
        Some(reason) => second.push(Span::styled(
            format!("PAUSED: {reason}"),
            bold.fg(Color::Black).bg(Color::Yellow),
        )),
        None if snap.stopped => second.push(Span::styled("STOPPED", bold.fg(Color::Red))),
        None => second.push(Span::styled("RUNNING", bold.fg(Color::Green))),
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
    Paragraph::new(Line::from(second)).render(
        Rect {
            y: area.y + 1,
            height: 1,
            ..area
        },
        buf,
    );
}
