//! What happens after a conversation, decided from what the person said (the call's
//! analysis) rather than its status: a callback they asked for, a follow-up by outcome, or
//! nothing more; and the lanes the claim takes contacts from. Pure functions of the report,
//! the rules and the time; the store (`store::follow_up`) gathers and applies.

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::Window;

pub use crate::Lane;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowUpError {
    #[error(
        "lane order {0:?} must name callback, fresh and redial once each (e.g. callback,fresh,redial)"
    )]
    LaneOrder(String),
    #[error("done-when {0:?} must be success or FIELD=VALUE (e.g. appointment_booked=true)")]
    DoneWhen(String),
    #[error(
        "follow-up {0:?} must be OUTCOME=DELAY or OUTCOME=never, comma-separated (e.g. not-interested=never,call-back-later=1d; * for any other outcome)"
    )]
    FollowUp(String),
    #[error("field name {0:?} must be 1-64 letters, digits, _ or -")]
    Field(String),
    #[error(
        "callback time {0:?} must be RFC 3339 (2026-12-04T15:00:00-06:00), a local date and time (2026-12-04 15:00) or HH:MM in the contact's zone"
    )]
    Time(String),
    #[error("the voicemail message must be 1-1000 characters (this one has {0})")]
    Voicemail(usize),
    #[error("attempts must be between 0 (no cap / the last attempt) and 100, not {0}")]
    Attempts(i64),
}

/// The order the claim takes lanes in (default: callbacks, fresh contacts, redials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneOrder(pub [Lane; 3]);

impl Default for LaneOrder {
    fn default() -> Self {
        LaneOrder([Lane::Callback, Lane::Fresh, Lane::Redial])
    }
}

impl LaneOrder {
    pub fn parse(text: &str) -> Result<LaneOrder, FollowUpError> {
        let bad = || FollowUpError::LaneOrder(text.to_string());
        let lanes: Vec<Lane> = text
            .split(',')
            .map(|l| {
                l.trim()
                    .to_ascii_uppercase()
                    .parse::<Lane>()
                    .map_err(|_| bad())
            })
            .collect::<Result<_, _>>()?;
        let [a, b, c] = lanes.as_slice() else {
            return Err(bad());
        };
        if a == b || b == c || a == c {
            return Err(bad());
        }
        Ok(LaneOrder([*a, *b, *c]))
    }
}

impl std::fmt::Display for LaneOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.iter().map(|l| l.as_str().to_lowercase()).collect();
        f.write_str(&names.join(","))
    }
}

/// When a contact's work is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoneWhen {
    /// Vapi's success evaluation passed.
    Success,
    /// A structured-data field has this value (`appointment_booked=true`).
    Field { name: String, value: String },
}

impl DoneWhen {
    pub fn parse(text: &str) -> Result<DoneWhen, FollowUpError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("success") {
            return Ok(DoneWhen::Success);
        }
        let Some((name, value)) = text.split_once('=') else {
            return Err(FollowUpError::DoneWhen(text.to_string()));
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(FollowUpError::DoneWhen(text.to_string()));
        }
        Ok(DoneWhen::Field {
            name: field_name(name)?,
            value: value.to_string(),
        })
    }
}

impl std::fmt::Display for DoneWhen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DoneWhen::Success => f.write_str("success"),
            DoneWhen::Field { name, value } => write!(f, "{name}={value}"),
        }
    }
}

/// A structured-data field name as given on the command line.
pub fn field_name(text: &str) -> Result<String, FollowUpError> {
    let name = text.trim();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name.to_string())
    } else {
        Err(FollowUpError::Field(text.to_string()))
    }
}

/// The delay after each outcome (`None`: never call again); `*` matches any other outcome.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FollowUps(pub Vec<(String, Option<Duration>)>);

