//! One call's attempt sequence, applied: send; on failure [`super::attempt::decide`] decides the
//! next step (send again, settle, fail, pause) and this module records it before any wait,
//! tells the gate, logs it and goes on. It decides nothing itself.
//!
//! An outcome that may have created a call is *settled* before anything is sent again: the
//! call is UNKNOWN, looked up by its reference (adopted if found), and re-sent only once a
//! complete look-up made `vapi.settle_after_ms` after the request was sent found nothing.
//! The same code resumes a sequence after a restart or a store error, from what is stored.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Ctx;
use super::attempt::{Breaker, Decision, Event, Record, Rules, Tally, Then, decide};
use super::gate::{Refusal, RequestKind};
use super::reactions::{self, call_update, react_to_end};
use super::snapshot::EventKind;
use crate::model::{AttemptOutcome, CallStatus, Pause, StopCause};
use crate::store::attempts::AttemptResult;
use crate::store::calls::DialJob;
use crate::store::{StoreError, parse_time};
use crate::vapi::search::{Field, Incomplete, SearchResult, Window, find_by_name};
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
            s.concurrency.reserve();
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
            s.concurrency.release();
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

/// A step's result: go on to the next step, or end the sequence.
type Step = ControlFlow<SequenceEnd, Next>;

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

/// What a running sequence carries from step to step.
struct Run {
    tally: Tally,
    last_error: String,
    /// Whether the pre-dial hook has allowed this call (asked once, before the first send).
    predial_done: bool,
}

/// An attempt that went out and failed.
struct Sent<'a> {
    attempt_id: i64,
    number: i64,
    sent_at: DateTime<Utc>,
    error: &'a VapiError,
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

fn rules(ctx: &Ctx) -> Rules<'_> {
    Rules {
        backoff_ms: &ctx.config.dispatch.backoff_ms,
        retry_on_status: &ctx.config.dispatch.retry_on_status,
    }
}

async fn sequence(
    ctx: &Ctx,
    job: &DialJob,
    claimed: Option<i64>,
) -> Result<SequenceEnd, StoreError> {
    let mut run = Run {
        tally: Tally {
            spent: job.retries_used,
            max_attempts: 1 + i64::from(ctx.config.dispatch.max_retries),
        },
        last_error: job
            .last_error
            .clone()
            .unwrap_or_else(|| "no attempt made".into()),
        predial_done: ctx.predial.is_none() || job.predial_at.is_some(),
    };
    let mut next = match claimed {
        Some(attempt_id) => {
            // The claimed attempt is in flight: what it meets decides whether it is spent.
            run.tally.spent = (job.retries_used - 1).max(0);
            Next::Send {
                attempt_id,
                number: 1,
            }
        }
        None => resume(ctx, job).await?,
    };
    loop {
        let step = match next {
            Next::Admit => admit(ctx, job, &run).await?,
            Next::Send { attempt_id, number } => {
                send(ctx, job, &mut run, attempt_id, number).await?
            }
            Next::Settle(settling) => settle_step(ctx, job, &mut run, settling).await?,
        };
        next = match step {
            ControlFlow::Continue(next) => next,
            ControlFlow::Break(end) => return Ok(end),
        };
    }
}

