//! The admission gate every create request passes: global pause, campaign state, 429
//! back-off, circuit breaker, quota and the rate limiter. Claim loop and retrying workers
//! share it, so a paused or rate-limited engine sends nothing at all, retries included.
//! The lock is a plain mutex never held across an await.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::breaker::{Admission, Breaker};
use super::concurrency::Concurrency;
use super::fair_share::FairShare;
use super::pacer::Pacer;
use super::quota::Quota;
use super::snapshot::{BreakerState, EVENT_RING, EngineEvent, EventKind};
use super::streaks::{AnsweredHealth, QuickHangups, Rejections};
use crate::config::Config;
use crate::model::Pause;
use switchboard_model::clock::Clock;

/// Why a request may not go, ever (as opposed to "not yet").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The engine is stopping: leave the call as it is, it resumes at the next start.
    Stopping,
    /// The campaign was cancelled: the sequence ends without a call.
    CampaignCancelled,
    /// Dispatch or the campaign is paused: a call known not to exist gives its contact back
    /// to the queue (it is dialled afresh after the resume) instead of holding a slot.
    Paused,
}

/// Is this request the first of a new sequence (needs capacity and quota) or a retry of a
/// call already counted?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    NewCall,
    Retry { campaign_id: i64 },
}

#[derive(Debug)]
pub struct GateState {
    /// Wall time for the retry log's stamps and the day's quota.
    pub clock: Clock,
    pub paused: Option<Pause>,
    /// Campaigns in DIALING state (refreshed from the store every tick).
    pub dialing: HashSet<i64>,
    /// Campaigns CANCELLED: their waiting retries end.
    pub cancelled: HashSet<i64>,
    /// Dialing campaigns with contacts waiting to be claimed.
    pub claimable: HashSet<i64>,
    pub pacer: Pacer,
    pub breaker: Breaker,
    /// The engine-wide back-off after 429s.
    pub rate_limited: RateLimited,
    pub quota: Quota,
    /// Slots held: calls being created and active at Vapi, with their reconciliation.
    pub concurrency: Concurrency,
    pub stopping: bool,
    /// The lease was taken over by another engine: this one must not dispatch.
    pub lease_lost: bool,
    /// Which dialing campaign the next claim goes to.
    pub fair_share: FairShare,
    /// Calls with a live worker (the rescuer starts one for any unfinished call not here).
    pub working: HashSet<i64>,
    /// Runs of identical rejections per campaign.
    pub rejections: Rejections,
    /// The assistant's failures among each campaign's last answered calls.
    pub health: AnsweredHealth,
    /// Quick hang-ups among each campaign's last answered calls, and its baseline.
    pub quick_hangups: QuickHangups,
    /// Conversations that ended while a webhook listener runs, whose end-of-call report (and
    /// with it any callback or follow-up) has not come yet: `--until-done` waits for them.
    pub awaiting_reports: HashMap<i64, tokio::time::Instant>,
    /// Assistant/phone-number pairs with a call created since the tracker last looked, and
    /// the earliest such creation: the tracker follows them (a call may end at once, and its
    /// final cost still comes later).
    pub new_pairs: HashMap<(String, String), chrono::DateTime<chrono::Utc>>,
    /// When each call created since the tracker last looked was claimed (our clock, as the
    /// call rows' `created_at`): the read plan counts their ages (bounded: the tracker takes
    /// them every round).
    pub created_since_read: Vec<chrono::DateTime<chrono::Utc>>,
    pub events: VecDeque<EngineEvent>,
    /// Bumped on every change worth publishing.
    pub changes: u64,
    /// Admission checks that did not admit (see `EngineHandle::admissions_held`).
    pub held: u64,
}

#[derive(Debug)]
pub struct Gate {
    state: Mutex<GateState>,
    wake: Notify,
    backoff: Vec<u64>,
}

impl Gate {
    pub fn new(config: &Config, rate: f64, clock: Clock) -> Gate {
        let d = &config.dispatch;
        Gate {
            state: Mutex::new(GateState {
                clock,
                paused: None,
                dialing: HashSet::new(),
                cancelled: HashSet::new(),
                claimable: HashSet::new(),
                pacer: Pacer::new(rate, d.burst),
                breaker: Breaker::new(
                    d.breaker_failures,
                    Duration::from_millis(d.breaker_cooldown_ms),
                ),
                rate_limited: RateLimited::default(),
                quota: Quota::new(config),
                concurrency: Concurrency::default(),
                stopping: false,
                lease_lost: false,
                fair_share: FairShare::default(),
                working: HashSet::new(),
                rejections: Rejections::default(),
                health: AnsweredHealth::default(),
                quick_hangups: QuickHangups::default(),
                awaiting_reports: HashMap::new(),
                new_pairs: HashMap::new(),
                created_since_read: Vec::new(),
                events: VecDeque::with_capacity(EVENT_RING),
                changes: 0,
                held: 0,
            }),
            wake: Notify::new(),
            backoff: d.backoff_ms.clone(),
        }
    }

