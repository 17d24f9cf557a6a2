//! The one clock. Wall time (calling hours, stored timestamps, the createdAt windows of a
//! look-up, lease heartbeats) comes from a [`Clock`] handed to the store and the engine;
//! monotonic time (waits, rates, the breaker) is tokio's, which a test pauses. A test clock
//! made by [`Clock::following_tokio`] moves its wall time with tokio's, so an engine run on
//! paused time sees midnight, settle deadlines and windows pass exactly as the waits do.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug, Default)]
enum Source {
    /// The system's clock (production).
    #[default]
    System,
    /// `wall` at the tokio instant `at`, advancing as tokio's clock does.
    Tokio { wall: DateTime<Utc>, at: Instant },
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock {
            source: Source::System,
        }
    }

    /// A wall clock that reads `wall` now and then advances with tokio's clock (paused or
    /// not): for tests that inject a date and wait on paused time.
    pub fn following_tokio(wall: DateTime<Utc>) -> Clock {
        Clock {
            source: Source::Tokio {
                wall,
                at: Instant::now(),
            },
        }
    }

    /// Wall time now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.source {
            Source::System => Utc::now(),
            Source::Tokio { wall, at } => {
                let elapsed = Instant::now().saturating_duration_since(*at);
                *wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::TimeDelta::MAX)
            }
        }
    }

    /// Wall time now in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Monotonic time now (tokio's: paused in tests).
    pub fn instant(&self) -> Instant {
        Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_following_clock_moves_with_paused_time_and_only_with_it() {
        let start = DateTime::parse_from_rfc3339("2026-03-08T01:59:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::following_tokio(start);
        assert_eq!(clock.now(), start);
        tokio::time::sleep(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(90));
        assert_eq!(clock.now_ms(), start.timestamp_millis() + 90_000);
    }

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let before = Utc::now();
        let read = Clock::system().now();
        assert!(read >= before && read <= Utc::now());
    }
}
