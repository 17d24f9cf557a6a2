//! One call's attempt sequence, as steps: send; on failure [`steps::classify`] decides the
//! next step (send again, settle, fail, pause) and the store records it before any wait.
//!
//! An outcome that may have created a call is *settled* before anything is sent again: the
//! call is UNKNOWN, looked up by its reference (adopted if found), and re-sent only once a
//! complete look-up made `vapi.settle_after_ms` after the request was sent found nothing.
//! The same code resumes a sequence after a restart or a store error, from what is stored.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Ctx;
use super::gate::{Refusal, RequestKind};
use super::snapshot::EventKind;
use super::steps::{Step, classify, retry_delay};
use crate::model::{AttemptOutcome, CallStatus, EndedClass};
use crate::store::attempts::AttemptResult;
use crate::store::calls::{CallUpdate, DialJob, UpdateEffect};
use crate::store::{StoreError, parse_time};
use crate::vapi::search::{Field, SearchResult, Window, find_by_name};
use crate::vapi::types::{AssistantOverrides, CallMetadata, Customer};
use crate::vapi::{CreateCallRequest, VapiCall, VapiError};

/// How a sequence ended, for the engine's bookkeeping and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceEnd {
    Created,
    Adopted,
    Failed,
    /// The contact went back to the queue (quota, a campaign-level problem, cancelled).
    Requeued,
    /// The engine is stopping: the call stays as it is and resumes at the next start.
    Stopped,
}

/// Results per look-up request (Vapi's maximum) and most requests one look-up may make.
const LOOKUP_PAGE: u32 = 1000;
const LOOKUP_MAX_REQUESTS: usize = 100;
/// Longest wait between look-ups of a call whose outcome stays unknown.
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(60);

/// A sequence's place in the gate's `creating` count (it may occupy a slot at Vapi), taken at
/// admission or when a sequence resumes, and given back when dropped, however it ends. It
/// also marks its call as having a live worker, for the rescuer.
pub(crate) struct CreatingSlot {
    ctx: Arc<Ctx>,
    call_id: Option<i64>,
}

impl CreatingSlot {
    /// Takes a new place for a call resumed from the store.
    pub(crate) fn take(ctx: &Arc<Ctx>, call_id: i64) -> CreatingSlot {
        ctx.gate.update(|s| {
            s.creating += 1;
            s.working.insert(call_id);
        });
        CreatingSlot {
            ctx: ctx.clone(),
            call_id: Some(call_id),
        }
    }

    /// Owns the place the gate counted when it admitted a new call (not claimed yet).
    pub(crate) fn admitted(ctx: &Arc<Ctx>) -> CreatingSlot {
        CreatingSlot {
            ctx: ctx.clone(),
            call_id: None,
        }
    }

    /// The claim made the call: it now has a live worker.
    pub(crate) fn bind(&mut self, call_id: i64) {
        self.call_id = Some(call_id);
        self.ctx.gate.update(|s| s.working.insert(call_id));
    }
}

impl Drop for CreatingSlot {
    fn drop(&mut self) {
        let call_id = self.call_id;
        self.ctx.gate.update(|s| {
            s.creating = (s.creating - 1).max(0);
            if let Some(id) = call_id {
                s.working.remove(&id);
            }
        });
    }
}

/// What the sequence does next.
#[derive(Debug)]
enum Next {
    /// Wait for the gate, commit a new attempt, send it.
    Admit,
    /// Send the attempt already committed IN_FLIGHT.
    Send { attempt_id: i64, number: i64 },
    /// Look the call up until it is found or settled.
    Settle(Settling),
}

#[derive(Debug)]
struct Settling {
    attempt_id: i64,
    sent_at: DateTime<Utc>,
    /// A look-up that finds nothing settles the outcome only when made after this.
    settle_at: DateTime<Utc>,
    /// Whether the attempt is recorded AMBIGUOUS (settling moves it to NOT_CREATED); a 503
    /// looked up before its re-send is not.
    ambiguous: bool,
    /// Whether the call may be sent again once settled (its status is one to retry).
    resend: bool,
}

