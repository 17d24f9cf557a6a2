//! The confirmation dialog for dangerous actions. Its buttons say what they do, and the safe
//! one is the default, so a stray Enter never retries a thousand calls or cancels a campaign.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use super::{centered, label, pane_block};
use crate::app::Confirm;

pub fn render(confirm: &Confirm, area: Rect, buf: &mut Buffer) {
    let width = 64.min(area.width.saturating_sub(2));
    // Wrapped message lines (roughly), a blank line, the buttons and the key line.
    let text_width = usize::from(width.saturating_sub(2)).max(1);
    let message_lines = confirm.message.chars().count().div_ceil(text_width) + 1;
    let height = u16::try_from(message_lines + 5).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    let selected = Style::new()
        .fg(Color::Black)
        .bg(Color::Cyan)
        .add_modifier(Modifier::BOLD);
    let plain = Style::new().fg(Color::Gray);
    let (cancel, ok) = if confirm.confirm_selected {
        (plain, selected)
    } else {
        (selected, plain)
    };
    let lines = vec![
        Line::from(confirm.message.clone()),
        Line::from(""),
        Line::from(vec![
            // Brackets as well as colour mark the button Enter presses.
            Span::styled(
                button(&confirm.keep_label, !confirm.confirm_selected),
                cancel,
            ),
            Span::raw("    "),
            Span::styled(button(&confirm.act_label, confirm.confirm_selected), ok),
        ])
        .alignment(Alignment::Center),
        Line::from(Span::styled(
            "y acts · n/Esc keeps · ←/→ choose · Enter presses [the chosen]",
            label(),
        ))
        .alignment(Alignment::Center),
    ];
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(pane_block(format!(" {} ", confirm.title), true))
        .wrap(Wrap { trim: true })
        .render(popup, buf);
}

/// A button; brackets mark the one Enter presses (as well as its colour).
fn button(text: &str, chosen: bool) -> String {
    if chosen {
        format!("[ {text} ]")
    } else {
        format!("  {text}  ")
    }
}
