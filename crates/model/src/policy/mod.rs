//! Compliance rules, decided apart from the store: pure functions of the facts and the time
//! (always passed in, never read from the clock), so windows, daylight saving and rolling
//! caps are tested with any instant. The store (`store::policy`) gathers the facts at claim
//! time, asks here, and records the answer with its reason.

pub mod follow_up;
pub mod packs;
pub mod schedule;
pub mod zones;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("window {0:?} must be HH:MM-HH:MM with the start before the end (e.g. 09:00-20:00)")]
    Window(String),
    #[error(
        "days {0:?} must be days like mon-fri, mon,wed,fri or all (mon tue wed thu fri sat sun)"
    )]
    Days(String),
    #[error("time zone {0:?} is not an IANA zone name (e.g. America/Chicago, Europe/London)")]
    Zone(String),
    #[error(
        "caps {0:?} must be two numbers, per 24 h and per 7 days (e.g. 3/7; 0 turns a cap off)"
    )]
    Caps(String),
    #[error("no rule pack named {0:?} (packs: {packs})", packs = packs::names())]
    Pack(String),
    #[error("rule pack {0} leaves no calling hours with the window {1} on {2}")]
    PackLeavesNothing(String, String, String),
    #[error("duplicate suppression of {0} days must be between 0 (off) and {max}", max = limits::SUPPRESS_DAYS.max)]
    SuppressDays(i64),
}

/// The ranges of a campaign's numeric rules: the one definition the CLI's value parsers and
/// the store's check share.
pub mod limits {
    use crate::config::Bound;

    pub const REDIAL_DELAY_MIN: Bound = Bound {
        key: "redial_delay_min",
        min: 0.0,
        max: 43_200.0,
        unit: "minutes",
    };
    pub const REDIAL_COUNT: Bound = Bound {
        key: "redial_count",
        min: 0.0,
        max: 20.0,
        unit: "redials",
    };
    pub const SUPPRESS_DAYS: Bound = Bound {
        key: "suppress_days",
        min: 0.0,
        max: 3650.0,
        unit: "days",
    };
    /// The runaway guard (`campaign create|edit`); 0 switches each off.
    pub const MAX_CALL_S: Bound = Bound {
        key: "max_call_duration",
        min: 0.0,
        max: 43_200.0,
        unit: "s",
    };
    pub const MAX_CALL_COST: Bound = Bound {
        key: "max_call_cost",
        min: 0.0,
        max: 1000.0,
        unit: "USD",
    };
    pub const END_ON_REPEATS: Bound = Bound {
        key: "end_on_repeats",
        min: 0.0,
        max: 50.0,
        unit: "times",
    };
    pub const REST_NUMBERS_BELOW: Bound = Bound {
        key: "rest_numbers_below",
        min: 0.0,
        max: 1.0,
        unit: "of the peers' answer rate",
    };
}

/// The days a campaign may call: bit 0 is Monday … bit 6 Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Days {
    pub const ALL: Days = Days(0x7f);
    /// Monday to Saturday: the default.
    pub const MON_SAT: Days = Days(0x3f);

    pub fn parse(text: &str) -> Result<Days, PolicyError> {
        let bad = || PolicyError::Days(text.to_string());
        let t = text.trim().to_ascii_lowercase();
        if t == "all" || t == "every" {
            return Ok(Days::ALL);
        }
        let day = |s: &str| DAY_NAMES.iter().position(|d| *d == s.trim());
        let mut bits = 0u8;
        for part in t.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a).ok_or_else(bad)?, day(b).ok_or_else(bad)?);
                    // mon-fri, and also sat-mon across the week's end.
                    let mut d = a;
                    loop {
                        bits |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => bits |= 1 << day(part).ok_or_else(bad)?,
            }
        }
        if bits == 0 {
            return Err(bad());
        }
        Ok(Days(bits))
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The days both allow.
    pub const fn and(self, other: Days) -> Days {
        Days(self.0 & other.0)
    }

    pub fn contains(self, weekday: chrono::Weekday) -> bool {
        self.0 & (1 << weekday.num_days_from_monday()) != 0
    }
}

