//! The operations an operator asks for — pause, resume, throttle, start, cancel, retry, put a
//! number on the do-not-call list, act on a live call, the kill switch — in one place. The engine's command loop (console keys), a console attached to an engine
//! elsewhere and the CLI all go through [`apply`]: it writes the store, which every engine
//! re-reads within a tick, and one line in the event log, which every console shows.
//! In-memory effects on a running engine (its gate) are the engine's own business.

use crate::config::Config;
use crate::model::live::{AfterEnd, EndCause, LiveAction};
use crate::model::{Pause, StopCause};
use crate::store::Store;
use crate::store::calls::RetryOutcome;
use crate::store::events::EventRow;
use crate::store::live::LiveRequest;

/// Who asked, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A console (on the engine's machine or attached).
    Console,
    /// The `switchboard` command line.
    Cli,
}

impl Actor {
    fn prefix(self) -> &'static str {
        match self {
            Actor::Console => "",
            Actor::Cli => "CLI: ",
        }
    }

    /// The do-not-call list's `source` column, a live request's `actor`.
    pub fn source(self) -> &'static str {
        match self {
            Actor::Console => "console",
            Actor::Cli => "cli",
        }
    }
}

/// What an operator (the console, headless mode, the CLI) asks of the engine. Each gets a
/// one-line answer to show the operator.
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
    /// Ask the engine holding a live call to say, whisper, mute, transfer or end it; an end
    /// leaves its contact as `then` says.
    Live {
        call_id: i64,
        action: LiveAction,
        then: AfterEnd,
    },
    /// The kill switch: pause dispatch (of one campaign, or all) and end every live call.
    EndLiveCalls {
        campaign_id: Option<i64>,
        then: AfterEnd,
    },
    /// Book a callback to `phone` in the campaign at `at` (a time in the contact's zone or
    /// RFC 3339): dialled before fresh contacts; a finished campaign re-opens.
    BookCallback {
        campaign_id: i64,
        phone: String,
        at: String,
    },
    /// Pause, resume or stop one arm of a campaign: its waiting contacts move to the others.
    SetArm {
        campaign_id: i64,
        assistant_id: String,
        status: crate::model::ArmStatus,
    },
    /// A console shows this call's transcript: keep it fresh for a few seconds (not logged).
    WatchCall {
        call_id: i64,
    },
    /// Stop new dispatch, let in-flight requests finish and be recorded, then stop.
    Quit,
}

/// How long a watch lasts without being renewed (a console renews it while the call is
/// selected).
pub const WATCH_FOR: chrono::Duration = chrono::Duration::seconds(10);

/// The answer to a command: a short line for the status bar, or why it was refused.
pub type CommandReply = Result<String, String>;

/// Carries out `command` on the store and logs it. Returns the one-line answer, or why it
/// was refused (nothing changed then). `Quit` is the engine's alone and is refused here.
pub async fn apply(
    store: &Store,
    config: &Config,
    command: &Command,
    actor: Actor,
) -> Result<String, String> {
    let line = carry_out(store, config, command, actor).await?;
    if let Command::WatchCall { .. } = command {
        return Ok(line);
    }
    log(store, actor, &line).await;
    Ok(line)
}

/// One operator's action in the event log every console shows.
pub async fn log(store: &Store, actor: Actor, line: &str) {
    let logged = format!("{}{line}", actor.prefix());
    if let Err(e) = store
        .append_events(&[EventRow::action(logged, store.now())])
        .await
    {
        tracing::warn!(target: "switchboard::engine", "cannot log the operation: {e}");
    }
}

/// Files a request for a live call, checked first (not logged: [`Command::Live`] through
/// [`apply`] is; the CLI, which waits on the request's answer, logs [`asked`] itself).
pub async fn request_live(
    store: &Store,
    call_id: i64,
    action: &LiveAction,
    then: AfterEnd,
    actor: Actor,
) -> Result<LiveRequest, String> {
    let call = store.call(call_id).await.map_err(|e| e.to_string())?;
    if let Some(why) = crate::dispatch::live::refuse_early(call.status, action) {
        return Err(format!("call {call_id}: {why}"));
    }
    store
        .request_live(call_id, action, actor.source(), then)
        .await
        .map_err(|e| e.to_string())
}

/// The line that says a request was filed.
pub fn asked(action: &LiveAction, request: &LiveRequest) -> String {
    format!(
        "asked: {} on {} (request {})",
        action.describe(),
        request.who(),
        request.id
    )
}

