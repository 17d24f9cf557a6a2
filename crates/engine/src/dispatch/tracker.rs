//! Follows calls at Vapi to their end with few requests, whatever their number:
//!
//! - **Bulk reads**: when the read plan (read_plan.rs) says one is worth its request, one
//!   `GET /call?assistantId&phoneNumberId&updatedAtGe=<cursor − overlap>` per assistant/
//!   phone-number pair with calls to follow returns every call that changed since the last
//!   read; a full page splits the window, like the look-up, and a call read again unchanged
//!   is not written again. A pair stays followed for a while after its last call ended, so the final
//!   cost (Vapi adds analysis costs after `ended`, and `updatedAt` moves) is read too.
//! - **Fallback**: a call the bulk reads have not returned for `fallback_after_ms` is read on
//!   its own with `GET /call/{id}` (within `poll_requests_per_second`).
//! - **Vanished and overdue**: a call Vapi answers 404 (or `not-found`) for, or one still
//!   active long past any possible duration, is closed with a reason and frees its slot.
//!
//! Webhooks, when configured, bring the same updates sooner; every path is idempotent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Ctx;
use super::live_set::LiveSet;
use super::reactions::{call_update, react_to_end};
use super::read_plan::{Durations, Situation, next_read_after};
use crate::model::{CallStatus, local_reason};
use crate::store::analysis::CallAnalysis;
use crate::store::calls::CallUpdate;
use crate::store::parse_time;
use crate::vapi::search::{Field, Incomplete, Window, walk_window};
use crate::vapi::{VapiCall, VapiError};

/// While waiting for the next read, the plan is made again this often (calls created
/// meanwhile may end soon).
const REPLAN_EVERY: Duration = Duration::from_millis(50);
/// Re-read a little before the last read's start: Vapi's clock and ours differ, and a call
/// may change while a read is under way.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(3);
/// A pair is still read this long after its last active call (the final cost comes later).
const FOLLOW_AFTER_END: Duration = Duration::from_secs(300);
/// Most requests one bulk read of a pair may make (a full page splits the window).
const BULK_MAX_REQUESTS: usize = 20;
const BULK_PAGE: u32 = 1000;
/// Overdue margin past the longest possible call.
const OVERDUE_MARGIN: chrono::Duration = chrono::Duration::minutes(10);

/// One assistant/phone-number pair's read cursor.
#[derive(Debug)]
struct Cursor {
    /// The next bulk read asks for calls updated at or after this (minus the overlap).
    since: DateTime<Utc>,
    /// Last time the pair had an active call.
    last_active: tokio::time::Instant,
}

pub(crate) async fn run_poller(ctx: Arc<Ctx>) {
    let mut cursors: HashMap<(String, String), Cursor> = HashMap::new();
    let mut memory = Memory::default();
    let mut live = LiveSet::default();
    let mut fallback = Fallback::new(ctx.config.tracking.poll_requests_per_second);
    loop {
        if ctx.gate.read(|s| s.stopping) {
            return;
        }
        let round = tokio::time::Instant::now();
        // Calls created from here on are in the store's list below.
        ctx.gate.update(|s| s.created_since_read.clear());
        let now_wall = ctx.now();
        if let Err(e) = live.refresh(&ctx.store, &ctx.engine.id, now_wall).await {
            tracing::error!(target: "switchboard::engine", "tracker cannot read live calls: {e}");
        }
        // Pairs with live calls are followed; so is a pair whose calls ended recently.
        let mut followed = pairs_with_calls(&live, now_wall);
        for (pair, created) in ctx.gate.update(|s| std::mem::take(&mut s.new_pairs)) {
            followed
                .entry(pair)
                .and_modify(|t| *t = (*t).min(created))
                .or_insert(created);
        }
        for (pair, oldest) in followed {
            let cursor = cursors.entry(pair).or_insert_with(|| Cursor {
                since: oldest,
                last_active: round,
            });
            cursor.last_active = round;
        }
        cursors.retain(|_, c| round.saturating_duration_since(c.last_active) < FOLLOW_AFTER_END);

        let Pass {
            seen,
            ended,
            rate_limited,
        } = read_pairs(&ctx, &mut cursors, &mut memory).await;
        let closed = close_overdue(&ctx, &live, &seen, now_wall).await;
        live.forget(&ended, &closed);
        if !rate_limited && !fallback.read_unchanged(&ctx, &seen).await {
            return;
        }

        let idle = live.is_empty() && cursors.is_empty();
        if idle && ctx.gate.read(|s| s.concurrency.is_idle()) {
            // Nothing at Vapi: sleep until something changes (a call is created).
            ctx.gate.changed(Duration::from_secs(2)).await;
            continue;
        }
        // The next read when ends are likely (read_plan), planned again as calls are created.
        let born: Vec<DateTime<Utc>> = live
            .calls()
            .map(|c| parse_time(&c.created_at).unwrap_or(now_wall))
            .collect();
        if !wait_for_next_read(&ctx, round, born, &memory.durations).await {
            return;
        }
    }
}