/// Runs a sequence to its end. `claimed` is the attempt the claim committed IN_FLIGHT;
/// `None` resumes an unfinished sequence from its stored state. A store error never strands
/// the call: the sequence waits, re-reads its state and goes on from there.
pub(crate) async fn run_sequence(
    ctx: Arc<Ctx>,
    mut job: DialJob,
    mut claimed: Option<i64>,
    slot: CreatingSlot,
) -> SequenceEnd {
    let mut failures = 0u32;
    let end = loop {
        match sequence(&ctx, &job, claimed).await {
            Ok(end) => break end,
            Err(e) => {
                failures += 1;
                let delay = Duration::from_millis(500 * 2u64.pow(failures.min(6)));
                tracing::error!(
                    target: "switchboard::engine",
                    call_id = job.call_id,
                    "database error; the call resumes from its stored state in {} ms: {e}",
                    delay.as_millis()
                );
                if !ctx.gate.sleep(delay).await {
                    break SequenceEnd::Stopped;
                }
                // An attempt whose request went out unrecorded is still IN_FLIGHT: resuming
                // treats it as interrupted and settles it, so nothing is sent twice.
                match ctx.store.job(job.call_id).await {
                    Ok(fresh) if fresh.status.is_terminal() || fresh.status.is_at_vapi() => {
                        break SequenceEnd::Stopped;
                    }
                    Ok(fresh) => {
                        job = fresh;
                        claimed = None;
                    }
                    Err(e) => {
                        tracing::error!(target: "switchboard::engine", call_id = job.call_id, "cannot re-read the call: {e}");
                    }
                }
            }
        }
    };
    drop(slot);
    end
}

