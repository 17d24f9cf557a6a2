//! Supervising the calls that are live: operators' requests (say, whisper, mute, transfer,
//! end, the kill switch) carried out through each call's control URL, the runaway guard,
//! and transcripts read from Vapi while a console watches a call and no webhook brings them.
//!
//! The control and listen URLs are capabilities: they live in [`Monitors`] (memory, this
//! engine only) while the call is live, are fetched again with `GET /call/{id}` when missing,
//! and are never logged, stored or shown.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Ctx;
use super::snapshot::EventKind;
use crate::model::CallStatus;
use crate::model::live::{LiveAction, LiveFacts};
use crate::store::calls::CallUpdate;
use crate::store::live::LiveRequest;
use crate::store::{Store, StoreError};
use crate::vapi::live::{ControlMessage, Monitor};
use crate::vapi::{VapiCall, VapiClient, VapiError};

/// Waits before an end is sent again after a fault.
const END_RETRIES: &[std::time::Duration] = &[
    std::time::Duration::from_millis(200),
    std::time::Duration::from_secs(1),
];

/// Requests carried out per tick (each is one or two requests to Vapi).
const REQUESTS_PER_TICK: i64 = 50;

/// The monitor URLs of the live calls this engine knows, by our call id.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    urls: Mutex<HashMap<i64, Monitor>>,
}

impl Monitors {
    pub fn keep(&self, call_id: i64, monitor: Option<&Monitor>) {
        if let (Some(m), Ok(mut urls)) = (monitor, self.urls.lock()) {
            urls.insert(call_id, m.clone());
        }
    }

    pub fn get(&self, call_id: i64) -> Option<Monitor> {
        self.urls.lock().ok()?.get(&call_id).cloned()
    }

    /// A call ended: its URLs are of no more use to anyone.
    pub fn forget(&self, call_id: i64) {
        if let Ok(mut urls) = self.urls.lock() {
            urls.remove(&call_id);
        }
    }
}

/// How a request for a live call went, in the operator's words.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub ok: bool,
    pub line: String,
}

impl Answer {
    fn ok(line: String) -> Answer {
        Answer { ok: true, line }
    }
    fn failed(line: String) -> Answer {
        Answer { ok: false, line }
    }
}

/// What a request needs from whoever carries it out: the engine (budgeted, with its cached
/// URLs) or the CLI when no engine runs.
pub trait Reach {
    fn vapi(&self) -> &VapiClient;
    fn cached(&self, call_id: i64) -> Option<Monitor>;
    fn get_call(
        &self,
        id: &str,
    ) -> impl std::future::Future<Output = Result<VapiCall, VapiError>> + Send;
}

impl Reach for Ctx {
    fn vapi(&self) -> &VapiClient {
        &self.vapi
    }
    fn cached(&self, call_id: i64) -> Option<Monitor> {
        self.monitors.get(call_id)
    }
    async fn get_call(&self, id: &str) -> Result<VapiCall, VapiError> {
        Ctx::get_call(self, id).await
    }
}

/// The CLI's reach when no engine holds the database: its own client, nothing cached.
pub struct Direct<'a>(pub &'a VapiClient);

impl Reach for Direct<'_> {
    fn vapi(&self) -> &VapiClient {
        self.0
    }
    fn cached(&self, _call_id: i64) -> Option<Monitor> {
        None
    }
    async fn get_call(&self, id: &str) -> Result<VapiCall, VapiError> {
        self.0.get_call(id).await
    }
}

/// Carries out one request and records its answer (`why` shows it). Returns the answer,
/// and Vapi's view of the call when it was read (its end is then applied). The action is
/// never sent twice: a store that cannot record the answer is asked again, not Vapi.
pub async fn carry_out(
    store: &Store,
    reach: &impl Reach,
    request: &LiveRequest,
) -> Result<(Answer, Option<VapiCall>), StoreError> {
    let (answer, seen) = answer(reach, request).await;
    let mut tries = 0;
    loop {
        match store
            .finish_live_request(request, answer.ok, &answer.line)
            .await
        {
            Ok(()) => return Ok((answer, seen)),
            Err(e) if tries >= FINISH_RETRIES => return Err(e),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250 * tries)).await;
            }
        }
    }
}

