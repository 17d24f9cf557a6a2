//! When a campaign's waiting contacts will have been called, honouring the calling window in
//! each contact's zone and the campaign's schedule: contacts are dialled only while their
//! zone is open, at the pace the account's rate and concurrency allow for the expected call
//! length, shared by every open zone. Pure (the instant is passed in), so windows, weekends
//! and daylight saving are unit-tested.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::policy::Window;
use crate::policy::schedule::Schedule;

/// Waiting contacts in one zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoneLoad {
    pub zone: Tz,
    pub contacts: u64,
}

/// How fast calls are made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Creates per second the account allows.
    pub rate_per_second: f64,
    /// Calls at once.
    pub concurrency: u32,
    /// Expected length of one call.
    pub call_secs: f64,
    /// Dials a contact takes on average (redials and follow-ups: 1.0 when none).
    pub dials_per_contact: f64,
}

impl Pace {
    /// Contacts dialled per second while a window is open: the rate, or the slots over the
    /// call length, whichever is less.
    pub fn per_second(&self) -> f64 {
        let by_slots = if self.call_secs > 0.0 {
            f64::from(self.concurrency) / self.call_secs
        } else {
            f64::INFINITY
        };
        let dials = self.rate_per_second.min(by_slots).max(0.0);
        dials / self.dials_per_contact.max(1.0)
    }

    /// Dials per contact from what a campaign has done so far: calls created over contacts
    /// finished, between 1 and `1 + redials` (a young campaign's first calls say little).
    pub fn dials_seen(created: i64, done: i64, redials: u32) -> f64 {
        if done <= 0 {
            return 1.0;
        }
        (created as f64 / done as f64).clamp(1.0, 1.0 + f64::from(redials))
    }
}

/// What the sweep found.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub total: u64,
    /// When the first contact is dialled (`None`: never within the horizon), and in which
    /// zone (the times are best said in it).
    pub first_dial: Option<(DateTime<Utc>, Tz)>,
    /// When the last call ends (`None`: not every contact is reached), and the zone whose
    /// contacts are called last.
    pub finish: Option<(DateTime<Utc>, Tz)>,
    /// Contacts dialled before the end-by time (or the horizon).
    pub reached: u64,
    /// Contacts of zones no window reaches before the end (none of them is ever dialled).
    pub unreachable: Vec<ZoneLoad>,
    /// Where the first calling day stops, when the list outlasts it.
    pub first_day: Option<FirstDay>,
}

/// The first stretch of calling (until every zone with contacts left is closed) of a list
/// that outlasts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirstDay {
    /// When the last open window closes, in the zone called last.
    pub stops: DateTime<Utc>,
    pub zone: Tz,
    /// Contacts dialled by then.
    pub reached: u64,
    /// When a window opens again (None: none before the end-by), and in which zone.
    pub resumes: Option<(DateTime<Utc>, Tz)>,
}

/// Far enough ahead to say "not within" rather than sweep for ever.
const HORIZON_DAYS: i64 = 120;

