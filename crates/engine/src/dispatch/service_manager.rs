//! systemd's notify protocol (`sd_notify`, through the `sd-notify` crate): `READY=1` once
//! dispatch can start, `STATUS=` with what the engine is doing, `WATCHDOG=1` from the control
//! loop's own tick at half of `WATCHDOG_USEC` (a control loop that stalls stops the pings,
//! and systemd restarts the engine), `STOPPING=1` on a graceful stop. Without
//! `NOTIFY_SOCKET` (not started by systemd) nothing is sent.

use std::path::PathBuf;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::time::Instant;

use super::snapshot::Snapshot;

/// Whom the engine tells that it is ready, what it is doing, and that it is alive.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Notify {
    /// systemd, as its environment says (`NOTIFY_SOCKET`, `WATCHDOG_USEC`): nobody outside it.
    #[default]
    FromEnv,
    /// The datagram socket at `path`, as systemd's would be, with the watchdog interval
    /// given here (an embedding program's own supervisor, or a test's).
    Socket {
        path: PathBuf,
        watchdog: Option<Duration>,
    },
}

pub(crate) struct ServiceManager {
    /// Where the messages go: `None` for systemd's socket from the environment.
    socket: Option<PathBuf>,
    /// Half of the watchdog interval, when the engine is watched.
    ping_every: Option<Duration>,
    last_ping: Option<Instant>,
    last_status: String,
}

impl ServiceManager {
    /// For `notify`; from the environment, the watchdog interval systemd asked for.
    pub(crate) fn new(notify: &Notify) -> ServiceManager {
        let (socket, watchdog) = match notify {
            Notify::FromEnv => (None, sd_notify::watchdog_enabled()),
            Notify::Socket { path, watchdog } => (Some(path.clone()), *watchdog),
        };
        ServiceManager {
            socket,
            ping_every: watchdog.map(|w| w / 2),
            last_ping: None,
            last_status: String::new(),
        }
    }

    pub(crate) fn ready(&mut self, now: Instant) {
        self.send(&[NotifyState::Ready, NotifyState::Status("dispatch started")]);
        self.last_ping = Some(now);
    }

    /// On each control-loop tick: a watchdog ping when one is due.
    pub(crate) fn tick(&mut self, now: Instant) {
        if self.ping_due(now) {
            self.send(&[NotifyState::Watchdog]);
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
            self.send(&[NotifyState::Status(&line)]);
            self.last_status = line;
        }
    }

    pub(crate) fn stopping(&self) {
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: requests in flight are being recorded"),
        ]);
    }

    fn send(&self, states: &[NotifyState]) {
        let sent = match &self.socket {
            None => sd_notify::notify(states),
            Some(path) => send_to(path, states),
        };
        if let Err(e) = sent {
            tracing::debug!(target: "switchboard::engine", "cannot notify the service manager: {e}");
        }
    }
}

/// One datagram, a state a line: the protocol `sd_notify` speaks.
fn send_to(path: &std::path::Path, states: &[NotifyState]) -> std::io::Result<()> {
    let message: String = states.iter().map(|s| format!("{s}\n")).collect();
    std::os::unix::net::UnixDatagram::unbound()?.send_to(message.as_bytes(), path)?;
    Ok(())
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
        let watched = |watchdog| {
            ServiceManager::new(&Notify::Socket {
                path: PathBuf::from("/nonexistent"),
                watchdog,
            })
        };
        let mut watched_10s = watched(Some(Duration::from_secs(10)));
        assert!(watched_10s.ping_due(start), "the first tick pings");
        watched_10s.last_ping = Some(start);
        let cases = [(4_999, false), (5_000, true), (12_000, true)];
        for (ms, due) in cases {
            assert_eq!(
                watched_10s.ping_due(start + Duration::from_millis(ms)),
                due,
                "{ms} ms after the last ping"
            );
        }
        let unwatched = watched(None);
        assert!(!unwatched.ping_due(start + Duration::from_secs(3600)));
    }
}