async fn sequence(
    ctx: &Ctx,
    job: &DialJob,
    claimed: Option<i64>,
) -> Result<SequenceEnd, StoreError> {
    let dispatch = &ctx.config.dispatch;
    let max_attempts = 1 + i64::from(dispatch.max_retries);
    let call_id = job.call_id;
    let mut used = job.retries_used;
    let mut last_error = job
        .last_error
        .clone()
        .unwrap_or_else(|| "no attempt made".into());
    // Whether the pre-dial hook has allowed this call (asked once, before the first send).
    let mut predial_done = ctx.predial.is_none() || job.predial_at.is_some();
    let mut next = match claimed {
        Some(attempt_id) => {
            used = used.max(1);
            Next::Send {
                attempt_id,
                number: 1,
            }
        }
        None => resume(ctx, job).await?,
    };
    loop {
        next = match next {
            Next::Admit => {
                if used >= max_attempts {
                    let reason = format!("gave up after {used} attempts; last error: {last_error}");
                    ctx.store.fail_call(call_id, None, &reason).await?;
                    failed_event(ctx, job, used, &reason);
                    return Ok(SequenceEnd::Failed);
                }
                let kind = RequestKind::Retry {
                    campaign_id: job.campaign_id,
                };
                match ctx.gate.admit(kind).await {
                    Ok(_) => {}
                    Err(Refusal::Stopping) => return Ok(SequenceEnd::Stopped),
                    Err(Refusal::CampaignCancelled) => {
                        let reason = "campaign cancelled before the call was created";
                        ctx.store.requeue_call(call_id, None, reason).await?;
                        return Ok(SequenceEnd::Requeued);
                    }
                    Err(Refusal::Paused) => {
                        let reason =
                            "paused before the call was created: the contact waits in the queue";
                        ctx.store.requeue_call(call_id, None, reason).await?;
                        return Ok(SequenceEnd::Requeued);
                    }
                }
                // The request budget before the commit: the attempt starts when it is sent.
                ctx.budget.acquire().await;
                // On PostgreSQL the create rate is the account's, shared with other engines.
                let rate = ctx.gate.read(|s| s.pacer.rate());
                ctx.store.take_create_slot(rate).await?;
                let (attempt_id, number) = ctx.store.begin_attempt(call_id).await?;
                used += 1;
                Next::Send { attempt_id, number }
            }
            Next::Send { attempt_id, number } => {
                if !predial_done {
                    if let Some(end) = ask_predial(ctx, job, attempt_id).await? {
                        return Ok(end);
                    }
                    predial_done = true;
                }
                let sent_at = Utc::now();
                let error = match ctx.create_call(&create_request(job)).await {
                    Ok(response) => {
                        let message =
                            format!("call {call_id} created at Vapi ({})", response.call.id);
                        tracing::info!(target: "switchboard::retry", call_id, attempt = number, status = 201, provider_call_id = %response.call.id, "call created");
                        return record(
                            ctx,
                            job,
                            attempt_id,
                            Some(number),
                            &response.call,
                            response.subscription_limits.as_ref(),
                            message,
                        )
                        .await;
                    }
                    Err(error) => error,
                };
                last_error = error.to_string();
                match classify(&error, &dispatch.retry_on_status) {
                    Step::Resend {
                        uses_retry,
                        look_up_first,
                    } => {
                        let global = error
                            .is_rate_limited()
                            .then(|| ctx.gate.on_rate_limited(error.retry_after()));
                        if !error.is_rate_limited() {
                            ctx.gate.on_transient_failure();
                        }
                        if !uses_retry {
                            // A 429 waits for the request budget; it spends no retry.
                            used -= 1;
                        }
                        let more = !uses_retry || used < max_attempts;
                        // The wait follows this call's failed sends (1 s, 4 s, 10 s…), 429s
                        // included: sparing a retry does not restart the schedule.
                        let delay = retry_delay(
                            &dispatch.backoff_ms,
                            wait_step(number),
                            error.retry_after(),
                            global,
                        );
                        let outcome = if uses_retry {
                            AttemptOutcome::Refused
                        } else {
                            AttemptOutcome::RateLimited
                        };
                        let result = attempt_result(outcome, &error, more.then_some(delay));
                        ctx.store
                            .record_refused(call_id, attempt_id, &result)
                            .await?;
                        log_attempt(ctx, job, number, &error, more.then_some(delay));
                        if !more {
                            let reason =
                                format!("gave up after {used} attempts; last error: {last_error}");
                            ctx.store.fail_call(call_id, None, &reason).await?;
                            failed_event(ctx, job, used, &reason);
                            return Ok(SequenceEnd::Failed);
                        }
                        if !ctx.gate.sleep(delay).await {
                            return Ok(SequenceEnd::Stopped);
                        }
                        if look_up_first {
                            Next::Settle(Settling {
                                attempt_id,
                                sent_at,
                                settle_at: sent_at,
                                ambiguous: false,
                                resend: true,
                            })
                        } else {
                            Next::Admit
                        }
                    }
                    Step::Settle { resend } => {
                        ctx.gate.on_transient_failure();
                        let delay = retry_delay(
                            &dispatch.backoff_ms,
                            wait_step(number),
                            error.retry_after(),
                            None,
                        );
                        let result = attempt_result(AttemptOutcome::Ambiguous, &error, Some(delay));
                        ctx.store
                            .record_ambiguous(call_id, attempt_id, &result)
                            .await?;
                        log_attempt(ctx, job, number, &error, Some(delay));
                        let settle_at = sent_at + ctx.settle_after();
                        ctx.gate.event(
                            EventKind::Unknown,
                            Some(call_id),
                            Some(number),
                            format!(
                                "call {call_id} may exist at Vapi ({error}): UNKNOWN until found or settled (not re-sent before {})",
                                settle_at.format("%H:%M:%S")
                            ),
                            None,
                        );
                        if !ctx.gate.sleep(delay).await {
                            return Ok(SequenceEnd::Stopped);
                        }
                        Next::Settle(Settling {
                            attempt_id,
                            sent_at,
                            settle_at,
                            ambiguous: true,
                            resend,
                        })
                    }
                    Step::Fail => {
                        ctx.gate.on_answer();
                        let result = attempt_result(AttemptOutcome::Rejected, &error, None);
                        ctx.store
                            .fail_call(call_id, Some((attempt_id, &result)), &last_error)
                            .await?;
                        log_attempt(ctx, job, number, &error, None);
                        failed_event(ctx, job, number, &last_error);
                        // A refusal naming the customer is about this contact, whatever repeats.
                        let about_contact = last_error.to_ascii_lowercase().contains("customer");
                        let limit = if about_contact {
                            0
                        } else {
                            dispatch.pause_after_identical_rejections
                        };
                        let streak = ctx.gate.update(|s| {
                            s.note_rejection(job.campaign_id, &last_error, call_id, limit)
                        });
                        if let Some(calls) = streak {
                            // The same refusal for every contact: the campaign's settings are
                            // the likely cause. Pause it and give those contacts back.
                            let reason = format!(
                                "{} calls in a row refused with the same message ({last_error}): fix the campaign's settings, then resume it",
                                calls.len()
                            );
                            pause_campaign(ctx, job.campaign_id, Some(call_id), &reason).await?;
                            for id in calls {
                                if let Err(e) = ctx.store.retry_call(id).await {
                                    tracing::warn!(target: "switchboard::engine", call_id = id, "cannot give the contact back: {e}");
                                }
                            }
                        }
                        return Ok(SequenceEnd::Failed);
                    }
                    Step::FailAndPauseDispatch => {
                        ctx.gate.on_answer();
                        let reason = format!("{last_error} (Vapi rejected the API key)");
                        let result = attempt_result(AttemptOutcome::AuthFailed, &error, None);
                        ctx.store
                            .fail_call(call_id, Some((attempt_id, &result)), &reason)
                            .await?;
                        log_attempt(ctx, job, number, &error, None);
                        failed_event(ctx, job, number, &reason);
                        let pause = format!(
                            "Vapi rejected the API key ({last_error}): every call would fail the same way. Fix the key in the environment, then resume dispatch"
                        );
                        ctx.store.set_dispatch_paused(true, Some(&pause)).await?;
                        ctx.gate.update(|s| s.paused = Some(pause.clone()));
                        tracing::error!(target: "switchboard::engine", "{pause}");
                        ctx.gate.event(EventKind::Pause, None, None, pause, None);
                        return Ok(SequenceEnd::Failed);
                    }
                    Step::PauseCampaign => {
                        ctx.gate.on_answer();
                        let result = attempt_result(AttemptOutcome::Rejected, &error, None);
                        ctx.store
                            .requeue_call(call_id, Some((attempt_id, &result)), &last_error)
                            .await?;
                        log_attempt(ctx, job, number, &error, None);
                        if names_phone_number(&last_error) {
                            // About this call's number: bench it; the campaign goes on with
                            // its pool's others (and pauses when none is left).
                            let why = format!(
                                "Vapi refused it ({last_error}): fix the phone number, then resume"
                            );
                            let until = super::pool::bench_until(ctx, Utc::now(), false);
                            super::pool::bench(
                                ctx,
                                job.campaign_id,
                                Some(call_id),
                                &job.phone_number_id,
                                until,
                                &why,
                            )
                            .await?;
                        } else {
                            let reason = format!(
                                "Vapi refused the campaign's settings ({last_error}): fix the campaign, then resume it"
                            );
                            pause_campaign(ctx, job.campaign_id, Some(call_id), &reason).await?;
                        }
                        return Ok(SequenceEnd::Requeued);
                    }
                }
            }
            Next::Settle(settling) => match settle(ctx, job, &settling).await? {
                Settled::Found(found) => return adopt(ctx, job, settling.attempt_id, &found).await,
                Settled::Stopped => return Ok(SequenceEnd::Stopped),
                Settled::NotCreated { retry_requested } => {
                    if retry_requested {
                        // The operator asked for a retry: one more attempt, whatever was used.
                        used = used.min(max_attempts - 1);
                    }
                    if !settling.resend && !retry_requested {
                        let reason =
                            format!("not created (settled by look-up); not re-sent: {last_error}");
                        ctx.store.fail_call(call_id, None, &reason).await?;
                        failed_event(ctx, job, used, &reason);
                        return Ok(SequenceEnd::Failed);
                    }
                    Next::Admit
                }
            },
        };
    }
}