/// Books a callback by hand (`switchboard callback`, the console's `b`): the one-line answer.
pub async fn book_callback(
    store: &Store,
    phone: &str,
    campaign: Option<&str>,
    at: &str,
) -> Result<String, crate::store::StoreError> {
    let booked = store.book_callback(phone, campaign, at).await?;
    Ok(format!(
        "{phone} in campaign {}: {}",
        booked.campaign, booked.why
    ))
}

/// Pauses, resumes or stops an arm (`campaign arm`, the console's `A`): the one-line answer.
pub async fn set_arm(
    store: &Store,
    campaign_id: i64,
    assistant_id: &str,
    status: crate::model::ArmStatus,
) -> Result<String, crate::store::StoreError> {
    let campaign = store.campaign(campaign_id).await?;
    let arm = store
        .set_arm_status(campaign_id, assistant_id.trim(), status)
        .await?;
    let moved = if status == crate::model::ArmStatus::Active {
        ""
    } else {
        "; its waiting contacts move to the other arms"
    };
    Ok(format!(
        "campaign {}: arm {} is {}{moved}",
        campaign.name,
        arm.assistant_id,
        arm.status.as_str().to_lowercase()
    ))
}

/// Saves the filter `expression` as `name` (`filters save`, the console's `W`): checked,
/// then shared with every console and command of the database. The one-line answer.
pub async fn save_filter(
    store: &Store,
    name: &str,
    expression: &str,
    actor: Actor,
) -> Result<String, String> {
    let name = name.trim();
    let expression = expression.trim();
    crate::model::filter::check_name(name)?;
    crate::model::filter::parse(expression).map_err(|e| format!("filter {name}: {e}"))?;
    let replaced = store
        .save_filter(name, expression, actor.source())
        .await
        .map_err(|e| e.to_string())?;
    let line = format!(
        "filter {name} {}: {expression}",
        if replaced { "replaced" } else { "saved" }
    );
    log(store, actor, &line).await;
    Ok(line)
}

/// Removes the saved filter `name`. The one-line answer.
pub async fn delete_filter(store: &Store, name: &str, actor: Actor) -> Result<String, String> {
    let name = name.trim();
    if !store.delete_filter(name).await.map_err(|e| e.to_string())? {
        return Err(format!("no saved filter {name}"));
    }
    let line = format!("filter {name} deleted");
    log(store, actor, &line).await;
    Ok(line)
}

/// Pauses a dialling campaign for the operator.
async fn pause_campaign(store: &Store, campaign_id: i64) -> Result<String, String> {
    let err = |e: crate::store::StoreError| e.to_string();
    let campaign = store.campaign(campaign_id).await.map_err(err)?;
    if !store
        .pause_campaign(
            campaign_id,
            &Pause::new(StopCause::Operator, "paused by operator"),
        )
        .await
        .map_err(err)?
    {
        return Err(format!(
            "campaign {} is {}, not dialling",
            campaign.name, campaign.status
        ));
    }
    Ok(format!("campaign {} paused", campaign.name))
}

/// Overrides the create rate (checked against the config's bounds).
async fn set_rate(store: &Store, config: &Config, per_second: f64) -> Result<String, String> {
    let err = |e: crate::store::StoreError| e.to_string();
    crate::config::check_rate(per_second).map_err(|e| format!("rate {e}"))?;
    let before = store
        .engine_control()
        .await
        .map_err(err)?
        .rate_per_second
        .unwrap_or(config.dispatch.rate_per_second);
    store.set_rate(per_second).await.map_err(err)?;
    Ok(format!("rate {before} → {per_second}/s"))
}

/// The kill switch: the campaign (or all dispatch) paused, then every live call of it ended.
async fn kill_switch(
    store: &Store,
    campaign_id: Option<i64>,
    then: AfterEnd,
    actor: Actor,
) -> Result<String, String> {
    let err = |e: crate::store::StoreError| e.to_string();
    let scope = match campaign_id {
        Some(id) => {
            let campaign = store.campaign(id).await.map_err(err)?;
            let pause = Pause::new(StopCause::Operator, "kill switch: live calls ended");
            store.pause_campaign(id, &pause).await.map_err(err)?;
            format!("campaign {} paused", campaign.name)
        }
        None => {
            let pause = Pause::new(StopCause::Operator, "kill switch: live calls ended");
            store.set_dispatch_paused(Some(&pause)).await.map_err(err)?;
            "dispatch paused".to_string()
        }
    };
    let report = store
        .end_live_calls(campaign_id, EndCause::KillSwitch, then, actor.source())
        .await
        .map_err(err)?;
    let contacts = match then {
        AfterEnd::Done => "their contacts are done",
        AfterEnd::Requeue => "their contacts go back to the queue",
    };
    Ok(format!(
        "kill switch: {scope}; ending {} live call(s){}; {contacts}",
        report.live,
        if report.creating > 0 {
            format!(
                " and {} being created, as soon as Vapi shows them",
                report.creating
            )
        } else {
            String::new()
        }
    ))
}