/// How often recording an answer is tried again before the request is left to recovery.
const FINISH_RETRIES: u64 = 4;

async fn answer(reach: &impl Reach, request: &LiveRequest) -> (Answer, Option<VapiCall>) {
    let who = request.who();
    let action = match request.action() {
        Ok(action) => action,
        Err(e) => return (Answer::failed(e), None),
    };
    let what = action.describe();
    let Some(provider_id) = request
        .provider_call_id
        .as_deref()
        .filter(|_| request.call_status.is_at_vapi())
    else {
        return (Answer::ok(over(&who, request)), None);
    };
    let monitor = match reach.cached(request.call_id) {
        Some(m) => Some(m),
        None => match reach.get_call(provider_id).await {
            Ok(call) if is_over(&call) => {
                return (Answer::ok(format!("{who} had already ended")), Some(call));
            }
            Ok(call) => call.monitor.clone(),
            Err(e) => {
                return (
                    Answer::failed(format!("{who}: cannot read the call from Vapi: {e}")),
                    None,
                );
            }
        },
    };
    let Some(url) = monitor.and_then(|m| m.control_url) else {
        return (
            Answer::failed(format!(
                "{who}: Vapi gives this call no control URL (the assistant's monitorPlan.controlEnabled is off)"
            )),
            None,
        );
    };
    let message = ControlMessage::from(&action);
    let mut sent = reach.vapi().control(&url, &message).await;
    // Ending twice is harmless, a call left running by the kill switch is not: an end
    // refused by a fault is sent again, twice at most.
    for delay in END_RETRIES {
        match &sent {
            Err(e)
                if action == LiveAction::End && e.class() != crate::vapi::ErrorClass::Rejected =>
            {
                tokio::time::sleep(*delay).await;
                sent = reach.vapi().control(&url, &message).await;
            }
            _ => break,
        }
    }
    match sent {
        Ok(_) => {
            let seen = if action.ends_call() {
                reach.get_call(provider_id).await.ok()
            } else {
                None
            };
            (Answer::ok(format!("{who}: {what}: done")), seen)
        }
        Err(e) => {
            // Refused: was it because the call ended meanwhile?
            match reach.get_call(provider_id).await {
                Ok(call) if is_over(&call) => {
                    (Answer::ok(format!("{who} had already ended")), Some(call))
                }
                _ => (
                    Answer::failed(format!("{who}: {what}: Vapi refused: {e}")),
                    None,
                ),
            }
        }
    }
}

fn is_over(call: &VapiCall) -> bool {
    matches!(
        call.status.as_deref().and_then(CallStatus::from_vapi),
        Some(CallStatus::Ended)
    ) || call.status.as_deref() == Some("not-found")
}

fn over(who: &str, request: &LiveRequest) -> String {
    match (&request.call_status, &request.ended_reason) {
        (CallStatus::Ended, Some(reason)) => format!("{who} had already ended ({reason})"),
        (status, _) => format!("{who} is not live ({status})"),
    }
}

/// The update a read of the call carries, for the store.
fn update_of(call: &VapiCall) -> CallUpdate {
    super::reactions::call_update(call)
}

/// The engine's part, every tick: requests for its calls, carried out concurrently.
pub(crate) async fn serve_requests(ctx: &std::sync::Arc<Ctx>) -> Result<(), StoreError> {
    let requests = ctx
        .store
        .take_live_requests(&ctx.engine.id, REQUESTS_PER_TICK)
        .await?;
    for request in requests {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            match carry_out(&ctx.store, ctx.as_ref(), &request).await {
                Ok((answer, seen)) => {
                    let kind = EventKind::Live;
                    if answer.ok {
                        tracing::info!(target: "switchboard::engine", call_id = request.call_id, "{}", answer.line);
                    } else {
                        tracing::warn!(target: "switchboard::engine", call_id = request.call_id, "{}", answer.line);
                    }
                    ctx.gate
                        .event(kind, Some(request.call_id), None, answer.line, None);
                    if let Some(call) = seen {
                        follow(&ctx, &call).await;
                    }
                }
                Err(e) => {
                    tracing::error!(target: "switchboard::engine", "live request {} not recorded: {e}", request.id)
                }
            }
        });
    }
    Ok(())
}

