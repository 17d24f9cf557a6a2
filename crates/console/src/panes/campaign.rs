//! The shown campaign: progress, the tabs' counts, success rate, money, when it will finish
//! (`eta.rs`) and an outcome bar chart of the reasons calls ended.

use ratatui::buffer::Buffer;
use ratatui::layout::Direction;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Gauge, Paragraph, Widget};

use super::{age, campaign_status_style, count, date_time, label, money, pane_block};
use crate::app::App;
use crate::dispatch::snapshot::CampaignView;
use crate::eta::{Limits, Observed, eta, short, throughput};
use crate::model::CampaignStatus;
use crate::model::forecast::{self, Forecast, Pace, finish_text};
use chrono::{DateTime, Utc};

/// Reasons listed in the wide pane.
const TOP_REASONS: usize = 5;

/// What the campaign pane needs: the campaign shown, the clock, and when it will finish.
pub struct CampaignPane<'a> {
    pub campaign: Option<&'a CampaignView>,
    pub now: DateTime<Utc>,
    pub limits: Limits,
    /// The pace seen over the history window, if any.
    pub observed: Option<Observed>,
    /// At that pace, when the calling windows and the schedule let the waiting contacts be
    /// called (None: always open, or no pace seen).
    pub windowed: Option<Forecast>,
}

/// The campaign's waiting contacts swept through its windows at the pace seen.
pub fn windowed(
    c: &CampaignView,
    observed: Option<Observed>,
    limits: Limits,
    now: DateTime<Utc>,
) -> Option<Forecast> {
    let reach = c.reach.as_ref()?;
    let (per_second, call_secs) = throughput(observed, limits)?;
    let pace = Pace {
        rate_per_second: per_second,
        concurrency: limits.concurrency_cap,
        call_secs,
        // The pace seen is of contacts finished: their redials are in it already.
        dials_per_contact: 1.0,
    };
    Some(forecast::forecast(
        &reach.window,
        &reach.schedule,
        &reach.zones,
        pace,
        now,
    ))
}