    /// Runs `f` on the state under the lock, then wakes every waiter to re-check.
    pub fn update<T>(&self, f: impl FnOnce(&mut GateState) -> T) -> T {
        let result = {
            let mut state = self.lock();
            state.changes += 1;
            f(&mut state)
        };
        self.wake.notify_waiters();
        result
    }

    /// Reads the state under the lock.
    pub fn read<T>(&self, f: impl FnOnce(&GateState) -> T) -> T {
        f(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        // A panic while holding the lock leaves plain counters behind: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until a create request may be sent now, and takes its rate slot. For a new
    /// call `campaign` is chosen by the caller among the dialing campaigns.
    pub async fn admit(&self, kind: RequestKind) -> Result<bool, Refusal> {
        loop {
            // Register interest before checking, so a wake between check and wait is not lost.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut s = self.lock();
                match s.check(kind) {
                    Check::Refuse(r) => {
                        s.held += 1;
                        return Err(r);
                    }
                    Check::Go { probe } => {
                        s.changes += 1;
                        return Ok(probe);
                    }
                    Check::Wait(d) => {
                        s.held += 1;
                        d
                    }
                }
            };
            match wait {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Sleeps `delay` unless the engine starts stopping first. False when stopping.
    pub async fn sleep(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.read(|s| s.stopping) {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                _ = &mut notified => {}
            }
        }
    }

    /// A call became active at Vapi (counted against the concurrency cap at once).
    pub fn call_started(&self) {
        self.update(|s| s.concurrency.started());
    }

    /// A call at Vapi ended: its slot is free.
    pub fn call_ended(&self) {
        self.update(|s| s.concurrency.ended());
    }

    /// Waits for any change (or `timeout`).
    pub async fn changed(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
    }

    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// A 429 anywhere backs the whole engine off: Retry-After if given and longer, else the
    /// backoff schedule by consecutive 429s.
    pub fn on_rate_limited(&self, retry_after: Option<Duration>) -> Duration {
        self.update(|s| {
            s.quota.rate_limited_total += 1;
            s.rate_limited
                .on_429(&self.backoff, retry_after, Instant::now())
        })
    }

    /// Vapi answered: the breaker closes (or stays closed) and the 429 streak ends.
    pub fn on_answer(&self) {
        let moved = self.update(|s| {
            s.rate_limited.answered();
            s.breaker.on_success()
        });
        if let Some(state) = moved {
            self.breaker_event(state);
        }
    }

    pub fn on_transient_failure(&self) {
        let moved = self.update(|s| s.breaker.on_failure(Instant::now()));
        if let Some(state) = moved {
            self.breaker_event(state);
        }
    }

    fn breaker_event(&self, state: BreakerState) {
        let message = breaker_message(state);
        tracing::warn!(target: "switchboard::engine", breaker = ?state, "{message}");
        self.event(EventKind::Breaker, None, None, message.to_string(), None);
    }

    /// Appends to the retry log ring buffer.
    pub fn event(
        &self,
        kind: EventKind,
        call_id: Option<i64>,
        attempt: Option<i64>,
        message: String,
        next_delay_ms: Option<u64>,
    ) {
        self.update(|s| s.push_event(kind, call_id, attempt, message, next_delay_ms));
    }
}

fn breaker_message(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Open => {
            "circuit breaker OPEN: Vapi keeps failing, dispatch stops for the cool-down"
        }
        BreakerState::HalfOpen => "circuit breaker HALF-OPEN: one probe request goes through",
        BreakerState::Closed => "circuit breaker CLOSED: Vapi answers again, dispatch resumes",
    }
}

enum Check {
    Go { probe: bool },
    Wait(Option<Duration>),
    Refuse(Refusal),
}

/// The engine-wide back-off after 429s: the schedule's step by consecutive 429s (a longer
/// Retry-After wins), ended by any answer.
#[derive(Debug, Default)]
pub struct RateLimited {
    until: Option<Instant>,
    consecutive: u32,
}

impl RateLimited {
    /// A 429 at `now`: backs off until the later of what was set and now plus the wait
    /// (the schedule's step for this many 429s in a row, or a longer Retry-After).
    pub fn on_429(
        &mut self,
        schedule: &[u64],
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Duration {
        self.consecutive = self.consecutive.saturating_add(1);
        let index = (self.consecutive as usize - 1).min(schedule.len().saturating_sub(1));
        let step = Duration::from_millis(schedule.get(index).copied().unwrap_or(1_000));
        let delay = retry_after.map_or(step, |r| r.max(step));
        let until = now + delay;
        if self.until.is_none_or(|u| u < until) {
            self.until = Some(until);
        }
        delay
    }

    /// Vapi answered: the run of 429s ends (a back-off already set still runs out).
    pub fn answered(&mut self) {
        self.consecutive = 0;
    }

    /// How long admission still waits at `now`; clears a back-off that ran out.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        match self.until {
            Some(until) if now < until => Some(until - now),
            _ => {
                self.until = None;
                None
            }
        }
    }

    /// When the back-off ends, if one is running.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }
}

impl GateState {
    /// Appends to the retry log ring buffer, dropping the oldest entry when full.
    pub fn push_event(
        &mut self,
        kind: EventKind,
        call_id: Option<i64>,
        attempt: Option<i64>,
        message: String,
        next_delay_ms: Option<u64>,
    ) {
        if self.events.len() >= EVENT_RING {
            self.events.pop_front();
        }
        self.events.push_back(EngineEvent {
            at: crate::store::format_time(self.clock.now()),
            kind,
            call_id,
            attempt,
            message,
            next_delay_ms,
        });
    }