/// Closes the calls still live long past any possible duration that this round's reads did
/// not see changing; returns their ids.
async fn close_overdue(
    ctx: &Ctx,
    live: &LiveSet,
    seen: &HashSet<String>,
    now: DateTime<Utc>,
) -> HashSet<i64> {
    let longest =
        chrono::Duration::seconds(ctx.config.tracking.max_call_duration_s as i64) + OVERDUE_MARGIN;
    let overdue: Vec<i64> = live
        .calls()
        .filter(|c| {
            c.provider_call_id
                .as_ref()
                .is_none_or(|p| !seen.contains(p))
        })
        .filter(|c| parse_time(&c.created_at).is_some_and(|t| now - t > longest))
        .map(|c| c.id)
        .collect();
    for &call_id in &overdue {
        close(ctx, call_id, local_reason::OVERDUE).await;
    }
    overdue.into_iter().collect()
}

/// The per-call reads of calls no bulk read has shown changed for `fallback_after_ms`
/// (a call Vapi lost is found this way), at most `poll_requests_per_second`: a round makes
/// the reads its share of that rate allows, and waits for none of them to be spaced.
struct Fallback {
    per_second: f64,
    allowance: f64,
    since: tokio::time::Instant,
}

impl Fallback {
    fn new(per_second: f64) -> Fallback {
        Fallback {
            per_second,
            allowance: 0.0,
            since: tokio::time::Instant::now(),
        }
    }

    /// False when stopping.
    async fn read_unchanged(&mut self, ctx: &Ctx, seen: &HashSet<String>) -> bool {
        let now = tokio::time::Instant::now();
        // At most a second's worth (and one read) is saved up.
        self.allowance = (self.allowance
            + now.saturating_duration_since(self.since).as_secs_f64() * self.per_second)
            .min(self.per_second.max(1.0));
        self.since = now;
        if self.allowance < 1.0 {
            return true;
        }
        let fallback_after =
            chrono::Duration::milliseconds(ctx.config.tracking.fallback_after_ms as i64);
        let before = ctx.now() - fallback_after;
        let limit = self.allowance as i64 + seen.len().min(1_000) as i64;
        let unchanged = match ctx
            .store
            .unchanged_calls(&ctx.engine.id, before, limit)
            .await
        {
            Ok(calls) => calls,
            Err(e) => {
                tracing::error!(target: "switchboard::engine", "tracker cannot read unchanged calls: {e}");
                return true;
            }
        };
        for call in unchanged {
            if self.allowance < 1.0 {
                break;
            }
            let Some(provider_id) = call.provider_call_id.as_deref() else {
                continue;
            };
            if seen.contains(provider_id) {
                continue;
            }
            if ctx.gate.read(|s| s.stopping) {
                return false;
            }
            self.allowance -= 1.0;
            read_one(ctx, call.id, provider_id).await;
        }
        true
    }
}

/// What the tracker's reads taught it, kept across rounds.
#[derive(Default)]
struct Memory {
    /// What each call read lately was last recorded as, and the calls whose analysis is
    /// settled: a bulk read returns a call again for as long as its update is inside the
    /// overlap, and re-recording it would cost a write each time (and delay the ends behind).
    recorded: HashMap<String, CallUpdate>,
    analysed: HashSet<String>,
    durations: Durations,
}

/// What one round's bulk reads saw.
struct Pass {
    seen: HashSet<String>,
    ended: HashSet<String>,
    rate_limited: bool,
}

/// One bulk read per followed pair; what changed is recorded (ends first).
async fn read_pairs(
    ctx: &Ctx,
    cursors: &mut HashMap<(String, String), Cursor>,
    memory: &mut Memory,
) -> Pass {
    let mut pass = Pass {
        seen: HashSet::new(),
        ended: HashSet::new(),
        rate_limited: false,
    };
    for ((assistant, number), cursor) in cursors.iter_mut() {
        let read_at = ctx.now();
        match bulk_read(ctx, assistant, number, cursor.since - OVERLAP, read_at).await {
            Ok(mut calls) => {
                cursor.since = read_at;
                // Ends first: each frees a slot a contact may be waiting for.
                calls.sort_by_key(|c| c.status.as_deref() != Some("ended"));
                for call in calls {
                    record_read(ctx, &call, memory, &mut pass).await;
                }
            }
            Err(e) => {
                pass.rate_limited |= e.is_rate_limited();
                tracing::warn!(target: "switchboard::engine", "bulk read of calls failed (per-call reads take over until it works): {e}");
            }
        }
    }
    // A call no read returned any more is not read again unless it changes.
    memory.recorded.retain(|id, _| pass.seen.contains(id));
    memory.analysed.retain(|id| pass.seen.contains(id));
    pass
}

