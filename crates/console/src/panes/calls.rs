//! The call list: tabs with counts, and a table of the visible window only. The app holds
//! just the rows on screen (and a screenful either side), so a million-call campaign draws
//! as fast as a ten-call one. Columns are sized to the rows on screen (`columns.rs`).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Margin, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Cell, Paragraph, Row, Scrollbar, ScrollbarOrientation, ScrollbarState, StatefulWidget, Table,
    TableState, Widget,
};

use chrono::{DateTime, Utc};

use super::columns::{Column, ellipsis, fit, highlight, width};
use super::{age, call_status_style, count, label, pane_block};
use crate::app::{App, Focus, sort_name};
use crate::policy::{WaitReason, local_when};
use crate::store::stats::{CallListRow, CallSort, CallTab};

pub const TABS: [(CallTab, &str); 6] = [
    (CallTab::Pending, "Pending"),
    (CallTab::Dialing, "Dialing"),
    (CallTab::Active, "Active"),
    (CallTab::Failed, "Failed"),
    (CallTab::Done, "Done"),
    (CallTab::All, "All"),
];

/// What the call list draws: the tabs and their counts, the window of rows held, where the
/// cursor is, and the clock for ages.
pub struct CallsPane<'a> {
    pub tab: CallTab,
    /// Each tab's count, in the order of [`TABS`]; `None` before there is a campaign.
    pub counts: [Option<i64>; TABS.len()],
    pub sort: CallSort,
    pub filter: Option<&'a str>,
    /// The text searched for (marked in the rows); none for an expression.
    pub search: Option<&'a str>,
    /// Rows in the whole list; `None` until the first page.
    pub total: Option<i64>,
    /// Absolute indexes of the selected row and of the first visible row.
    pub selected: i64,
    pub scroll: i64,
    /// The rows held, starting at `page_offset`.
    pub page: &'a [CallListRow],
    pub page_offset: i64,
    pub focused: bool,
    pub now: DateTime<Utc>,
    /// The saved filters' names (`F` steps through them), and whether each is in force.
    pub saved: Vec<(&'a str, bool)>,
}

impl<'a> CallsPane<'a> {
    pub fn of(app: &'a App) -> CallsPane<'a> {
        CallsPane {
            tab: app.tab,
            counts: TABS.map(|(tab, _)| tab_count(app, tab)),
            sort: app.sort,
            filter: app.filter.as_deref(),
            search: app.search(),
            total: app.total,
            selected: app.selected,
            scroll: app.scroll,
            page: &app.page,
            page_offset: app.page_offset,
            focused: app.focus == Focus::Calls,
            now: app.now,
            saved: {
                let active = app.active_saved().map(|f| f.name.as_str());
                app.saved
                    .iter()
                    .map(|f| (f.name.as_str(), Some(f.name.as_str()) == active))
                    .collect()
            },
        }
    }

    /// The held row at an absolute index of the list.
    fn row(&self, index: i64) -> Option<&'a CallListRow> {
        usize::try_from(index - self.page_offset)
            .ok()
            .and_then(|i| self.page.get(i))
    }
}

/// Counts for the tab labels, from the campaign's counters: the same numbers the campaign
/// pane shows. The shown tab uses its list's exact count when there is no filter (it is
/// the same number, read a moment later); with a filter it says how many match.
fn tab_count(app: &App, tab: CallTab) -> Option<i64> {
    if tab == app.tab && app.filter.is_some() {
        return app.total;
    }
    let c = app.campaign()?;
    Some(match tab {
        CallTab::Pending => c.pending,
        CallTab::Dialing => c.creating,
        CallTab::Active => c.active,
        CallTab::Failed => c.failed,
        CallTab::Done => c.ended,
        CallTab::All => c.created + c.creating + c.failed,
    })
}

const TAB_GAP: &str = " │ ";

/// "3 Active 9": the key, the name and the count; `compact` drops the key when the pane is
/// too narrow for all six (the footer and `?` list the keys).
fn tab_label(pane: &CallsPane, i: usize, compact: bool) -> String {
    let (_, name) = TABS[i];
    let key = if compact {
        String::new()
    } else {
        format!("{} ", i + 1)
    };
    match pane.counts[i] {
        Some(n) => format!("{key}{name} {}", count(n)),
        None => format!("{key}{name}"),
    }
}

