//! The engine's command channel: the operations layer's [`Command`]s, each with the
//! channel its one-line answer goes back on.

use tokio::sync::oneshot;

pub use crate::ops::{Command, CommandReply};

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