/// Which entry of the backoff schedule follows the failure of attempt `number` (1-based):
/// the call's own count of sends, which neither a spared retry nor another call's answer
/// resets.
fn wait_step(number: i64) -> u32 {
    u32::try_from(number.max(1)).unwrap_or(u32::MAX)
}

/// Asks the pre-dial hook (when configured) about a call not sent yet: allowed → recorded on
/// the call, `None` (send it); refused → withheld, the contact SKIPPED; the hook failing too
/// often → the contact re-queued and the campaign paused.
async fn ask_predial(
    ctx: &Ctx,
    job: &DialJob,
    attempt_id: i64,
) -> Result<Option<SequenceEnd>, StoreError> {
    let Some(hook) = &ctx.predial else {
        return Ok(None);
    };
    let call_id = job.call_id;
    match hook.ask(job).await {
        super::predial::Verdict::Allow => {
            ctx.store.record_predial_allowed(call_id).await?;
            Ok(None)
        }
        super::predial::Verdict::Skip(reason) => {
            ctx.store
                .withhold_call(call_id, attempt_id, &reason)
                .await?;
            let message = format!("call {call_id} not sent: {reason}");
            tracing::info!(target: "switchboard::engine", "{message}");
            ctx.gate
                .event(EventKind::Quota, Some(call_id), None, message, None);
            Ok(Some(SequenceEnd::Requeued))
        }
        super::predial::Verdict::Pause(reason) => {
            let result = AttemptResult {
                outcome: AttemptOutcome::NotCreated,
                http_status: None,
                error: Some(format!("not sent: {reason}")),
                retry_delay_ms: None,
            };
            ctx.store
                .requeue_call(call_id, Some((attempt_id, &result)), &reason)
                .await?;
            pause_campaign(ctx, job.campaign_id, Some(call_id), &reason).await?;
            Ok(Some(SequenceEnd::Requeued))
        }
    }
}

