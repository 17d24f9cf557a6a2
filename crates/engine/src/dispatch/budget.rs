//! One request budget shared by every request the engine makes to Vapi (creates, reads,
//! look-ups), adapting to the gateway's limit like a congestion window: a 429 (with its
//! Retry-After) cuts the allowed rate in half and pauses for the signalled time; every stretch
//! without a 429 raises it by a step, never above what the operator configured. Vapi publishes
//! no number for its rate limit: 429 is the only signal, so the budget learns it.
//!
//! The limiter is governor's GCRA on tokio's clock (`check()` plus a tokio sleep), so paused-
//! time tests drive it. The create pacer (pacer.rs) still spreads creates; both must say yes.

use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::Mutex;
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

/// The lowest rate a storm of 429s can push the budget to (requests per second).
const MIN_RATE: f64 = 0.5;
/// A stretch this long without a 429 raises the rate one step.
const GROW_EVERY: Duration = Duration::from_secs(2);

/// What the budget is doing, for the console's quota pane.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct BudgetView {
    /// The rate learnt from the gateway (requests per second).
    pub learnt_per_second: f64,
    /// The operator's ceiling.
    pub configured_per_second: f64,
    /// Milliseconds left of a pause asked for by a 429.
    pub paused_ms: u64,
    /// 429s seen by any request.
    pub rate_limited: u64,
    /// Requests sent through the budget.
    pub requests: u64,
}

struct State {
    limiter: Limiter,
    rate: f64,
    ceiling: f64,
    burst: u32,
    paused_until: Option<Instant>,
    last_cut_or_growth: Instant,
    rate_limited: u64,
    requests: u64,
}

pub struct RequestBudget {
    state: Mutex<State>,
}

impl std::fmt::Debug for RequestBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBudget")
            .field("view", &self.view())
            .finish()
    }
}