    fn check(&mut self, kind: RequestKind) -> Check {
        if self.stopping {
            return Check::Refuse(Refusal::Stopping);
        }
        if let RequestKind::Retry { campaign_id } = kind
            && self.cancelled.contains(&campaign_id)
        {
            return Check::Refuse(Refusal::CampaignCancelled);
        }
        if self.paused.is_some() {
            // A retry of a call known not to exist gives its contact back rather than hold
            // a slot through the pause (an UNKNOWN call is settled, never re-sent from here).
            return match kind {
                RequestKind::NewCall => Check::Wait(None),
                RequestKind::Retry { .. } => Check::Refuse(Refusal::Paused),
            };
        }
        match kind {
            RequestKind::NewCall => {
                if self.claimable.is_empty() {
                    return Check::Wait(Some(Duration::from_millis(500)));
                }
                let in_use = self.concurrency.in_use();
                if in_use >= i64::from(self.quota.concurrency_cap())
                    || self
                        .quota
                        .stop_reason_with(self.concurrency.creating(), in_use)
                        .is_some()
                {
                    return Check::Wait(Some(Duration::from_millis(500)));
                }
            }
            RequestKind::Retry { campaign_id } => {
                if !self.dialing.contains(&campaign_id) {
                    return Check::Refuse(Refusal::Paused);
                }
            }
        }
        let now = Instant::now();
        if let Some(wait) = self.rate_limited.wait(now) {
            return Check::Wait(Some(wait));
        }
        let (admission, moved) = self.breaker.admit(now);
        if let Some(state) = moved {
            let message = breaker_message(state);
            tracing::warn!(target: "switchboard::engine", breaker = ?state, "{message}");
            self.push_event(EventKind::Breaker, None, None, message.to_string(), None);
        }
        let probe = match admission {
            Admission::Go => false,
            Admission::Probe => true,
            Admission::Wait(d) => return Check::Wait(d),
        };
        match self.pacer.try_take() {
            Ok(()) => {
                if let RequestKind::NewCall = kind {
                    // Counted before the claim so concurrent claims cannot overshoot the cap.
                    self.concurrency.reserve();
                }
                Check::Go { probe }
            }
            Err(wait) => {
                if probe {
                    self.breaker.release_probe();
                }
                Check::Wait(Some(wait))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Timing of the gate under tokio's paused time: exact, and instant to run.
    use super::*;

    fn gate(f: impl FnOnce(&mut Config)) -> Gate {
        let mut config = Config::default();
        f(&mut config);
        let gate = Gate::new(&config, config.dispatch.rate_per_second, Clock::system());
        gate.update(|s| {
            s.dialing.insert(1);
            s.claimable.insert(1);
        });
        gate
    }

    /// Admits a new call and gives back its concurrency slot (as a finished worker would).
    async fn admit_new(gate: &Gate) -> Duration {
        let start = Instant::now();
        gate.admit(RequestKind::NewCall).await.unwrap();
        gate.update(|s| s.concurrency.release());
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn creates_are_spaced_by_rate_and_burst() {
        let g = gate(|c| {
            c.dispatch.rate_per_second = 2.0;
            c.dispatch.burst = 1;
        });
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..5 {
            admit_new(&g).await;
            at.push(start.elapsed().as_millis());
        }
        assert_eq!(at, vec![0, 500, 1000, 1500, 2000]);

        let g = gate(|c| {
            c.dispatch.rate_per_second = 2.0;
            c.dispatch.burst = 3;
        });
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..5 {
            admit_new(&g).await;
            at.push(start.elapsed().as_millis());
        }
        assert_eq!(at, vec![0, 0, 0, 500, 1000], "a burst of 3, then the rate");
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_changes_spacing_at_once() {
        let g = gate(|c| c.dispatch.rate_per_second = 1.0);
        admit_new(&g).await;
        assert_eq!(admit_new(&g).await, Duration::from_secs(1));
        g.update(|s| s.pacer.set_rate(10.0));
        admit_new(&g).await;
        assert_eq!(admit_new(&g).await, Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_backs_off_every_request_1s_4s_10s_or_retry_after() {
        let g = gate(|c| c.dispatch.rate_per_second = 1000.0);
        assert_eq!(g.on_rate_limited(None), Duration::from_secs(1));
        assert_eq!(admit_new(&g).await, Duration::from_secs(1));
        assert_eq!(g.on_rate_limited(None), Duration::from_secs(4));
        // A retry of another call waits out the same engine-wide back-off.
        let start = Instant::now();
        g.admit(RequestKind::Retry { campaign_id: 1 })
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        assert_eq!(g.on_rate_limited(None), Duration::from_secs(10));
        assert_eq!(admit_new(&g).await, Duration::from_secs(10));
        assert_eq!(
            g.on_rate_limited(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(admit_new(&g).await, Duration::from_secs(30));
        g.on_answer();
        assert_eq!(
            g.on_rate_limited(None),
            Duration::from_secs(1),
            "an answer ends the streak"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_then_lets_one_probe_through_then_closes() {
        let g = gate(|c| {
            c.dispatch.rate_per_second = 1000.0;
            c.dispatch.breaker_failures = 3;
            c.dispatch.breaker_cooldown_ms = 30_000;
        });
        for _ in 0..3 {
            g.on_transient_failure();
        }
        assert_eq!(g.read(|s| s.breaker.state()), BreakerState::Open);
        let start = Instant::now();
        let probe = g.admit(RequestKind::NewCall).await.unwrap();
        assert!(probe, "the first request after the cool-down is the probe");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(g.read(|s| s.breaker.state()), BreakerState::HalfOpen);
        // While the probe is out nobody else goes.
        let other = tokio::time::timeout(
            Duration::from_secs(60),
            g.admit(RequestKind::Retry { campaign_id: 1 }),
        )
        .await;
        assert!(other.is_err(), "a second request went out while half-open");
        g.on_answer();
        assert_eq!(g.read(|s| s.breaker.state()), BreakerState::Closed);
        let kinds: Vec<EventKind> = g.read(|s| s.events.iter().map(|e| e.kind).collect());
        assert_eq!(
            kinds,
            vec![EventKind::Breaker; 3],
            "open, half-open, closed are logged"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_requests_and_stop_or_cancel_refuses_them() {
        let g = gate(|c| c.dispatch.rate_per_second = 1000.0);
        g.update(|s| s.paused = Some(Pause::new(crate::model::StopCause::Operator, "operator")));
        let held =
            tokio::time::timeout(Duration::from_secs(3600), g.admit(RequestKind::NewCall)).await;
        assert!(held.is_err(), "a paused gate admits nothing");
        g.update(|s| s.cancelled.insert(1));
        assert_eq!(
            g.admit(RequestKind::Retry { campaign_id: 1 }).await,
            Err(Refusal::CampaignCancelled)
        );
        g.update(|s| s.stopping = true);
        assert_eq!(g.admit(RequestKind::NewCall).await, Err(Refusal::Stopping));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_cap_holds_new_calls_but_not_retries() {
        let g = gate(|c| {
            c.dispatch.rate_per_second = 1000.0;
            c.dispatch.max_concurrent_calls = 2;
        });
        g.admit(RequestKind::NewCall).await.unwrap();
        g.admit(RequestKind::NewCall).await.unwrap();
        let third =
            tokio::time::timeout(Duration::from_secs(60), g.admit(RequestKind::NewCall)).await;
        assert!(third.is_err(), "cap of 2 reached");
        assert!(g.admit(RequestKind::Retry { campaign_id: 1 }).await.is_ok());
    }
}
