//! One call's attempt sequence: send, classify, retry with backoff, look up before any
//! re-send that might double-dial, adopt a call found at Vapi, or fail with a reason. Every
//! step is committed before the next: the attempt row exists before its request, and the
//! outcome is recorded before any wait. The same code resumes a sequence after a restart.

use std::sync::Arc;
use std::time::Duration;

use super::Ctx;
use super::gate::{Refusal, RequestKind};
use super::retry::retry_delay;
use super::snapshot::EventKind;
use crate::model::{AttemptOutcome, CallStatus, QuotaStop};
use crate::store::attempts::AttemptResult;
use crate::store::calls::{CallUpdate, DialJob, UpdateEffect};
use crate::store::{StoreError, parse_time};
use crate::vapi::types::{AssistantOverrides, CallMetadata, Customer};
use crate::vapi::{CreateCallRequest, ErrorClass, ListCallsFilter, VapiCall, VapiError};

/// How a sequence ended, for the engine's bookkeeping and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceEnd {
    Created,
    Adopted,
    Failed,
    /// The contact went back to the queue (quota, or its campaign was cancelled).
    Requeued,
    /// The engine is stopping (or the database failed): the call stays as it is and the
    /// sequence resumes at the next start.
    Stopped,
}

/// Pages of `GET /call` searched when looking for a call that may have been created.
const LOOKUP_PAGES: usize = 5;
const LOOKUP_PAGE_SIZE: u32 = 1000;

/// Runs a sequence to its end. `claimed` is the attempt already committed IN_FLIGHT (and
/// admitted) by the claim; `None` resumes an unfinished sequence from its stored state.
pub(crate) async fn run_sequence(ctx: Arc<Ctx>, job: DialJob, claimed: Option<i64>) -> SequenceEnd {
    let end = match sequence(&ctx, &job, claimed).await {
        Ok(end) => end,
        Err(e) => {
            tracing::error!(
                target: "switchboard::engine",
                call_id = job.call_id,
                "database error; the call is left as it is and resumes at the next start: {e}"
            );
            SequenceEnd::Stopped
        }
    };
    ctx.gate.update(|s| s.creating -= 1);
    end
}