impl RequestBudget {
    /// A budget of `per_second` requests (the operator's ceiling) with `burst`.
    pub fn new(per_second: f64, burst: u32) -> RequestBudget {
        let rate = per_second.max(MIN_RATE);
        RequestBudget {
            state: Mutex::new(State {
                limiter: limiter(rate, burst),
                rate,
                ceiling: rate,
                burst: burst.max(1),
                paused_until: None,
                last_cut_or_growth: Instant::now(),
                rate_limited: 0,
                requests: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until one request may be sent, and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                s.grow(now);
                match s.paused_until {
                    Some(until) if until > now => Some(until - now),
                    _ => match s.limiter.check() {
                        Ok(()) => {
                            s.requests += 1;
                            None
                        }
                        Err(not_until) => Some(
                            not_until
                                .wait_time_from(TokioClock.now())
                                .max(Duration::from_millis(1)),
                        ),
                    },
                }
            };
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// A 429: cut the rate in half (multiplicative decrease) and pause for `retry_after`
    /// (or one request period at the new rate). Cuts at most once per `GROW_EVERY`, so a
    /// burst of 429s from requests already in flight counts as one signal.
    pub fn on_rate_limited(&self, retry_after: Option<Duration>) {
        let mut s = self.lock();
        let now = Instant::now();
        s.rate_limited += 1;
        if now.saturating_duration_since(s.last_cut_or_growth) >= GROW_EVERY / 2
            || s.rate >= s.ceiling
        {
            let rate = (s.rate / 2.0).max(MIN_RATE);
            s.set_rate(rate);
            s.last_cut_or_growth = now;
        }
        let pause = retry_after.unwrap_or(Duration::from_secs_f64(1.0 / s.rate));
        let until = now + pause;
        if s.paused_until.is_none_or(|u| u < until) {
            s.paused_until = Some(until);
        }
    }

    /// The operator's ceiling changed (config or `dispatch rate`): the learnt rate never
    /// exceeds it.
    pub fn set_ceiling(&self, per_second: f64) {
        let mut s = self.lock();
        s.ceiling = per_second.max(MIN_RATE);
        if s.rate > s.ceiling {
            let ceiling = s.ceiling;
            s.set_rate(ceiling);
        }
    }

    pub fn view(&self) -> BudgetView {
        let s = self.lock();
        let now = Instant::now();
        BudgetView {
            learnt_per_second: s.rate,
            configured_per_second: s.ceiling,
            paused_ms: s
                .paused_until
                .map(|u| u.saturating_duration_since(now).as_millis() as u64)
                .unwrap_or(0),
            rate_limited: s.rate_limited,
            requests: s.requests,
        }
    }
}

impl State {
    /// Additive increase: each quiet `GROW_EVERY` adds a tenth of the ceiling (at least one
    /// request per second), up to the ceiling.
    fn grow(&mut self, now: Instant) {
        if self.rate >= self.ceiling {
            self.last_cut_or_growth = now;
            return;
        }
        let quiet = now.saturating_duration_since(self.last_cut_or_growth);
        if quiet >= GROW_EVERY {
            let steps = (quiet.as_secs_f64() / GROW_EVERY.as_secs_f64()).floor();
            let step = (self.ceiling / 10.0).max(1.0);
            let rate = (self.rate + steps * step).min(self.ceiling);
            self.set_rate(rate);
            self.last_cut_or_growth = now;
        }
    }

    fn set_rate(&mut self, rate: f64) {
        if (rate - self.rate).abs() > f64::EPSILON {
            self.rate = rate;
            self.limiter = limiter(rate, self.burst);
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

    /// How many requests the budget lets through in `window`.
    async fn admitted_in(budget: &RequestBudget, window: Duration) -> u32 {
        let end = Instant::now() + window;
        let mut n = 0;
        while Instant::now() < end {
            budget.acquire().await;
            if Instant::now() <= end {
                n += 1;
            }
        }
        n
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_the_configured_rate_without_429s() {
        let budget = RequestBudget::new(20.0, 1);
        let n = admitted_in(&budget, Duration::from_secs(5)).await;
        assert!((99..=101).contains(&n), "{n} in 5 s at 20/s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_cuts_the_rate_in_half_and_pauses_for_retry_after() {
        let budget = RequestBudget::new(20.0, 1);
        budget.acquire().await;
        let start = Instant::now();
        budget.on_rate_limited(Some(Duration::from_secs(3)));
        assert_eq!(budget.view().learnt_per_second, 10.0);
        budget.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "paused for Retry-After"
        );
        // The quiet pause grew it one step (a tenth of the ceiling); a second 429 right away
        // (a request already in flight) is the same signal and cuts nothing more.
        assert_eq!(budget.view().learnt_per_second, 12.0);
        budget.on_rate_limited(None);
        assert_eq!(budget.view().learnt_per_second, 12.0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_grows_back_to_the_ceiling_and_never_above() {
        let budget = RequestBudget::new(20.0, 1);
        budget.on_rate_limited(None);
        tokio::time::sleep(Duration::from_secs(2)).await;
        budget.on_rate_limited(None);
        assert_eq!(budget.view().learnt_per_second, 5.0);
        // Quiet stretches add 2/s (a tenth of the ceiling) every 2 s.
        tokio::time::sleep(Duration::from_secs(4)).await;
        budget.acquire().await;
        assert_eq!(budget.view().learnt_per_second, 9.0);
        tokio::time::sleep(Duration::from_secs(60)).await;
        budget.acquire().await;
        assert_eq!(
            budget.view().learnt_per_second,
            20.0,
            "capped at the ceiling"
        );
        budget.set_ceiling(8.0);
        assert_eq!(budget.view().learnt_per_second, 8.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_of_429s_floors_the_rate_but_never_stops_it() {
        let budget = RequestBudget::new(50.0, 1);
        for _ in 0..40 {
            budget.on_rate_limited(None);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(budget.view().learnt_per_second, MIN_RATE);
        assert_eq!(budget.view().rate_limited, 40);
        let start = Instant::now();
        budget.acquire().await;
        assert!(start.elapsed() <= Duration::from_secs(3));
    }
}