/// Where a resumed sequence goes on: an attempt cut in flight (crash, lease taken over) or
/// left ambiguous is settled; otherwise the next attempt is admitted.
async fn resume(ctx: &Ctx, job: &DialJob) -> Result<Next, StoreError> {
    let sent_at = job
        .last_started_at
        .as_deref()
        .and_then(parse_time)
        .unwrap_or_else(Utc::now);
    let settling = |attempt_id| {
        Next::Settle(Settling {
            attempt_id,
            sent_at,
            settle_at: sent_at + ctx.settle_after(),
            ambiguous: true,
            resend: true,
        })
    };
    Ok(match (job.last_outcome, job.last_attempt_id) {
        (Some(AttemptOutcome::InFlight), Some(id)) => {
            ctx.store.mark_interrupted(job.call_id, id).await?;
            tracing::info!(target: "switchboard::retry", call_id = job.call_id, "interrupted request: settling it before anything is re-sent");
            settling(id)
        }
        (_, Some(id)) if job.status == CallStatus::Unknown => settling(id),
        _ => Next::Admit,
    })
}

enum Settled {
    Found(Box<VapiCall>),
    NotCreated { retry_requested: bool },
    Stopped,
}

/// Looks the call up until it is found, or settled as not created by a complete look-up made
/// after the settle time. An incomplete look-up (errors, rate limits, too dense) proves
/// nothing: the call stays UNKNOWN and is looked up again at a low rate.
async fn settle(ctx: &Ctx, job: &DialJob, s: &Settling) -> Result<Settled, StoreError> {
    let skew = chrono::Duration::milliseconds(ctx.config.vapi.lookup_skew_ms as i64);
    let mut failures = 0u32;
    let mut said_waiting = false;
    loop {
        let looked_at = Utc::now();
        let window = Window {
            field: Field::CreatedAt,
            assistant_id: &job.assistant_id,
            phone_number_id: &job.phone_number_id,
            from: s.sent_at - skew,
            to: looked_at.min(s.settle_at + skew),
            page: LOOKUP_PAGE,
            max_requests: LOOKUP_MAX_REQUESTS,
        };
        let (result, requests) = find_by_name(&ctx.lister(), &job.reference, &window).await;
        let wait = match result {
            SearchResult::Found(call) => {
                ctx.gate.on_answer();
                return Ok(Settled::Found(call));
            }
            SearchResult::Absent if looked_at >= s.settle_at => {
                ctx.gate.on_answer();
                let retry_requested = if s.ambiguous {
                    ctx.store.settle_not_created(job.call_id).await?
                } else {
                    false
                };
                tracing::info!(target: "switchboard::retry", call_id = job.call_id, requests, "settled: the call was not created at Vapi; safe to send again");
                ctx.gate.event(
                    EventKind::Settled,
                    Some(job.call_id),
                    None,
                    format!(
                        "call {} settled: not created at Vapi ({requests} look-up requests)",
                        job.call_id
                    ),
                    None,
                );
                return Ok(Settled::NotCreated { retry_requested });
            }
            SearchResult::Absent => {
                ctx.gate.on_answer();
                if !said_waiting {
                    said_waiting = true;
                    tracing::info!(target: "switchboard::retry", call_id = job.call_id, settle_at = %s.settle_at, "not found yet; Vapi may still create it: looking again once the settle time has passed");
                }
                (s.settle_at - looked_at)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .max(Duration::from_millis(10))
            }
            SearchResult::Incomplete(reason) => {
                failures += 1;
                if reason.contains("HTTP 429") {
                    ctx.gate.on_rate_limited(None);
                }
                let delay = ctx
                    .config
                    .backoff(failures)
                    .max(Duration::from_millis(100))
                    .min(SETTLE_RETRY_MAX);
                tracing::warn!(target: "switchboard::retry", call_id = job.call_id, next_delay_ms = delay.as_millis() as u64, "look-up incomplete, the outcome stays unknown: {reason}");
                ctx.gate.event(
                    EventKind::Unknown,
                    Some(job.call_id),
                    None,
                    format!(
                        "call {} still UNKNOWN: {reason}; looking again in {} ms",
                        job.call_id,
                        delay.as_millis()
                    ),
                    Some(delay.as_millis() as u64),
                );
                delay
            }
        };
        if !ctx.gate.sleep(wait).await {
            return Ok(Settled::Stopped);
        }
    }
}

