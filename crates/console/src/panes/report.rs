//! The `o` popup: the shown campaign's ended calls by ended reason, by the hour of day they
//! were placed (in the campaign's zone) and by which call of its contact they were, each with
//! how many had a conversation. Read on demand from the store (`Store::campaign_report`).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget};

use super::{centered, count, label, money, pane_block};
use crate::app::App;
use crate::store::stats::{CampaignReport, ReportLine};

/// What the report popup draws: the campaign's name and its report (`None` while read).
pub struct ReportPane<'a> {
    pub campaign: Option<&'a str>,
    pub report: Option<&'a CampaignReport>,
}

impl<'a> ReportPane<'a> {
    pub fn of(app: &'a App, report: Option<&'a CampaignReport>) -> ReportPane<'a> {
        ReportPane {
            campaign: app.campaign().map(|c| c.name.as_str()),
            report,
        }
    }
}

/// "50%" of `part` in `whole`; "—" of nothing.
fn percent(part: i64, whole: i64) -> String {
    if whole == 0 {
        return "—".into();
    }
    format!("{:.0}%", part as f64 * 100.0 / whole as f64)
}

fn heading(text: String) -> Line<'static> {
    Line::from(Span::styled(
        text,
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    ))
}

/// One section: a heading, a column header, then a line per group.
fn section<K>(
    title: String,
    key_header: &str,
    key_width: usize,
    lines: &[ReportLine<K>],
    key: impl Fn(&K) -> String,
) -> Vec<Line<'static>> {
    let mut out = vec![
        heading(title),
        Line::from(Span::styled(
            format!(
                "{key_header:<key_width$} {:>6} {:>6} {:>5}",
                "calls", "talked", "talk"
            ),
            label(),
        )),
    ];
    if lines.is_empty() {
        out.push(Line::from(Span::styled("no ended calls yet", label())));
    }
    for line in lines {
        out.push(Line::from(format!(
            "{:<key_width$} {:>6} {:>6} {:>5}",
            key(&line.key),
            count(line.calls),
            count(line.talked),
            percent(line.talked, line.calls)
        )));
    }
    out
}

pub fn render(pane: &ReportPane, area: Rect, buf: &mut Buffer) {
    let name = pane.campaign.unwrap_or("—");
    let block = pane_block(format!(" Report · {name} "), true)
        .title_bottom(Line::from(Span::styled(" o/Esc closes ", label())).right_aligned());
    let Some(report) = pane.report else {
        let popup = centered(area, 60.min(area.width.saturating_sub(2)), 5);
        Clear.render(popup, buf);
        Paragraph::new(Span::styled("reading the report…", label()))
            .block(block)
            .render(popup, buf);
        return;
    };
    let calls: i64 = report.by_dial.iter().map(|l| l.calls).sum();
    let talked: i64 = report.by_dial.iter().map(|l| l.talked).sum();
    let cost: f64 = report.by_dial.iter().map(|l| l.cost_usd).sum();
    // Reasons are the long keys: as wide as the longest, within reason.
    let reason_width = report
        .by_reason
        .iter()
        .map(|l| l.key.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(12, 30);
    let reasons = section(
        "By ended reason".into(),
        "reason",
        reason_width,
        &report.by_reason,
        |r: &String| {
            let shown = if r.is_empty() { "—" } else { r.as_str() };
            super::columns::ellipsis(shown, u16::try_from(reason_width).unwrap_or(30))
        },
    );
    let hours = section(
        format!("By hour ({})", report.zone),
        "hour",
        5,
        &report.by_hour,
        |h: &u32| format!("{h:02}:00"),
    );
    let dials = section("By dial".into(), "dial", 4, &report.by_dial, |d: &i64| {
        d.to_string()
    });
    let arms = arm_lines(report);
    let rows = reasons.len().max(hours.len()).max(dials.len()) + arms.len();
    let height = u16::try_from(rows + 4).unwrap_or(u16::MAX);
    let width = area.width.saturating_sub(4).min(116);
    let popup = centered(area, width, height.min(area.height.saturating_sub(2)));
    Clear.render(popup, buf);
    let inner = block.inner(popup);
    block.render(popup, buf);
    let [summary, _, body, arms_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(u16::try_from(arms.len()).unwrap_or(u16::MAX)),
    ])
    .areas(inner);
    Paragraph::new(Line::from(vec![
        Span::raw(format!("{} ended calls", count(calls))),
        Span::styled(" · ", label()),
        Span::raw(format!(
            "{} with a conversation ({})",
            count(talked),
            percent(talked, calls)
        )),
        Span::styled(" · ", label()),
        Span::raw(format!(
            "{} successes ({})",
            count(report.success.successes),
            percent(report.success.successes, report.success.judged)
        )),
        Span::styled(" · ", label()),
        Span::raw(format!("{} spent", money(cost))),
        Span::styled(" · ", label()),
        Span::raw(format!(
            "{} voicemail messages left",
            count(i64::try_from(report.voicemail_messages_left).unwrap_or(i64::MAX))
        )),
    ]))
    .render(summary, buf);
    let reason_columns = u16::try_from(reason_width + 21).unwrap_or(u16::MAX);
    let [left, middle, right] = Layout::horizontal([
        Constraint::Length(reason_columns + 3),
        Constraint::Length(28 + 3),
        Constraint::Min(0),
    ])
    .areas(body);
    Paragraph::new(reasons).render(left, buf);
    Paragraph::new(hours).render(middle, buf);
    Paragraph::new(dials).render(right, buf);
    Paragraph::new(arms).render(arms_area, buf);
}

/// The arms section: per arm its calls, conversations, success rate with its 95 % interval,
/// cost per success and whether it differs from the best (empty without arms).
fn arm_lines(report: &CampaignReport) -> Vec<Line<'static>> {
    if report.arms.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        heading("Arms (A: pause, resume or stop one)".into()),
        Line::from(Span::styled(
            format!(
                "{:<22} {:<8} {:>6} {:>6} {:>6} {:<22} {:>9}  vs best",
                "assistant", "status", "calls", "talked", "ok", "rate (95 % interval)", "$/ok"
            ),
            label(),
        )),
    ];
    for arm in &report.arms {
        let rate = match (arm.success_rate, arm.interval) {
            (Some(r), Some((lo, hi))) => {
                format!("{:.0}% ({:.0}-{:.0}%)", r * 100.0, lo * 100.0, hi * 100.0)
            }
            _ => "—".into(),
        };
        let versus = match arm.differs_from_best {
            None if arm.conversations > 0 => "best",
            None => "—",
            Some(true) => "significant",
            Some(false) => "not significant",
        };
        let n = |v: u64| count(i64::try_from(v).unwrap_or(i64::MAX));
        out.push(Line::from(format!(
            "{:<22} {:<8} {:>6} {:>6} {:>6} {:<22} {:>9}  {versus}",
            super::columns::ellipsis(&arm.assistant_id, 22),
            arm.status.map_or("", |s| s.as_str()),
            n(arm.calls),
            n(arm.conversations),
            n(arm.successes),
            rate,
            arm.cost_per_success.map_or("—".to_string(), money),
        )));
    }
    out
}
