//! Bottom two lines: the answer to the last action (or the filter being typed), then the key
//! hints, built from the key registry so they always name the keys in force.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::label;
use crate::console::app::{App, StatusKind};
use crate::console::keys::KeyAction;
use crate::model::CampaignStatus;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let status = Rect { height: 1, ..area };
    let first = match (&app.input, &app.status) {
        (Some(text), _) => Line::from(vec![
            Span::styled(" filter / ", Style::new().fg(Color::Yellow)),
            Span::styled(
                format!("{text}█"),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled("   Enter apply · Esc clear", label()),
        ]),
        (None, Some((text, kind))) => {
            let style = match kind {
                StatusKind::Info => Style::new().fg(Color::Gray),
                StatusKind::Pending => Style::new().fg(Color::Cyan),
                StatusKind::Ok => Style::new().fg(Color::Green),
                StatusKind::Error => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            };
            Line::from(vec![Span::raw(" "), Span::styled(text.as_str(), style)])
        }
        (None, None) => Line::from(""),
    };
    Paragraph::new(first).render(status, buf);
    if area.height < 2 {
        return;
    }
    let hints = Rect {
        y: area.y + 1,
        height: 1,
        ..area
    };
    Paragraph::new(hint_line(app, usize::from(area.width))).render(hints, buf);
}

/// As many hints as fit, in registry order; help and quit always stay.
pub fn hint_line(app: &App, width: usize) -> Line<'static> {
    let latest = app.latest();
    let campaign_paused = app
        .campaign()
        .is_some_and(|c| c.status == CampaignStatus::Paused);
    let help_key = app.keys.key_label(KeyAction::Help);
    let quit_key = app.keys.key_label(KeyAction::Quit);
    let hints: Vec<(String, String)> = app
        .keys
        .hints(app.options.read_only)
        .into_iter()
        .map(|(key, label)| {
            // The pause keys say what they will do now.
            let label = match label {
                "pause" if latest.dispatch_paused.is_some() => "resume",
                "pause campaign" if campaign_paused => "resume campaign",
                other => other,
            };
            (key, label.to_string())
        })
        .collect();
    let size = |(k, l): &(String, String)| k.chars().count() + l.chars().count() + 3;
    let reserved: usize = hints
        .iter()
        .filter(|(k, _)| *k == help_key || *k == quit_key)
        .map(size)
        .sum();
    let mut used = 1 + reserved;
    let mut spans = vec![Span::raw(" ")];
    for hint in &hints {
        let fixed = hint.0 == help_key || hint.0 == quit_key;
        if !fixed {
            if used + size(hint) > width {
                continue;
            }
            used += size(hint);
        }
        spans.push(Span::styled(
            hint.0.clone(),
            Style::new().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::styled(format!(" {}  ", hint.1), label()));
    }
    Line::from(spans)
}
