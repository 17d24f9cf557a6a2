//! The retry log. By default it shows the engine's event ring from the snapshot (attempts,
//! retries with their delays, breaker moves, pauses): deterministic and always in step with
//! the rest of the screen. `l` switches to everything logged through `tracing`, via
//! tui-logger.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use std::collections::VecDeque;

use tui_logger::{TuiLoggerLevelOutput, TuiLoggerWidget, TuiWidgetState};

use super::{clock, duration_ms, label, pane_block};
use crate::app::{App, Focus, LogSource};
use crate::dispatch::snapshot::{EngineEvent, EventKind};

/// What the log pane needs: which log, where it is scrolled, the engine's events.
pub struct LogPane<'a> {
    pub focused: bool,
    pub source: LogSource,
    pub events: &'a VecDeque<EngineEvent>,
    /// Lines scrolled up from the newest event.
    pub scroll: usize,
    pub tracing: &'a TuiWidgetState,
}

impl<'a> LogPane<'a> {
    pub fn of(app: &'a App) -> LogPane<'a> {
        LogPane {
            focused: app.focus == Focus::Log,
            source: app.log_source,
            events: &app.snapshot.events,
            scroll: app.log_scroll,
            tracing: &app.log_state,
        }
    }
}

pub fn render(pane: &LogPane, area: Rect, buf: &mut Buffer) {
    let focused = pane.focused;
    match pane.source {
        LogSource::Events => render_events(pane, area, buf, focused),
        LogSource::Tracing => {
            let block = pane_block(" Log · tracing (l: engine events) ", focused);
            TuiLoggerWidget::default()
                .block(block)
                .output_separator(' ')
                .output_timestamp(Some("%H:%M:%S".into()))
                .output_level(Some(TuiLoggerLevelOutput::Abbreviated))
                .output_target(true)
                .output_file(false)
                .output_line(false)
                .style_error(Style::new().fg(Color::Red))
                .style_warn(Style::new().fg(Color::Yellow))
                .style_info(Style::new().fg(Color::Gray))
                .style_debug(Style::new().fg(Color::DarkGray))
                .state(pane.tracing)
                .render(area, buf);
        }
    }
}

fn render_events(pane: &LogPane, area: Rect, buf: &mut Buffer, focused: bool) {
    let events = pane.events;
    let mut title = format!(" Retry log · {} events ", events.len());
    if pane.scroll > 0 {
        title.push_str(&format!("(↑{}) ", pane.scroll));
    }
    let block = pane_block(title, focused)
        .title_bottom(Line::from(Span::styled(" l: tracing log ", label())).right_aligned());
    let inner = block.inner(area);
    block.render(area, buf);
    if events.is_empty() {
        Paragraph::new(Span::styled("no engine events yet", label())).render(inner, buf);
        return;
    }
    // Newest at the bottom, like a terminal; scrolling goes back in time.
    let rows = usize::from(inner.height);
    let end = events.len().saturating_sub(pane.scroll);
    let start = end.saturating_sub(rows);
    let lines: Vec<Line> = events.range(start..end).map(event_line).collect();
    Paragraph::new(lines).render(inner, buf);
}

fn kind_style(kind: EventKind) -> (&'static str, Style) {
    match kind {
        EventKind::Attempt => ("attempt", Style::new().fg(Color::Gray)),
        EventKind::Retry => ("retry", Style::new().fg(Color::Yellow)),
        EventKind::Created => ("created", Style::new().fg(Color::Green)),
        EventKind::Adopted => ("adopted", Style::new().fg(Color::Cyan)),
        EventKind::Unknown => ("unknown", Style::new().fg(Color::Magenta)),
        EventKind::Settled => ("settled", Style::new().fg(Color::Cyan)),
        EventKind::Failed => ("failed", Style::new().fg(Color::Red)),
        EventKind::Breaker => (
            "breaker",
            Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        ),
        EventKind::Pause => (
            "pause",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        EventKind::Quota => ("quota", Style::new().fg(Color::Yellow)),
        EventKind::Command => ("command", Style::new().fg(Color::Blue)),
        EventKind::Live => ("live", Style::new().fg(Color::Magenta)),
    }
}

fn event_line(event: &EngineEvent) -> Line<'_> {
    let (kind, style) = kind_style(event.kind);
    let mut spans = vec![
        Span::styled(clock(&event.at), label()),
        Span::raw(" "),
        Span::styled(format!("{kind:<8}"), style),
    ];
    if let Some(call) = event.call_id {
        spans.push(Span::raw(format!("call {call}")));
        if let Some(attempt) = event.attempt {
            spans.push(Span::styled(format!(" #{attempt}"), label()));
        }
        spans.push(Span::raw("  "));
    }
    spans.push(Span::raw(event.message.as_str()));
    if let Some(delay) = event.next_delay_ms {
        spans.push(Span::styled(
            format!(" → retry in {}", duration_ms(delay)),
            Style::new().fg(Color::Yellow),
        ));
    }
    Line::from(spans)
}
