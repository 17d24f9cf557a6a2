//! systemd's notify protocol (`sd_notify`, through the `sd-notify` crate): `READY=1` once
//! dispatch can start, `STATUS=` with what the engine is doing, `WATCHDOG=1` from the control
//! loop's own tick at half of `WATCHDOG_USEC` (a control loop that stalls stops the pings,
//! and systemd restarts the engine), `STOPPING=1` on a graceful stop. Without
//! `NOTIFY_SOCKET` (not started by systemd) nothing is sent.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::time::Instant;

use super::snapshot::Snapshot;

pub(crate) struct ServiceManager {
    /// Half of `WATCHDOG_USEC`, when systemd watches the engine.
    ping_every: Option<Duration>,
    last_ping: Option<Instant>,
    last_status: String,
}

impl ServiceManager {
    /// Reads the watchdog interval systemd asked for (none outside systemd).
    pub(crate) fn from_env() -> ServiceManager {
        ServiceManager::new(sd_notify::watchdog_enabled())
    }

    fn new(watchdog: Option<Duration>) -> ServiceManager {
        ServiceManager {
            ping_every: watchdog.map(|w| w / 2),
            last_ping: None,
            last_status: String::new(),
        }
    }

    pub(crate) fn ready(&mut self, now: Instant) {
        send(&[NotifyState::Ready, NotifyState::Status("dispatch started")]);
        self.last_ping = Some(now);
    }

    /// On each control-loop tick: a watchdog ping when one is due.
    pub(crate) fn tick(&mut self, now: Instant) {
        if self.ping_due(now) {
            send(&[NotifyState::Watchdog]);
            self.last_ping = Some(now);
        }
    }

    fn ping_due(&self, now: Instant) -> bool {
        match (self.ping_every, self.last_ping) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(every), Some(last)) => now.saturating_duration_since(last) >= every,
        }
    }

    /// The status line systemd shows (`systemctl status`), sent when it changes.
    pub(crate) fn status(&mut self, snapshot: &Snapshot) {
        let line = status_line(snapshot);
        if line != self.last_status {
            send(&[NotifyState::Status(&line)]);
            self.last_status = line;
        }
    }

    pub(crate) fn stopping(&self) {
        send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: requests in flight are being recorded"),
        ]);
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(target: "switchboard::engine", "cannot notify the service manager: {e}");
    }
}

/// What the engine is doing, on one line: campaigns dialling, calls live and being created,
/// and a pause with its reason.
fn status_line(s: &Snapshot) -> String {
    let dialing = s
        .campaigns
        .iter()
        .filter(|c| c.status == crate::model::CampaignStatus::Dialing)
        .count();
    let mut line = format!(
        "{dialing} campaign(s) dialling, {} live, {} being created, {} waiting",
        s.active, s.creating, s.pending
    );
    if let Some(reason) = &s.dispatch_paused {
        line.push_str(&format!("; dispatch paused: {reason}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pings at half the watchdog interval, counted from the last one; none without it.
    #[tokio::test(start_paused = true)]
    async fn the_watchdog_is_pinged_at_half_its_interval() {
        let start = Instant::now();
        let mut watched = ServiceManager::new(Some(Duration::from_secs(10)));
        assert!(watched.ping_due(start), "the first tick pings");
        watched.last_ping = Some(start);
        let cases = [(4_999, false), (5_000, true), (12_000, true)];
        for (ms, due) in cases {
            assert_eq!(
                watched.ping_due(start + Duration::from_millis(ms)),
                due,
                "{ms} ms after the last ping"
            );
        }
        let unwatched = ServiceManager::new(None);
        assert!(!unwatched.ping_due(start + Duration::from_secs(3600)));
    }
}