/// Records what a bulk read said of one call, unless it said the same last time.
async fn record_read(ctx: &Ctx, call: &VapiCall, memory: &mut Memory, pass: &mut Pass) {
    pass.seen.insert(call.id.clone());
    let update = call_update(call);
    if update.status == Some(CallStatus::Ended) {
        let known = memory.recorded.get(&call.id).and_then(|u| u.status);
        if known != Some(CallStatus::Ended)
            && let Some(secs) = duration_at_vapi(call)
        {
            memory.durations.observe(secs);
        }
        pass.ended.insert(call.id.clone());
    }
    if memory.recorded.get(&call.id) != Some(&update)
        && apply(ctx, &call.id, &update, call.status.as_deref()).await
    {
        memory.recorded.insert(call.id.clone(), update);
    }
    if !memory.analysed.contains(&call.id) && keep_analysis(ctx, call).await {
        memory.analysed.insert(call.id.clone());
    }
}

/// Waits until the read plan says the next round is due (`born`: when each live call was
/// created; calls created meanwhile are added as they come). False when stopping.
async fn wait_for_next_read(
    ctx: &Ctx,
    round: tokio::time::Instant,
    mut born: Vec<DateTime<Utc>>,
    durations: &Durations,
) -> bool {
    let interval = Duration::from_millis(ctx.config.tracking.poll_interval_ms);
    let webhooks = ctx.config.webhook.listen.is_some();
    loop {
        born.extend(
            ctx.gate
                .update(|s| std::mem::take(&mut s.created_since_read)),
        );
        let now = ctx.now();
        let ages: Vec<f64> = born
            .iter()
            .map(|b| (now - *b).num_milliseconds().max(0) as f64 / 1000.0)
            .collect();
        let situation = ctx.gate.read(|s| {
            let cap = i64::from(s.quota.concurrency_cap());
            Situation {
                interval,
                live: ages.len(),
                // Contacts wait for a slot ("nearly" all taken: once the first ends of a
                // wave are read and their slots refilled, the rest is still ending), or none
                // wait and the ends are what completes the campaigns. Otherwise the
                // dispatcher has free slots: reads would only spend its requests.
                ends_matter: s.claimable.is_empty() || s.concurrency.in_use() * 5 >= cap * 4,
                webhooks,
            }
        });
        let left = next_read_after(&situation, durations, &ages).saturating_sub(round.elapsed());
        if left.is_zero() {
            return true;
        }
        if !ctx.gate.sleep(left.min(REPLAN_EVERY)).await {
            return false;
        }
    }
}

/// How long a call lasted at Vapi (its own `createdAt` to `endedAt`), in seconds.
fn duration_at_vapi(call: &VapiCall) -> Option<f64> {
    let created = parse_time(call.created_at.as_deref()?)?;
    let ended = parse_time(call.ended_at.as_deref()?)?;
    Some((ended - created).num_milliseconds() as f64 / 1000.0)
}

/// The pairs the live calls were made with, each with its earliest creation (`now` for a
/// call whose creation time cannot be read): where a new pair's cursor starts.
fn pairs_with_calls(
    live: &LiveSet,
    now: DateTime<Utc>,
) -> HashMap<(String, String), DateTime<Utc>> {
    let mut out: HashMap<(String, String), DateTime<Utc>> = HashMap::new();
    for call in live.calls() {
        let Some(pair) = live.pair_of(call) else {
            continue;
        };
        let created = parse_time(&call.created_at).unwrap_or(now);
        out.entry(pair)
            .and_modify(|t| *t = (*t).min(created))
            .or_insert(created);
    }
    out
}