/// Sweeps the windows from `now` (or the scheduled start) to the end-by time (or the
/// horizon). Within a stretch where the same zones are open, the pace is shared among them
/// in proportion to what each has left.
pub fn forecast(
    window: &Window,
    schedule: &Schedule,
    zones: &[ZoneLoad],
    pace: Pace,
    now: DateTime<Utc>,
) -> Forecast {
    let total: u64 = zones.iter().map(|z| z.contacts).sum();
    let start = schedule.starts_at.map_or(now, |s| s.max(now));
    let end = schedule
        .ends_by
        .unwrap_or(start + Duration::days(HORIZON_DAYS));
    let rate = pace.per_second();
    let mut left: Vec<f64> = zones.iter().map(|z| z.contacts as f64).collect();
    let unreachable: Vec<ZoneLoad> = zones
        .iter()
        .filter(|z| z.contacts > 0 && window.next_open(z.zone, start) >= end)
        .copied()
        .collect();
    let mut out = Forecast {
        total,
        first_dial: None,
        finish: None,
        reached: 0,
        unreachable,
        first_day: None,
    };
    let Some(biggest) = zones.iter().max_by_key(|z| z.contacts).map(|z| z.zone) else {
        out.finish = Some((start, Tz::UTC));
        return out;
    };
    if total == 0 {
        out.finish = Some((start, biggest));
        return out;
    }
    if rate <= 0.0 || !rate.is_finite() {
        return out;
    }
    let mut t = start;
    let mut last_created = start;
    let mut last_zone = biggest;
    // Each step reaches a window's edge or empties the open zones: bounded by the edges.
    for _ in 0..100_000 {
        if t >= end || left.iter().all(|l| *l <= 0.0) {
            break;
        }
        let open: Vec<usize> = (0..zones.len())
            .filter(|&i| left[i] > 0.0 && window.is_open(zones[i].zone, t))
            .collect();
        // The stretch ends where an open zone closes or a waiting zone opens.
        let mut edge = end;
        for i in (0..zones.len()).filter(|&i| left[i] > 0.0) {
            let zone = zones[i].zone;
            let next = if open.contains(&i) {
                closes_after(window, zone, t)
            } else {
                window.next_open(zone, t)
            };
            edge = edge.min(next.max(t + Duration::minutes(1)));
        }
        if open.is_empty() {
            if out.first_dial.is_some() && out.first_day.is_none() {
                let reopens = (0..zones.len())
                    .filter(|&i| left[i] > 0.0)
                    .map(|i| (window.next_open(zones[i].zone, t), zones[i].zone))
                    .min_by_key(|(at, _)| *at)
                    .filter(|(at, _)| *at < end);
                out.first_day = Some(FirstDay {
                    stops: t,
                    zone: last_zone,
                    reached: total.saturating_sub(left.iter().sum::<f64>().round() as u64),
                    resumes: reopens,
                });
            }
            t = edge;
            continue;
        }
        let fullest = open
            .iter()
            .copied()
            .max_by(|&a, &b| left[a].total_cmp(&left[b]))
            .map_or(biggest, |i| zones[i].zone);
        out.first_dial.get_or_insert((t, fullest));
        last_zone = fullest;
        let waiting: f64 = open.iter().map(|&i| left[i]).sum();
        let span = (edge - t).num_milliseconds() as f64 / 1000.0;
        let capacity = rate * span;
        if waiting <= capacity {
            for &i in &open {
                left[i] = 0.0;
            }
            let took = Duration::milliseconds((waiting / rate * 1000.0).round() as i64);
            last_created = t + took;
            t = last_created;
        } else {
            for &i in &open {
                left[i] -= left[i] / waiting * capacity;
            }
            last_created = edge;
            t = edge;
        }
    }
    let unreached: f64 = left.iter().sum();
    // Within one contact of the end: fractions of the sharing, not a person left.
    out.reached = total.saturating_sub(unreached.round() as u64);
    if unreached < 0.5 {
        out.reached = total;
        let ends = last_created + Duration::milliseconds((pace.call_secs * 1000.0) as i64);
        out.finish = Some((ends, last_zone));
    }
    out
}

/// The instant the window, open in `zone` at `t`, closes (its end today, local time).
fn closes_after(window: &Window, zone: Tz, t: DateTime<Utc>) -> DateTime<Utc> {
    let date = t.with_timezone(&zone).date_naive();
    let (date, minute) = if window.end >= 24 * 60 {
        (date.succ_opt().unwrap_or(date), 0)
    } else {
        (date, window.end)
    };
    let Some(time) = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0) else {
        return t + Duration::hours(1);
    };
    let local = date.and_time(time);
    // A close in a daylight-saving gap is the first instant after it.
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map_or(t + Duration::hours(1), |c| c.with_timezone(&Utc))
        .max(t + Duration::minutes(1))
}

