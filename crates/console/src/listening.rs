//! The listen key: a live call's audio streamed as WAV into the operator's player
//! (`console.listen_command`, run by `sh -c` with the audio on its stdin). One call at a
//! time; the key again (or another call) stops it.

use tokio::sync::mpsc::UnboundedSender;

use super::Done;
use crate::app::Update;
use crate::dispatch::command::CommandReply;
use crate::store::Store;
use switchboard_vapi::VapiClient;

pub struct Listening {
    command: Option<String>,
    vapi: Option<VapiClient>,
    current: Option<(i64, tokio::task::JoinHandle<()>)>,
}

impl Listening {
    pub fn new(command: Option<String>, vapi: Option<VapiClient>) -> Listening {
        Listening {
            command: command.filter(|c| !c.trim().is_empty()),
            vapi,
            current: None,
        }
    }

    /// Starts listening to `call_id`, or stops when it is the one playing.
    pub fn toggle(
        &mut self,
        call_id: i64,
        store: &Store,
        done: UnboundedSender<Done>,
    ) -> CommandReply {
        if let Some((playing, task)) = self.current.take() {
            task.abort();
            if playing == call_id {
                return Ok(format!("stopped listening to call {call_id}"));
            }
        }
        let Some(command) = self.command.clone() else {
            return Err(format!(
                "no player configured: set console.listen_command (e.g. \"ffplay -nodisp -autoexit -\"), \
                 or run `switchboard listen {call_id} | aplay` in another terminal"
            ));
        };
        let Some(vapi) = self.vapi.clone() else {
            return Err("listening needs the Vapi API key in this console's environment".into());
        };
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run console.listen_command: {e}"))?;
        let Some(mut stdin) = child.stdin.take() else {
            return Err("the player has no stdin".into());
        };
        let store = store.clone();
        let task = tokio::spawn(async move {
            let format = crate::listen::Format::default();
            let heard = crate::listen::listen(
                &store,
                &vapi,
                call_id,
                format,
                &mut stdin,
                std::future::pending::<()>(),
            )
            .await;
            drop(stdin);
            let _ = child.wait().await;
            let reply = match heard {
                Ok(h) => Ok(format!(
                    "listening to call {call_id} ended ({:.1} s)",
                    format.seconds(h.bytes)
                )),
                Err(e) => Err(format!("cannot listen to call {call_id}: {e}")),
            };
            let _ = done.send(Done::Update(Update::Reply(reply)));
        });
        self.current = Some((call_id, task));
        Ok(format!(
            "listening to call {call_id} through `{command}` (L again stops)"
        ))
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some((_, task)) = self.current.take() {
            task.abort();
        }
    }
}