async fn adopt(
    ctx: &Ctx,
    job: &DialJob,
    attempt_id: i64,
    found: &VapiCall,
) -> Result<SequenceEnd, StoreError> {
    let message = format!(
        "call {} was created by an earlier attempt: adopted {} instead of dialling again",
        job.call_id, found.id
    );
    tracing::info!(target: "switchboard::retry", call_id = job.call_id, provider_call_id = %found.id, "{message}");
    record(ctx, job, attempt_id, None, found, None, message).await
}

/// Records a call that exists at Vapi, created by `attempt` (numbered when it was this
/// request's answer, `None` when found by look-up): store, quota view, retry log, quota ends.
async fn record(
    ctx: &Ctx,
    job: &DialJob,
    attempt_id: i64,
    attempt: Option<i64>,
    call: &VapiCall,
    limits: Option<&crate::vapi::SubscriptionLimits>,
    message: String,
) -> Result<SequenceEnd, StoreError> {
    ctx.gate.on_answer();
    let outcome = match attempt {
        Some(_) => AttemptOutcome::Created,
        None => AttemptOutcome::Adopted,
    };
    let effect = ctx
        .store
        .record_created(
            job.call_id,
            attempt_id,
            outcome,
            &call.id,
            &call_update(call),
        )
        .await?;
    if !effect.ended {
        ctx.gate.call_started();
    }
    let created_at = call
        .created_at
        .as_deref()
        .and_then(parse_time)
        .unwrap_or_else(Utc::now);
    ctx.gate.update(|s| {
        s.note_created(job.campaign_id);
        s.new_pairs
            .entry((job.assistant_id.clone(), job.phone_number_id.clone()))
            .and_modify(|t| *t = (*t).min(created_at))
            .or_insert(created_at);
        s.quota.on_created();
        if let Some(limits) = limits {
            let active = s.active + s.creating;
            s.quota.on_limits(limits, active);
        }
    });
    let kind = match outcome {
        AttemptOutcome::Adopted => EventKind::Adopted,
        _ => EventKind::Created,
    };
    ctx.gate
        .event(kind, Some(job.call_id), attempt, message, None);
    react_to_end(ctx, &effect).await?;
    Ok(match (effect.class, outcome) {
        (Some(class), _) if class.requeues_contact() => SequenceEnd::Requeued,
        (_, AttemptOutcome::Adopted) => SequenceEnd::Adopted,
        _ => SequenceEnd::Created,
    })
}