/// Where each tab's label sits on the top line of a pane `width` wide, as columns from the
/// pane's left edge (for mouse clicks), and whether the labels are compact. The title
/// starts after the corner and a space.
pub fn tab_ranges(pane: &CallsPane, width: u16) -> (Vec<(CallTab, u16, u16)>, bool) {
    let lay_out = |compact: bool| {
        let mut x = 2u16;
        let mut out = Vec::new();
        for (i, (tab, _)) in TABS.iter().enumerate() {
            if i > 0 {
                x += super::columns::width(TAB_GAP);
            }
            let w = super::columns::width(&tab_label(pane, i, compact));
            out.push((*tab, x, x + w));
            x += w;
        }
        (out, x + 2)
    };
    let (full, needed) = lay_out(false);
    if needed <= width {
        return (full, false);
    }
    (lay_out(true).0, true)
}

/// The first table row's line: under the top border and the column header.
pub const FIRST_ROW: u16 = 2;

pub fn render(pane: &CallsPane, area: Rect, buf: &mut Buffer) {
    let (tabs, info) = titles(pane, area.width);
    let block = pane_block(tabs, pane.focused).title_bottom(info.right_aligned());
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }

    let total = match pane.total {
        None => {
            Paragraph::new(Span::styled("loading…", label())).render(inner, buf);
            return;
        }
        Some(0) => {
            let text = match pane.filter {
                Some(f) => format!("no calls match \"{f}\" (Esc clears the filter)"),
                None if pane.tab == CallTab::Pending => "no contacts waiting".to_string(),
                None => "no calls in this tab".to_string(),
            };
            Paragraph::new(Span::styled(text, label())).render(inner, buf);
            return;
        }
        Some(total) => total,
    };

    let height = i64::from(inner.height.saturating_sub(1));
    let end = (pane.scroll + height).min(total);
    // The texts first: the columns are sized to what is on screen.
    let texts: Vec<Option<[String; COLUMNS.len()]>> = (pane.scroll..end)
        .map(|index| pane.row(index).map(|row| cells(pane, row)))
        .collect();
    let pending = pane.tab == CallTab::Pending;
    let headers: Vec<&str> = (0..COLUMNS.len())
        .map(|i| match i {
            // Pending rows are contacts: when they will be dialled and why not sooner, the
            // sequences used and the dial they wait for.
            STATUS if pending => "lane",
            AGE if pending => "next",
            ATTEMPTS if pending => "seq",
            REASON if pending => "waiting for",
            _ => COLUMNS[i].header,
        })
        .collect();
    let mut natural = [0u16; COLUMNS.len()];
    for (n, header) in natural.iter_mut().zip(&headers) {
        *n = width(header);
    }
    for row in texts.iter().flatten() {
        for (n, text) in natural.iter_mut().zip(row) {
            *n = (*n).max(width(text));
        }
    }
    let available = inner.width.saturating_sub(width(HIGHLIGHT));
    let mut columns = COLUMNS;
    if pending {
        // When a waiting contact will be dialled is what the Pending tab is read for.
        columns[AGE].drop_rank = None;
    }
    let fitted = fit(&columns, &natural, available, 1);
    let shown: Vec<(usize, u16)> = fitted
        .iter()
        .enumerate()
        .filter_map(|(i, w)| Some((i, (*w)?)))
        .collect();
    let header = Row::new(shown.iter().map(|(i, _)| headers[*i]))
        .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = texts
        .iter()
        .zip(pane.scroll..end)
        .map(|(texts, index)| match texts {
            Some(texts) => {
                let status = pane
                    .row(index)
                    .map(|r| {
                        if r.pending_contact {
                            Style::new().fg(Color::Cyan)
                        } else {
                            call_status_style(r.status)
                        }
                    })
                    .unwrap_or_default();
                Row::new(shown.iter().map(|(i, w)| {
                    let text = ellipsis(&texts[*i], *w);
                    match *i {
                        STATUS => Cell::from(text).style(status),
                        // The columns the filter searches show where it matched.
                        1 | 2 | PROVIDER | REASON => Cell::from(highlight(text, pane.search)),
                        _ => Cell::from(text),
                    }
                }))
            }
            // Not read yet (the window just moved): a placeholder, never a stall.
            None => Row::new([Cell::from("…")]).style(label()),
        })
        .collect();
    let widths: Vec<Constraint> = shown.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .highlight_symbol(HIGHLIGHT)
        // REVERSED rather than a background colour: every status colour stays readable on
        // the selected row (it becomes the cell's background), in any palette.
        .row_highlight_style(if pane.focused {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        });
    let selected = usize::try_from(pane.selected - pane.scroll).ok();
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, inner, buf, &mut state);

    if total > height {
        scrollbar(pane, total, area, buf);
    }
}

