//! Bottom two lines: the answer to the last action (or the filter being typed), then the key
//! hints, built from the key registry so they always name the keys in force.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::label;
use crate::app::{App, StatusKind};
use crate::keys::{KeyAction, KeyRegistry};
use crate::model::CampaignStatus;

/// What the footer draws: the filter being typed or the last answer, and the key hints with
/// the two pause keys saying what they will do now.
pub struct FooterPane<'a> {
    pub input: Option<&'a str>,
    /// Why the typed filter was refused (`column 10: unknown call status …`).
    pub input_error: Option<&'a str>,
    pub status: Option<&'a (String, StatusKind)>,
    pub keys: &'a KeyRegistry,
    pub read_only: bool,
    /// From the newest snapshot: the pause keys would resume.
    pub dispatch_paused: bool,
    pub campaign_paused: bool,
}

impl<'a> FooterPane<'a> {
    pub fn of(app: &'a App) -> FooterPane<'a> {
        FooterPane {
            input: app.input.as_deref(),
            input_error: app.input_error.as_deref(),
            status: app.status.as_ref(),
            keys: &app.keys,
            read_only: app.options.read_only,
            dispatch_paused: app.latest().dispatch_paused.is_some(),
            campaign_paused: app
                .campaign()
                .is_some_and(|c| c.status == CampaignStatus::Paused),
        }
    }
}

pub fn render(pane: &FooterPane, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let status = Rect { height: 1, ..area };
    let first = match (pane.input, pane.status) {
        (Some(text), _) => Line::from(vec![
            Span::styled(" filter / ", Style::new().fg(Color::Yellow)),
            Span::styled(
                format!("{text}█"),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            match pane.input_error {
                Some(error) => Span::styled(
                    format!("   {error}"),
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                None => Span::styled("   Enter apply · Esc clear", label()),
            },
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
    Paragraph::new(hint_line(pane, usize::from(area.width))).render(hints, buf);
}

/// As many hints as fit, in registry order; help and quit always stay.
pub fn hint_line(pane: &FooterPane, width: usize) -> Line<'static> {
    let help_key = pane.keys.key_label(KeyAction::Help);
    let quit_key = pane.keys.key_label(KeyAction::Quit);
    let hints: Vec<(String, String)> = pane
        .keys
        .hints(pane.read_only)
        .into_iter()
        .map(|(key, label)| {
            // The pause keys say what they will do now.
            let label = match label {
                "pause" if pane.dispatch_paused => "resume",
                "pause campaign" if pane.campaign_paused => "resume campaign",
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