async fn carry_out(
    store: &Store,
    config: &Config,
    command: &Command,
    actor: Actor,
) -> Result<String, String> {
    let err = |e: crate::store::StoreError| e.to_string();
    match command {
        Command::PauseAll { reason } => {
            let pause = Pause::new(StopCause::Operator, reason.as_str());
            store.set_dispatch_paused(Some(&pause)).await.map_err(err)?;
            Ok(format!("dispatch paused ({reason})"))
        }
        Command::ResumeAll => {
            store.set_dispatch_paused(None).await.map_err(err)?;
            Ok("dispatch resumed".into())
        }
        Command::StartCampaign { campaign_id } => {
            let campaign = store.start_campaign(*campaign_id).await.map_err(err)?;
            Ok(format!(
                "campaign {} started ({})",
                campaign.name, campaign.status
            ))
        }
        Command::PauseCampaign { campaign_id } => pause_campaign(store, *campaign_id).await,
        Command::ResumeCampaign { campaign_id } => {
            let campaign = store.resume_campaign(*campaign_id).await.map_err(err)?;
            Ok(format!(
                "campaign {} resumed ({})",
                campaign.name, campaign.status
            ))
        }
        Command::CancelCampaign { campaign_id } => {
            let campaign = store.cancel_campaign(*campaign_id).await.map_err(err)?;
            Ok(format!("campaign {} cancelled", campaign.name))
        }
        Command::SetRate { per_second } => set_rate(store, config, *per_second).await,
        Command::ResetRate => {
            store.reset_rate().await.map_err(err)?;
            Ok(format!(
                "rate override removed: the config's {}/s is in force",
                config.dispatch.rate_per_second
            ))
        }
        Command::RetryCall { call_id } => {
            Ok(match store.retry_call(*call_id).await.map_err(err)? {
                RetryOutcome::Requeued => format!("retrying call {call_id}"),
                RetryOutcome::AfterSettling => format!(
                    "call {call_id} is UNKNOWN: dialled again only once settled as not created"
                ),
            })
        }
        Command::RetryFailed { campaign_id } => {
            let campaign = store.campaign(*campaign_id).await.map_err(err)?;
            let n = store.retry_failed_calls(*campaign_id).await.map_err(err)?;
            Ok(format!("retrying {n} failed calls of {}", campaign.name))
        }
        Command::AddToDnc { phone, reason } => {
            // The list is keyed by E.164: any other spelling would never match a contact.
            let phone = crate::import::normalize_phone(phone, None)
                .map_err(|e| format!("{phone}: {e}"))?
                .e164;
            let added = store
                .dnc_add(&phone, reason, actor.source())
                .await
                .map_err(err)?;
            Ok(if added {
                format!("{phone} added to the do-not-call list")
            } else {
                format!("{phone} was already on the do-not-call list")
            })
        }
        Command::BookCallback {
            campaign_id,
            phone,
            at,
        } => {
            let campaign = store.campaign(*campaign_id).await.map_err(err)?;
            book_callback(store, phone, Some(&campaign.name), at)
                .await
                .map_err(err)
        }
        Command::SetArm {
            campaign_id,
            assistant_id,
            status,
        } => set_arm(store, *campaign_id, assistant_id, *status)
            .await
            .map_err(err),
        Command::Live {
            call_id,
            action,
            then,
        } => {
            let request = request_live(store, *call_id, action, *then, actor).await?;
            Ok(asked(action, &request))
        }
        Command::EndLiveCalls { campaign_id, then } => {
            kill_switch(store, *campaign_id, *then, actor).await
        }
        Command::WatchCall { call_id } => {
            let until = crate::model::text::format_time(store.clock().now() + WATCH_FOR);
            store.watch_call(*call_id, &until).await.map_err(err)?;
            Ok(format!("watching call {call_id}"))
        }
        Command::Quit => Err("quit is the engine's own command".into()),
    }
}