/// What an ended call asks of the engine, by its ended reason's class.
pub(crate) async fn react_to_end(ctx: &Ctx, effect: &UpdateEffect) -> Result<(), StoreError> {
    if effect.ended {
        ctx.gate.wake();
    }
    let Some(class) = effect.class else {
        return Ok(());
    };
    let reason = effect.ended_reason.as_deref().unwrap_or("");
    if effect.answered {
        assistant_health(ctx, effect, class, reason).await?;
    }
    // The pool number the call was made from (calls from before pools: the campaign's).
    let number = match &effect.phone_number_id {
        Some(number) => number.clone(),
        None => {
            ctx.store
                .campaign(effect.campaign_id)
                .await?
                .phone_number_id
        }
    };
    match class {
        EndedClass::Outcome | EndedClass::AssistantFault => {
            // The number works: its failure streak restarts.
            ctx.number_streaks
                .note(effect.campaign_id, &number, false, 0);
            Ok(())
        }
        EndedClass::NeverRang => {
            let message = format!(
                "call {} never rang ({reason}): its contact goes back to the queue",
                effect.call_id
            );
            tracing::info!(target: "switchboard::engine", "{message}");
            ctx.gate
                .event(EventKind::Quota, Some(effect.call_id), None, message, None);
            if crate::model::blames_the_number(reason) {
                number_failed(
                    ctx,
                    effect.campaign_id,
                    Some(effect.call_id),
                    &number,
                    reason,
                )
                .await?;
            }
            Ok(())
        }
        EndedClass::Unclassified => {
            let first = ctx
                .unclassified
                .lock()
                .map(|mut seen| seen.insert(reason.to_string()))
                .unwrap_or(false);
            if first {
                tracing::warn!(target: "switchboard::engine", reason, "an ended reason not in switchboard's table: counted as an outcome");
            }
            Ok(())
        }
        EndedClass::Concurrency => {
            ctx.gate.update(|s| {
                let active = s.active;
                s.quota.on_limits(
                    &crate::vapi::SubscriptionLimits {
                        concurrency_blocked: true,
                        concurrency_limit: s.quota.vapi_limit().map(f64::from),
                        remaining_concurrent_calls: Some(0.0),
                    },
                    active,
                );
            });
            let message = format!(
                "call {} blocked by Vapi's concurrency limit: contact re-queued, cap lowered",
                effect.call_id
            );
            tracing::warn!(target: "switchboard::engine", "{message}");
            ctx.gate
                .event(EventKind::Quota, Some(effect.call_id), None, message, None);
            Ok(())
        }
        EndedClass::CampaignStop(why) => {
            pause_campaign(ctx, effect.campaign_id, Some(effect.call_id), why).await
        }
        EndedClass::NumberStop { why, next_day } => {
            let until = super::pool::bench_until(ctx, Utc::now(), next_day);
            super::pool::bench(
                ctx,
                effect.campaign_id,
                Some(effect.call_id),
                &number,
                until,
                why,
            )
            .await
        }
    }
}

/// A call of `number` failed before ringing because of its carrier: at
/// `dispatch.bench_number_after_failures` in a row the number is benched for its cool-down.
async fn number_failed(
    ctx: &Ctx,
    campaign_id: i64,
    call_id: Option<i64>,
    number: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let limit = ctx.config.dispatch.bench_number_after_failures;
    if !ctx.number_streaks.note(campaign_id, number, true, limit) {
        return Ok(());
    }
    let why = format!("{limit} calls in a row failed to connect (latest: {reason})");
    let until = super::pool::bench_until(ctx, Utc::now(), false);
    super::pool::bench(ctx, campaign_id, call_id, number, until, &why).await
}

/// A call answered and then failed by the assistant (a pipeline error, or the person hanging
/// up within seconds of the answer) counts against the campaign's assistant; too many in the
/// last answered calls pause the campaign, like a dialer's abandoned-call limit.
async fn assistant_health(
    ctx: &Ctx,
    effect: &UpdateEffect,
    class: EndedClass,
    reason: &str,
) -> Result<(), StoreError> {
    // A hang-up this soon after the answer means the assistant did not hold the person.
    let quick = ctx.config.dispatch.quick_hangup_ms as i64;
    let failed = match class {
        EndedClass::AssistantFault => true,
        EndedClass::Outcome => {
            reason == "customer-ended-call" && effect.talk_ms.is_some_and(|t| t < quick)
        }
        EndedClass::NeverRang
        | EndedClass::Concurrency
        | EndedClass::CampaignStop(_)
        | EndedClass::NumberStop { .. }
        | EndedClass::Unclassified => return Ok(()),
    };
    let d = &ctx.config.dispatch;
    let verdict = ctx.gate.update(|s| {
        s.note_answered(
            effect.campaign_id,
            failed,
            d.assistant_failure_window,
            d.assistant_failure_share,
        )
    });
    if let Some((failures, window)) = verdict {
        let why = format!(
            "the assistant failed {failures} of the last {window} answered calls (pipeline errors or hang-ups within {} s; latest: {reason}): fix the assistant, then resume",
            quick as f64 / 1000.0
        );
        pause_campaign(ctx, effect.campaign_id, Some(effect.call_id), &why).await?;
    }
    Ok(())
}