async fn sequence(
    ctx: &Ctx,
    job: &DialJob,
    claimed: Option<i64>,
) -> Result<SequenceEnd, StoreError> {
    let max_attempts = 1 + i64::from(ctx.config.dispatch.max_retries);
    let call_id = job.call_id;
    let mut attempt_no = job.attempt_count;
    let mut pending = claimed;
    // (attempt row, when it started): an attempt whose request may have created the call.
    let mut lookup: Option<(i64, String)> = None;
    let mut last_error = String::from("no attempt made");

    if claimed.is_none() {
        match (job.last_outcome, job.last_attempt_id) {
            (Some(AttemptOutcome::InFlight), Some(id)) => {
                let reason = "interrupted: the engine stopped while this request was in flight";
                ctx.store
                    .finish_attempt(
                        id,
                        &AttemptResult {
                            outcome: AttemptOutcome::Ambiguous,
                            http_status: None,
                            error: Some(reason.into()),
                            retry_delay_ms: None,
                        },
                    )
                    .await?;
                last_error = reason.into();
                lookup = Some((
                    id,
                    job.last_started_at
                        .clone()
                        .unwrap_or_else(crate::store::now),
                ));
            }
            (Some(AttemptOutcome::Ambiguous), Some(id)) => {
                last_error = "the last attempt's outcome was unknown".into();
                lookup = Some((
                    id,
                    job.last_started_at
                        .clone()
                        .unwrap_or_else(crate::store::now),
                ));
            }
            _ => {}
        }
    }

    let mut lookup_failures = 0u32;
    loop {
        if let Some((attempt_id, since)) = lookup.take() {
            match find_call(ctx, job, &since).await {
                Ok(Some(found)) => return adopt(ctx, job, attempt_id, &found).await,
                Ok(None) => {
                    ctx.gate.on_answer();
                    tracing::info!(target: "switchboard::retry", call_id, "look-up: the call was not created at Vapi; safe to send again");
                }
                Err(e) => {
                    lookup_failures += 1;
                    if e.is_rate_limited() {
                        ctx.gate.on_rate_limited(e.retry_after());
                    }
                    if lookup_failures > ctx.config.dispatch.max_retries {
                        let reason = format!(
                            "could not confirm at Vapi whether the call was created (look-up failed: {e}); not re-sent, to avoid dialling twice"
                        );
                        ctx.store.fail_call(call_id, None, &reason).await?;
                        failed_event(ctx, job, attempt_no, &reason);
                        return Ok(SequenceEnd::Failed);
                    }
                    let delay = ctx.config.backoff(lookup_failures);
                    tracing::warn!(target: "switchboard::retry", call_id, error = %e, next_delay_ms = delay.as_millis() as u64, "look-up failed; trying the look-up again");
                    if !ctx.gate.sleep(delay).await {
                        return Ok(SequenceEnd::Stopped);
                    }
                    lookup = Some((attempt_id, since));
                    continue;
                }
            }
        }

        let attempt_id = match pending.take() {
            Some(id) => {
                attempt_no = attempt_no.max(1);
                id
            }
            None => {
                if attempt_no >= max_attempts {
                    let reason =
                        format!("gave up after {attempt_no} attempts; last error: {last_error}");
                    ctx.store.fail_call(call_id, None, &reason).await?;
                    failed_event(ctx, job, attempt_no, &reason);
                    return Ok(SequenceEnd::Failed);
                }
                match ctx
                    .gate
                    .admit(RequestKind::Retry {
                        campaign_id: job.campaign_id,
                    })
                    .await
                {
                    Ok(_) => {}
                    Err(Refusal::Stopping) => return Ok(SequenceEnd::Stopped),
                    Err(Refusal::CampaignCancelled) => {
                        ctx.store
                            .requeue_call(
                                call_id,
                                None,
                                "campaign cancelled before the call was created",
                            )
                            .await?;
                        return Ok(SequenceEnd::Requeued);
                    }
                }
                attempt_no += 1;
                ctx.store.begin_attempt(call_id, attempt_no).await?
            }
        };

        let started = crate::store::now();
        let result = ctx.vapi.create_call(&create_request(job)).await;
        let error = match result {
            Ok(response) => {
                let message = format!("call {call_id} created at Vapi ({})", response.call.id);
                tracing::info!(target: "switchboard::retry", call_id, attempt = attempt_no, status = 201, provider_call_id = %response.call.id, "call created");
                return record(
                    ctx,
                    job,
                    attempt_id,
                    Some(attempt_no),
                    &response.call,
                    response.subscription_limits.as_ref(),
                    message,
                )
                .await;
            }
            Err(error) => error,
        };

        let class = error.class(&ctx.config.dispatch.retry_on_status);
        let message = error.to_string();
        match class {
            ErrorClass::Auth => {
                ctx.gate.on_answer();
                let reason = format!("{message} (Vapi rejected the API key)");
                let result = attempt_result(AttemptOutcome::AuthFailed, &error, None);
                ctx.store
                    .fail_call(call_id, Some((attempt_id, &result)), &reason)
                    .await?;
                log_attempt(ctx, job, attempt_no, &error, None);
                failed_event(ctx, job, attempt_no, &reason);
                let pause = format!(
                    "Vapi rejected the API key ({message}): every call would fail the same way. Fix the key in the environment, then resume dispatch"
                );
                ctx.store.set_dispatch_paused(true, Some(&pause)).await?;
                ctx.gate.update(|s| s.paused = Some(pause.clone()));
                tracing::error!(target: "switchboard::engine", "{pause}");
                ctx.gate.event(EventKind::Pause, None, None, pause, None);
                return Ok(SequenceEnd::Failed);
            }
            ErrorClass::Rejected => {
                ctx.gate.on_answer();
                let result = attempt_result(AttemptOutcome::Rejected, &error, None);
                ctx.store
                    .fail_call(call_id, Some((attempt_id, &result)), &message)
                    .await?;
                log_attempt(ctx, job, attempt_no, &error, None);
                failed_event(ctx, job, attempt_no, &message);
                return Ok(SequenceEnd::Failed);
            }
            ErrorClass::Transient | ErrorClass::Ambiguous => {
                let global = error
                    .is_rate_limited()
                    .then(|| ctx.gate.on_rate_limited(error.retry_after()));
                ctx.gate.on_transient_failure();
                let more = attempt_no < max_attempts;
                let delay = retry_delay(
                    &ctx.config.dispatch.backoff_ms,
                    attempt_no.max(1) as u32,
                    error.retry_after(),
                    global,
                );
                let outcome = match class {
                    ErrorClass::Ambiguous => AttemptOutcome::Ambiguous,
                    _ => AttemptOutcome::Transient,
                };
                let result = attempt_result(outcome, &error, more.then_some(delay));
                ctx.store.finish_attempt(attempt_id, &result).await?;
                log_attempt(ctx, job, attempt_no, &error, more.then_some(delay));
                last_error = message;
                let ambiguous = class == ErrorClass::Ambiguous;
                if !more && !ambiguous {
                    let reason =
                        format!("gave up after {attempt_no} attempts; last error: {last_error}");
                    ctx.store.fail_call(call_id, None, &reason).await?;
                    failed_event(ctx, job, attempt_no, &reason);
                    return Ok(SequenceEnd::Failed);
                }
                // Wait before the next attempt, and before any look-up too: a call still
                // being created at Vapi then has time to show up in the listing.
                if !ctx.gate.sleep(delay).await {
                    return Ok(SequenceEnd::Stopped);
                }
                if ambiguous {
                    lookup = Some((attempt_id, started));
                }
            }
        }
    }
}