/// Admits a new attempt (the decision may give up first), waits for the gate, the request
/// budget and the account's create rate, and commits the attempt.
async fn admit(ctx: &Ctx, job: &DialJob, run: &Run) -> Result<Step, StoreError> {
    let event = Event::Admitting {
        last_error: &run.last_error,
    };
    let decision = decide(run.tally, event, rules(ctx));
    if let Record::Failed { reason, .. } = &decision.record {
        give_up(ctx, job, None, run.tally.spent, reason).await?;
        return Ok(ControlFlow::Break(SequenceEnd::Failed));
    }
    let call_id = job.call_id;
    let kind = RequestKind::Retry {
        campaign_id: job.campaign_id,
    };
    let requeue = match ctx.gate.admit(kind).await {
        Ok(_) => None,
        Err(Refusal::Stopping) => return Ok(ControlFlow::Break(SequenceEnd::Stopped)),
        Err(Refusal::CampaignCancelled) => Some("campaign cancelled before the call was created"),
        Err(Refusal::Paused) => {
            Some("paused before the call was created: the contact waits in the queue")
        }
    };
    if let Some(reason) = requeue {
        ctx.store.requeue_call(call_id, None, reason).await?;
        return Ok(ControlFlow::Break(SequenceEnd::Requeued));
    }
    // The request budget before the commit: the attempt starts when it is sent.
    ctx.budget.acquire().await;
    // On PostgreSQL the create rate is the account's, shared with other engines.
    let rate = ctx.gate.read(|s| s.pacer.rate());
    ctx.store.take_create_slot(rate).await?;
    let (attempt_id, number) = ctx.store.begin_attempt(call_id).await?;
    Ok(ControlFlow::Continue(Next::Send { attempt_id, number }))
}

/// Sends an attempt (asking the pre-dial hook first, once): created → recorded; failed → the
/// decision applied.
async fn send(
    ctx: &Ctx,
    job: &DialJob,
    run: &mut Run,
    attempt_id: i64,
    number: i64,
) -> Result<Step, StoreError> {
    if !run.predial_done {
        if let Some(end) = ask_predial(ctx, job, attempt_id).await? {
            return Ok(ControlFlow::Break(end));
        }
        run.predial_done = true;
    }
    let call_id = job.call_id;
    let sent_at = ctx.now();
    let error = match ctx
        .create_call(&create_request(job, ctx.config.webhook.listen.is_some()))
        .await
    {
        Ok(response) => {
            let message = format!("call {call_id} created at Vapi ({})", response.call.id);
            tracing::info!(target: "switchboard::retry", campaign_id = job.campaign_id, contact_id = job.contact_id, call_id, attempt = number, status = 201, provider_call_id = %response.call.id, "call created");
            super::metrics::create("created");
            super::metrics::attempt(None);
            let limits = response.subscription_limits.as_ref();
            let end = record(
                ctx,
                job,
                attempt_id,
                Some(number),
                &response.call,
                limits,
                message,
            );
            return Ok(ControlFlow::Break(end.await?));
        }
        Err(error) => error,
    };
    run.last_error = error.to_string();
    // A 429 lengthens every call's wait: the gate keeps that back-off, the decision reads it.
    let engine_wait = error
        .is_rate_limited()
        .then(|| ctx.gate.on_rate_limited(error.retry_after()));
    let event = Event::Failed {
        error: &error,
        number,
        engine_wait,
    };
    let decision = decide(run.tally, event, rules(ctx));
    let sent = Sent {
        attempt_id,
        number,
        sent_at,
        error: &error,
    };
    apply_failure(ctx, job, run, &sent, decision).await
}

/// Applies the decision about a failed attempt: records it, tells the breaker, logs it, waits,
/// and goes where the decision says.
async fn apply_failure(
    ctx: &Ctx,
    job: &DialJob,
    run: &mut Run,
    sent: &Sent<'_>,
    decision: Decision,
) -> Result<Step, StoreError> {
    let call_id = job.call_id;
    run.tally = decision.tally;
    match decision.breaker {
        Breaker::Answer => ctx.gate.on_answer(),
        Breaker::Failure => ctx.gate.on_transient_failure(),
        Breaker::Silent => {}
    }
    let result = |outcome| attempt_result(outcome, sent.error, decision.wait);
    let attempt = sent.attempt_id;
    match &decision.record {
        Record::Nothing => {}
        Record::Refused { outcome } => {
            ctx.store
                .record_refused(call_id, attempt, &result(*outcome))
                .await?;
        }
        Record::Ambiguous => {
            let r = result(AttemptOutcome::Ambiguous);
            ctx.store.record_ambiguous(call_id, attempt, &r).await?;
        }
        Record::Failed { outcome, reason } => {
            log_attempt(ctx, job, sent.number, sent.error, None);
            let closed = outcome.map(result);
            let closed = closed.as_ref().map(|r| (attempt, r));
            give_up(ctx, job, closed, sent.number, reason).await?;
        }
        Record::Requeued => {
            let r = result(AttemptOutcome::Rejected);
            let last = &run.last_error;
            ctx.store
                .requeue_call(call_id, Some((attempt, &r)), last)
                .await?;
        }
    }
    if !matches!(decision.record, Record::Failed { .. }) {
        log_attempt(ctx, job, sent.number, sent.error, decision.wait);
    }
    if decision.record == Record::Ambiguous {
        unknown_event(ctx, job, sent);
    }
    if let Some(wait) = decision.wait
        && !ctx.gate.sleep(wait).await
    {
        return Ok(ControlFlow::Break(SequenceEnd::Stopped));
    }
    then(ctx, job, run, sent, decision.then).await
}

