//! The `?` overlay: every action of the key registry with its keys, then the keys that work
//! inside dialogs. Read-only mode leaves out what it disables.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget};

use super::{centered, label, pane_block};
use crate::app::App;
use crate::keys::{KeyAction, KeyRegistry};

/// What the help overlay draws: the keys in force, whether read-only mode hides some, and
/// how far it is scrolled.
pub struct HelpPane<'a> {
    pub keys: &'a KeyRegistry,
    pub read_only: bool,
    pub scroll: u16,
}

impl<'a> HelpPane<'a> {
    pub fn of(app: &'a App, scroll: u16) -> HelpPane<'a> {
        HelpPane {
            keys: &app.keys,
            read_only: app.options.read_only,
            scroll,
        }
    }
}

pub fn lines(pane: &HelpPane) -> Vec<Line<'static>> {
    let key_style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    for (spec, keys) in pane.keys.entries(pane.read_only) {
        let keys = keys
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let mut spans = vec![
            Span::styled(format!(" {keys:<11}"), key_style),
            Span::raw(spec.description),
        ];
        if spec.mutates {
            spans.push(Span::styled(" *", Style::new().fg(Color::Yellow)));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<11}", "ctrl-c"), key_style),
        Span::raw("like quit (a second ctrl-c answers yes)"),
    ]));
    lines.push(Line::from(""));
    let key = |action| pane.keys.key_label(action);
    for text in [
        " In dialogs: y acts · n/Esc keeps · ←/→ choose · Enter presses the chosen button (the"
            .to_string(),
        " safe one unless you chose the other). Filter: type, Enter applies, Esc clears."
            .to_string(),
        format!(
            " Campaign list ({}): {}/{} move · {} shows · {} starts · {} pauses/resumes · {} cancels.",
            key(KeyAction::CampaignList),
            key(KeyAction::Down),
            key(KeyAction::Up),
            key(KeyAction::Details),
            key(KeyAction::StartCampaign),
            key(KeyAction::PauseCampaign),
            key(KeyAction::CancelCampaign)
        ),
        format!(
            " Details ({}): {}/{} {}/{} scroll · {} retries a failed call.",
            key(KeyAction::Details),
            key(KeyAction::Down),
            key(KeyAction::Up),
            key(KeyAction::PageDown),
            key(KeyAction::PageUp),
            key(KeyAction::RetryCall)
        ),
        " Mouse: click a tab, a row or a campaign; the wheel scrolls (--no-mouse turns it off)."
            .to_string(),
    ] {
        lines.push(Line::from(Span::styled(text, label())));
    }
    lines.extend(filter_lines());
    if pane.read_only {
        lines.push(Line::from(Span::styled(
            " Read-only: pausing, rate, retry, cancel and do-not-call are disabled.",
            Style::new().fg(Color::Blue),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            " * changes the engine's state (hidden with --read-only).",
            label(),
        )));
    }
    lines
}

/// The filter language, from the model's table of fields: what `/` takes besides text.
fn filter_lines() -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(""),
        Line::from(Span::styled(
            " Filter (/): text searches phone, name, provider id and reason; with a comparison it",
            label(),
        )),
        Line::from(Span::styled(
            " is an expression: FIELD OP VALUE joined by and, or, not, ( ). OP: = != < <= > >= ~",
            label(),
        )),
        Line::from(Span::styled(
            " (~ contains). e.g. status = FAILED and attempts >= 2 · reason ~ busy or zone = UTC",
            label(),
        )),
    ];
    for (name, _, meaning) in crate::model::filter::FIELDS {
        lines.push(Line::from(vec![
            Span::styled(format!("   {name:<11}"), Style::new().fg(Color::Cyan)),
            Span::styled(*meaning, label()),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        " Bulk (B): on every row listed; counts first, then asks. W saves the filter, F steps",
        label(),
    )));
    for (action, meaning) in crate::model::bulk::ACTIONS {
        lines.push(Line::from(vec![
            Span::styled(format!("   {action:<16}"), Style::new().fg(Color::Cyan)),
            Span::styled(*meaning, label()),
        ]));
    }
    lines
}

pub fn render(pane: &HelpPane, area: Rect, buf: &mut Buffer) {
    let lines = lines(pane);
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centered(
        area,
        92.min(area.width.saturating_sub(2)),
        height.min(area.height),
    );
    let visible = popup.height.saturating_sub(2);
    let max_scroll = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_sub(visible);
    let scroll = pane.scroll.min(max_scroll);
    let mut block = pane_block(" Keys (Esc closes) ", true);
    if max_scroll > 0 {
        block =
            block.title_bottom(Line::from(Span::styled(" j/k scroll ", label())).right_aligned());
    }
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(block)
        .scroll((scroll, 0))
        .render(popup, buf);
}
