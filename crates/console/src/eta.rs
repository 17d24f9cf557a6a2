//! When a campaign will finish: pure, so every case is a unit test. The rate of finished
//! contacts is what the console observed; the concurrency in force and the create rate bound
//! it (a burst seen at the start does not outlive the cap), and the last calls still have to
//! run their length once the last one is created.

use std::time::Duration;

/// What the console saw over its history window (see `history.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// Contacts finished per second.
    pub done_per_sec: f64,
    /// Calls at Vapi on average: with the rate above, their mean length (Little's law).
    pub mean_active: f64,
}

impl Observed {
    /// Mean call length in seconds (`active = rate × length`), if anything finished.
    pub fn mean_call_secs(&self) -> Option<f64> {
        (self.done_per_sec > 0.0).then(|| self.mean_active / self.done_per_sec)
    }
}

/// What limits dispatch now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub rate_per_second: f64,
    pub concurrency_cap: u32,
}

/// Time to finish `remaining` contacts (waiting or being dialled). `None` when nothing
/// moves (paused, or nothing observed yet), so the pane says "—" rather than guess.
pub fn eta(remaining: i64, observed: Option<Observed>, limits: Limits) -> Option<Duration> {
    if remaining <= 0 {
        return Some(Duration::ZERO);
    }
    let (throughput, mean_secs) = throughput(observed, limits)?;
    let secs = remaining as f64 / throughput + mean_secs;
    // Over a year is not an estimate worth showing.
    (secs.is_finite() && secs < 3.2e7).then(|| Duration::from_secs_f64(secs))
}

/// Contacts finished per second at the pace seen, bounded by what the limits in force allow
/// (creates per second, and slots over the call length), and the mean call length in seconds.
/// `None` when nothing moves.
pub fn throughput(observed: Option<Observed>, limits: Limits) -> Option<(f64, f64)> {
    let observed = observed?;
    let mean_secs = observed.mean_call_secs()?;
    let mut bound = limits.rate_per_second.max(0.0);
    if mean_secs > 0.0 {
        bound = bound.min(f64::from(limits.concurrency_cap) / mean_secs);
    }
    let throughput = observed.done_per_sec.min(bound);
    (throughput > 0.0 && throughput.is_finite()).then_some((throughput, mean_secs))
}

/// "45s", "12m", "3h05m", "2d04h".
pub fn short(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs.div_ceil(60)),
        3_600..86_400 => format!("{}h{:02}m", secs / 3_600, (secs % 3_600) / 60),
        _ => format!("{}d{:02}h", secs / 86_400, (secs % 86_400) / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        rate_per_second: 2.0,
        concurrency_cap: 10,
    };

    fn seen(done_per_sec: f64, mean_active: f64) -> Option<Observed> {
        Some(Observed {
            done_per_sec,
            mean_active,
        })
    }

    #[test]
    fn the_observed_rate_sets_the_pace_and_the_last_calls_their_length() {
        // 0.1 contacts/s with 6 calls active on average: 60 s calls. 600 left: 6,000 s to
        // create the last one, plus its 60 s.
        let left = eta(600, seen(0.1, 6.0), LIMITS).unwrap();
        assert_eq!(left.as_secs(), 6_060);
        assert_eq!(short(left), "1h41m");
    }

    #[test]
    fn the_concurrency_cap_bounds_an_observed_burst() {
        // 1 contact/s was seen with 60 s calls, but a cap of 10 allows 10/60 per second.
        let capped = eta(100, seen(1.0, 60.0), LIMITS).unwrap();
        assert_eq!(capped.as_secs(), 600 + 60);
        // And the create rate bounds short calls.
        let slow = Limits {
            rate_per_second: 0.5,
            concurrency_cap: 100,
        };
        let by_rate = eta(100, seen(2.0, 2.0), slow).unwrap();
        assert_eq!(by_rate.as_secs(), 200 + 1);
    }

    #[test]
    fn nothing_moving_is_no_estimate_and_nothing_left_is_zero() {
        assert_eq!(eta(100, None, LIMITS), None);
        assert_eq!(eta(100, seen(0.0, 3.0), LIMITS), None, "paused");
        let zero_rate = Limits {
            rate_per_second: 0.0,
            ..LIMITS
        };
        assert_eq!(eta(100, seen(0.5, 3.0), zero_rate), None);
        assert_eq!(eta(0, None, LIMITS), Some(Duration::ZERO));
        assert_eq!(eta(1_000_000_000, seen(0.001, 0.01), LIMITS), None, "years");
    }

    #[test]
    fn short_durations_read_at_a_glance() {
        assert_eq!(short(Duration::from_secs(45)), "45s");
        assert_eq!(short(Duration::from_secs(61)), "2m");
        assert_eq!(short(Duration::from_secs(3 * 3_600 + 300)), "3h05m");
        assert_eq!(short(Duration::from_secs(2 * 86_400 + 4 * 3_600)), "2d04h");
    }
}