/// The engine's supervisor task: every tick, the requests for its live calls; without a
/// webhook listener, the watched calls' transcripts; every second, the runaway guard.
pub(crate) async fn supervise(ctx: std::sync::Arc<Ctx>) {
    let tick = std::time::Duration::from_millis(ctx.config.dispatch.tick_ms.max(50));
    let mut last_read = HashMap::new();
    let mut guarded_at = tokio::time::Instant::now();
    // A request is a committed row: with nothing committed since the last look (the SQLite
    // file unchanged) there is none new; looked for at least every second all the same.
    let mut served: Option<(Option<crate::store::ChangeMark>, tokio::time::Instant)> = None;
    while !ctx.gate.read(|s| s.stopping) {
        let mark = ctx.store.change_mark();
        let look = served.as_ref().is_none_or(|(seen, at)| {
            mark.is_none() || mark != *seen || at.elapsed() >= std::time::Duration::from_secs(1)
        });
        if look {
            served = Some((mark, tokio::time::Instant::now()));
            if let Err(e) = serve_requests(&ctx).await {
                tracing::warn!(target: "switchboard::engine", "cannot read requests for live calls: {e}");
            }
        }
        // Watching is a committed row too (and each watched call is read every 2 s at most).
        if look
            && ctx.config.webhook.listen.is_none()
            && let Err(e) = read_watched(&ctx, &mut last_read, WATCH_EVERY).await
        {
            tracing::warn!(target: "switchboard::engine", "cannot read watched calls: {e}");
        }
        if guarded_at.elapsed() >= std::time::Duration::from_secs(1) {
            guarded_at = tokio::time::Instant::now();
            if let Err(e) = guard_all(&ctx).await {
                tracing::warn!(target: "switchboard::engine", "runaway guard: {e}");
            }
        }
        // Nothing in flight: nothing to supervise soon (a request still gets its answer).
        let idle = ctx.gate.read(|s| s.concurrency.is_idle());
        tokio::time::sleep(if idle { IDLE_TICK.max(tick) } else { tick }).await;
    }
}

/// The supervisor's pace while no call is in flight.
const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// A watched call is read from Vapi at most this often (without webhooks).
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

async fn guard_all(ctx: &Ctx) -> Result<(), StoreError> {
    if ctx.gate.read(|s| s.concurrency.active()) == 0 {
        return Ok(());
    }
    let campaigns: Vec<(i64, String)> = ctx
        .store
        .campaigns()
        .await?
        .into_iter()
        .filter(|c| c.active_calls > 0)
        .map(|c| (c.id, c.name))
        .collect();
    guard(ctx, &campaigns).await
}