async fn bulk_read(
    ctx: &Ctx,
    assistant: &str,
    number: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<crate::vapi::VapiCall>, Incomplete> {
    let window = Window {
        field: Field::UpdatedAt,
        assistant_id: assistant,
        phone_number_id: number,
        from,
        to,
        page: BULK_PAGE,
        max_requests: BULK_MAX_REQUESTS,
    };
    let mut calls = Vec::new();
    let (walk, _) = walk_window(&ctx.lister(), &window, |page| {
        calls.extend_from_slice(page);
        false
    })
    .await;
    walk.map(|()| calls)
}

/// Reads one call on its own (the fallback).
async fn read_one(ctx: &Ctx, call_id: i64, provider_id: &str) {
    match ctx.get_call(provider_id).await {
        Ok(remote) => {
            apply(
                ctx,
                provider_id,
                &call_update(&remote),
                remote.status.as_deref(),
            )
            .await;
            keep_analysis(ctx, &remote).await;
        }
        // Read only after `fallback_after_ms` without news: a call Vapi no longer knows by
        // then has vanished (it is not being created any more).
        Err(VapiError::Status { status: 404, .. }) => {
            close(ctx, call_id, local_reason::VANISHED).await;
        }
        Err(e) => {
            tracing::warn!(target: "switchboard::engine", call_id, "poll failed: {e}");
        }
    }
}

/// Keeps the analysis an ended call carries when read (without webhooks this is the only
/// way it arrives): what follows the conversation (a callback, a follow-up) is decided then.
/// True once nothing more is to be kept from this call (kept, or not wanted).
async fn keep_analysis(ctx: &Ctx, call: &VapiCall) -> bool {
    let Some(analysis) = call.analysis.as_ref().filter(|a| a.is_object()) else {
        return false;
    };
    // With a webhook listener the end-of-call report is the source (it also carries the tool
    // calls a callback tool books through): a read only stands in for a report that has not
    // come within the wait.
    if ctx.config.webhook.listen.is_some() {
        let ended = call.ended_at.as_deref().and_then(parse_time);
        let waited = ended.is_some_and(|e| {
            (ctx.now() - e).to_std().unwrap_or_default() >= super::reactions::REPORT_WAIT
        });
        if !waited {
            return false;
        }
    }
    let Some(found) = CallAnalysis::from_report(&serde_json::json!({ "analysis": analysis }))
    else {
        return false;
    };
    let kept = match ctx.store.analysis_wanted(&call.id).await {
        Ok(false) => return true,
        Ok(true) => ctx.store.record_analysis(&call.id, &found).await,
        Err(e) => Err(e),
    };
    match kept {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(target: "switchboard::engine", "analysis of a call read not kept (read again next round): {e}");
            false
        }
    }
}

/// Applies what Vapi said about a call we know (other calls of the pair are ignored).
/// True once it is recorded against one of our calls (the same update need not be applied
/// again).
async fn apply(ctx: &Ctx, provider_id: &str, update: &CallUpdate, status: Option<&str>) -> bool {
    if status == Some("not-found") {
        if let Ok(Some(call)) = ctx.store.call_by_provider_id(provider_id).await
            && call.status.is_at_vapi()
        {
            close(ctx, call.id, local_reason::VANISHED).await;
        }
        return false;
    }
    match ctx.store.apply_call_update(provider_id, update).await {
        Ok(Some(effect)) => {
            if let Some(cost) = update.cost_usd.filter(|_| !effect.ended) {
                ctx.live_costs.note(effect.call_id, cost);
            }
            if effect.ended {
                ctx.gate.call_ended();
                tracing::info!(target: "switchboard::engine", call_id = effect.call_id, reason = effect.ended_reason.as_deref().unwrap_or(""), "call ended");
            }
            match react_to_end(ctx, &effect).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(target: "switchboard::engine", "cannot react to a call's end: {e}");
                    false
                }
            }
        }
        // Not ours, or not linked to its row yet (a late-created call a look-up will adopt):
        // applied again when read again.
        Ok(None) => false,
        Err(e) => {
            tracing::error!(target: "switchboard::engine", provider_id, "cannot record a call update (read again next round): {e}");
            false
        }
    }
}

/// Closes a call Vapi no longer reports (vanished) or that cannot still be running (overdue).
async fn close(ctx: &Ctx, call_id: i64, reason: &str) {
    match ctx.store.close_at_vapi(call_id, reason).await {
        Ok(effect) => {
            if effect.ended {
                ctx.gate.call_ended();
            }
            let message = format!("call {call_id} closed: {reason}; its slot is free");
            tracing::warn!(target: "switchboard::engine", "{message}");
            ctx.gate.event(
                super::snapshot::EventKind::Quota,
                Some(call_id),
                None,
                message,
                None,
            );
            if let Err(e) = react_to_end(ctx, &effect).await {
                tracing::error!(target: "switchboard::engine", "cannot react to a call's end: {e}");
            }
        }
        Err(e) => {
            tracing::error!(target: "switchboard::engine", call_id, "cannot close the call: {e}");
        }
    }
}