/// Where a failed attempt's sequence goes.
async fn then(
    ctx: &Ctx,
    job: &DialJob,
    run: &Run,
    sent: &Sent<'_>,
    then: Then,
) -> Result<Step, StoreError> {
    let (campaign_id, call_id) = (job.campaign_id, Some(job.call_id));
    let end = match then {
        Then::Admit => return Ok(ControlFlow::Continue(Next::Admit)),
        Then::LookUp { ambiguous, resend } => {
            let settle_at = if ambiguous {
                sent.sent_at + ctx.settle_after()
            } else {
                sent.sent_at
            };
            return Ok(ControlFlow::Continue(Next::Settle(Settling {
                attempt_id: sent.attempt_id,
                sent_at: sent.sent_at,
                settle_at,
                ambiguous,
                resend,
            })));
        }
        Then::Failed { rejection } => {
            if rejection {
                rejection_streak(ctx, job, &run.last_error).await?;
            }
            SequenceEnd::Failed
        }
        Then::PauseDispatch(pause) => {
            reactions::pause_dispatch(ctx, pause).await?;
            SequenceEnd::Failed
        }
        Then::PauseCampaign(pause) => {
            reactions::pause_campaign(ctx, campaign_id, call_id, &pause).await?;
            SequenceEnd::Requeued
        }
        Then::BenchNumber { why } => {
            let until = reactions::bench_until(ctx, ctx.now(), false);
            let number = &job.phone_number_id;
            reactions::bench(ctx, campaign_id, call_id, number, until, &why).await?;
            SequenceEnd::Requeued
        }
    };
    Ok(ControlFlow::Break(end))
}

/// The one way a call gives up: FAILED with its reason (closing `attempt` if one is open), in
/// the retry log.
async fn give_up(
    ctx: &Ctx,
    job: &DialJob,
    attempt: Option<(i64, &AttemptResult)>,
    number: i64,
    reason: &str,
) -> Result<(), StoreError> {
    ctx.store.fail_call(job.call_id, attempt, reason).await?;
    failed_event(ctx, job, number, reason);
    Ok(())
}

/// The same refusal for every contact: the campaign's settings are the likely cause. At
/// `dispatch.pause_after_identical_rejections` in a row the campaign pauses and those
/// contacts are given back.
async fn rejection_streak(ctx: &Ctx, job: &DialJob, message: &str) -> Result<(), StoreError> {
    let limit = ctx.config.dispatch.pause_after_identical_rejections;
    let streak = ctx.gate.update(|s| {
        s.rejections
            .note(job.campaign_id, message, job.call_id, limit)
    });
    let Some(calls) = streak else {
        return Ok(());
    };
    let reason = format!(
        "{} calls in a row refused with the same message ({message}): fix the campaign's settings, then resume it",
        calls.len()
    );
    let pause = Pause::new(StopCause::Engine, reason);
    reactions::pause_campaign(ctx, job.campaign_id, Some(job.call_id), &pause).await?;
    for id in calls {
        if let Err(e) = ctx.store.retry_call(id).await {
            tracing::warn!(target: "switchboard::engine", call_id = id, "cannot give the contact back: {e}");
        }
    }
    Ok(())
}

