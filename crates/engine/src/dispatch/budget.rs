//! One request budget shared by every request the engine makes to Vapi (creates, reads,
//! look-ups), adapting to the gateway's limit like a congestion window: a 429 (with its
//! Retry-After) cuts the allowed rate in half and pauses for the signalled time; every stretch
//! without a 429 raises it by a step, never above what the operator configured. Vapi publishes
//! no number for its rate limit: 429 is the only signal, so the budget learns it.
//!
//! The limiter is governor's GCRA on tokio's clock (`check()` plus a tokio sleep), so paused-
//! time tests drive it. The create pacer (pacer.rs) still spreads creates; both must say yes.

use std::collections::VecDeque;
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
/// A share of refused requests this high is a limit being overrun, however the last cut went.
const CLEARLY_OVER: f64 = 0.2;
/// Shares are judged on at least this many requests.
const SHARE_SAMPLE: usize = 10;
/// Growth slows down from this share of the rate the last 429 came at.
const NEAR: f64 = 0.97;
/// 429s this close to a cut answer requests sent before it: the same signal.
const SAME_SIGNAL: Duration = Duration::from_millis(250);
/// What the gateway let through is measured over this window.
const MEASURE_OVER: Duration = Duration::from_secs(2);
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
    last_cut: Option<Instant>,
    /// The rate before the last growth step, while no 429 came since: a 429 now means the
    /// step went past the limit, and undoing it is the answer (not a cut).
    grown_from: Option<f64>,
    /// Probes undone in a row: each doubles the wait before the next (up to 8 times).
    failed_probes: u32,
    /// A request waited on the limiter since the last cut or growth: the rate was tested.
    /// Only a tested rate grows (a quiet spell with little to send says nothing about the
    /// gateway, and a rate grown in it would send the next burst straight into 429s).
    pressed: bool,
    /// The rate the last 429 came at: growth slows down near it (the gateway's limit is
    /// probably just under it), and speeds up again once well past it without a 429.
    limit_seen: Option<f64>,
    /// Requests sent and 429s received in the last `MEASURE_OVER`: what the gateway let
    /// through lately, the best estimate of its limit when the next 429 comes.
    sent: VecDeque<Instant>,
    refused: VecDeque<Instant>,
    /// The share of requests refused when the rate was last cut, and the requests and
    /// refusals since: whether the cut helped.
    share_at_cut: Option<f64>,
    sent_since_cut: u32,
    refused_since_cut: u32,
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
                last_cut: None,
                grown_from: None,
                failed_probes: 0,
                pressed: false,
                limit_seen: None,
                sent: VecDeque::new(),
                refused: VecDeque::new(),
                share_at_cut: None,
                sent_since_cut: 0,
                refused_since_cut: 0,
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
                            s.sent.push_back(now);
                            s.sent_since_cut = s.sent_since_cut.saturating_add(1);
                            s.forget_before(now);
                            None
                        }
                        Err(not_until) => {
                            s.pressed = true;
                            Some(
                                not_until
                                    .wait_time_from(TokioClock.now())
                                    .max(Duration::from_millis(1)),
                            )
                        }
                    },
                }
            };
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// A 429: cut the rate (multiplicative decrease) to just under what the gateway let
    /// through lately (by half without a measure), and pause for `retry_after` (or one request period at
    /// the new rate). Cuts at most once per `GROW_EVERY`, so a burst of 429s from requests
    /// already in flight counts as one signal.
    pub fn on_rate_limited(&self, retry_after: Option<Duration>) {
        let mut s = self.lock();
        let now = Instant::now();
        s.rate_limited += 1;
        s.refused.push_back(now);
        s.forget_before(now);
        s.refused_since_cut += 1;
        let rate = s.rate;
        let share = s.refused_share();
        // Sending far above what passes: a limit, whatever happened before.
        let clearly_over = share >= CLEARLY_OVER && (s.sent.len() >= SHARE_SAMPLE || share >= 1.0);
        // Refusals that went on at the same share after the last cut do not follow the rate
        // (faults, not a limit): cutting further would only strangle the engine. Hold.
        let cut_helped = match s.share_at_cut {
            None => true,
            Some(before) => {
                s.sent_since_cut >= SHARE_SAMPLE as u32
                    && f64::from(s.refused_since_cut) / f64::from(s.sent_since_cut) < before / 2.0
            }
        };
        let quiet = s
            .last_cut
            .is_none_or(|cut| now.saturating_duration_since(cut) >= SAME_SIGNAL);
        if quiet
            && !clearly_over
            && let Some(before) = s.grown_from.take()
        {
            // The last growth step was a probe and it failed: back to where it started, and
            // the next probe waits longer.
            s.limit_seen = Some(rate);
            s.set_rate(before);
            s.last_cut = Some(now);
            s.last_cut_or_growth = now;
            s.failed_probes = s.failed_probes.saturating_add(1);
            s.pressed = false;
        } else if (quiet || rate >= s.ceiling) && (clearly_over || cut_helped) {
            let cut = match s.let_through(now) {
                // What passed since the gateway began to refuse is its rate: just under it.
                Some(through) => {
                    s.limit_seen = Some(through.min(rate));
                    (through * 0.9).min(rate * 0.95)
                }
                // No measure yet: by half the first time, gently near a limit seen before.
                None => {
                    let factor = if s.limit_seen.is_some() { 0.85 } else { 0.5 };
                    s.limit_seen = Some(rate);
                    rate * factor
                }
            };
            s.set_rate(cut.max(MIN_RATE));
            s.last_cut_or_growth = now;
            s.last_cut = Some(now);
            s.pressed = false;
            s.share_at_cut = Some(share);
            s.sent_since_cut = 0;
            s.refused_since_cut = 0;
            s.grown_from = None;
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
    fn forget_before(&mut self, now: Instant) {
        let horizon = now.checked_sub(MEASURE_OVER).unwrap_or(now);
        while self.sent.front().is_some_and(|t| *t < horizon) {
            self.sent.pop_front();
        }
        while self.refused.front().is_some_and(|t| *t < horizon) {
            self.refused.pop_front();
        }
    }

    /// The share of the last `MEASURE_OVER`'s requests that were refused.
    fn refused_share(&self) -> f64 {
        self.refused.len() as f64 / self.sent.len().max(1) as f64
    }

    /// Requests per second the gateway let through since the first 429 of the last
    /// `MEASURE_OVER`: once it refuses, its bucket is empty and what passes is its rate (an
    /// earlier start would count its burst as rate). None with less than a tenth of a second
    /// or three requests to go on (this 429 is the first).
    fn let_through(&self, now: Instant) -> Option<f64> {
        let first = *self.refused.front()?;
        let span = now.saturating_duration_since(first);
        if span < Duration::from_millis(100) {
            return None;
        }
        let sent = self.sent.iter().filter(|t| **t >= first).count();
        if sent < 3 {
            return None;
        }
        let through = sent.saturating_sub(self.refused.len());
        Some(through as f64 / span.as_secs_f64())
    }

    /// Additive increase: a `GROW_EVERY` without a 429 in which requests waited on the
    /// limiter adds a tenth of the ceiling (at least one request per second), up to the
    /// ceiling; from `NEAR` of the rate the last 429 came at, a 25th of that rate (past 120 %
    /// of it, that rate moves up to the current one). One step per stretch: the new rate is tested before the next.
    fn grow(&mut self, now: Instant) {
        if self.rate >= self.ceiling {
            self.last_cut_or_growth = now;
            return;
        }
        let quiet = now.saturating_duration_since(self.last_cut_or_growth);
        if quiet >= GROW_EVERY * (1 << self.failed_probes.min(3)) {
            if self.pressed {
                let fast = (self.ceiling / 10.0).max(1.0);
                let step = match self.limit_seen {
                    // Past it without a 429: the limit is higher; probe on from here.
                    Some(seen) if self.rate >= seen * 1.2 => {
                        self.limit_seen = Some(self.rate);
                        (self.rate / 25.0).max(0.05)
                    }
                    Some(seen) if self.rate >= seen * NEAR => (seen / 25.0).max(0.05),
                    Some(seen) => fast.min(seen * NEAR - self.rate).max(0.05),
                    None => fast,
                };
                let rate = (self.rate + step).min(self.ceiling);
                // The last step held (no 429 came to undo it).
                if self.grown_from.is_some() {
                    self.failed_probes = self.failed_probes.saturating_sub(1);
                }
                self.grown_from = Some(self.rate);
                self.set_rate(rate);
            }
            self.pressed = false;
            self.last_cut_or_growth = now;
        }
    }

    /// A new rate starts with its burst spent: a fresh limiter would let `burst` requests
    /// go at once, straight after a cut into a gateway that just said no.
    fn set_rate(&mut self, rate: f64) {
        if (rate - self.rate).abs() > f64::EPSILON {
            self.rate = rate;
            self.limiter = limiter(rate, self.burst);
            if let Some(burst) = NonZeroU32::new(self.burst) {
                let _ = self.limiter.check_n(burst);
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
        // A second 429 right away (a request already in flight) is the same signal and cuts
        // nothing more.
        budget.on_rate_limited(None);
        assert_eq!(budget.view().learnt_per_second, 10.0);
        budget.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "paused for Retry-After"
        );
        // A pause tests no rate: nothing grew.
        assert_eq!(budget.view().learnt_per_second, 10.0);
    }

    /// Sends as fast as the budget allows for `window` (requests waiting: the rate is tested).
    async fn press(budget: &RequestBudget, window: Duration) {
        let end = Instant::now() + window;
        while Instant::now() < end {
            budget.acquire().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_grows_back_to_the_ceiling_and_never_above() {
        let budget = RequestBudget::new(20.0, 1);
        budget.on_rate_limited(None);
        assert_eq!(
            budget.view().learnt_per_second,
            10.0,
            "the first 429 halves it"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        budget.on_rate_limited(None);
        assert_eq!(
            budget.view().learnt_per_second,
            8.5,
            "near a limit seen, and nothing to measure: 15 % off"
        );
        // The last 429 came at 10/s: pressed, it grows by up to 2/s (a tenth of the ceiling)
        // per 2 s up to 9.7/s (97 % of 10), then by a 25th of 10 (0.4/s) near it.
        press(&budget, Duration::from_millis(2_100)).await;
        assert!((budget.view().learnt_per_second - 9.7).abs() < 1e-9);
        press(&budget, Duration::from_millis(2_000)).await;
        assert!((budget.view().learnt_per_second - 10.1).abs() < 1e-9);
        // Past it without a 429: it goes on by 4 % a step, capped at the ceiling.
        press(&budget, Duration::from_secs(60)).await;
        assert_eq!(
            budget.view().learnt_per_second,
            20.0,
            "capped at the ceiling"
        );
        budget.set_ceiling(8.0);
        assert_eq!(budget.view().learnt_per_second, 8.0);
    }

    /// A gateway of `rps` with a bucket of `burst` in front of a budget sending all it may.
    struct Gateway {
        rps: f64,
        burst: f64,
        tokens: f64,
        at: Instant,
    }

    impl Gateway {
        fn admits(&mut self) -> bool {
            let now = Instant::now();
            let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rps;
            self.tokens = (self.tokens + refill).min(self.burst);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                true
            } else {
                false
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_gateway_it_is_not_told_is_learnt_within_a_few_429s_and_then_kept_under() {
        for (ceiling, rps) in [(50.0, 12.0), (100.0, 8.0), (20.0, 15.0)] {
            let budget = RequestBudget::new(ceiling, 5);
            let mut gateway = Gateway {
                rps,
                burst: 10.0,
                tokens: 10.0,
                at: Instant::now(),
            };
            let start = Instant::now();
            let (mut sent_late, mut refused_late, mut refused_early) = (0u32, 0u32, 0u32);
            while start.elapsed() < Duration::from_secs(60) {
                budget.acquire().await;
                let late = start.elapsed() >= Duration::from_secs(10);
                sent_late += u32::from(late);
                if !gateway.admits() {
                    budget.on_rate_limited(None);
                    if late {
                        refused_late += 1;
                    } else {
                        refused_early += 1;
                    }
                }
            }
            let learnt = budget.view().learnt_per_second;
            // A few: the first, those sent in the quarter second it takes to tell a new
            // signal from the same one, and the probes.
            assert!(
                refused_early <= 15,
                "{rps}/s: {refused_early} 429s while learning"
            );
            let share = f64::from(refused_late) / f64::from(sent_late);
            assert!(
                share < 0.02,
                "{rps}/s: {share:.3} of requests refused once learnt"
            );
            // What got through once learnt: close to the gateway's limit.
            let through = f64::from(sent_late - refused_late) / 50.0;
            assert!(through >= 0.85 * rps, "{rps}/s: {through:.1}/s got through");
            assert!(learnt <= rps * 1.25, "{rps}/s: learnt {learnt:.1}/s");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_that_do_not_follow_the_rate_do_not_strangle_it() {
        // A tenth of the requests answered 429 whatever the rate (a fault, not a limit), for a
        // sender that wants 50/s under a ceiling of 500/s: it keeps most of its rate.
        let budget = RequestBudget::new(500.0, 2);
        let start = Instant::now();
        let (mut n, mut late) = (0u32, 0u32);
        while start.elapsed() < Duration::from_secs(60) {
            let wanted = start + Duration::from_millis(u64::from(n) * 20);
            tokio::time::sleep_until(wanted).await;
            budget.acquire().await;
            n += 1;
            late += u32::from(start.elapsed() >= Duration::from_secs(30));
            if n.is_multiple_of(10) {
                budget.on_rate_limited(None);
            }
        }
        let per_second = f64::from(late) / 30.0;
        assert!(per_second >= 35.0, "{per_second:.1}/s of the 50/s wanted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_spell_tests_nothing_and_grows_nothing() {
        let budget = RequestBudget::new(20.0, 1);
        budget.on_rate_limited(None);
        assert_eq!(budget.view().learnt_per_second, 10.0);
        // One request every 2 s never waits on a 10/s limiter.
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            budget.acquire().await;
        }
        assert_eq!(budget.view().learnt_per_second, 10.0);
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
