//! How close the dispatcher is to each limit: request rate, concurrency, daily calls, budget,
//! plus 429s seen, the global back-off and the breaker.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph, Sparkline, Widget};

use super::{duration_ms, label, load_color, money, pane_block};
use crate::app::App;
use crate::dispatch::snapshot::{BreakerState, QuotaView};
use crate::history;

/// One gauge: label, used, limit (text), fill ratio.
struct Meter {
    name: &'static str,
    text: String,
    /// For the one-line summary of small terminals.
    short: String,
    ratio: f64,
}

fn meters(q: &QuotaView) -> Vec<Meter> {
    let ratio = |used: f64, limit: f64| {
        if limit > 0.0 {
            (used / limit).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let mut out = vec![
        Meter {
            name: "req/min",
            text: format!(
                "{} / {}",
                q.requests_last_minute, q.requests_per_minute_limit
            ),
            short: format!(
                "req {}/{}/min",
                q.requests_last_minute, q.requests_per_minute_limit
            ),
            ratio: ratio(
                q.requests_last_minute as f64,
                q.requests_per_minute_limit as f64,
            ),
        },
        Meter {
            name: "concurrency",
            text: match q.vapi_concurrency_limit {
                Some(vapi) => format!(
                    "{} / {} (Vapi {vapi})",
                    q.concurrency_used, q.concurrency_cap
                ),
                None => format!("{} / {}", q.concurrency_used, q.concurrency_cap),
            },
            short: format!("conc {}/{}", q.concurrency_used, q.concurrency_cap),
            ratio: ratio(q.concurrency_used as f64, f64::from(q.concurrency_cap)),
        },
    ];
    if let Some(limit) = q.daily_limit {
        out.push(Meter {
            name: "calls today",
            text: format!("{} / {limit}", q.calls_today),
            short: format!("today {}/{limit}", q.calls_today),
            ratio: ratio(q.calls_today as f64, limit as f64),
        });
    }
    if let Some(budget) = q.budget_usd {
        out.push(Meter {
            name: "spend",
            text: format!("{} / {}", money(q.spend_usd), money(budget)),
            short: format!("{}/{}", money(q.spend_usd), money(budget)),
            ratio: ratio(q.spend_usd, budget),
        });
    }
    out
}

/// The last ten minutes as sparklines (from the console's history, `history.rs`).
pub struct Trends {
    pub creates_per_sec: Vec<u64>,
    pub rate_limited_per_min: Vec<u64>,
    pub active: Vec<u64>,
}

impl Trends {
    pub fn of(app: &App) -> Trends {
        Trends {
            creates_per_sec: app.history.creates_per_sec(),
            rate_limited_per_min: app.history.rate_limited_per_min(),
            active: app.history.active(),
        }
    }
}

/// Three lines: creates/s, 429s/min and calls at Vapi, oldest left, newest right, with the
/// newest value and the peak.
pub fn render_trends(trends: &Trends, area: Rect, buf: &mut Buffer) {
    let series = [
        ("creates/s", &trends.creates_per_sec, Color::Cyan),
        ("429s/min", &trends.rate_limited_per_min, Color::Yellow),
        ("active", &trends.active, Color::Green),
    ];
    for (i, (name, values, colour)) in series.into_iter().enumerate() {
        let y = area.y + u16::try_from(i).unwrap_or(0);
        if y >= area.y + area.height {
            return;
        }
        let now = values.last().copied().unwrap_or(0);
        let peak = values.iter().copied().max().unwrap_or(0);
        let tail = format!(" {now:>3} ↑{peak:<3}");
        let tail_width = u16::try_from(tail.chars().count()).unwrap_or(0);
        let spark_width = area.width.saturating_sub(12 + tail_width);
        Paragraph::new(Span::styled(format!("{name:<12}"), label()))
            .render(Rect::new(area.x, y, 12.min(area.width), 1), buf);
        let points = history::squeeze(values, usize::from(spark_width));
        // Right-aligned: the newest sample sits next to its number.
        let used = u16::try_from(points.len())
            .unwrap_or(spark_width)
            .min(spark_width);
        Sparkline::default()
            .data(&points)
            .max(peak.max(1))
            .style(Style::new().fg(colour))
            .render(Rect::new(area.x + 12 + spark_width - used, y, used, 1), buf);
        Paragraph::new(Span::raw(tail))
            .render(Rect::new(area.x + 12 + spark_width, y, tail_width, 1), buf);
    }
}

/// The lines under the meters: the number pool, then the request budget, webhooks, 429s,
/// back-off, breaker and burst.
fn limit_lines(snap: &crate::dispatch::Snapshot) -> Vec<Line<'static>> {
    let q = &snap.quota;
    let mut lines = number_lines(&snap.numbers);
    lines.push(Line::from(""));
    let budget = &q.budget;
    if budget.configured_per_second > 0.0 {
        let learnt_below = budget.learnt_per_second + 0.05 < budget.configured_per_second;
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12}", "requests"), label()),
            Span::styled(
                format!(
                    "{:.1}/s learnt of {:.1}/s configured",
                    budget.learnt_per_second, budget.configured_per_second
                ),
                if learnt_below {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                },
            ),
        ]));
    }
    if snap.webhook_refused > 0 {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12}", "webhooks"), label()),
            Span::styled(
                format!(
                    "{} refused: {}",
                    snap.webhook_refused,
                    snap.webhook_last_refusal
                        .as_deref()
                        .unwrap_or("bad credentials")
                ),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "429s"), label()),
        Span::styled(
            q.rate_limited_total.to_string(),
            if q.rate_limited_total > 0 {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            },
        ),
        match q.vapi_remaining {
            Some(left) => Span::styled(format!(" · Vapi reports {left} call slots left"), label()),
            None => Span::raw(""),
        },
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "backoff"), label()),
        if snap.backoff_ms > 0 {
            Span::styled(
                format!("{} left (after a 429)", duration_ms(snap.backoff_ms)),
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            )
        } else {
            Span::raw("none")
        },
    ]));
    let b = &snap.breaker;
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "breaker"), label()),
        match b.state {
            BreakerState::Closed => Span::styled(
                format!(
                    "closed ({} of {} failures)",
                    b.consecutive_failures, b.threshold
                ),
                Style::new().fg(Color::Green),
            ),
            BreakerState::Open => Span::styled(
                format!("OPEN: next probe in {}", duration_ms(b.retry_in_ms)),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            BreakerState::HalfOpen => Span::styled(
                "half-open: one probe allowed",
                Style::new().fg(Color::Yellow),
            ),
        },
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "burst"), label()),
        Span::raw(snap.burst.to_string()),
    ]));
    lines
}