impl<'a> CampaignPane<'a> {
    pub fn of(app: &'a App) -> CampaignPane<'a> {
        let campaign = app.campaign();
        let snap = app.latest();
        let limits = Limits {
            rate_per_second: snap.rate_per_second,
            concurrency_cap: snap.quota.concurrency_cap,
        };
        let observed = campaign.and_then(|c| app.history.observed(c.id));
        CampaignPane {
            campaign,
            now: app.now,
            limits,
            observed,
            windowed: campaign.and_then(|c| windowed(c, observed, limits, app.now)),
        }
    }
}

pub fn render(pane: &CampaignPane, area: Rect, buf: &mut Buffer) {
    let block = pane_block(" Campaign ", false);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(c) = pane.campaign else {
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
        let ago = age(started, pane.now);
        let when = date_time(started);
        // "since 2025-05-01 08:58 (3h ago)" where it fits, else the age alone: a long status
        // (COMPLETED) or age (45m) overflowed a 120-column console's pane by a character or two.
        let used = "status   ".len() + c.status.as_str().len();
        if used + " since  ( ago)".len() + when.len() + ago.len() <= usize::from(status.width) {
            line.push(Span::styled(" since ", label()));
            line.push(Span::raw(when));
            line.push(Span::styled(format!(" ({ago} ago)"), label()));
        } else {
            line.push(Span::styled(format!(", started {ago} ago"), label()));
        }
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
            Span::styled("done ", label()),
            Span::raw(count(c.ended)),
            Span::styled("  success ", label()),
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
    lines.push(finish_line(pane, c));
    if let Some(rules) = &c.rules {
        // Cut with an ellipsis to the pane (`campaign show` prints them in full).
        let room = usize::from(rest.width).saturating_sub(9);
        let text = if rules.chars().count() > room {
            let mut cut: String = rules.chars().take(room.saturating_sub(1)).collect();
            cut.push('…');
            cut
        } else {
            rules.clone()
        };
        lines.push(Line::from(vec![
            Span::styled("rules    ", label()),
            Span::raw(text),
        ]));
    }
    let used = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    Paragraph::new(lines).render(rest, buf);
    if !c.reasons.is_empty() && rest.height > used + 1 {
        let chart = Rect {
            y: rest.y + used,
            height: rest.height - used,
            ..rest
        };
        render_outcomes(&c.reasons, chart, buf);
    }
}

/// When the campaign will finish at the pace seen, bounded by the limits in force.
fn finish_line(pane: &CampaignPane, c: &CampaignView) -> Line<'static> {
    let limits = pane.limits;
    let remaining = c.pending + c.creating + c.active;
    let mut spans = vec![Span::styled("finish   ", label())];
    if c.status.is_final() {
        spans.push(Span::styled(c.status.as_str(), label()));
        return Line::from(spans);
    }
    let plain = eta(remaining, pane.observed, limits);
    if c.status == CampaignStatus::Dialing
        && let Some(f) = &pane.windowed
        && let Some(spans_of) = windowed_finish(f, plain, pane.now)
    {
        spans.extend(spans_of);
        return Line::from(spans);
    }
    match plain {
        Some(left) if c.status == CampaignStatus::Dialing => {
            spans.push(Span::styled(
                format!("in ~{}", short(left)),
                Style::new().add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(
                format!(
                    " at this pace (cap {}, {:.1}/s)",
                    limits.concurrency_cap, limits.rate_per_second
                ),
                label(),
            ));
        }
        _ if c.status != CampaignStatus::Dialing => {
            spans.push(Span::styled(format!("— {}", c.status), label()))
        }
        _ => spans.push(Span::styled(
            "— no pace seen yet (a minute of calls)",
            label(),
        )),
    }
    Line::from(spans)
}

/// The finish the windows allow, where they make it later than the pace alone (or leave
/// contacts uncalled): "Mon 10:40 America/Chicago (in ~2d04h) within calling hours".
fn windowed_finish(
    f: &Forecast,
    plain: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> Option<Vec<Span<'static>>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    match f.finish {
        Some((at, zone)) => {
            let left = (at - now).to_std().unwrap_or_default();
            // Within the pace's own estimate (and a minute): the windows change nothing.
            let later = plain.is_none_or(|p| left.as_secs_f64() > p.as_secs_f64() * 1.1 + 60.0);
            later.then(|| match forecast::first_day_text(f, now) {
                // A list that outlasts today's windows says how far today gets.
                Some(today) => vec![
                    Span::styled(today, bold),
                    Span::styled(format!(" (done in ~{})", short(left)), label()),
                ],
                None => vec![
                    Span::styled(finish_text(at, zone, now), bold),
                    Span::styled(
                        format!(" (in ~{}) within calling hours", short(left)),
                        label(),
                    ),
                ],
            })
        }
        None if f.total > 0 => {
            let never: u64 = f.unreachable.iter().map(|z| z.contacts).sum();
            let mut spans = vec![Span::styled(
                format!(
                    "{} of {} waiting reached",
                    count_u(f.reached),
                    count_u(f.total)
                ),
                bold,
            )];
            spans.push(Span::styled(
                if never > 0 {
                    format!(" · {} in zones no window reaches", count_u(never))
                } else {
                    " before the end-by".to_string()
                },
                label(),
            ));
            Some(spans)
        }
        None => None,
    }
}

fn count_u(n: u64) -> String {
    count(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Ended reasons as horizontal bars, most frequent first.
fn render_outcomes(reasons: &[(String, i64)], area: Rect, buf: &mut Buffer) {
    let [title, bars] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    Paragraph::new(Span::styled("ended reasons", label())).render(title, buf);
    let label_width = usize::from(area.width / 2).clamp(8, 28);
    let bars: Vec<Bar> = reasons
        .iter()
        .take(usize::from(bars.height).min(TOP_REASONS))
        .map(|(reason, n)| {
            Bar::default()
                .label(Line::from(format!(
                    "  {}",
                    super::columns::ellipsis(reason, u16::try_from(label_width).unwrap_or(8))
                )))
                .value(u64::try_from(*n).unwrap_or(0))
                .text_value(count(*n))
                .style(Style::new().fg(outcome_colour(reason)))
                .value_style(Style::new().add_modifier(Modifier::REVERSED))
        })
        .collect();
    BarChart::default()
        .direction(Direction::Horizontal)
        .data(BarGroup::default().bars(&bars))
        .bar_width(1)
        .bar_gap(0)
        .render(
            Rect {
                y: area.y + 1,
                height: area.height.saturating_sub(1),
                ..area
            },
            buf,
        );
}

/// Outcomes green, no answer yellow, errors red: named colours only.
fn outcome_colour(reason: &str) -> Color {
    // Reasons in the histogram are of calls that reached Vapi and ended.
    match crate::model::classify_ended_reason(reason, true) {
        crate::model::EndedClass::Outcome => Color::Green,
        crate::model::EndedClass::NeverRang => Color::Yellow,
        _ => Color::Red,
    }
}

/// The call tabs' numbers, in the same order (Done is on the next line).
fn counters(c: &CampaignView) -> Line<'static> {
    Line::from(vec![
        Span::styled("pending ", label()),
        Span::raw(count(c.pending)),
        Span::styled("  dialing ", label()),
        Span::styled(count(c.creating), Style::new().fg(Color::Cyan)),
        Span::styled("  active ", label()),
        Span::styled(count(c.active), Style::new().fg(Color::Green)),
        Span::styled("  failed ", label()),
        Span::styled(count(c.failed), Style::new().fg(Color::Red)),
    ])
}

/// One line for small terminals.
pub fn render_line(pane: &CampaignPane, area: Rect, buf: &mut Buffer) {
    let Some(c) = pane.campaign else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::snapshot::Reach;
    use crate::model::forecast::ZoneLoad;
    use crate::model::policy::Window;
    use crate::model::policy::schedule::Schedule;

    fn view(rules: Option<&str>) -> CampaignView {
        CampaignView {
            id: 1,
            name: "fl".into(),
            status: CampaignStatus::Dialing,
            pause_reason: None,
            pause_cause: None,
            started_at: None,
            completed_at: None,
            contacts_total: 10,
            contacts_done: 2,
            pending: 8,
            creating: 0,
            active: 0,
            created: 2,
            ended: 2,
            failed: 0,
            cost_usd: 0.2,
            success_rate: None,
            estimated_remaining_usd: None,
            reasons: Vec::new(),
            waiting: None,
            rules: rules.map(String::from),
            reach: None,
        }
    }

    fn drawn(c: &CampaignView) -> String {
        let pane = CampaignPane {
            campaign: Some(c),
            now: Utc::now(),
            limits: Limits {
                rate_per_second: 2.0,
                concurrency_cap: 10,
            },
            observed: None,
            windowed: None,
        };
        screen(&pane)
    }

    fn screen(pane: &CampaignPane) -> String {
        let area = Rect::new(0, 0, 100, 12);
        let mut buf = Buffer::empty(area);
        render(pane, area, &mut buf);
        (0..area.height)
            .map(|y| {
                (0..area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_rules_in_force_are_shown_once_read() {
        let rules = "08:00-20:00 all (pack us-fl) (default zone UTC) · caps 3/24 h";
        let screen = drawn(&view(Some(rules)));
        assert!(screen.contains(&format!("rules    {rules}")), "{screen}");
        assert!(!drawn(&view(None)).contains("rules"));
        // Too long for the pane: cut with an ellipsis at its edge.
        let long = "x".repeat(200);
        let screen = drawn(&view(Some(&long)));
        let line = screen.lines().find(|l| l.contains("rules")).unwrap();
        // The pane's border follows the ellipsis: nothing was drawn over it.
        assert!(line.ends_with("…│"), "{line}");
        assert_eq!(line.chars().count(), 100);
    }

    /// `pending` contacts waiting in the given zones, a window of 09:00-21:00 Monday to
    /// Friday, one call finished a second, a minute each; the finish line at `now`.
    fn finish_at(now: &str, zones: &[(chrono_tz::Tz, u64)], ends_by: Option<&str>) -> String {
        let now = utc(now);
        let mut c = view(None);
        c.pending = zones.iter().map(|(_, n)| *n as i64).sum();
        c.contacts_total = c.pending + 2;
        c.reach = Some(Reach {
            window: Window::parse("09:00-21:00", "mon-fri").unwrap(),
            schedule: Schedule {
                starts_at: None,
                ends_by: ends_by.map(utc),
            },
            zones: zones
                .iter()
                .map(|&(zone, contacts)| ZoneLoad { zone, contacts })
                .collect(),
        });
        let limits = Limits {
            rate_per_second: 2.0,
            concurrency_cap: 100,
        };
        let observed = Some(Observed {
            done_per_sec: 1.0,
            mean_active: 60.0,
        });
        let pane = CampaignPane {
            campaign: Some(&c),
            now,
            limits,
            observed,
            windowed: windowed(&c, observed, limits, now),
        };
        let screen = screen(&pane);
        let line = screen.lines().find(|l| l.contains("finish")).unwrap();
        line.trim_matches(|c| c == '│' || c == ' ').to_string()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_finish_honours_the_window_and_the_weekend() {
        // Friday 20:00 UTC: an hour of window left for two hours of calls; the rest on Monday.
        let line = finish_at("2026-12-04T20:00:00Z", &[(chrono_tz::UTC, 7_200)], None);
        assert_eq!(
            line,
            "finish   today 21:00 UTC, 50 % of the list; the rest Mon from 09:00 (done in ~2d14h)"
        );
        // Monday 09:00: the same list fits in the day, and the pace alone says when.
        let line = finish_at("2026-12-07T09:00:00Z", &[(chrono_tz::UTC, 7_200)], None);
        assert_eq!(line, "finish   in ~2h01m at this pace (cap 100, 2.0/s)");
    }

    #[test]
    fn the_finish_says_what_the_end_by_leaves_uncalled() {
        // Two hours of calls, an end-by in one: about half are reached.
        let line = finish_at(
            "2026-12-07T10:00:00Z",
            &[(chrono_tz::UTC, 7_200)],
            Some("2026-12-07T11:00:00Z"),
        );
        assert_eq!(
            line,
            "finish   3,600 of 7,200 waiting reached before the end-by"
        );
        // A zone whose window never opens before the end-by: said apart.
        let line = finish_at(
            "2026-12-07T10:00:00Z",
            &[(chrono_tz::UTC, 600), (chrono_tz::Pacific::Auckland, 400)],
            Some("2026-12-07T11:00:00Z"),
        );
        assert_eq!(
            line,
            "finish   600 of 1,000 waiting reached · 400 in zones no window reaches"
        );
    }
}