impl FollowUps {
    pub fn parse(text: &str) -> Result<FollowUps, FollowUpError> {
        let mut rules = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || FollowUpError::FollowUp(part.to_string());
            let (outcome, delay) = part.split_once('=').ok_or_else(bad)?;
            let outcome = outcome.trim().to_ascii_lowercase();
            if outcome.is_empty() {
                return Err(bad());
            }
            let delay = match delay.trim() {
                "never" => None,
                d => {
                    let d = humantime_serde::re::humantime::parse_duration(d).map_err(|_| bad())?;
                    if d.as_secs() == 0 || d.as_secs() > 365 * 86_400 {
                        return Err(bad());
                    }
                    Some(Duration::seconds(d.as_secs() as i64))
                }
            };
            rules.push((outcome, delay));
        }
        Ok(FollowUps(rules))
    }

    /// The rule for an outcome: its own, else `*`'s; `None` when neither is given.
    pub fn for_outcome(&self, outcome: &str) -> Option<Option<Duration>> {
        let outcome = outcome.trim().to_ascii_lowercase();
        self.0
            .iter()
            .find(|(o, _)| *o == outcome)
            .or_else(|| self.0.iter().find(|(o, _)| o == "*"))
            .map(|(_, d)| *d)
    }
}

impl std::fmt::Display for FollowUps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(o, d)| match d {
                None => format!("{o}=never"),
                Some(d) => format!(
                    "{o}={}",
                    humantime_serde::re::humantime::format_duration(d.to_std().unwrap_or_default())
                ),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A campaign's rules for what follows a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpRules {
    /// The structured-data field (or tool argument) holding a requested callback time;
    /// `None`: callbacks from analyses are off.
    pub callback_field: Option<String>,
    /// A tool the assistant calls to book a callback (its arguments carry `callback_field`
    /// or `at`); `None`: only the structured data is read.
    pub callback_tool: Option<String>,
    /// Outcome rules; `None`: a conversation ends the contact's work (unless a callback).
    pub done_when: Option<DoneWhen>,
    /// The structured-data field naming the outcome (`not-interested`, `call-back-later`…).
    pub outcome_field: String,
    pub follow_ups: FollowUps,
    /// Dials of one contact in all, shared by every rule (status redials, outcome
    /// follow-ups, callbacks from analyses); 0: no shared cap.
    pub max_attempts: u32,
}

impl Default for FollowUpRules {
    fn default() -> Self {
        FollowUpRules {
            callback_field: Some("callback_at".into()),
            callback_tool: None,
            done_when: None,
            outcome_field: "outcome".into(),
            follow_ups: FollowUps::default(),
            max_attempts: 3,
        }
    }
}

impl FollowUpRules {
    /// Whether another dial fits the shared cap after `attempts` dials.
    pub fn allows_another(&self, attempts: u32) -> bool {
        self.max_attempts == 0 || attempts < self.max_attempts
    }
}

/// What a conversation's report says, as the rules read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report<'a> {
    /// Vapi's success evaluation (text, whatever its rubric).
    pub success_evaluation: Option<&'a str>,
    pub structured: Option<&'a Value>,
    /// The assistant's tool calls: `[{name, arguments}]`.
    pub tool_calls: Option<&'a Value>,
}

/// What follows a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Nothing more: the contact's work is done (with why, for `why`).
    Done(String),
    /// A callback at `at` (moved into the calling window when asked outside it).
    Callback { at: DateTime<Utc>, why: String },
    /// Dialled again at `at` (an outcome's delay).
    Again { at: DateTime<Utc>, why: String },
}

impl FollowUp {
    pub fn why(&self) -> &str {
        match self {
            FollowUp::Done(why) | FollowUp::Callback { why, .. } | FollowUp::Again { why, .. } => {
                why
            }
        }
    }
}

