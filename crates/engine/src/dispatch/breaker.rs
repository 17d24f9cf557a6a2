//! Circuit breaker: after N consecutive transient failures dispatch stops for a cool-down,
//! then one probe goes through (half-open); its success closes the breaker, its failure
//! opens it again. Pure state on tokio's clock; the engine logs the transitions it returns.

use std::time::Duration;

use tokio::time::Instant;

use super::snapshot::{BreakerState, BreakerView};

#[derive(Debug, Clone)]
pub struct Breaker {
    state: BreakerState,
    consecutive_failures: u32,
    threshold: u32,
    cooldown: Duration,
    open_until: Option<Instant>,
    probe_in_flight: bool,
}

/// What `admit` says about sending a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// This request is the half-open probe.
    Probe,
    /// Wait this long (open), or until the probe's result (None).
    Wait(Option<Duration>),
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            threshold: threshold.max(1),
            cooldown,
            open_until: None,
            probe_in_flight: false,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// May a request go now? Moves Open → HalfOpen when the cool-down is over.
    pub fn admit(&mut self, now: Instant) -> (Admission, Option<BreakerState>) {
        match self.state {
            BreakerState::Closed => (Admission::Go, None),
            BreakerState::Open => {
                let until = self.open_until.unwrap_or(now);
                if now >= until {
                    self.state = BreakerState::HalfOpen;
                    self.probe_in_flight = true;
                    (Admission::Probe, Some(BreakerState::HalfOpen))
                } else {
                    (Admission::Wait(Some(until - now)), None)
                }
            }
            BreakerState::HalfOpen if self.probe_in_flight => (Admission::Wait(None), None),
            BreakerState::HalfOpen => {
                self.probe_in_flight = true;
                (Admission::Probe, None)
            }
        }
    }

    /// Vapi answered (created, or refused for a reason of the request's own). Returns the
    /// new state if it changed.
    pub fn on_success(&mut self) -> Option<BreakerState> {
        self.consecutive_failures = 0;
        self.probe_in_flight = false;
        match self.state {
            BreakerState::Closed => None,
            BreakerState::Open | BreakerState::HalfOpen => {
                self.state = BreakerState::Closed;
                self.open_until = None;
                Some(BreakerState::Closed)
            }
        }
    }

    /// A transient failure (429/503/504, timeout, connection). Returns the new state if it
    /// changed.
    pub fn on_failure(&mut self, now: Instant) -> Option<BreakerState> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            BreakerState::Closed if self.consecutive_failures >= self.threshold => {
                self.open(now);
                Some(BreakerState::Open)
            }
            BreakerState::Closed => None,
            BreakerState::HalfOpen => {
                self.open(now);
                Some(BreakerState::Open)
            }
            // Requests sent before it opened report late; the cool-down stands.
            BreakerState::Open => None,
        }
    }

    /// The probe could not be sent after all (engine stopping): let another one try.
    pub fn release_probe(&mut self) {
        self.probe_in_flight = false;
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.open_until = Some(now + self.cooldown);
        self.probe_in_flight = false;
    }

    pub fn view(&self, now: Instant) -> BreakerView {
        BreakerView {
            state: self.state,
            consecutive_failures: self.consecutive_failures,
            threshold: self.threshold,
            retry_in_ms: self
                .open_until
                .map(|u| u.saturating_duration_since(now).as_millis() as u64)
                .unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_then_half_opens_then_closes() {
        let mut b = Breaker::new(3, Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), Some(BreakerState::Open));
        assert_eq!(
            b.admit(t0).0,
            Admission::Wait(Some(Duration::from_secs(30)))
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        let now = Instant::now();
        assert_eq!(
            b.admit(now),
            (Admission::Probe, Some(BreakerState::HalfOpen))
        );
        assert_eq!(b.admit(now).0, Admission::Wait(None), "one probe at a time");
        assert_eq!(b.on_success(), Some(BreakerState::Closed));
        assert_eq!(b.admit(now).0, Admission::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_for_a_full_cooldown() {
        let mut b = Breaker::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(b.on_failure(t0), Some(BreakerState::Open));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit(Instant::now()).0, Admission::Probe);
        assert_eq!(b.on_failure(Instant::now()), Some(BreakerState::Open));
        assert_eq!(
            b.admit(Instant::now()).0,
            Admission::Wait(Some(Duration::from_secs(10)))
        );
    }

    #[test]
    fn success_resets_the_count() {
        let mut b = Breaker::new(2, Duration::from_secs(1));
        let now = Instant::now();
        b.on_failure(now);
        b.on_success();
        assert_eq!(b.on_failure(now), None, "not consecutive");
    }
}