/// Applies what a read of a call says (its end, its transcript).
async fn follow(ctx: &Ctx, call: &VapiCall) {
    if let Some(lines) = &call.messages
        && !lines.is_empty()
        && let Err(e) = ctx.store.set_transcript(&call.id, lines).await
    {
        tracing::warn!(target: "switchboard::engine", "transcript not kept: {e}");
    }
    match ctx
        .store
        .apply_call_update(&call.id, &update_of(call))
        .await
    {
        Ok(Some(effect)) => {
            if effect.ended {
                ctx.gate.call_ended();
            }
            if let Err(e) = super::reactions::react_to_end(ctx, &effect).await {
                tracing::error!(target: "switchboard::engine", "cannot react to an end: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(target: "switchboard::engine", "call update not recorded: {e}"),
    }
}

/// Without a webhook listener, the calls a console watches are read from Vapi, each at most
/// once per `every`, so their transcript follows the conversation.
pub(crate) async fn read_watched(
    ctx: &Ctx,
    last_read: &mut HashMap<i64, tokio::time::Instant>,
    every: std::time::Duration,
) -> Result<(), StoreError> {
    let watched = ctx.store.watched_calls(&ctx.store.now()).await?;
    let now = tokio::time::Instant::now();
    last_read.retain(|id, _| watched.iter().any(|(w, _)| w == id));
    for (call_id, provider_id) in watched {
        if last_read
            .get(&call_id)
            .is_some_and(|at| now.duration_since(*at) < every)
        {
            continue;
        }
        last_read.insert(call_id, now);
        match ctx.get_call(&provider_id).await {
            Ok(call) => {
                ctx.monitors.keep(call_id, call.monitor.as_ref());
                if let Some(cost) = call.cost {
                    ctx.live_costs.note(call_id, cost);
                }
                follow(ctx, &call).await;
            }
            Err(e) => {
                tracing::debug!(target: "switchboard::engine", call_id, "watched call not read: {e}")
            }
        }
    }
    Ok(())
}

/// The last cost Vapi gave each live call (bulk reads, watched reads), for the guard.
#[derive(Debug, Default)]
pub(crate) struct LiveCosts {
    costs: Mutex<HashMap<i64, f64>>,
}

impl LiveCosts {
    pub fn note(&self, call_id: i64, cost: f64) {
        if cost.is_finite()
            && let Ok(mut costs) = self.costs.lock()
        {
            costs.insert(call_id, cost);
        }
    }
    pub fn get(&self, call_id: i64) -> Option<f64> {
        self.costs.lock().ok()?.get(&call_id).copied()
    }
    pub fn forget(&self, call_id: i64) {
        if let Ok(mut costs) = self.costs.lock() {
            costs.remove(&call_id);
        }
    }
}

/// The runaway guard: each live call of a guarded campaign against its limits; a call past
/// one is marked and ended through its control URL (by the next tick's requests).
pub(crate) async fn guard(ctx: &Ctx, campaigns: &[(i64, String)]) -> Result<(), StoreError> {
    let now = ctx.now();
    for (campaign_id, name) in campaigns {
        let rules = ctx.store.campaign_rules(*campaign_id).await?;
        let guard = rules.guard();
        if guard.is_off() {
            continue;
        }
        for call in ctx
            .store
            .guarded_calls(*campaign_id, &ctx.engine.id)
            .await?
        {
            let since = call
                .started_at
                .as_deref()
                .or(Some(call.created_at.as_str()))
                .and_then(crate::model::text::parse_time)
                .unwrap_or(now);
            let transcript = if guard.end_on_repeats > 0 {
                ctx.store.transcript(call.call_id).await?
            } else {
                Vec::new()
            };
            let facts = LiveFacts {
                age_s: (now - since).num_milliseconds().max(0) as f64 / 1000.0,
                cost: ctx.live_costs.get(call.call_id),
                transcript: &transcript,
            };
            let Some((cause, why)) = guard.judge(&facts) else {
                continue;
            };
            if ctx.store.guard_end(call.call_id, cause).await? {
                let message = format!(
                    "campaign {name}: ending call {} ({why}): {}",
                    call.call_id,
                    cause.ended_reason()
                );
                tracing::warn!(target: "switchboard::engine", call_id = call.call_id, "{message}");
                ctx.gate
                    .event(EventKind::Live, Some(call.call_id), None, message, None);
            }
        }
    }
    Ok(())
}

/// Whether an action is allowed on a call in this status, before anything is asked: a call
/// being created can only be ended (as soon as Vapi shows it).
pub fn refuse_early(status: CallStatus, action: &LiveAction) -> Option<String> {
    if status.is_at_vapi() || (CallStatus::IN_CREATION.contains(&status) && action.ends_call()) {
        None
    } else if CallStatus::IN_CREATION.contains(&status) {
        Some(format!(
            "the call is {status}: Vapi has not shown it yet, so it can only be ended"
        ))
    } else {
        Some(format!("the call is {status}: it is not live"))
    }
}
