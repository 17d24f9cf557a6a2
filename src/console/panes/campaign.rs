//! The shown campaign: progress, counters, success rate, reasons calls ended, and money.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Widget};

use super::{age, campaign_status_style, count, date_time, label, money, pane_block};
use crate::console::app::App;
use crate::dispatch::snapshot::CampaignView;

/// Reasons listed in the wide pane.
const TOP_REASONS: usize = 5;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = pane_block(" Campaign ", false);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(c) = app.campaign() else {
        Paragraph::new(Span::styled("no campaign", label())).render(inner, buf);
        return;
    };
    let [status, gauge, rest] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);

    let mut line = vec![
        Span::styled("status   ", label()),
        Span::styled(c.status.as_str(), campaign_status_style(c.status)),
    ];
    if let Some(started) = &c.started_at {
        line.push(Span::styled(" since ", label()));
        line.push(Span::raw(date_time(started)));
        line.push(Span::styled(
            format!(" ({} ago)", age(started, app.now)),
            label(),
        ));
    }
    Paragraph::new(Line::from(line)).render(status, buf);

    Gauge::default()
        .ratio(c.progress().clamp(0.0, 1.0))
        .label(format!(
            "{:.0}%  {} / {} contacts",
            c.progress() * 100.0,
            count(c.contacts_done),
            count(c.contacts_total)
        ))
        .gauge_style(Style::new().fg(Color::Green).bg(Color::Black))
        .use_unicode(true)
        .render(gauge, buf);

    let mut lines = vec![
        counters(c),
        Line::from(vec![
            Span::styled("success  ", label()),
            Span::raw(match c.success_rate {
                Some(rate) => format!("{:.1}%", rate * 100.0),
                None => "—".into(),
            }),
            Span::styled(" of ended calls", label()),
        ]),
        Line::from(vec![
            Span::styled("cost     ", label()),
            Span::styled(money(c.cost_usd), Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(" so far", label()),
            match c.estimated_remaining_usd {
                Some(rest) => Span::raw(format!(" · est. {} to finish", money(rest))),
                None => Span::raw(""),
            },
        ]),
    ];
    if !c.reasons.is_empty() {
        lines.push(Line::from(Span::styled("ended reasons", label())));
        let width = usize::from(rest.width).saturating_sub(10).max(8);
        for (reason, n) in c.reasons.iter().take(TOP_REASONS) {
            lines.push(Line::from(vec![
                Span::raw(format!("  {:<width$.width$}", reason)),
                Span::raw(format!("{:>7}", count(*n))),
            ]));
        }
    }
    Paragraph::new(lines).render(rest, buf);
}

fn counters(c: &CampaignView) -> Line<'static> {
    Line::from(vec![
        Span::styled("created ", label()),
        Span::raw(count(c.created)),
        Span::styled("  active ", label()),
        Span::styled(count(c.active), Style::new().fg(Color::Green)),
        Span::styled("  ended ", label()),
        Span::raw(count(c.ended)),
        Span::styled("  failed ", label()),
        Span::styled(count(c.failed), Style::new().fg(Color::Red)),
    ])
}

/// One line for small terminals.
pub fn render_line(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(c) = app.campaign() else {
        Paragraph::new(Span::styled(" no campaign", label())).render(area, buf);
        return;
    };
    let mut spans = vec![
        Span::styled(" done ", label()),
        Span::styled(
            format!("{:.0}%", c.progress() * 100.0),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " {}/{}",
            count(c.contacts_done),
            count(c.contacts_total)
        )),
        Span::styled(" · act ", label()),
        Span::styled(count(c.active), Style::new().fg(Color::Green)),
        Span::styled(" end ", label()),
        Span::raw(count(c.ended)),
        Span::styled(" fail ", label()),
        Span::styled(count(c.failed), Style::new().fg(Color::Red)),
    ];
    if let Some(rate) = c.success_rate {
        spans.push(Span::styled(" · ok ", label()));
        spans.push(Span::raw(format!("{:.0}%", rate * 100.0)));
    }
    spans.push(Span::styled(" · ", label()));
    spans.push(Span::raw(money(c.cost_usd)));
    if let Some(rest) = c.estimated_remaining_usd {
        spans.push(Span::styled(format!(" (+{} est.)", money(rest)), label()));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}