/// Decides what follows a conversation that ended at `ended_at`, after `attempts` dials of
/// the contact. A done outcome wins over a callback; a callback wins over an outcome's delay;
/// both of those need room under the shared cap.
pub fn follow_up(
    rules: &FollowUpRules,
    report: &Report,
    attempts: u32,
    ended_at: DateTime<Utc>,
    zone: Tz,
    window: &Window,
) -> FollowUp {
    if let Some(done) = &rules.done_when
        && is_done(done, report)
    {
        return FollowUp::Done(format!("done: {done}"));
    }
    let asked = rules
        .callback_field
        .as_deref()
        .and_then(|field| requested_callback(rules.callback_tool.as_deref(), field, report));
    let capped = |what: &str| {
        FollowUp::Done(format!(
            "{what}, but the cap of {} attempts is reached",
            rules.max_attempts
        ))
    };
    if let Some(text) = asked {
        let Some(at) = parse_callback_time(&text, zone, ended_at) else {
            return FollowUp::Done(format!(
                "a callback was asked for at {text:?}, which is not a time"
            ));
        };
        if !rules.allows_another(attempts) {
            return capped(&format!("a callback was asked for at {text}"));
        }
        let (at, why) = callback_due(at, zone, window, ended_at, "asked in the call");
        return FollowUp::Callback { at, why };
    }
    if rules.done_when.is_none() {
        return FollowUp::Done("a conversation (no outcome rules)".into());
    }
    let outcome = report
        .structured
        .and_then(|s| s.get(&rules.outcome_field))
        .and_then(value_text);
    let Some(outcome) = outcome else {
        return match rules.follow_ups.for_outcome("*") {
            Some(Some(delay)) if rules.allows_another(attempts) => FollowUp::Again {
                at: ended_at + delay,
                why: format!("follow-up {} after no outcome", attempts + 1),
            },
            Some(Some(_)) => capped("no outcome"),
            _ => FollowUp::Done("no outcome and no rule for it".into()),
        };
    };
    match rules.follow_ups.for_outcome(&outcome) {
        None => FollowUp::Done(format!("outcome {outcome}: no rule follows it up")),
        Some(None) => FollowUp::Done(format!("outcome {outcome}: never called again")),
        Some(Some(_)) if !rules.allows_another(attempts) => capped(&format!("outcome {outcome}")),
        Some(Some(delay)) => FollowUp::Again {
            at: ended_at + delay,
            why: format!("follow-up {} after outcome {outcome}", attempts + 1),
        },
    }
}

fn is_done(done: &DoneWhen, report: &Report) -> bool {
    match done {
        DoneWhen::Success => report
            .success_evaluation
            .and_then(|e| crate::success_of(None, Some(e)))
            .unwrap_or(false),
        DoneWhen::Field { name, value } => report
            .structured
            .and_then(|s| s.get(name))
            .and_then(value_text)
            .is_some_and(|v| v.eq_ignore_ascii_case(value)),
    }
}

/// A JSON value as the text a rule compares: strings as they are, numbers and booleans
/// printed; null and empty mean nothing.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_string()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The callback time the call asked for: the tool's argument when the tool was called,
/// else the structured-data field.
fn requested_callback(tool: Option<&str>, field: &str, report: &Report) -> Option<String> {
    let from_tool = tool.and_then(|tool| {
        let calls = report.tool_calls?.as_array()?;
        calls.iter().rev().find_map(|call| {
            if call.get("name")?.as_str()? != tool {
                return None;
            }
            let args = match call.get("arguments")? {
                Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
                other => other.clone(),
            };
            args.get(field)
                .or_else(|| args.get("at"))
                .and_then(value_text)
        })
    });
    from_tool.or_else(|| report.structured?.get(field).and_then(value_text))
}

/// Reads a callback time: RFC 3339 (an instant), a local date and time, or `HH:MM` (the
/// next such local time after `now`), both of the latter in `zone`.
pub fn parse_callback_time(text: &str, zone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return local_instant(zone, local);
        }
    }
    let time = NaiveTime::parse_from_str(text, "%H:%M").ok()?;
    let today = now.with_timezone(&zone).date_naive();
    for day in 0..3 {
        let date = today.checked_add_signed(Duration::days(day))?;
        if let Some(at) = local_instant(zone, date.and_time(time))
            && at > now
        {
            return Some(at);
        }
    }
    None
}

