//! Enter on a call: who it is for, where it stands, and every create attempt with its HTTP
//! status, outcome, error and the delay before the next one (the persisted retry log).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, Paragraph, Row, Table, Widget};

use super::{age, call_status_style, centered, clock, duration_ms, label, pane_block};
use crate::console::app::{App, Details};
use crate::model::AttemptOutcome;

fn outcome_style(outcome: AttemptOutcome) -> Style {
    match outcome {
        AttemptOutcome::Created | AttemptOutcome::Adopted => Style::new().fg(Color::Green),
        AttemptOutcome::InFlight => Style::new().fg(Color::Cyan),
        AttemptOutcome::Refused
        | AttemptOutcome::RateLimited
        | AttemptOutcome::Ambiguous
        | AttemptOutcome::NotCreated => Style::new().fg(Color::Yellow),
        AttemptOutcome::Rejected | AttemptOutcome::AuthFailed => {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        }
    }
}

pub fn render(app: &App, details: &Details, area: Rect, buf: &mut Buffer) {
    let call = &details.call;
    let rows = details.attempts.as_ref().map_or(1, Vec::len);
    // The end-of-call report's analysis, one line each (when a report brought one).
    let analysis: Vec<(&str, &str)> = details
        .analysis
        .as_ref()
        .map(|a| {
            [
                ("summary    ", a.summary.as_deref()),
                ("evaluation ", a.success_evaluation.as_deref()),
                ("data       ", a.structured_data.as_deref()),
                ("recording  ", a.recording_url.as_deref()),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
        })
        .unwrap_or_default();
    let info_height = 3 + analysis.len();
    let height = u16::try_from(rows + 3 + info_height).unwrap_or(u16::MAX);
    let popup = centered(
        area,
        area.width.saturating_sub(4).min(120),
        height.min(area.height.saturating_sub(2)),
    );
    let retry_hint = if app.options.read_only || call.status != crate::model::CallStatus::Failed {
        " Esc closes ".to_string()
    } else {
        format!(
            " {} retries · Esc closes ",
            app.keys
                .key_label(crate::console::keys::KeyAction::RetryCall)
        )
    };
    let block = pane_block(format!(" Call {} ", call.id), true)
        .title_bottom(Line::from(Span::styled(retry_hint, label())).right_aligned());
    let inner = block.inner(popup);
    Clear.render(popup, buf);
    block.render(popup, buf);

    let [info, table] = Layout::vertical([
        Constraint::Length(u16::try_from(info_height).unwrap_or(3)),
        Constraint::Min(0),
    ])
    .areas(inner);
    let mut info_lines = vec![
        Line::from(vec![
            Span::styled("contact ", label()),
            Span::raw(format!(
                "{} (#{}) {}",
                call.contact_name.as_deref().unwrap_or("—"),
                call.contact_id,
                call.phone
            )),
            Span::styled("  status ", label()),
            Span::styled(call.status.as_str(), call_status_style(call.status)),
            Span::styled("  attempts ", label()),
            Span::raw(call.attempt_count.to_string()),
        ]),
        Line::from(vec![
            Span::styled("age ", label()),
            Span::raw(age(&call.created_at, app.now)),
            Span::styled("  ", label()),
            Span::styled("provider id ", label()),
            Span::raw(
                call.provider_call_id
                    .as_deref()
                    .unwrap_or("— (not created at Vapi)"),
            ),
            Span::styled("  cost ", label()),
            Span::raw(call.cost_usd.map_or("—".to_string(), super::money)),
        ]),
        Line::from(vec![
            Span::styled("ended reason ", label()),
            Span::raw(call.ended_reason.as_deref().unwrap_or("—")),
        ]),
    ];
    for (key, value) in analysis {
        info_lines.push(Line::from(vec![
            Span::styled(key, label()),
            Span::raw(value.replace(['\n', '\r'], " ")),
        ]));
    }
    Paragraph::new(info_lines).render(info, buf);

    let Some(attempts) = &details.attempts else {
        Paragraph::new(Span::styled("loading attempts…", label())).render(table, buf);
        return;
    };
    if attempts.is_empty() {
        Paragraph::new(Span::styled("no attempts recorded", label())).render(table, buf);
        return;
    }
    let header = Row::new([
        "#", "started", "finished", "http", "outcome", "error", "retry in",
    ])
    .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD));
    let rows = attempts.iter().map(|a| {
        Row::new([
            Cell::from(a.attempt.to_string()),
            Cell::from(clock(&a.started_at)),
            Cell::from(a.finished_at.as_deref().map(clock).unwrap_or_default()),
            Cell::from(a.http_status.map(|s| s.to_string()).unwrap_or_default()),
            Cell::from(a.outcome.as_str()).style(outcome_style(a.outcome)),
            Cell::from(a.error.clone().unwrap_or_default()),
            Cell::from(
                a.retry_delay_ms
                    .and_then(|d| u64::try_from(d).ok())
                    .map(duration_ms)
                    .unwrap_or_default(),
            ),
        ])
    });
    let widths = [
        Constraint::Length(2),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Length(13),
        Constraint::Fill(1),
        Constraint::Length(8),
    ];
    Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .render(table, buf);
}
