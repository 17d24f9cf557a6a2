//! `call say|whisper|mute|unmute|transfer|end`, `listen` and the kill switch (`dispatch stop
//! --end-calls`): requests for live calls go through the operations layer to the engine that
//! holds the call, and this command waits for Vapi's answer. With no engine running, the
//! command carries the request out itself with its own key.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::UserError;
use super::args::{CallAction, ThenArgs};
use crate::config::Config;
use crate::dispatch::live::{Direct, carry_out};
use crate::model::live::{AfterEnd, Destination, LiveAction, RequestStatus, spoken};
use crate::ops::{Actor, Command};
use crate::store::Store;
use crate::store::live::LiveRequest;
use crate::vapi::VapiClient;
use color_eyre::Result;

/// How long the command waits for a running engine's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

impl ThenArgs {
    pub fn after_end(self) -> AfterEnd {
        if self.requeue {
            AfterEnd::Requeue
        } else {
            AfterEnd::Done
        }
    }
}

/// The action a `call` subcommand asks for, checked before anything is filed.
pub fn action_of(action: &CallAction) -> Result<(i64, LiveAction, AfterEnd)> {
    let bad = |e: crate::model::live::ActionError| UserError(e.to_string());
    Ok(match action {
        CallAction::Say {
            call_id,
            text,
            end,
            then,
        } => (
            *call_id,
            LiveAction::Say {
                text: spoken(text).map_err(bad)?,
                end_after: *end,
            },
            then.after_end(),
        ),
        CallAction::Whisper { call_id, text } => (
            *call_id,
            LiveAction::Whisper {
                text: spoken(text).map_err(bad)?,
            },
            AfterEnd::Done,
        ),
        CallAction::Mute { call_id } => (*call_id, LiveAction::Mute { mute: true }, AfterEnd::Done),
        CallAction::Unmute { call_id } => {
            (*call_id, LiveAction::Mute { mute: false }, AfterEnd::Done)
        }
        CallAction::Transfer { call_id, to } => (
            *call_id,
            LiveAction::Transfer {
                to: Destination::parse(to).map_err(bad)?,
            },
            AfterEnd::Done,
        ),
        CallAction::End { call_id, then } => (*call_id, LiveAction::End, then.after_end()),
    })
}

/// `switchboard call …`: prints Vapi's answer; a refusal is an error (exit 1).
pub async fn call(store: &Store, config: &Config, action: CallAction) -> Result<()> {
    let (call_id, action, then) = action_of(&action)?;
    let request = crate::ops::request_live(store, call_id, &action, then, Actor::Cli)
        .await
        .map_err(UserError)?;
    crate::ops::log(store, Actor::Cli, &crate::ops::asked(&action, &request)).await;
    let answered = if engine_running(store, config).await? {
        wait_for(store, request.id).await?
    } else {
        let vapi = vapi_client(config)?;
        match here(store, &vapi, request.id).await? {
            Some(done) => done,
            // Still being created: an engine ends it when Vapi shows it.
            None => {
                println!(
                    "{}: being created; it is ended as soon as an engine sees it at Vapi",
                    request.who()
                );
                return Ok(());
            }
        }
    };
    finish(answered)
}

fn finish(request: LiveRequest) -> Result<()> {
    let answer = request.answer.clone().unwrap_or_default();
    match request.status {
        RequestStatus::Done => {
            println!("{answer}");
            Ok(())
        }
        _ => Err(UserError(answer).into()),
    }
}

/// Whether an engine holds the database (its heartbeat is fresh).
async fn engine_running(store: &Store, config: &Config) -> Result<bool> {
    Ok(store
        .lease_holder(config.vapi.lease_timeout_ms as i64)
        .await
        .map_err(|e| UserError(e.to_string()))?
        .is_some())
}

fn vapi_client(config: &Config) -> Result<VapiClient> {
    let key = config.api_key()?;
    Ok(
        VapiClient::new(&config.vapi.base_url, key, config.request_timeout())?
            .with_monitor_key(config.public_key()),
    )
}

/// Waits for the engine's answer (Ctrl-C stops waiting; the request stands).
async fn wait_for(store: &Store, id: i64) -> Result<LiveRequest> {
    let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
    let stop = crate::shutdown::requested();
    tokio::pin!(stop);
    loop {
        let request = store
            .live_request(id)
            .await
            .map_err(|e| UserError(e.to_string()))?;
        if matches!(request.status, RequestStatus::Done | RequestStatus::Failed) {
            return Ok(request);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(UserError(format!(
                "no answer from the engine within {} s: request {id} stays queued for it",
                ANSWER_WITHIN.as_secs()
            ))
            .into());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = &mut stop => {
                return Err(UserError(format!(
                    "stopped waiting: request {id} stays queued for the engine"
                ))
                .into())
            }
        }
    }
}