/// How far the first calling day gets, for a list that outlasts it: "today 18:40
/// America/Chicago, 62 % of the list; the rest Mon from 09:00" (the zone named again when
/// the rest starts in another). None when the list is done within its first day (the
/// finish says it all). Callers add when it is done.
pub fn first_day_text(f: &Forecast, now: DateTime<Utc>) -> Option<String> {
    let day = f.first_day?;
    let share = if f.total > 0 {
        (day.reached as f64 * 100.0 / f.total as f64).floor()
    } else {
        100.0
    };
    let mut line = format!(
        "{}, {share:.0} % of the list",
        finish_text(day.stops, day.zone, now)
    );
    match day.resumes {
        Some((at, zone)) => {
            let (when, time) = day_and_time(at, zone, now);
            let zone_named = if zone == day.zone {
                String::new()
            } else {
                format!(" {zone}")
            };
            line.push_str(&format!("; the rest {when} from {time}{zone_named}"));
        }
        None => line.push_str("; no window opens again before the end-by"),
    }
    Some(line)
}

/// The day ("today", "tomorrow", "Mon", "Mon 14") and the time of `at` in `zone`.
fn day_and_time(at: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> (String, String) {
    let local = at.with_timezone(&zone);
    let today = now.with_timezone(&zone).date_naive();
    let day = if local.date_naive() == today {
        "today".to_string()
    } else if local.date_naive().pred_opt() == Some(today) {
        "tomorrow".to_string()
    } else if (local.date_naive() - today).num_days() < 7 {
        local.format("%a").to_string()
    } else {
        format!("{} {}", local.format("%a"), local.day())
    };
    (day, local.format("%H:%M").to_string())
}

/// "Mon 18:40 America/Chicago" (the zone of the most contacts), for the one-line estimates.
pub fn finish_text(at: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> String {
    let (day, time) = day_and_time(at, zone, now);
    format!("{day} {time} {zone}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const CHICAGO: Tz = chrono_tz::America::Chicago;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    fn pace(rate: f64) -> Pace {
        Pace {
            rate_per_second: rate,
            concurrency: 1_000,
            call_secs: 60.0,
            dials_per_contact: 1.0,
        }
    }

    #[test]
    fn an_open_window_finishes_at_the_pace() {
        let window = Window::parse("all", "all").unwrap();
        let now = utc("2026-12-07T15:00:00Z");
        let f = forecast(
            &window,
            &Schedule::default(),
            &[ZoneLoad {
                zone: CHICAGO,
                contacts: 3_600,
            }],
            pace(1.0),
            now,
        );
        // An hour of creates, then the last call's minute.
        assert_eq!(f.first_dial, Some((now, CHICAGO)));
        assert_eq!(f.finish, Some((utc("2026-12-07T16:01:00Z"), CHICAGO)));
        assert_eq!((f.reached, f.total), (3_600, 3_600));
        assert!(f.unreachable.is_empty());
    }

    #[test]
    fn the_slots_bound_the_pace_for_long_calls() {
        let slow = Pace {
            rate_per_second: 10.0,
            concurrency: 10,
            call_secs: 100.0,
            dials_per_contact: 1.0,
        };
        assert!((slow.per_second() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn a_window_that_closes_carries_the_rest_to_the_next_day_and_past_a_weekend() {
        // Friday 2026-12-04 15:00 Chicago (21:00 UTC); window 09:00-17:00 Mon-Fri: two hours
        // left today at 1 call/s = 7,200; the other 2,800 on Monday from 09:00.
        let window = Window::parse("09:00-17:00", "mon-fri").unwrap();
        let now = utc("2026-12-04T21:00:00Z");
        let f = forecast(
            &window,
            &Schedule::default(),
            &[ZoneLoad {
                zone: CHICAGO,
                contacts: 10_000,
            }],
            pace(1.0),
            now,
        );
        assert_eq!(f.first_dial, Some((now, CHICAGO)));
        // Monday 2026-12-07 09:00 Chicago = 15:00 UTC; 2,800 s later = 15:46:40; + 60 s.
        let (at, zone) = f.finish.unwrap();
        assert_eq!(at, utc("2026-12-07T15:47:40Z"));
        assert_eq!(finish_text(at, zone, now), "Mon 09:47 America/Chicago");
        // Today until the window closes at 17:00, 72 % of the list; the rest on Monday.
        let day = f.first_day.expect("the list outlasts today");
        assert_eq!(day.stops, utc("2026-12-04T23:00:00Z"));
        assert_eq!(day.reached, 7_200);
        assert_eq!(day.resumes, Some((utc("2026-12-07T15:00:00Z"), CHICAGO)));
        assert_eq!(
            first_day_text(&f, now).as_deref(),
            Some("today 17:00 America/Chicago, 72 % of the list; the rest Mon from 09:00")
        );
    }

    #[test]
    fn a_list_done_within_the_window_says_only_when() {
        let window = Window::parse("09:00-17:00", "mon-fri").unwrap();
        let now = utc("2026-12-04T21:00:00Z");
        let f = forecast(
            &window,
            &Schedule::default(),
            &[ZoneLoad {
                zone: CHICAGO,
                contacts: 3_600,
            }],
            pace(1.0),
            now,
        );
        assert_eq!(f.first_day, None);
        assert_eq!(first_day_text(&f, now), None, "the finish says it all");
    }

    #[test]
    fn redials_slow_the_list_by_the_dials_each_contact_takes() {
        // 3,600 contacts at 1 dial/s, each dialled 1.5 times on average: 5,400 s of creates.
        let window = Window::parse("all", "all").unwrap();
        let now = utc("2026-12-07T15:00:00Z");
        let redialled = Pace {
            dials_per_contact: Pace::dials_seen(300, 200, 2),
            ..pace(1.0)
        };
        let f = forecast(
            &window,
            &Schedule::default(),
            &[ZoneLoad {
                zone: CHICAGO,
                contacts: 3_600,
            }],
            redialled,
            now,
        );
        assert_eq!(f.finish, Some((utc("2026-12-07T16:31:00Z"), CHICAGO)));
        assert_eq!(
            Pace::dials_seen(0, 0, 2),
            1.0,
            "nothing done: no redials known"
        );
        assert_eq!(
            Pace::dials_seen(900, 100, 2),
            3.0,
            "at most 1 + the redials allowed"
        );
    }

    #[test]
    fn two_zones_stop_when_the_last_window_closes_and_resume_at_the_first_to_open() {
        // Friday 16:00 New York (21:00 UTC), 09:00-17:00 Mon-Fri: both share the first hour
        // (1,800 each), New York closes at 22:00 UTC and Chicago's other 3,200 are called by
        // 22:53:20; New York's 3,200 wait for Monday 09:00 there (14:00 UTC).
        let window = Window::parse("09:00-17:00", "mon-fri").unwrap();
        let now = utc("2026-12-04T21:00:00Z");
        let zones = [
            ZoneLoad {
                zone: NEW_YORK,
                contacts: 5_000,
            },
            ZoneLoad {
                zone: CHICAGO,
                contacts: 5_000,
            },
        ];
        let f = forecast(&window, &Schedule::default(), &zones, pace(1.0), now);
        let day = f.first_day.expect("outlasts Friday");
        assert_eq!(day.stops, utc("2026-12-04T22:53:20Z"));
        assert_eq!(day.zone, CHICAGO);
        assert_eq!(day.reached, 6_800);
        assert_eq!(day.resumes, Some((utc("2026-12-07T14:00:00Z"), NEW_YORK)));
        assert_eq!(
            first_day_text(&f, now).as_deref(),
            Some(
                "today 16:53 America/Chicago, 68 % of the list; the rest Mon from 09:00 \
                 America/New_York"
            )
        );
    }

    #[test]
    fn a_closed_list_waits_for_its_first_window() {
        // Saturday night: nothing until Monday 09:00 in either zone.
        let window = Window::parse("09:00-17:00", "mon-fri").unwrap();
        let now = utc("2026-12-06T03:00:00Z");
        let zones = [
            ZoneLoad {
                zone: NEW_YORK,
                contacts: 100,
            },
            ZoneLoad {
                zone: CHICAGO,
                contacts: 100,
            },
        ];
        let f = forecast(&window, &Schedule::default(), &zones, pace(1.0), now);
        // New York opens an hour before Chicago.
        assert_eq!(f.first_dial, Some((utc("2026-12-07T14:00:00Z"), NEW_YORK)));
        assert_eq!(f.reached, 200);
        // New York's 100 in its first hour alone, Chicago's from 15:00 UTC.
        assert_eq!(f.finish, Some((utc("2026-12-07T15:02:40Z"), CHICAGO)));
    }

    #[test]
    fn an_end_by_leaves_the_rest_and_names_zones_it_never_opens_for() {
        // Monday 09:00 Chicago start, end by 10:00 Chicago: New York's window opens at
        // 08:00 Chicago, Honolulu's (09:00 HST = 13:00 Chicago) never before the end.
        let window = Window::parse("09:00-17:00", "mon-fri").unwrap();
        let now = utc("2026-12-05T12:00:00Z");
        let schedule = Schedule {
            starts_at: Some(utc("2026-12-07T15:00:00Z")),
            ends_by: Some(utc("2026-12-07T16:00:00Z")),
        };
        let honolulu: Tz = chrono_tz::Pacific::Honolulu;
        let zones = [
            ZoneLoad {
                zone: CHICAGO,
                contacts: 5_000,
            },
            ZoneLoad {
                zone: honolulu,
                contacts: 40,
            },
        ];
        let f = forecast(&window, &schedule, &zones, pace(1.0), now);
        assert_eq!(f.first_dial, Some((utc("2026-12-07T15:00:00Z"), CHICAGO)));
        assert_eq!(f.finish, None);
        assert_eq!(f.reached, 3_600);
        assert_eq!(f.unreachable, vec![zones[1]]);
    }

    #[test]
    fn daylight_saving_shortens_the_night_not_the_window() {
        // Saturday 2027-03-13 16:00 Chicago, window 09:00-17:00 every day, 2 hours of work
        // at 1/s: one hour today, the rest on Sunday 14 March (the clocks went forward at
        // 02:00) from 09:00 CDT = 14:00 UTC.
        let window = Window::parse("09:00-17:00", "all").unwrap();
        let now = utc("2027-03-13T22:00:00Z");
        let f = forecast(
            &window,
            &Schedule::default(),
            &[ZoneLoad {
                zone: CHICAGO,
                contacts: 7_200,
            }],
            pace(1.0),
            now,
        );
        assert_eq!(f.finish, Some((utc("2027-03-14T15:01:00Z"), CHICAGO)));
        // The night is an hour shorter in UTC: 17:00 CST is 23:00 UTC, 09:00 CDT 14:00 UTC.
        let day = f.first_day.expect("outlasts Saturday");
        assert_eq!(day.stops, utc("2027-03-13T23:00:00Z"));
        assert_eq!(day.resumes, Some((utc("2027-03-14T14:00:00Z"), CHICAGO)));
        assert_eq!(
            first_day_text(&f, now).as_deref(),
            Some("today 17:00 America/Chicago, 50 % of the list; the rest tomorrow from 09:00")
        );
    }

    #[test]
    fn nothing_left_is_done_now_and_no_pace_is_no_estimate() {
        let window = Window::ALWAYS;
        let now = utc("2026-12-07T15:00:00Z");
        let done = forecast(&window, &Schedule::default(), &[], pace(1.0), now);
        assert_eq!(done.finish.map(|(at, _)| at), Some(now));
        let stuck = forecast(
            &window,
            &Schedule::default(),
            &[ZoneLoad {
                zone: CHICAGO,
                contacts: 5,
            }],
            pace(0.0),
            now,
        );
        assert_eq!((stuck.finish, stuck.reached), (None, 0));
    }
}
