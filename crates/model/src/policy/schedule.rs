//! A campaign's scheduled start and end (`campaign start NAME --at TIME --end-by TIME`):
//! dispatch begins at `starts_at` and stops at `ends_by`. Pure, like the windows: the instant
//! is always passed in. The claim refuses to dial outside the schedule; the engine waits
//! for the start and pauses the campaign at its end.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// When a campaign may dispatch (both ends optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_by: Option<DateTime<Utc>>,
}

/// Where `at` falls in a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleState {
    /// Before the start: nothing is dialled until then.
    NotYet(DateTime<Utc>),
    /// Between the start and the end (or with no schedule).
    Running,
    /// At or after the end: nothing more is dialled.
    Over(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "{0} {1:?} is not a time: give HH:MM, a local date and time (2026-12-07 09:00) or RFC 3339"
    )]
    Unreadable(&'static str, String),
    #[error("--end-by {0} is not after the start {1}")]
    EndBeforeStart(String, String),
    #[error("--end-by {0} has already passed")]
    EndPassed(String),
}

impl Schedule {
    pub fn state(&self, at: DateTime<Utc>) -> ScheduleState {
        if let Some(end) = self.ends_by
            && at >= end
        {
            return ScheduleState::Over(end);
        }
        match self.starts_at {
            Some(start) if at < start => ScheduleState::NotYet(start),
            _ => ScheduleState::Running,
        }
    }

    /// Whether a claim at `at` may dial.
    pub fn allows(&self, at: DateTime<Utc>) -> bool {
        self.state(at) == ScheduleState::Running
    }

    /// Reads `--at` and `--end-by` in the campaign's zone (an `HH:MM` end is the next such
    /// time after the start). A start in the past starts now.
    pub fn parse(
        at: Option<&str>,
        end_by: Option<&str>,
        zone: Tz,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ScheduleError> {
        let read = |flag: &'static str, text: &str, after: DateTime<Utc>| {
            super::follow_up::parse_callback_time(text, zone, after)
                .ok_or_else(|| ScheduleError::Unreadable(flag, text.to_string()))
        };
        let starts_at = at.map(|t| read("--at", t, now)).transpose()?;
        let from = starts_at.unwrap_or(now).max(now);
        let ends_by = end_by.map(|t| read("--end-by", t, from)).transpose()?;
        if let Some(end) = ends_by {
            let shown = |t: DateTime<Utc>| super::local_when(t, zone, now) + " " + zone.name();
            if end <= now {
                return Err(ScheduleError::EndPassed(shown(end)));
            }
            if let Some(start) = starts_at
                && end <= start
            {
                return Err(ScheduleError::EndBeforeStart(shown(end), shown(start)));
            }
        }
        Ok(Schedule { starts_at, ends_by })
    }

    /// "starts Mon 09:00, ends by Mon 17:00 America/Chicago", or `None` with no schedule.
    pub fn describe(&self, zone: Tz, now: DateTime<Utc>) -> Option<String> {
        let when = |t: DateTime<Utc>| super::local_when(t, zone, now);
        let parts: Vec<String> = [
            self.starts_at
                .filter(|t| *t > now)
                .map(|t| format!("starts {}", when(t))),
            self.ends_by.map(|t| {
                if t > now {
                    format!("ends by {}", when(t))
                } else {
                    format!("ended at {}", when(t))
                }
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| format!("{} {zone}", parts.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const CHICAGO: Tz = chrono_tz::America::Chicago;

    #[test]
    fn a_schedule_runs_from_its_start_to_its_end() {
        let s = Schedule {
            starts_at: Some(utc("2026-12-07T15:00:00Z")),
            ends_by: Some(utc("2026-12-07T23:00:00Z")),
        };
        let cases = [
            (
                "2026-12-07T14:59:59Z",
                ScheduleState::NotYet(utc("2026-12-07T15:00:00Z")),
            ),
            ("2026-12-07T15:00:00Z", ScheduleState::Running),
            ("2026-12-07T22:59:59Z", ScheduleState::Running),
            (
                "2026-12-07T23:00:00Z",
                ScheduleState::Over(utc("2026-12-07T23:00:00Z")),
            ),
        ];
        for (at, expected) in cases {
            assert_eq!(s.state(utc(at)), expected, "{at}");
            assert_eq!(
                s.allows(utc(at)),
                expected == ScheduleState::Running,
                "{at}"
            );
        }
        assert!(Schedule::default().allows(utc("2000-01-01T00:00:00Z")));
    }

    #[test]
    fn times_are_read_in_the_campaign_s_zone() {
        // Saturday 2026-12-05 13:00 UTC = 07:00 in Chicago.
        let now = utc("2026-12-05T13:00:00Z");
        let s = Schedule::parse(Some("2026-12-07 09:00"), Some("17:00"), CHICAGO, now).unwrap();
        assert_eq!(s.starts_at, Some(utc("2026-12-07T15:00:00Z")));
        // An HH:MM end is the next 17:00 after the start, not after now.
        assert_eq!(s.ends_by, Some(utc("2026-12-07T23:00:00Z")));
        assert_eq!(
            s.describe(CHICAGO, now).unwrap(),
            "starts Mon 09:00, ends by Mon 17:00 America/Chicago"
        );
        let today = Schedule::parse(Some("08:00"), None, CHICAGO, now).unwrap();
        assert_eq!(today.starts_at, Some(utc("2026-12-05T14:00:00Z")));
        assert_eq!(Schedule::default().describe(CHICAGO, now), None);
    }

    #[test]
    fn a_bad_schedule_is_refused_with_its_reason() {
        let now = utc("2026-12-05T13:00:00Z");
        assert!(matches!(
            Schedule::parse(Some("tomorrow-ish"), None, CHICAGO, now),
            Err(ScheduleError::Unreadable("--at", _))
        ));
        assert!(matches!(
            Schedule::parse(
                Some("2026-12-07 09:00"),
                Some("2026-12-07 08:00"),
                CHICAGO,
                now
            ),
            Err(ScheduleError::EndBeforeStart(..))
        ));
        assert!(matches!(
            Schedule::parse(None, Some("2026-12-01 08:00"), CHICAGO, now),
            Err(ScheduleError::EndPassed(_))
        ));
    }
}
