//! The prompt for a live call: what to say, whisper or where to transfer, typed in a dialog
//! that names the call and the person.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use super::{centered, label, pane_block};
use crate::live::Prompt;

pub fn render(prompt: &Prompt, area: Rect, buf: &mut Buffer) {
    let width = 72.min(area.width.saturating_sub(2));
    let text_width = usize::from(width.saturating_sub(2)).max(1);
    let input_lines = (prompt.input.chars().count() + 2).div_ceil(text_width);
    let height = u16::try_from(input_lines + 6).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    let lines = vec![
        Line::from(vec![
            Span::styled("call ", label()),
            Span::raw(prompt.who.clone()),
        ]),
        Line::from(""),
        Line::from(vec![
            Span::styled("> ", Style::new().fg(Color::Cyan)),
            Span::raw(prompt.input.clone()),
            Span::styled("▏", Style::new().fg(Color::Cyan)),
        ]),
        Line::from(""),
        Line::from(Span::styled(prompt.hint(), label())),
    ];
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(pane_block(format!(" {} ", prompt.title()), true))
        .wrap(Wrap { trim: false })
        .render(popup, buf);
}