/// The call an ambiguous attempt created, found by its reference in `GET /call`.
async fn find_call(ctx: &Ctx, job: &DialJob, since: &str) -> Result<Option<VapiCall>, VapiError> {
    let margin = chrono::Duration::milliseconds(ctx.config.vapi.lookup_margin_ms as i64);
    let since = parse_time(since).unwrap_or_else(chrono::Utc::now) - margin;
    let mut filter = ListCallsFilter {
        assistant_id: Some(job.assistant_id.clone()),
        phone_number_id: Some(job.phone_number_id.clone()),
        created_at_ge: Some(crate::store::format_time(since)),
        created_at_lt: None,
        limit: Some(LOOKUP_PAGE_SIZE),
    };
    for _ in 0..LOOKUP_PAGES {
        let calls = ctx.vapi.list_calls(&filter).await?;
        if let Some(found) = calls
            .iter()
            .find(|c| c.name.as_deref() == Some(job.reference.as_str()))
        {
            return Ok(Some(found.clone()));
        }
        if calls.len() < LOOKUP_PAGE_SIZE as usize {
            return Ok(None);
        }
        // A full page: look further back, before the oldest call seen.
        filter.created_at_lt = calls.iter().filter_map(|c| c.created_at.clone()).min();
        if filter.created_at_lt.is_none() {
            return Ok(None);
        }
    }
    Ok(None)
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
    ctx.gate.update(|s| {
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
    Ok(match (effect.quota, outcome) {
        (Some(_), _) => SequenceEnd::Requeued,
        (None, AttemptOutcome::Adopted) => SequenceEnd::Adopted,
        (None, _) => SequenceEnd::Created,
    })
}

/// A call that ended for a quota reason: lower the cap, or pause its campaign.
pub(crate) async fn react_to_end(ctx: &Ctx, effect: &UpdateEffect) -> Result<(), StoreError> {
    if effect.ended {
        ctx.gate.wake();
    }
    match effect.quota {
        None => Ok(()),
        Some(QuotaStop::Concurrency) => {
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
        Some(QuotaStop::PauseCampaign(reason)) => {
            if ctx.store.pause_campaign(effect.campaign_id, reason).await? {
                let message = format!("campaign #{} paused: {reason}", effect.campaign_id);
                tracing::warn!(target: "switchboard::engine", "{message}");
                ctx.gate
                    .event(EventKind::Quota, Some(effect.call_id), None, message, None);
            }
            ctx.gate.update(|s| {
                s.dialing.remove(&effect.campaign_id);
            });
            Ok(())
        }
    }
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
            "call {} attempt {attempt}: {error}; retry in {ms} ms",
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
