//! The call list: tabs with counts, and a table of the visible window only. The app holds
//! just the rows on screen (read with LIMIT/OFFSET), so a million-call campaign draws as
//! fast as a ten-call one.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Margin, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Cell, Paragraph, Row, Scrollbar, ScrollbarOrientation, ScrollbarState, StatefulWidget, Table,
    TableState, Widget,
};

use super::{age, call_status_style, count, label, pane_block};
use crate::console::app::{App, Focus, sort_name};
use crate::store::stats::{CallListRow, CallTab};

const TABS: [(CallTab, &str); 4] = [
    (CallTab::Queued, "Queued"),
    (CallTab::Active, "Active"),
    (CallTab::Failed, "Failed"),
    (CallTab::All, "All"),
];

/// Counts for the tab labels. The shown tab uses the exact count of its list; the others
/// come from the snapshot's counters (no count query per tab per refresh).
fn tab_count(app: &App, tab: CallTab) -> Option<i64> {
    if tab == app.tab && app.total.is_some() {
        return app.total;
    }
    let snap = &app.snapshot;
    let (creating, active, failed, created) = match app.campaign() {
        Some(c) => (c.creating, c.active, c.failed, c.created),
        None if snap.campaigns.is_empty() => return None,
        None => (
            snap.creating,
            snap.active,
            snap.failed,
            snap.campaigns.iter().map(|c| c.created).sum(),
        ),
    };
    Some(match tab {
        CallTab::Queued => creating,
        CallTab::Active => active,
        CallTab::Failed => failed,
        CallTab::All => created + creating + failed,
    })
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let mut tabs = vec![Span::raw(" ")];
    for (i, (tab, name)) in TABS.iter().enumerate() {
        if i > 0 {
            tabs.push(Span::styled(" │ ", label()));
        }
        let text = match tab_count(app, *tab) {
            Some(n) => format!("{} {name} {}", i + 1, count(n)),
            None => format!("{} {name}", i + 1),
        };
        let style = if *tab == app.tab {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Gray)
        };
        tabs.push(Span::styled(text, style));
    }
    tabs.push(Span::raw(" "));

    let mut info = vec![Span::styled(
        format!(" sort {} ", sort_name(app.sort)),
        label(),
    )];
    if let Some(filter) = &app.filter {
        info.push(Span::styled(
            format!("filter \"{filter}\" "),
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(total) = app.total.filter(|t| *t > 0) {
        info.push(Span::styled(
            format!("{}/{} ", count(app.selected + 1), count(total)),
            label(),
        ));
    }

    let block = pane_block(Line::from(tabs), app.focus == Focus::Calls)
        .title_bottom(Line::from(info).right_aligned());
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }

    let total = match app.total {
        None => {
            Paragraph::new(Span::styled("loading…", label())).render(inner, buf);
            return;
        }
        Some(0) => {
            let text = match &app.filter {
                Some(f) => format!("no calls match \"{f}\" (Esc clears the filter)"),
                None => "no calls in this tab".to_string(),
            };
            Paragraph::new(Span::styled(text, label())).render(inner, buf);
            return;
        }
        Some(total) => total,
    };

    let header = Row::new([
        "call",
        "contact",
        "phone",
        "status",
        "att",
        "provider id",
        "age",
        "ended reason",
    ])
    .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD));
    let height = i64::from(inner.height.saturating_sub(1));
    let end = (app.scroll + height).min(total);
    let rows: Vec<Row> = (app.scroll..end)
        .map(|index| {
            usize::try_from(index - app.page_offset)
                .ok()
                .and_then(|i| app.page.get(i))
                .map(|row| table_row(app, row))
                // Not read yet (the window just moved): a placeholder, never a stall.
                .unwrap_or_else(|| Row::new([Cell::from("…")]).style(label()))
        })
        .collect();
    let widths = [
        Constraint::Length(7),
        Constraint::Fill(2),
        Constraint::Length(13),
        Constraint::Length(11),
        Constraint::Length(3),
        Constraint::Fill(2),
        Constraint::Length(4),
        Constraint::Fill(3),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .highlight_symbol("▶ ")
        .row_highlight_style(if app.focus == Focus::Calls {
            Style::new()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        });
    let selected = usize::try_from(app.selected - app.scroll).ok();
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, inner, buf, &mut state);

    if total > height {
        let mut scrollbar = ScrollbarState::new(usize::try_from(total).unwrap_or(usize::MAX))
            .position(usize::try_from(app.selected).unwrap_or(0));
        Scrollbar::new(ScrollbarOrientation::VerticalRight)
            .begin_symbol(None)
            .end_symbol(None)
            .render(
                area.inner(Margin {
                    horizontal: 0,
                    vertical: 1,
                }),
                buf,
                &mut scrollbar,
            );
    }
}

fn table_row<'a>(app: &App, row: &'a CallListRow) -> Row<'a> {
    Row::new([
        Cell::from(row.id.to_string()),
        Cell::from(row.contact_name.as_deref().unwrap_or("—")),
        Cell::from(row.phone.as_str()),
        Cell::from(row.status.as_str()).style(call_status_style(row.status)),
        Cell::from(row.attempt_count.to_string()),
        Cell::from(row.provider_call_id.as_deref().unwrap_or("—")),
        Cell::from(age(&row.created_at, app.now)),
        Cell::from(row.ended_reason.as_deref().unwrap_or("")),
    ])
}