impl std::fmt::Display for Days {
    /// Canonical text: `mon-sat`, `mon,wed,fri`, `all`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Days::ALL {
            return f.write_str("all");
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < 7 {
            if self.0 & (1 << i) == 0 {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < 7 && self.0 & (1 << (i + 1)) != 0 {
                i += 1;
            }
            parts.push(if i > start + 1 {
                format!("{}-{}", DAY_NAMES[start], DAY_NAMES[i])
            } else if i == start + 1 {
                format!("{},{}", DAY_NAMES[start], DAY_NAMES[i])
            } else {
                DAY_NAMES[start].to_string()
            });
            i += 1;
        }
        f.write_str(&parts.join(","))
    }
}

/// A calling window: local time of day `[start, end)` on the given days, in minutes after
/// midnight (end may be 24:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u32,
    pub end: u32,
    pub days: Days,
}

impl Default for Window {
    /// 08:00–21:00, Monday to Saturday (the US TCPA's hours).
    fn default() -> Self {
        Window {
            start: 8 * 60,
            end: 21 * 60,
            days: Days::MON_SAT,
        }
    }
}

fn parse_hhmm(t: &str) -> Option<u32> {
    let (h, m) = t.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl Window {
    /// Always open: every day, all day.
    pub const ALWAYS: Window = Window {
        start: 0,
        end: 24 * 60,
        days: Days::ALL,
    };

    /// `09:00-20:00` (or `all` for 00:00-24:00) and days such as `mon-fri`.
    pub fn parse(hours: &str, days: &str) -> Result<Window, PolicyError> {
        let bad = || PolicyError::Window(hours.to_string());
        let (start, end) = if hours.trim().eq_ignore_ascii_case("all") {
            (0, 24 * 60)
        } else {
            let (a, b) = hours.split_once('-').ok_or_else(bad)?;
            (
                parse_hhmm(a).ok_or_else(bad)?,
                parse_hhmm(b).ok_or_else(bad)?,
            )
        };
        if start >= end {
            return Err(bad());
        }
        Ok(Window {
            start,
            end,
            days: Days::parse(days)?,
        })
    }

    /// `09:00-20:00`.
    pub fn hours(&self) -> String {
        format!("{}-{}", hhmm(self.start), hhmm(self.end))
    }

    /// Whether `now` is inside the window in `zone`'s local time.
    pub fn is_open(&self, zone: Tz, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&zone);
        let minute = local.time().num_seconds_from_midnight_u32() / 60;
        self.days.contains(local.weekday()) && self.start <= minute && minute < self.end
    }

    /// When the window next opens in `zone` (now if it is open). A start that falls in a
    /// daylight-saving gap opens at the first local minute that exists after it; a start
    /// that occurs twice (the clocks going back) opens at the first.
    pub fn next_open(&self, zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.is_open(zone, now) {
            return now;
        }
        let today = now.with_timezone(&zone).date_naive();
        for offset in 0..=8 {
            let Some(date) = today.checked_add_signed(Duration::days(offset)) else {
                break;
            };
            if !self.days.contains(date.weekday()) {
                continue;
            }
            if let Some(at) = local_start(zone, date, self.start, self.end)
                && at > now
            {
                return at;
            }
        }
        // Days is never empty, so a day of the next eight always matches.
        now + Duration::days(7)
    }
}

trait SecondsFromMidnight {
    fn num_seconds_from_midnight_u32(&self) -> u32;
}

impl SecondsFromMidnight for NaiveTime {
    fn num_seconds_from_midnight_u32(&self) -> u32 {
        chrono::Timelike::num_seconds_from_midnight(self)
    }
}

/// The instant of local minute `start` on `date` in `zone`; in a gap, the first existing
/// minute after it (but before `end`).
fn local_start(zone: Tz, date: NaiveDate, start: u32, end: u32) -> Option<DateTime<Utc>> {
    let mut minute = start;
    while minute < end.min(24 * 60) {
        let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0)?;
        match zone.from_local_datetime(&date.and_time(time)) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
            LocalResult::None => minute += 1,
        }
    }
    None
}

/// Parses an IANA zone name.
pub fn parse_zone(name: &str) -> Result<Tz, PolicyError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| PolicyError::Zone(name.to_string()))
}

/// How often one number may be called, counted across every campaign of the database
/// (attempts that reached or may have reached Vapi). 0 turns a cap off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub per_day: u32,
    pub per_week: u32,
}