/// Whether a refusal names the phone number the call was made from (not the customer's).
fn names_phone_number(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    !m.contains("customer") && (m.contains("phonenumber") || m.contains("phone number"))
}

/// Pauses a campaign with a reason (once), and stops admitting its calls at once.
pub(crate) async fn pause_campaign(
    ctx: &Ctx,
    campaign_id: i64,
    call_id: Option<i64>,
    reason: &str,
) -> Result<(), StoreError> {
    ctx.gate.update(|s| {
        s.dialing.remove(&campaign_id);
        s.claimable.remove(&campaign_id);
    });
    if ctx.store.pause_campaign(campaign_id, reason).await? {
        let message = format!("campaign #{campaign_id} paused: {reason}");
        tracing::warn!(target: "switchboard::engine", "{message}");
        ctx.gate
            .event(EventKind::Quota, call_id, None, message, None);
    }
    Ok(())
}

fn create_request(job: &DialJob) -> CreateCallRequest {
    let variable_values =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&job.variables)
            .unwrap_or_default();
    CreateCallRequest {
        assistant_id: job.assistant_id.clone(),
        phone_number_id: job.phone_number_id.clone(),
        customer: Customer {
            number: job.phone.clone(),
            name: job
                .contact_name
                .as_ref()
                .map(|n| n.chars().take(40).collect()),
            extension: job.extension.clone(),
        },
        name: job.reference.clone(),
        assistant_overrides: AssistantOverrides {
            metadata: CallMetadata {
                campaign_id: job.campaign_id,
                contact_id: job.contact_id,
                call_id: job.call_id,
            },
            variable_values,
        },
    }
}

/// What a Call object says, as a store update.
pub(crate) fn call_update(call: &VapiCall) -> CallUpdate {
    CallUpdate {
        status: call.status.as_deref().and_then(CallStatus::from_vapi),
        ended_reason: call.ended_reason.clone(),
        cost_usd: call.cost.filter(|c| c.is_finite() && *c >= 0.0),
        started_at: call.started_at.clone(),
        ended_at: call.ended_at.clone(),
    }
}

fn attempt_result(
    outcome: AttemptOutcome,
    error: &VapiError,
    delay: Option<Duration>,
) -> AttemptResult {
    AttemptResult {
        outcome,
        http_status: error.http_status(),
        error: Some(error.to_string()),
        retry_delay_ms: delay.map(|d| d.as_millis() as u64),
    }
}

/// One structured tracing event and one retry-log line per failed attempt.
fn log_attempt(ctx: &Ctx, job: &DialJob, attempt: i64, error: &VapiError, next: Option<Duration>) {
    let next_ms = next.map(|d| d.as_millis() as u64);
    tracing::warn!(
        target: "switchboard::retry",
        call_id = job.call_id,
        attempt,
        status = error.http_status(),
        error = %error,
        next_delay_ms = next_ms,
        "create attempt failed"
    );
    let message = match next_ms {
        Some(ms) => format!(
            "call {} attempt {attempt}: {error}; next step in {ms} ms",
            job.call_id
        ),
        None => format!("call {} attempt {attempt}: {error}", job.call_id),
    };
    let kind = if next.is_some() {
        EventKind::Retry
    } else {
        EventKind::Attempt
    };
    ctx.gate
        .event(kind, Some(job.call_id), Some(attempt), message, next_ms);
}

fn failed_event(ctx: &Ctx, job: &DialJob, attempt: i64, reason: &str) {
    tracing::warn!(target: "switchboard::retry", call_id = job.call_id, attempt, reason, "call FAILED");
    ctx.gate.event(
        EventKind::Failed,
        Some(job.call_id),
        Some(attempt),
        format!("call {} FAILED: {reason}", job.call_id),
        None,
    );
}
