//! Where each pane goes. The layout degrades with the terminal: wide terminals get side
//! panes for the campaign and the quota; 80x24 gets a two-line summary instead, so the call
//! list keeps its rows. Geometry only: the app's state reads it (visible rows) without
//! knowing how anything is drawn.

use ratatui::layout::{Constraint, Layout, Rect};

/// The screen, cut into panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub calls: Rect,
    pub side: Side,
    pub log: Rect,
    pub footer: Rect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Wide terminals: a campaign pane above a quota pane, right of the calls.
    Panes { campaign: Rect, quota: Rect },
    /// Small terminals: campaign and quota as two lines under the calls.
    Summary(Rect),
}

/// Wide enough for side panes next to a readable call table.
const WIDE_WIDTH: u16 = 120;
const WIDE_HEIGHT: u16 = 32;
/// The campaign pane: six lines of numbers and an outcome chart of five reasons.
const CAMPAIGN_HEIGHT: u16 = 14;

pub fn layout(area: Rect) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(2),
    ])
    .areas(area);
    if area.width >= WIDE_WIDTH && area.height >= WIDE_HEIGHT {
        let log_height = (body.height / 4).clamp(6, 14);
        let [top, log] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(log_height)]).areas(body);
        let side_width = (area.width * 2 / 5).clamp(50, 72);
        let [calls, side] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(side_width)]).areas(top);
        let [campaign, quota] =
            Layout::vertical([Constraint::Length(CAMPAIGN_HEIGHT), Constraint::Min(0)]).areas(side);
        Areas {
            header,
            calls,
            side: Side::Panes { campaign, quota },
            log,
            footer,
        }
    } else {
        let log_height = if body.height >= 16 { 5 } else { 3 };
        let [calls, summary, log] = Layout::vertical([
            Constraint::Min(0),
            Constraint::Length(2),
            Constraint::Length(log_height),
        ])
        .areas(body);
        Areas {
            header,
            calls,
            side: Side::Summary(summary),
            log,
            footer,
        }
    }
}

/// Table rows inside the calls pane: its borders and the column header take three lines.
pub fn calls_table_rows(calls: Rect) -> u16 {
    calls.height.saturating_sub(3)
}