/// Settles an attempt by look-up: found → adopted; not created → the decision (send again or
/// give up).
async fn settle_step(
    ctx: &Ctx,
    job: &DialJob,
    run: &mut Run,
    settling: Settling,
) -> Result<Step, StoreError> {
    let retry_requested = match settle(ctx, job, &settling).await? {
        Settled::Found(found) => {
            let end = adopt(ctx, job, settling.attempt_id, &found).await?;
            return Ok(ControlFlow::Break(end));
        }
        Settled::Stopped => return Ok(ControlFlow::Break(SequenceEnd::Stopped)),
        Settled::NotCreated { retry_requested } => retry_requested,
    };
    let event = Event::NotCreated {
        resend: settling.resend,
        retry_requested,
        last_error: &run.last_error,
    };
    let decision = decide(run.tally, event, rules(ctx));
    run.tally = decision.tally;
    match decision.record {
        Record::Failed { reason, .. } => {
            give_up(ctx, job, None, run.tally.spent, &reason).await?;
            Ok(ControlFlow::Break(SequenceEnd::Failed))
        }
        _ => Ok(ControlFlow::Continue(Next::Admit)),
    }
}

fn unknown_event(ctx: &Ctx, job: &DialJob, sent: &Sent<'_>) {
    let call_id = job.call_id;
    let settle_at = sent.sent_at + ctx.settle_after();
    ctx.gate.event(
        EventKind::Unknown,
        Some(call_id),
        Some(sent.number),
        format!(
            "call {call_id} may exist at Vapi ({}): UNKNOWN until found or settled (not re-sent before {})",
            sent.error,
            settle_at.format("%H:%M:%S")
        ),
        None,
    );
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
            let pause = Pause::new(StopCause::Engine, reason);
            reactions::pause_campaign(ctx, job.campaign_id, Some(call_id), &pause).await?;
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
        .unwrap_or_else(|| ctx.now());
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
            tracing::info!(target: "switchboard::retry", campaign_id = job.campaign_id, contact_id = job.contact_id, call_id = job.call_id, "interrupted request: settling it before anything is re-sent");
            super::metrics::create("unknown");
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
/// after the settle time. Until then a complete look-up that finds nothing is made again on
/// the backoff schedule (1 s, 4 s, 10 s…), so a call created late is adopted as soon as it
/// shows. An incomplete look-up (errors, rate limits, too dense) proves nothing: the call
/// stays UNKNOWN and is looked up again at a low rate.
async fn settle(ctx: &Ctx, job: &DialJob, s: &Settling) -> Result<Settled, StoreError> {
    let skew = chrono::Duration::milliseconds(ctx.config.vapi.lookup_skew_ms as i64);
    let mut failures = 0u32;
    let mut absent = 0u32;
    let mut said_waiting = false;
    loop {
        let looked_at = ctx.now();
        let window = Window {
            field: Field::CreatedAt,
            assistant_id: job.assistant_id(),
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
                return not_created(ctx, job, s, requests).await;
            }
            SearchResult::Absent => {
                ctx.gate.on_answer();
                absent += 1;
                if !said_waiting {
                    said_waiting = true;
                    tracing::info!(target: "switchboard::retry", campaign_id = job.campaign_id, contact_id = job.contact_id, call_id = job.call_id, settle_at = %s.settle_at, "not found yet; Vapi may still create it: looking again on the backoff schedule, and re-sending only once the settle time has passed");
                    super::metrics::lookup("not_found");
                }
                // Looked up again on the backoff schedule (a call Vapi creates late is
                // adopted as soon as it shows), never past the settle deadline.
                let to_deadline = (s.settle_at - looked_at)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .max(Duration::from_millis(10));
                ctx.config.backoff(absent).min(to_deadline)
            }
            SearchResult::Incomplete(why) => {
                failures += 1;
                still_unknown(ctx, job, &why, failures)
            }
        };
        if !ctx.gate.sleep(wait).await {
            return Ok(Settled::Stopped);
        }
    }
}

