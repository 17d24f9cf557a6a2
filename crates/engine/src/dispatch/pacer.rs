//! Spreads call creation over time: a GCRA limiter at `rate_per_second` with a `burst`, on
//! tokio's clock (so paused-time tests drive it). Throttling takes effect at once. Also counts
//! the creates of the last minute for the quota view.
//!
//! Why not governor: its GCRA sets the next slot to `max(tat, now) + T`, so every wake-up that
//! comes late (tokio's timer rounds up to the millisecond, and the claim itself takes time)
//! stretches the period; at burst 1 that measured 2.2 % slow at 20/s. Here lateness up to a
//! quarter period is forgiven (`tat = max(tat, now - slack) + T`), so the mean rate is exact
//! while no second is ever above rate + burst.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    burst: u32,
    /// Emission interval T = 1 / rate.
    period: Duration,
    /// Theoretical arrival time of the next request (GCRA's TAT).
    tat: Option<Instant>,
    recent: VecDeque<Instant>,
}

impl Pacer {
    pub fn new(rate_per_second: f64, burst: u32) -> Pacer {
        Pacer {
            rate: rate_per_second,
            burst: burst.max(1),
            period: period(rate_per_second),
            tat: None,
            recent: VecDeque::new(),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Changes the rate at once: the new spacing applies from now.
    pub fn set_rate(&mut self, rate_per_second: f64) {
        if (rate_per_second - self.rate).abs() > f64::EPSILON {
            self.rate = rate_per_second;
            self.period = period(rate_per_second);
            self.tat = None;
        }
    }

    /// Takes a slot if one is free now; otherwise how long until one is.
    pub fn try_take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let tolerance = self.period * (self.burst - 1);
        let tat = self.tat.unwrap_or(now);
        let earliest = tat.checked_sub(tolerance).unwrap_or(tat);
        if now < earliest {
            return Err((earliest - now).max(Duration::from_millis(1)));
        }
        // A late wake-up keeps its place in the schedule, up to a quarter period.
        let slack = (self.period / 4).min(Duration::from_millis(50));
        let anchor = now.checked_sub(slack).unwrap_or(now).max(tat);
        self.tat = Some(anchor + self.period);
        self.recent.push_back(now);
        self.trim(now);
        Ok(())
    }

    /// Creates sent in the last 60 seconds.
    pub fn last_minute(&mut self) -> u64 {
        self.trim(Instant::now());
        self.recent.len() as u64
    }

    fn trim(&mut self, now: Instant) {
        while let Some(first) = self.recent.front() {
            if now.saturating_duration_since(*first) > Duration::from_secs(60) {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }
}

fn period(rate_per_second: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate_per_second.clamp(0.001, 1_000_000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn evenly_spaced_at_burst_one() {
        let mut pacer = Pacer::new(4.0, 1);
        assert!(pacer.try_take().is_ok());
        let wait = pacer.try_take().unwrap_err();
        assert_eq!(wait, Duration::from_millis(250));
        tokio::time::advance(wait).await;
        assert!(pacer.try_take().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn burst_allows_back_to_back_then_spaces() {
        let mut pacer = Pacer::new(2.0, 3);
        for _ in 0..3 {
            assert!(pacer.try_take().is_ok());
        }
        assert_eq!(pacer.try_take().unwrap_err(), Duration::from_millis(500));
        assert_eq!(pacer.last_minute(), 3);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(pacer.last_minute(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn late_wake_ups_do_not_slow_the_mean_rate() {
        let mut pacer = Pacer::new(20.0, 1);
        let start = Instant::now();
        let mut taken = 0;
        while taken < 201 {
            match pacer.try_take() {
                Ok(()) => taken += 1,
                // Every wake-up 2 ms late, as a busy runtime would be.
                Err(wait) => tokio::time::advance(wait + Duration::from_millis(2)).await,
            }
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed <= Duration::from_millis(10_002),
            "200 periods of 50 ms took {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_takes_effect_at_once() {
        let mut pacer = Pacer::new(1.0, 1);
        assert!(pacer.try_take().is_ok());
        assert_eq!(pacer.try_take().unwrap_err(), Duration::from_secs(1));
        pacer.set_rate(10.0);
        assert!(
            pacer.try_take().is_ok(),
            "a new rate starts a fresh schedule"
        );
        assert_eq!(pacer.try_take().unwrap_err(), Duration::from_millis(100));
    }
}