/// What the quota pane needs: the engine's numbers (quota, breaker, back-off, webhook
/// refusals) and the trends of the last ten minutes.
pub struct QuotaPane<'a> {
    pub snapshot: &'a crate::dispatch::Snapshot,
    pub trends: Trends,
}

impl<'a> QuotaPane<'a> {
    pub fn of(app: &'a App) -> QuotaPane<'a> {
        QuotaPane {
            snapshot: &app.snapshot,
            trends: Trends::of(app),
        }
    }
}

pub fn render(pane: &QuotaPane, area: Rect, buf: &mut Buffer) {
    let block = pane_block(" Quota · last 10 min ", false);
    let inner = block.inner(area);
    block.render(area, buf);
    // The trends keep the bottom three lines whenever the pane has room for a meter too.
    let inner = if inner.height >= 5 {
        let [rest, trends] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(3)]).areas(inner);
        render_trends(&pane.trends, trends, buf);
        rest
    } else {
        inner
    };
    let snap = pane.snapshot;
    let q = &snap.quota;
    let mut y = inner.y;
    let bottom = inner.y + inner.height;
    for meter in meters(q) {
        if y >= bottom {
            return;
        }
        LineGauge::default()
            .ratio(meter.ratio)
            .label(Line::from(vec![
                Span::styled(format!("{:<12}", meter.name), label()),
                Span::raw(format!("{:<22}", meter.text)),
            ]))
            .filled_symbol("━")
            .unfilled_symbol("─")
            .filled_style(Style::new().fg(load_color(meter.ratio)))
            .unfilled_style(Style::new().fg(Color::DarkGray))
            .render(Rect::new(inner.x, y, inner.width, 1), buf);
        y += 1;
    }
    if q.daily_limit.is_none() || q.budget_usd.is_none() {
        let mut unset = Vec::new();
        if q.daily_limit.is_none() {
            unset.push("daily limit");
        }
        if q.budget_usd.is_none() {
            unset.push("budget");
        }
        let mut line = vec![Span::styled(format!("{:<12}", "no limit"), label())];
        line.push(Span::styled(unset.join(", "), label()));
        if q.budget_usd.is_none() {
            line.push(Span::styled(" · spend ", label()));
            line.push(Span::raw(money(q.spend_usd)));
        }
        if q.daily_limit.is_none() {
            line.push(Span::styled(" · today ", label()));
            line.push(Span::raw(q.calls_today.to_string()));
        }
        Paragraph::new(Line::from(line)).render(Rect::new(inner.x, y, inner.width, 1), buf);
        y += 1;
    }
    let lines = limit_lines(snap);
    if y < bottom {
        Paragraph::new(lines).render(Rect::new(inner.x, y, inner.width, bottom - y), buf);
    }
}