impl Default for Caps {
    /// At most 3 attempts in 24 hours and 7 in 7 days.
    fn default() -> Self {
        Caps {
            per_day: 3,
            per_week: 7,
        }
    }
}

impl Caps {
    pub const OFF: Caps = Caps {
        per_day: 0,
        per_week: 0,
    };

    /// `3/7` (per 24 h / per 7 days) or `off`.
    pub fn parse(text: &str) -> Result<Caps, PolicyError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(Caps::OFF);
        }
        let bad = || PolicyError::Caps(text.to_string());
        let (d, w) = t.split_once('/').ok_or_else(bad)?;
        Ok(Caps {
            per_day: d.trim().parse().map_err(|_| bad())?,
            per_week: w.trim().parse().map_err(|_| bad())?,
        })
    }
}

impl std::fmt::Display for Caps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = |n: u32, span: &str| {
            if n == 0 {
                format!("no cap per {span}")
            } else {
                format!("≤{n} per {span}")
            }
        };
        write!(
            f,
            "{}, {}",
            one(self.per_day, "24 h"),
            one(self.per_week, "7 days")
        )
    }
}

/// The facts about one contact that the claim gathers.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// On the do-not-call list: since when, and why.
    pub dnc: Option<(String, String)>,
    /// `consent_source` and `consent_at` are both present.
    pub has_consent: bool,
    /// When calls to this number were created, across all campaigns, in the last 7 days.
    pub recent_calls: Vec<DateTime<Utc>>,
    /// The latest call another campaign made to this number within the campaign's
    /// suppression span (its name and when), when the campaign suppresses duplicates.
    pub called_elsewhere: Option<(String, DateTime<Utc>)>,
}

/// A campaign's rules that bear on one contact.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    pub require_consent: bool,
    pub caps: Caps,
    /// Skip a number another campaign called in the last this-many days (0: off).
    pub suppress_days: u32,
}

/// What the claim does with a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Dial,
    /// Never dialled in this campaign (the contact becomes SKIPPED).
    Skip(String),
    /// Not now: eligible again at `until`.
    Defer {
        until: DateTime<Utc>,
        reason: String,
    },
}

/// Do-not-call first, then consent, then the caps over rolling windows.
pub fn decide(rules: &Rules, facts: &Facts, now: DateTime<Utc>) -> Decision {
    if let Some((since, reason)) = &facts.dnc {
        return Decision::Skip(format!("on the do-not-call list since {since} ({reason})"));
    }
    if rules.require_consent && !facts.has_consent {
        return Decision::Skip(
            "no consent recorded (consent_source and consent_at) and the campaign requires it"
                .into(),
        );
    }
    if rules.suppress_days > 0
        && let Some((campaign, at)) = &facts.called_elsewhere
        && *at > now - Duration::days(i64::from(rules.suppress_days))
    {
        return Decision::Skip(format!(
            "called by campaign {campaign} at {} (duplicate suppression: {} days)",
            at.format("%Y-%m-%d %H:%M UTC"),
            rules.suppress_days
        ));
    }
    for (cap, span, label) in [
        (rules.caps.per_day, Duration::hours(24), "24 h"),
        (rules.caps.per_week, Duration::days(7), "7 days"),
    ] {
        if cap == 0 {
            continue;
        }
        let mut inside: Vec<DateTime<Utc>> = facts
            .recent_calls
            .iter()
            .copied()
            .filter(|t| *t > now - span)
            .collect();
        if inside.len() >= cap as usize {
            inside.sort_unstable();
            // Eligible when enough of the oldest calls leave the window.
            let freeing = inside[inside.len() - cap as usize];
            return Decision::Defer {
                until: freeing + span,
                reason: format!("cap {cap}/{label} reached for this number"),
            };
        }
    }
    Decision::Dial
}

/// When calls are dialled again: which ended reasons, after how long, how many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redial {
    pub reasons: Vec<String>,
    pub delay: Duration,
    /// Redials per contact (0: never).
    pub count: u32,
}