/// A local time in `zone`: the first of two in a repeated hour, the hour after in a gap.
fn local_instant(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::LocalResult;
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => zone
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// When a callback asked for `asked` is due: then, or the window's next opening when the
/// window is closed then (a time already past is due now). The reason says which, in the
/// contact's local time.
pub fn callback_due(
    asked: DateTime<Utc>,
    zone: Tz,
    window: &Window,
    now: DateTime<Utc>,
    source: &str,
) -> (DateTime<Utc>, String) {
    let from = asked.max(now);
    let opens = window.next_open(zone, from);
    let local = |t: DateTime<Utc>| t.with_timezone(&zone).format("%Y-%m-%d %H:%M");
    if opens > from {
        (
            opens,
            format!(
                "callback {source} for {} {zone}, outside the window {} {}: moved to its next opening {}",
                local(asked),
                window.hours(),
                window.days,
                local(opens)
            ),
        )
    } else {
        (
            from,
            format!("callback {source} for {} {zone}", local(asked)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const CHICAGO: Tz = chrono_tz::America::Chicago;

    #[test]
    fn lane_orders_name_each_lane_once() {
        assert_eq!(
            LaneOrder::parse("redial, fresh,callback").unwrap().0,
            [Lane::Redial, Lane::Fresh, Lane::Callback]
        );
        assert_eq!(LaneOrder::default().to_string(), "callback,fresh,redial");
        for bad in [
            "",
            "callback,fresh",
            "callback,fresh,fresh",
            "a,b,c",
            "callback,fresh,redial,x",
        ] {
            assert!(LaneOrder::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn follow_up_rules_parse_and_match_outcomes() {
        let f = FollowUps::parse("not-interested=never, call-back-later=1d,*=2h").unwrap();
        assert_eq!(f.for_outcome("Not-Interested"), Some(None));
        assert_eq!(
            f.for_outcome("call-back-later"),
            Some(Some(Duration::days(1)))
        );
        assert_eq!(
            f.for_outcome("voicemail-full"),
            Some(Some(Duration::hours(2)))
        );
        assert_eq!(
            f.to_string(),
            "not-interested=never,call-back-later=1day,*=2h"
        );
        assert_eq!(FollowUps::parse("x=1d").unwrap().for_outcome("y"), None);
        for bad in ["x", "=1d", "x=soon", "x=0s", "x=400days"] {
            assert!(FollowUps::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            DoneWhen::parse("appointment_booked=true").unwrap(),
            DoneWhen::Field {
                name: "appointment_booked".into(),
                value: "true".into()
            }
        );
        assert_eq!(DoneWhen::parse("SUCCESS").unwrap(), DoneWhen::Success);
        for bad in ["", "x=", "=true", "a b=c"] {
            assert!(DoneWhen::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn callback_times_are_read_in_the_contacts_zone() {
        // Thursday 2026-12-03 16:00 UTC = 10:00 in Chicago.
        let now = utc("2026-12-03T16:00:00Z");
        let cases = [
            ("2026-12-04T15:00:00-06:00", Some("2026-12-04T21:00:00Z")),
            ("2026-12-04T21:00:00Z", Some("2026-12-04T21:00:00Z")),
            ("2026-12-04 15:00", Some("2026-12-04T21:00:00Z")),
            ("2026-12-04T15:00", Some("2026-12-04T21:00:00Z")),
            // Today at 15:00 local is still ahead; 09:00 local is tomorrow's.
            ("15:00", Some("2026-12-03T21:00:00Z")),
            ("09:00", Some("2026-12-04T15:00:00Z")),
            ("tomorrow", None),
            ("25:00", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_callback_time(text, CHICAGO, now),
                want.map(utc),
                "{text}"
            );
        }
        // A local time in the spring-forward gap is the hour after.
        let gap = parse_callback_time("2026-03-08 02:30", CHICAGO, now).unwrap();
        assert_eq!(gap, utc("2026-03-08T08:30:00Z"));
    }

    #[test]
    fn a_callback_outside_the_window_moves_to_its_next_opening() {
        let window = Window::parse("09:00-20:00", "mon-fri").unwrap();
        let now = utc("2026-12-03T16:00:00Z");
        // Thursday 15:00 Chicago: inside.
        let (at, why) = callback_due(utc("2026-12-03T21:00:00Z"), CHICAGO, &window, now, "asked");
        assert_eq!(at, utc("2026-12-03T21:00:00Z"));
        assert_eq!(why, "callback asked for 2026-12-03 15:00 America/Chicago");
        // Thursday 21:00 Chicago: closed; Friday 09:00 Chicago.
        let (at, why) = callback_due(utc("2026-12-04T03:00:00Z"), CHICAGO, &window, now, "asked");
        assert_eq!(at, utc("2026-12-04T15:00:00Z"));
        assert!(
            why.contains("moved to its next opening 2026-12-04 09:00"),
            "{why}"
        );
        // Saturday: Monday 09:00.
        let (at, _) = callback_due(utc("2026-12-05T18:00:00Z"), CHICAGO, &window, now, "asked");
        assert_eq!(at, utc("2026-12-07T15:00:00Z"));
        // Already past: due now (the window is open now).
        let (at, _) = callback_due(utc("2026-12-01T18:00:00Z"), CHICAGO, &window, now, "asked");
        assert_eq!(at, now);
    }

    #[test]
    fn what_follows_a_conversation_by_the_table() {
        let window = Window::parse("00:00-24:00", "all").unwrap();
        let ended = utc("2026-12-03T16:00:00Z");
        let rules = FollowUpRules {
            done_when: Some(DoneWhen::parse("appointment_booked=true").unwrap()),
            follow_ups: FollowUps::parse("not-interested=never,call-back-later=1d").unwrap(),
            max_attempts: 3,
            ..FollowUpRules::default()
        };
        let success = FollowUpRules {
            done_when: Some(DoneWhen::Success),
            follow_ups: FollowUps::parse("*=4h").unwrap(),
            ..rules.clone()
        };
        let no_rules = FollowUpRules::default();
        let tool = FollowUpRules {
            callback_tool: Some("book_callback".into()),
            ..FollowUpRules::default()
        };
        let booked = json!({"appointment_booked": true, "callback_at": "15:00"});
        let later = json!({"outcome": "call-back-later"});
        let not = json!({"outcome": "not-interested"});
        let callback =
            json!({"callback_at": "2026-12-04T15:00:00-06:00", "outcome": "call-back-later"});
        let garbage = json!({"callback_at": "whenever"});
        let tools =
            json!([{"name": "book_callback", "arguments": "{\"at\": \"2026-12-05 10:00\"}"}]);
        fn report(s: &Value) -> Report<'_> {
            Report {
                structured: Some(s),
                ..Report::default()
            }
        }
        let (booked, later, not, callback, garbage, tools) =
            (&booked, &later, &not, &callback, &garbage, &tools);
        let again = |d: Duration, why: &str| FollowUp::Again {
            at: ended + d,
            why: why.into(),
        };
        let cases: Vec<(&str, &FollowUpRules, Report, u32, FollowUp)> = vec![
            ("done wins over a callback", &rules, report(booked), 1, FollowUp::Done("done: appointment_booked=true".into())),
            ("an outcome's delay", &rules, report(later), 1, again(Duration::days(1), "follow-up 2 after outcome call-back-later")),
            ("an outcome never followed up", &rules, report(not), 1, FollowUp::Done("outcome not-interested: never called again".into())),
            ("the cap holds", &rules, report(later), 3, FollowUp::Done("outcome call-back-later, but the cap of 3 attempts is reached".into())),
            (
                "a callback wins over an outcome",
                &rules,
                report(callback),
                2,
                FollowUp::Callback { at: utc("2026-12-04T21:00:00Z"), why: "callback asked in the call for 2026-12-04 15:00 America/Chicago".into() },
            ),
            ("a callback over the cap", &rules, report(callback), 3, FollowUp::Done("a callback was asked for at 2026-12-04T15:00:00-06:00, but the cap of 3 attempts is reached".into())),
            ("an unreadable time", &rules, report(garbage), 1, FollowUp::Done("a callback was asked for at \"whenever\", which is not a time".into())),
            ("no outcome rules", &no_rules, report(later), 1, FollowUp::Done("a conversation (no outcome rules)".into())),
            (
                "success stops",
                &success,
                Report { success_evaluation: Some("true"), structured: Some(later), tool_calls: None },
                1,
                FollowUp::Done("done: success".into()),
            ),
            ("a failed evaluation follows up by *", &success, Report { success_evaluation: Some("false"), ..Report::default() }, 1, again(Duration::hours(4), "follow-up 2 after no outcome")),
            (
                "the tool's argument",
                &tool,
                Report { tool_calls: Some(tools), ..Report::default() },
                1,
                FollowUp::Callback { at: utc("2026-12-05T16:00:00Z"), why: "callback asked in the call for 2026-12-05 10:00 America/Chicago".into() },
            ),
        ];
        for (name, rules, report, attempts, want) in cases {
            assert_eq!(
                follow_up(rules, &report, attempts, ended, CHICAGO, &window),
                want,
                "{name}"
            );
        }
    }
}