/// Carries out a request here (no engine runs). None when the call is still being created.
async fn here(store: &Store, vapi: &VapiClient, id: i64) -> Result<Option<LiveRequest>> {
    let err = |e: crate::store::StoreError| UserError(e.to_string());
    let request = store.live_request(id).await.map_err(err)?;
    if crate::model::CallStatus::IN_CREATION.contains(&request.call_status) {
        return Ok(None);
    }
    let Some(request) = store.take_live_request(id, "cli").await.map_err(err)? else {
        // An engine started meanwhile and took it.
        return Ok(Some(wait_for(store, id).await?));
    };
    let (_, seen) = carry_out(store, &Direct(vapi), &request)
        .await
        .map_err(err)?;
    if let Some(call) = seen {
        let update = crate::dispatch::call_update(&call);
        store
            .apply_call_update(&call.id, &update)
            .await
            .map_err(err)?;
    }
    Ok(Some(store.live_request(id).await.map_err(err)?))
}

/// `dispatch stop [--end-calls] [--campaign NAME] [--requeue] [--yes]`.
pub async fn stop(
    store: &Store,
    config: &Config,
    end_calls: bool,
    campaign: Option<String>,
    then: ThenArgs,
    yes: bool,
) -> Result<()> {
    let err = |e: crate::store::StoreError| UserError(e.to_string());
    let campaign = match &campaign {
        Some(name) => Some(store.campaign_by_name(name).await.map_err(err)?),
        None => None,
    };
    let campaign_id = campaign.as_ref().map(|c| c.id);
    if !end_calls {
        let command = match campaign_id {
            Some(campaign_id) => Command::PauseCampaign { campaign_id },
            None => Command::PauseAll {
                reason: "stopped by operator (CLI)".into(),
            },
        };
        let line = crate::ops::apply(store, config, &command, Actor::Cli)
            .await
            .map_err(UserError)?;
        println!("{line} (live calls go on; --end-calls ends them)");
        return Ok(());
    }
    let live = store.live_call_count(campaign_id).await.map_err(err)?;
    let scope = match &campaign {
        Some(c) => format!("campaign {}", c.name),
        None => "all dispatch".into(),
    };
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(UserError(format!(
                "this pauses {scope} and ends {live} live call(s): add --yes to do it without a terminal"
            ))
            .into());
        }
        eprint!("Pause {scope} and end {live} live call(s)? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing done");
            return Ok(());
        }
    }
    let command = Command::EndLiveCalls {
        campaign_id,
        then: then.after_end(),
    };
    let line = crate::ops::apply(store, config, &command, Actor::Cli)
        .await
        .map_err(UserError)?;
    println!("{line}");
    if engine_running(store, config).await? {
        return Ok(());
    }
    // Nobody else will: end them from here, with progress.
    let vapi = vapi_client(config)?;
    let pending = store.pending_live_requests().await.map_err(err)?;
    let total = pending.len();
    let mut ended = 0;
    for (n, id) in pending.into_iter().enumerate() {
        if let Some(request) = here(store, &vapi, id).await? {
            ended += usize::from(request.status == RequestStatus::Done);
            if request.status != RequestStatus::Done {
                eprintln!("{}", request.answer.unwrap_or_default());
            }
        }
        eprint!("\rended {ended} of {total} ({})", n + 1);
    }
    if total > 0 {
        eprintln!();
    }
    Ok(())
}

/// `switchboard listen CALL [--out FILE]`.
pub async fn listen(
    store: &Store,
    config: &Config,
    call_id: i64,
    out: Option<std::path::PathBuf>,
    format: crate::listen::Format,
) -> Result<()> {
    let vapi = vapi_client(config)?;
    let stop = async {
        crate::shutdown::requested().await;
    };
    let who = store
        .call(call_id)
        .await
        .map_err(|e| UserError(e.to_string()))?;
    eprintln!("listening to call {} (Ctrl-C stops)", who.id);
    let heard = match &out {
        Some(path) => {
            let mut file = tokio::fs::File::create(path)
                .await
                .map_err(|e| UserError(format!("cannot write {}: {e}", path.display())))?;
            let heard = crate::listen::listen(store, &vapi, call_id, format, &mut file, stop)
                .await
                .map_err(|e| UserError(e.to_string()))?;
            crate::listen::finish_file(&mut file, format, heard.bytes).await?;
            heard
        }
        None => {
            let mut stdout = tokio::io::stdout();
            crate::listen::listen(store, &vapi, call_id, format, &mut stdout, stop)
                .await
                .map_err(|e| UserError(e.to_string()))?
        }
    };
    crate::ops::log(
        store,
        Actor::Cli,
        &format!(
            "listened to call {call_id} ({:.1} s)",
            format.seconds(heard.bytes)
        ),
    )
    .await;
    eprintln!(
        "{:.1} s of audio{}{}",
        format.seconds(heard.bytes),
        out.as_ref()
            .map(|p| format!(" written to {}", p.display()))
            .unwrap_or_default(),
        if heard.call_ended {
            "; the call ended"
        } else {
            ""
        }
    );
    Ok(())
}