/// The phone numbers, one line each (calls today, in use or benched until when and why),
/// when a campaign has a pool of several or one is benched: a lone number in use says
/// nothing the campaign pane does not.
fn number_lines(numbers: &[crate::dispatch::NumberView]) -> Vec<Line<'static>> {
    let pools = numbers.len() > {
        let mut campaigns: Vec<&str> = numbers.iter().map(|n| n.campaign.as_str()).collect();
        campaigns.dedup();
        campaigns.len()
    };
    if !pools && numbers.iter().all(|n| n.benched_until.is_none()) {
        return Vec::new();
    }
    numbers
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let state = match &n.benched_until {
                Some(until) => Span::styled(
                    format!(
                        "benched until {} UTC ({})",
                        until.get(11..16).unwrap_or(until),
                        n.bench_reason.as_deref().unwrap_or("no reason")
                    ),
                    Style::new().fg(Color::Yellow),
                ),
                None => Span::styled("in use", Style::new().fg(Color::Green)),
            };
            let mut spans = vec![
                Span::styled(
                    format!("{:<12}", if i == 0 { "numbers" } else { "" }),
                    label(),
                ),
                Span::raw(format!("{} ", n.phone_number_id)),
                Span::styled(format!("{} · ", n.campaign), label()),
                Span::raw(format!("{} today · ", n.calls_today)),
                state,
            ];
            spans.extend(health_spans(n));
            Line::from(spans)
        })
        .collect()
}

/// A number's health after its state: answer rate of the day beside the campaign's, quick
/// hang-ups, carrier failures in the last hour and day, and the flag.
fn health_spans(n: &crate::dispatch::NumberView) -> Vec<Span<'static>> {
    let Some(h) = &n.health else {
        return Vec::new();
    };
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.0} %", r * 100.0));
    let mut spans = vec![Span::styled(
        format!(
            " · answered {} (campaign {}) · quick {} · carrier {}/{} h/d",
            pct(h.day.answer_rate()),
            pct(n.campaign_day.and_then(|d| d.answer_rate())),
            pct(h.day.quick_share()),
            h.hour.carrier_failures,
            h.day.carrier_failures
        ),
        label(),
    )];
    if let Some(flag) = &h.flag {
        spans.push(Span::styled(
            format!(" · flagged: {flag}"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    spans
}

/// One line for small terminals.
pub fn render_line(snap: &crate::dispatch::Snapshot, area: Rect, buf: &mut Buffer) {
    let q = &snap.quota;
    let mut spans = Vec::new();
    for (i, meter) in meters(q).into_iter().enumerate() {
        spans.push(Span::styled(if i == 0 { " " } else { " · " }, label()));
        spans.push(Span::styled(
            meter.short,
            Style::new().fg(load_color(meter.ratio)),
        ));
    }
    spans.push(Span::styled(" · 429s ", label()));
    spans.push(Span::raw(q.rate_limited_total.to_string()));
    if snap.backoff_ms > 0 {
        spans.push(Span::styled(" · backoff ", label()));
        spans.push(Span::styled(
            duration_ms(snap.backoff_ms),
            Style::new().fg(Color::Yellow),
        ));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::NumberView;

    fn number(campaign: &str, id: &str, benched: Option<&str>) -> NumberView {
        NumberView {
            campaign: campaign.into(),
            phone_number_id: id.into(),
            weight: 1,
            calls_today: 41,
            benched_until: benched.map(|_| "2026-11-29T00:00:00.000Z".into()),
            bench_reason: benched.map(String::from),
            health: None,
            campaign_day: None,
        }
    }

    fn text(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn a_pool_lists_each_number_with_its_calls_today_and_state() {
        let lines = number_lines(&[
            number("spring", "pn-1", None),
            number("spring", "pn-2", Some("daily limit")),
        ]);
        assert_eq!(
            text(&lines),
            [
                "numbers     pn-1 spring · 41 today · in use",
                "            pn-2 spring · 41 today · benched until 00:00 UTC (daily limit)",
            ]
        );
    }

    #[test]
    fn a_flagged_number_shows_its_answer_rate_beside_the_campaigns() {
        use crate::dispatch::number_health::Health;
        use crate::model::number_health::Sample;
        let day = Sample {
            calls: 100,
            answered: 10,
            quick_hangups: 2,
            carrier_failures: 3,
        };
        let mut n = number("spring", "pn-3", None);
        n.health = Some(Health {
            key: "pn-3".into(),
            hour: Sample::default(),
            day,
            flag: Some("answered 10 % against 40 % for its peers".into()),
            rest: false,
        });
        n.campaign_day = Some(Sample {
            calls: 300,
            answered: 90,
            ..Sample::default()
        });
        let lines = number_lines(&[number("spring", "pn-1", None), n]);
        assert_eq!(
            text(&lines)[1],
            "            pn-3 spring · 41 today · in use · answered 10 % (campaign 30 %) · \
             quick 20 % · carrier 0/3 h/d · flagged: answered 10 % against 40 % for its peers"
        );
    }

    #[test]
    fn a_lone_number_in_use_is_not_listed_but_a_benched_one_is() {
        assert!(number_lines(&[number("spring", "pn-1", None)]).is_empty());
        assert!(number_lines(&[number("a", "pn-1", None), number("b", "pn-2", None)]).is_empty());
        let lines = number_lines(&[number("spring", "pn-1", Some("failing"))]);
        assert_eq!(lines.len(), 1);
    }
}
