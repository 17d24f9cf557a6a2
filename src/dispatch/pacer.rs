//! Spreads call creation over time: governor's GCRA limiter at `rate_per_second` with a
//! `burst`, on a clock that reads tokio's time so paused-time tests drive it. Throttling
//! swaps in a new limiter at once. Also counts the creates of the last minute for the quota
//! view.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::ops::Add;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// A governor instant on tokio's clock (so `tokio::time::pause` moves it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = TokioInstant;
    fn add(self, other: Nanos) -> TokioInstant {
        TokioInstant(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }
    fn saturating_sub(&self, duration: Nanos) -> Self {
        TokioInstant(self.0.checked_sub(duration.into()).unwrap_or(self.0))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;
    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;

pub struct Pacer {
    limiter: Limiter,
    rate: f64,
    burst: u32,
    recent: VecDeque<Instant>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish()
    }
}

impl Pacer {
    pub fn new(rate_per_second: f64, burst: u32) -> Pacer {
        Pacer {
            limiter: limiter(rate_per_second, burst),
            rate: rate_per_second,
            burst: burst.max(1),
            recent: VecDeque::new(),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Changes the rate at once (a fresh limiter: the new spacing applies from now).
    pub fn set_rate(&mut self, rate_per_second: f64) {
        if (rate_per_second - self.rate).abs() > f64::EPSILON {
            self.rate = rate_per_second;
            self.limiter = limiter(rate_per_second, self.burst);
        }
    }

    /// Takes a slot if one is free now; otherwise how long until one is.
    pub fn try_take(&mut self) -> Result<(), Duration> {
        match self.limiter.check() {
            Ok(()) => {
                let now = Instant::now();
                self.recent.push_back(now);
                self.trim(now);
                Ok(())
            }
            Err(not_until) => Err(not_until
                .wait_time_from(TokioClock.now())
                .max(Duration::from_millis(1))),
        }
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

fn limiter(rate_per_second: f64, burst: u32) -> Limiter {
    let period = Duration::from_secs_f64(1.0 / rate_per_second.clamp(0.001, 1_000_000.0));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
    RateLimiter::direct_with_clock(quota, TokioClock)
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
