//! The campaign list popup (`C`): every campaign with its status, progress and why it is
//! paused; Enter shows one, and start, pause/resume and cancel act on the highlighted one.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, Row, StatefulWidget, Table, TableState, Widget};

use super::columns::{Column, ellipsis, fit, width};
use super::{campaign_status_style, centered, count, label, pane_block};
use crate::app::App;
use crate::dispatch::snapshot::CampaignView;
use crate::keys::KeyAction;

/// What the list needs: the campaigns, which is highlighted and which is shown, and the keys.
pub struct CampaignList<'a> {
    pub campaigns: &'a [CampaignView],
    pub selected: usize,
    pub shown: Option<i64>,
    pub hint: String,
}

impl<'a> CampaignList<'a> {
    pub fn of(app: &'a App, selected: usize) -> CampaignList<'a> {
        let key = |action| app.keys.key_label(action);
        let mut hint = format!(" {} show", key(KeyAction::Details));
        if !app.options.read_only {
            hint.push_str(&format!(
                " · {} start · {} pause/resume · {} cancel",
                key(KeyAction::StartCampaign),
                key(KeyAction::PauseCampaign),
                key(KeyAction::CancelCampaign)
            ));
        }
        hint.push_str(&format!(" · {} close ", key(KeyAction::Close)));
        CampaignList {
            campaigns: &app.snapshot.campaigns,
            selected,
            shown: app.campaign_id,
            hint,
        }
    }
}

const COLUMNS: [Column; 4] = [
    Column {
        header: "campaign",
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
        header: "progress",
        drop_rank: Some(0),
        min_cut: None,
        wide: false,
    },
    Column {
        header: "pause reason",
        drop_rank: None,
        min_cut: Some(12),
        wide: true,
    },
];

fn cells(c: &CampaignView, shown: bool) -> [String; 4] {
    [
        format!("{}{}", if shown { "● " } else { "  " }, c.name),
        c.status.as_str().to_string(),
        format!(
            "{:>3.0}% {}/{}",
            c.progress() * 100.0,
            count(c.contacts_done),
            count(c.contacts_total)
        ),
        c.pause_reason.clone().unwrap_or_default(),
    ]
}

/// Where the popup sits for `n` campaigns; its rows start on its third line (border,
/// header).
pub fn popup_area(area: Rect, n: usize) -> Rect {
    let rows = u16::try_from(n).unwrap_or(u16::MAX);
    centered(
        area,
        110.min(area.width.saturating_sub(2)),
        rows.saturating_add(4).max(6),
    )
}

pub fn render(list: &CampaignList, area: Rect, buf: &mut Buffer) {
    let popup = popup_area(area, list.campaigns.len());
    let block = pane_block(" Campaigns ", true)
        .title_bottom(Line::from(Span::styled(list.hint.clone(), label())).right_aligned());
    let inner = block.inner(popup);
    Clear.render(popup, buf);
    block.render(popup, buf);
    if list.campaigns.is_empty() {
        Line::from(Span::styled(
            "no campaigns: import contacts with `switchboard import`",
            label(),
        ))
        .render(inner, buf);
        return;
    }
    let texts: Vec<[String; 4]> = list
        .campaigns
        .iter()
        .map(|c| cells(c, Some(c.id) == list.shown))
        .collect();
    let mut natural = [0u16; 4];
    for row in &texts {
        for (n, text) in natural.iter_mut().zip(row) {
            *n = (*n).max(width(text));
        }
    }
    let fitted = fit(&COLUMNS, &natural, inner.width.saturating_sub(2), 2);
    let shown: Vec<(usize, u16)> = fitted
        .iter()
        .enumerate()
        .filter_map(|(i, w)| Some((i, (*w)?)))
        .collect();
    let header = Row::new(shown.iter().map(|(i, _)| COLUMNS[*i].header)).style(label());
    let table_rows = list.campaigns.iter().zip(&texts).map(|(c, texts)| {
        Row::new(shown.iter().map(|(i, w)| {
            let cell = Cell::from(ellipsis(&texts[*i], *w));
            match *i {
                1 => cell.style(campaign_status_style(c.status)),
                3 => cell.style(Style::new().fg(ratatui::style::Color::Yellow)),
                _ => cell,
            }
        }))
    });
    let widths: Vec<Constraint> = shown.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let table = Table::new(table_rows, widths)
        .header(header)
        .column_spacing(2)
        .highlight_symbol("▶ ")
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD));
    let mut state =
        TableState::default().with_selected(Some(list.selected.min(list.campaigns.len() - 1)));
    StatefulWidget::render(table, inner, buf, &mut state);
}
