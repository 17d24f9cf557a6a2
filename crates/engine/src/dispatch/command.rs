//! Commands the engine takes on its channel. The console, headless mode and the CLI send
//! the same commands; each gets a one-line answer to show the operator.

use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Stop all new call creation (active calls are still tracked).
    PauseAll {
        reason: String,
    },
    ResumeAll,
    /// DRAFT or PAUSED → DIALING.
    StartCampaign {
        campaign_id: i64,
    },
    PauseCampaign {
        campaign_id: i64,
    },
    ResumeCampaign {
        campaign_id: i64,
    },
    CancelCampaign {
        campaign_id: i64,
    },
    /// New create rate in calls per second; takes effect at once.
    SetRate {
        per_second: f64,
    },
    /// Back to the config's rate (drops the runtime override).
    ResetRate,
    /// Dial the contact of a FAILED call again, as a new attempt sequence.
    RetryCall {
        call_id: i64,
    },
    /// Retry every FAILED call of a campaign.
    RetryFailed {
        campaign_id: i64,
    },
    /// Put a number (E.164) on the do-not-call list: no campaign dials it again (its
    /// contacts not yet claimed are skipped at their claim).
    AddToDnc {
        phone: String,
        reason: String,
    },
    /// Stop new dispatch, let in-flight requests finish and be recorded, then stop.
    Quit,
}

/// The answer to a command: a short line for the status bar, or why it was refused.
pub type CommandReply = Result<String, String>;

pub type CommandEnvelope = (Command, oneshot::Sender<CommandReply>);

/// A client of a running engine: its latest snapshot and its command channel. The console,
/// headless mode and tests each hold one; cloning is cheap.
#[derive(Debug, Clone)]
pub struct EngineClient {
    commands: tokio::sync::mpsc::Sender<CommandEnvelope>,
    snapshot: tokio::sync::watch::Receiver<super::snapshot::Snapshot>,
}

impl EngineClient {
    pub fn new(
        commands: tokio::sync::mpsc::Sender<CommandEnvelope>,
        snapshot: tokio::sync::watch::Receiver<super::snapshot::Snapshot>,
    ) -> Self {
        EngineClient { commands, snapshot }
    }

    /// A receiver of snapshots: `borrow()` for the latest, `changed().await` to wait.
    pub fn snapshots(&self) -> tokio::sync::watch::Receiver<super::snapshot::Snapshot> {
        self.snapshot.clone()
    }

    /// The latest snapshot (a clone).
    pub fn snapshot(&self) -> super::snapshot::Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Sends a command and waits for its one-line answer.
    pub async fn send(&self, command: Command) -> CommandReply {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send((command, reply))
            .await
            .map_err(|_| "the engine has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the engine stopped before answering".to_string())?
    }
}