impl Default for Redial {
    /// customer-busy, customer-did-not-answer and voicemail, after 2 h, twice.
    fn default() -> Self {
        Redial {
            reasons: ["customer-busy", "customer-did-not-answer", "voicemail"]
                .map(String::from)
                .to_vec(),
            delay: Duration::hours(2),
            count: 2,
        }
    }
}

/// Whether an ended reason means somebody talked (the one table in `model`).
pub use crate::is_conversation;

/// When a call that ended with `reason` is dialled again (a new attempt sequence), given the
/// redials already made for the contact; `None`: not redialled. A call with a conversation
/// (`talked`: Vapi reported it in progress and the reason is not voicemail, or a
/// conversation reason) is never redialled.
pub fn redial_at(
    rules: &Redial,
    reason: &str,
    talked: bool,
    redials_done: u32,
    ended_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let conversation = is_conversation(reason) || (talked && reason != "voicemail");
    (!conversation && redials_done < rules.count && rules.reasons.iter().any(|r| r == reason))
        .then(|| ended_at + rules.delay)
}

/// Whether a call's structured data (JSON text) sets `field` to true (`true`, `"true"`,
/// `"yes"`, 1). Unreadable data asks nothing.
pub fn analysis_asks_dnc(structured_data: &str, field: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(structured_data) else {
        return false;
    };
    match &value[field] {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => {
            matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes")
        }
        serde_json::Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// The calling window of a campaign's zones at `now`: which zones are open, and if none,
/// when the first opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowState {
    Open(Vec<Tz>),
    Closed {
        opens_at: DateTime<Utc>,
        zone: Tz,
    },
    /// Its scheduled start is still ahead (said in the campaign's zone).
    NotStarted {
        starts_at: DateTime<Utc>,
        zone: Tz,
    },
    /// Its end-by time has passed: nothing more is dialled.
    Ended {
        ended_at: DateTime<Utc>,
        zone: Tz,
    },
}

impl WindowState {
    /// What the state means for dispatch, on one line ("open in America/Chicago", "next
    /// window opens Mon 09:00 America/Chicago", "scheduled to start …", "its end-by … came").
    pub fn text(&self, now: DateTime<Utc>) -> String {
        match self {
            WindowState::Open(open) => format!(
                "open in {}",
                open.iter().map(|z| z.name()).collect::<Vec<_>>().join(", ")
            ),
            // A window that opens this minute or before is open (an always-open window, or
            // a campaign with no contact zones yet, is found "opening" at the current minute).
            WindowState::Closed { opens_at, .. } if *opens_at <= now => "open now".to_string(),
            WindowState::Closed { opens_at, zone } => opens_text(*opens_at, *zone, now),
            WindowState::NotStarted { starts_at, zone } => format!(
                "scheduled to start {} {zone}",
                local_when(*starts_at, *zone, now)
            ),
            WindowState::Ended { ended_at, zone } => format!(
                "its end-by time {} {zone} came",
                local_when(*ended_at, *zone, now)
            ),
        }
    }
}

/// [`window_state`] within a campaign's schedule: before its start and after its end no
/// window counts. `zone` is the campaign's, in which the schedule is said.
pub fn scheduled_window_state(
    window: &Window,
    zones: &[Tz],
    schedule: &schedule::Schedule,
    zone: Tz,
    now: DateTime<Utc>,
) -> WindowState {
    match schedule.state(now) {
        schedule::ScheduleState::NotYet(starts_at) => WindowState::NotStarted { starts_at, zone },
        schedule::ScheduleState::Over(ended_at) => WindowState::Ended { ended_at, zone },
        schedule::ScheduleState::Running => window_state(window, zones, now),
    }
}

pub fn window_state(window: &Window, zones: &[Tz], now: DateTime<Utc>) -> WindowState {
    let open: Vec<Tz> = zones
        .iter()
        .copied()
        .filter(|z| window.is_open(*z, now))
        .collect();
    if !open.is_empty() {
        return WindowState::Open(open);
    }
    let next = zones
        .iter()
        .map(|z| (window.next_open(*z, now), *z))
        .min_by_key(|(t, _)| *t);
    match next {
        Some((opens_at, zone)) => WindowState::Closed { opens_at, zone },
        None => WindowState::Closed {
            opens_at: now + Duration::days(7),
            zone: Tz::UTC,
        },
    }
}

/// "next window opens 09:00 America/Chicago" (the local time of the opening).
pub fn opens_text(opens_at: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> String {
    format!(
        "next window opens {} {zone}",
        local_when(opens_at, zone, now)
    )
}

/// `at` as local time in `zone`: "09:00" today, "Tue 09:00" on another day.
pub fn local_when(at: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> String {
    let local = at.with_timezone(&zone);
    let day = if local.date_naive() == now.with_timezone(&zone).date_naive() {
        String::new()
    } else {
        format!("{} ", local.format("%a"))
    };
    format!("{day}{}", local.format("%H:%M"))
}

/// When a waiting contact will be dialled, if not now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub until: DateTime<Utc>,
    /// The contact's zone (its own, else the campaign's): the time is said in it.
    pub zone: Tz,
    pub why: WaitReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// Its calling window is closed until then.
    Window,
    /// Deferred until then: a cap, or a redial's delay (the stored reason).
    Deferred(String),
}

/// When a PENDING contact may next be claimed: after its deferral (`eligible_at`, with the
/// stored reason) and inside its calling window. `None`: now. The later of the two wins.
pub fn next_eligible(
    window: &Window,
    zone: Tz,
    eligible_at: Option<DateTime<Utc>>,
    deferred_because: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Waiting> {
    let from = eligible_at.map_or(now, |at| at.max(now));
    let opens = window.next_open(zone, from);
    let why = if opens > from {
        WaitReason::Window
    } else if from > now {
        WaitReason::Deferred(deferred_because.unwrap_or("deferred").to_string())
    } else {
        return None;
    };
    Some(Waiting {
        until: opens,
        zone,
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_waiting_contact_is_due_when_both_its_deferral_and_its_window_allow() {
        let window = Window::parse("09:00-20:00", "mon-fri").unwrap();
        let chicago: Tz = "America/Chicago".parse().unwrap();
        // Thursday 2025-05-01 15:00 UTC = 10:00 in Chicago: open.
        let now = utc("2025-05-01T15:00:00Z");
        assert_eq!(next_eligible(&window, chicago, None, None, now), None);
        let past = utc("2025-05-01T14:00:00Z");
        assert_eq!(
            next_eligible(&window, chicago, Some(past), Some("cap"), now),
            None,
            "a deferral that has passed is no wait"
        );
        // A redial due at 16:30 UTC (11:30 local), inside the window.
        let due = utc("2025-05-01T16:30:00Z");
        let redial =
            next_eligible(&window, chicago, Some(due), Some("redial 1 of 2"), now).expect("waits");
        assert_eq!(redial.until, due);
        assert_eq!(redial.why, WaitReason::Deferred("redial 1 of 2".into()));
        assert_eq!(local_when(redial.until, chicago, now), "11:30");
        // Due at 02:00 UTC Friday = 21:00 Thursday local, after the window: Friday 09:00.
        let late = utc("2025-05-02T02:00:00Z");
        let waits = next_eligible(&window, chicago, Some(late), Some("cap"), now).unwrap();
        assert_eq!(waits.why, WaitReason::Window);
        assert_eq!(waits.until, utc("2025-05-02T14:00:00Z"));
        assert_eq!(local_when(waits.until, chicago, now), "Fri 09:00");
        // No deferral, window closed (Thursday 03:00 local): opens at 09:00 today.
        let night = utc("2025-05-01T08:00:00Z");
        let opens = next_eligible(&window, chicago, None, None, night).unwrap();
        assert_eq!(
            (opens.until, opens.why),
            (utc("2025-05-01T14:00:00Z"), WaitReason::Window)
        );
    }

    #[test]
    fn days_parse_and_print() {
        assert_eq!(Days::parse("mon-sat").unwrap(), Days::MON_SAT);
        assert_eq!(Days::parse("mon-fri").unwrap().to_string(), "mon-fri");
        assert_eq!(
            Days::parse("mon,wed,fri").unwrap().to_string(),
            "mon,wed,fri"
        );
        assert_eq!(Days::parse("sat-sun").unwrap().to_string(), "sat,sun");
        assert_eq!(Days::parse("mon-sun").unwrap(), Days::ALL);
        assert!(Days::parse("funday").is_err());
        assert!(Window::parse("09:00-20:00", "mon-fri").is_ok());
        assert!(Window::parse("20:00-09:00", "mon-fri").is_err());
        assert!(Window::parse("9-20", "mon-fri").is_err());
        assert_eq!(Window::parse("all", "all").unwrap(), Window::ALWAYS);
    }

    #[test]
    fn window_edges_are_start_inclusive_end_exclusive() {
        let w = Window::default();
        let chicago: Tz = "America/Chicago".parse().unwrap();
        // Wednesday 2026-01-14, Chicago is UTC-6.
        assert!(!w.is_open(chicago, utc("2026-01-14T13:59:59Z")));
        assert!(w.is_open(chicago, utc("2026-01-14T14:00:00Z")));
        assert!(w.is_open(chicago, utc("2026-01-15T02:59:59Z")));
        assert!(!w.is_open(chicago, utc("2026-01-15T03:00:00Z")));
        assert_eq!(
            w.next_open(chicago, utc("2026-01-15T03:00:00Z")),
            utc("2026-01-15T14:00:00Z")
        );
        // Sunday is not a calling day: Saturday night's next opening is Monday 08:00.
        assert_eq!(
            w.next_open(chicago, utc("2026-01-18T03:30:00Z")),
            utc("2026-01-19T14:00:00Z")
        );
    }

    #[test]
    fn daylight_saving_moves_the_window_in_utc() {
        let w = Window::parse("09:00-20:00", "all").unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08: clocks go forward at 02:00 (EST UTC-5 → EDT UTC-4).
        // 13:30Z on 03-08 is 09:30 EDT: open. On 03-07 it is 08:30 EST: closed.
        assert!(w.is_open(ny, utc("2026-03-08T13:30:00Z")));
        assert!(!w.is_open(ny, utc("2026-03-07T13:30:00Z")));
        assert_eq!(
            w.next_open(ny, utc("2026-03-07T13:30:00Z")),
            utc("2026-03-07T14:00:00Z")
        );
        assert_eq!(
            w.next_open(ny, utc("2026-03-08T02:00:00Z")),
            utc("2026-03-08T13:00:00Z")
        );
        // A window starting in the gap (02:30 does not exist that night) opens at 03:00 EDT.
        let night = Window::parse("02:30-05:00", "all").unwrap();
        assert_eq!(
            night.next_open(ny, utc("2026-03-08T06:00:00Z")),
            utc("2026-03-08T07:00:00Z")
        );
    }

    #[test]
    fn a_zone_ahead_of_utc_opens_on_its_own_day() {
        let w = Window::parse("09:00-20:00", "mon-fri").unwrap();
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // Sunday 2026-01-18 23:30Z is Monday 08:30 in Tokyo: opens at 00:00Z Monday.
        let now = utc("2026-01-18T23:30:00Z");
        assert!(!w.is_open(tokyo, now));
        assert_eq!(w.next_open(tokyo, now), utc("2026-01-19T00:00:00Z"));
        assert!(w.is_open(tokyo, utc("2026-01-19T00:00:00Z")));
        // Friday 20:00 Tokyo is 11:00Z Friday: closed until Monday 09:00 Tokyo.
        assert_eq!(
            w.next_open(tokyo, utc("2026-01-23T11:00:00Z")),
            utc("2026-01-26T00:00:00Z")
        );
    }

    #[test]
    fn window_state_names_the_first_opening() {
        let w = Window::parse("09:00-20:00", "all").unwrap();
        let chicago: Tz = "America/Chicago".parse().unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        // 13:30Z: 08:30 New York, 07:30 Chicago.
        let now = utc("2026-01-14T13:30:00Z");
        let state = window_state(&w, &[chicago, ny], now);
        assert_eq!(
            state,
            WindowState::Closed {
                opens_at: utc("2026-01-14T14:00:00Z"),
                zone: ny
            }
        );
        assert_eq!(
            opens_text(utc("2026-01-14T15:00:00Z"), chicago, now),
            "next window opens 09:00 America/Chicago"
        );
        // Opening this minute is open now, not "next window opens" the current minute.
        let opening_now = WindowState::Closed {
            opens_at: now,
            zone: chicago,
        };
        assert_eq!(opening_now.text(now), "open now");
        assert_eq!(state.text(now), "next window opens 09:00 America/New_York");
        assert_eq!(
            window_state(&w, &[chicago, ny], utc("2026-01-14T14:30:00Z")),
            WindowState::Open(vec![ny])
        );
    }

    #[test]
    fn redials_follow_the_reason_the_count_and_never_a_conversation() {
        let r = Redial::default();
        let t = utc("2026-01-14T12:00:00Z");
        assert_eq!(
            redial_at(&r, "customer-busy", false, 0, t),
            Some(t + Duration::hours(2))
        );
        assert_eq!(
            redial_at(&r, "voicemail", true, 1, t),
            Some(t + Duration::hours(2))
        );
        assert_eq!(
            redial_at(&r, "customer-busy", false, 2, t),
            None,
            "count reached"
        );
        assert_eq!(redial_at(&r, "customer-ended-call", false, 0, t), None);
        let everything = Redial {
            reasons: vec![
                "customer-ended-call".into(),
                "pipeline-error-openai-llm-failed".into(),
            ],
            ..Redial::default()
        };
        assert_eq!(
            redial_at(&everything, "customer-ended-call", true, 0, t),
            None
        );
        assert_eq!(
            redial_at(&everything, "pipeline-error-openai-llm-failed", true, 0, t),
            None,
            "it was in progress: somebody may have talked"
        );
    }

    #[test]
    fn decide_checks_dnc_consent_then_caps() {
        let now = utc("2026-01-14T12:00:00Z");
        let rules = Rules {
            require_consent: true,
            caps: Caps::default(),
            suppress_days: 0,
        };
        let dnc = Facts {
            dnc: Some(("2026-01-01".into(), "asked".into())),
            has_consent: true,
            ..Facts::default()
        };
        assert!(
            matches!(decide(&rules, &dnc, now), Decision::Skip(r) if r.contains("do-not-call"))
        );
        let no_consent = Facts::default();
        assert!(
            matches!(decide(&rules, &no_consent, now), Decision::Skip(r) if r.contains("consent"))
        );
        let calls = |hours: &[i64]| Facts {
            has_consent: true,
            recent_calls: hours.iter().map(|h| now - Duration::hours(*h)).collect(),
            ..Facts::default()
        };
        assert_eq!(decide(&rules, &calls(&[1, 5, 30]), now), Decision::Dial);
        assert_eq!(
            decide(&rules, &calls(&[1, 5, 20]), now),
            Decision::Defer {
                until: now + Duration::hours(4),
                reason: "cap 3/24 h reached for this number".into()
            }
        );
        let week = calls(&[30, 40, 50, 60, 70, 80, 150]);
        assert!(matches!(
            decide(&rules, &week, now),
            Decision::Defer { until, .. } if until == now - Duration::hours(150) + Duration::days(7)
        ));
        let off = Rules {
            require_consent: false,
            caps: Caps::OFF,
            suppress_days: 0,
        };
        assert_eq!(decide(&off, &week, now), Decision::Dial);
        // Duplicate suppression: another campaign's call inside the span skips; outside, or
        // with suppression off, it does not.
        let elsewhere = |days: i64| Facts {
            has_consent: true,
            called_elsewhere: Some(("spring".into(), now - Duration::days(days))),
            ..Facts::default()
        };
        let suppress = Rules {
            suppress_days: 30,
            ..off
        };
        assert!(matches!(
            decide(&suppress, &elsewhere(29), now),
            Decision::Skip(r) if r.contains("called by campaign spring") && r.contains("30 days")
        ));
        assert_eq!(decide(&suppress, &elsewhere(31), now), Decision::Dial);
        assert_eq!(decide(&off, &elsewhere(1), now), Decision::Dial);
        assert_eq!(Caps::parse("3/7").unwrap(), Caps::default());
        assert!(analysis_asks_dnc(r#"{"do_not_call": true}"#, "do_not_call"));
        assert!(analysis_asks_dnc(
            r#"{"do_not_call": "yes"}"#,
            "do_not_call"
        ));
        assert!(!analysis_asks_dnc(
            r#"{"do_not_call": false}"#,
            "do_not_call"
        ));
        assert!(!analysis_asks_dnc("not json", "do_not_call"));
        assert!(Caps::parse("x").is_err());
    }
}