/// The pane's titles: the tabs with their counts (top), sort, filter and position (bottom).
fn titles(pane: &CallsPane, width: u16) -> (Line<'static>, Line<'static>) {
    let (_, compact) = tab_ranges(pane, width);
    let mut tabs = vec![Span::raw(" ")];
    for (i, (tab, _)) in TABS.iter().enumerate() {
        if i > 0 {
            tabs.push(Span::styled(TAB_GAP, label()));
        }
        let style = if *tab == pane.tab {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Gray)
        };
        tabs.push(Span::styled(tab_label(pane, i, compact), style));
    }
    tabs.push(Span::raw(" "));

    let mut info = vec![Span::styled(
        format!(" sort {} ", sort_name(pane.sort)),
        label(),
    )];
    if let Some(filter) = pane.filter {
        info.push(Span::styled(
            format!("filter \"{filter}\" "),
            Style::new().fg(Color::Yellow),
        ));
    }
    if !pane.saved.is_empty() {
        info.push(Span::styled("F ", label()));
        for (i, (name, active)) in pane.saved.iter().enumerate() {
            if i > 0 {
                info.push(Span::styled("·", label()));
            }
            let style = if *active {
                Style::new().fg(Color::Black).bg(Color::Yellow)
            } else {
                Style::new().fg(Color::Gray)
            };
            info.push(Span::styled(name.to_string(), style));
        }
        info.push(Span::raw(" "));
    }
    if let Some(total) = pane.total.filter(|t| *t > 0) {
        info.push(Span::styled(
            format!("{}/{} ", count(pane.selected + 1), count(total)),
            label(),
        ));
    }

    (Line::from(tabs), Line::from(info))
}

fn scrollbar(pane: &CallsPane, total: i64, area: Rect, buf: &mut Buffer) {
    let mut scrollbar = ScrollbarState::new(usize::try_from(total).unwrap_or(usize::MAX))
        .position(usize::try_from(pane.selected).unwrap_or(0));
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

const HIGHLIGHT: &str = "▶ ";
const STATUS: usize = 3;
const ATTEMPTS: usize = 4;
const PROVIDER: usize = 6;
const AGE: usize = 7;
const REASON: usize = 8;

/// The call list's columns: the contact, phone, status and reason are what the operator
/// reads; the provider id (also in the details popup), which dial of the contact, attempts,
/// age and call id make way for them, in that order.
const COLUMNS: [Column; 9] = [
    Column {
        header: "call",
        drop_rank: Some(4),
        min_cut: None,
        wide: false,
    },
    Column {
        header: "contact",
        drop_rank: None,
        min_cut: Some(8),
        wide: false,
    },
    Column {
        header: "phone",
        drop_rank: None,
        min_cut: Some(10),
        wide: false,
    },
    Column {
        header: "status",
        drop_rank: None,
        min_cut: None,
        wide: false,
    },
    Column {
        header: "att",
        drop_rank: Some(2),
        min_cut: None,
        wide: false,
    },
    // Which call of its contact this is: 2 and up are redials or operator retries.
    Column {
        header: "dial",
        drop_rank: Some(1),
        min_cut: None,
        wide: false,
    },
    Column {
        header: "provider id",
        drop_rank: Some(0),
        min_cut: Some(8),
        wide: false,
    },
    Column {
        header: "age",
        drop_rank: Some(3),
        min_cut: None,
        wide: false,
    },
    Column {
        header: "ended reason",
        drop_rank: None,
        min_cut: Some(12),
        wide: true,
    },
];

fn cells(pane: &CallsPane, row: &CallListRow) -> [String; COLUMNS.len()] {
    if row.pending_contact {
        // A contact, not a call: no call id, no provider id; "next" is when it will be
        // dialled (its deferral and its calling window, in its zone), and why not sooner.
        let (next, why) = match &row.waiting {
            None => ("now".to_string(), String::new()),
            Some(w) => {
                let when = local_when(w.until, w.zone, pane.now);
                let why = match &w.why {
                    WaitReason::Window => format!("window opens {when} {}", w.zone),
                    WaitReason::Deferred(reason) => format!("{reason}: due {when} {}", w.zone),
                };
                (when, why)
            }
        };
        return [
            "—".into(),
            row.contact_name.clone().unwrap_or_else(|| "—".into()),
            row.phone.clone(),
            // The lane it waits in: callbacks go first, then fresh contacts, then redials.
            row.lane.map_or("PENDING", |lane| lane.as_str()).to_string(),
            row.attempt_count.to_string(),
            // The dial it waits for.
            (row.sequence + 1).to_string(),
            "—".into(),
            next,
            why,
        ];
    }
    [
        row.id.to_string(),
        row.contact_name.clone().unwrap_or_else(|| "—".into()),
        row.phone.clone(),
        row.status.as_str().to_string(),
        row.attempt_count.to_string(),
        row.sequence.to_string(),
        row.provider_call_id.clone().unwrap_or_else(|| "—".into()),
        age(&row.created_at, pane.now),
        row.ended_reason.clone().unwrap_or_default(),
    ]
}