/// A complete look-up after the settle time found nothing: the attempt was not created.
async fn not_created(
    ctx: &Ctx,
    job: &DialJob,
    s: &Settling,
    requests: usize,
) -> Result<Settled, StoreError> {
    let retry_requested = if s.ambiguous {
        ctx.store.settle_not_created(job.call_id).await?
    } else {
        false
    };
    tracing::info!(target: "switchboard::retry", campaign_id = job.campaign_id, contact_id = job.contact_id, call_id = job.call_id, requests, "settled: the call was not created at Vapi; safe to send again");
    super::metrics::lookup("not_found");
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
    Ok(Settled::NotCreated { retry_requested })
}

/// A look-up that could not finish proves nothing: the call stays UNKNOWN, looked up again
/// after a growing wait (the `failures`-th).
fn still_unknown(ctx: &Ctx, job: &DialJob, why: &Incomplete, failures: u32) -> Duration {
    if why.is_rate_limited() {
        ctx.gate.on_rate_limited(None);
    }
    let delay = ctx
        .config
        .backoff(failures)
        .max(Duration::from_millis(100))
        .min(SETTLE_RETRY_MAX);
    let reason = format!("look-up {why}");
    tracing::warn!(target: "switchboard::retry", campaign_id = job.campaign_id, contact_id = job.contact_id, call_id = job.call_id, next_delay_ms = delay.as_millis() as u64, "look-up incomplete, the outcome stays unknown: {reason}");
    super::metrics::lookup("incomplete");
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
    tracing::info!(target: "switchboard::retry", campaign_id = job.campaign_id, contact_id = job.contact_id, call_id = job.call_id, provider_call_id = %found.id, "{message}");
    super::metrics::lookup("found");
    record(ctx, job, attempt_id, None, found, None, message).await
}

/// Most creations kept for the tracker's read plan between two of its rounds.
const CREATED_SINCE_READ_MAX: usize = 100_000;

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
    ctx.monitors.keep(job.call_id, call.monitor.as_ref());
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
        .unwrap_or_else(|| ctx.now());
    ctx.gate.update(|s| {
        s.rejections.broken(job.campaign_id);
        s.new_pairs
            .entry((job.assistant_id().to_string(), job.phone_number_id.clone()))
            .and_modify(|t| *t = (*t).min(created_at))
            .or_insert(created_at);
        let now = s.clock.now();
        if s.created_since_read.len() < CREATED_SINCE_READ_MAX {
            s.created_since_read.push(now);
        }
        s.quota.on_created(now);
        if let Some(limits) = limits {
            let active = s.concurrency.in_use();
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

/// Server messages asked for per call when a webhook listener runs: the status and report
/// the tracker would otherwise read, and what was said, for the live transcript.
const SERVER_MESSAGES: &[&str] = &[
    "status-update",
    "end-of-call-report",
    "conversation-update",
    "transcript[transcriptType=\"final\"]",
];

fn create_request(job: &DialJob, webhooks: bool) -> CreateCallRequest {
    let variable_values =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&job.variables)
            .unwrap_or_default();
    CreateCallRequest {
        assistant_id: job.assistant_id().to_string(),
        assistant_version: job.assistant_version().map(String::from),
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
            server_messages: if webhooks {
                SERVER_MESSAGES.iter().map(|m| m.to_string()).collect()
            } else {
                Vec::new()
            },
            voicemail_message: job.voicemail_message.clone(),
        },
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
    super::metrics::create(if next.is_some() {
        "retried"
    } else {
        "rejected"
    });
    super::metrics::attempt(Some(error.class()));
    if error.http_status() == Some(429) {
        super::metrics::rate_limited();
    }
    tracing::warn!(
        target: "switchboard::retry",
        campaign_id = job.campaign_id,
        contact_id = job.contact_id,
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
    tracing::warn!(target: "switchboard::retry", campaign_id = job.campaign_id, contact_id = job.contact_id, call_id = job.call_id, attempt, reason, "call FAILED");
    ctx.gate.event(
        EventKind::Failed,
        Some(job.call_id),
        Some(attempt),
        format!("call {} FAILED: {reason}", job.call_id),
        None,
    );
}
