//! What the engine does about what Vapi says, in one place: a call's end by its ended
//! reason's class (re-queue, bench its number, pause its campaign, count against its
//! assistant), a refused number benched, a campaign or all dispatch paused. The attempt
//! worker, the tracker, the webhook receiver and the claim loop all call these.

use chrono::{DateTime, Utc};

use super::Ctx;
use super::snapshot::EventKind;
use super::streaks::{Baseline, QuickHangupRule};
use crate::model::{CallStatus, EndedClass, Pause, StopCause};
use crate::store::StoreError;
use crate::store::calls::{CallUpdate, UpdateEffect};
use crate::vapi::VapiCall;

/// How long an ended conversation's end-of-call report is waited for (Vapi sends it seconds
/// after the end): `--until-done` does not exit meanwhile, since it may ask for a callback.
pub(crate) const REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What an ended call asks of the engine, by its ended reason's class.
pub(crate) async fn react_to_end(ctx: &Ctx, effect: &UpdateEffect) -> Result<(), StoreError> {
    if effect.ended {
        ctx.gate.wake();
        ctx.monitors.forget(effect.call_id);
        ctx.live_costs.forget(effect.call_id);
    }
    let Some(class) = effect.class else {
        return Ok(());
    };
    let reason = effect.ended_reason.as_deref().unwrap_or("");
    let conversation =
        crate::model::is_conversation(reason) || (effect.answered && reason != "voicemail");
    if effect.ended
        && class == EndedClass::Outcome
        && conversation
        && ctx.config.webhook.listen.is_some()
        && !ctx.store.has_analysis(effect.call_id).await?
    {
        let now = tokio::time::Instant::now();
        ctx.gate
            .update(|s| s.awaiting_reports.insert(effect.call_id, now));
    }
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
        EndedClass::Outcome | EndedClass::AssistantFault | EndedClass::EndedBySwitchboard => {
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
                let active = s.concurrency.active();
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
        EndedClass::CampaignStop { cause, why } => {
            let pause = Pause::new(cause, why);
            pause_campaign(ctx, effect.campaign_id, Some(effect.call_id), &pause).await
        }
        EndedClass::NumberStop { why, next_day } => {
            let until = bench_until(ctx, ctx.now(), next_day);
            bench(
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
    let until = bench_until(ctx, ctx.now(), false);
    bench(ctx, campaign_id, call_id, number, until, &why).await
}

/// An answered call, for the campaign's two health signals, never mixed: an assistant fault
/// (a pipeline or provider error after the answer) counts against the assistant at
/// `assistant_failure_share`; the person hanging up within `quick_hangup_ms` is measured
/// against the campaign's own baseline of quick hang-ups. Either pauses the campaign.
async fn assistant_health(
    ctx: &Ctx,
    effect: &UpdateEffect,
    class: EndedClass,
    reason: &str,
) -> Result<(), StoreError> {
    let d = &ctx.config.dispatch;
    let fault = match class {
        EndedClass::AssistantFault => true,
        EndedClass::Outcome => false,
        EndedClass::NeverRang
        | EndedClass::Concurrency
        | EndedClass::CampaignStop { .. }
        | EndedClass::NumberStop { .. }
        | EndedClass::Unclassified
        | EndedClass::EndedBySwitchboard => return Ok(()),
    };
    let verdict = ctx.gate.update(|s| {
        s.health.note(
            effect.campaign_id,
            fault,
            d.assistant_failure_window,
            d.assistant_failure_share,
        )
    });
    if let Some((failures, window)) = verdict {
        let why = format!(
            "assistant faults: the assistant failed {failures} of the last {window} answered calls, above the limit of {:.0} % (pipeline or provider errors after the answer; latest: {reason}): fix the assistant, then resume",
            d.assistant_failure_share * 100.0
        );
        let pause = Pause::new(StopCause::Engine, why);
        return pause_campaign(ctx, effect.campaign_id, Some(effect.call_id), &pause).await;
    }
    if d.quick_hangup_ms == 0 || fault {
        return Ok(());
    }
    let quick = is_quick_hangup(reason, effect.talk_ms, d.quick_hangup_ms);
    if ctx
        .gate
        .update(|s| s.quick_hangups.needs_baseline(effect.campaign_id))
    {
        let first = ctx
            .store
            .first_answered_calls(effect.campaign_id, d.quick_hangup_baseline_calls * 2)
            .await?;
        if let Some(baseline) =
            baseline_of(&first, d.quick_hangup_baseline_calls, d.quick_hangup_ms)
        {
            ctx.gate
                .update(|s| s.quick_hangups.set_baseline(effect.campaign_id, baseline));
        }
    }
    let rule = QuickHangupRule {
        window: d.quick_hangup_window,
        rise: d.quick_hangup_rise,
        ceiling: d.quick_hangup_ceiling,
    };
    let tripped = ctx
        .gate
        .update(|s| s.quick_hangups.note(effect.campaign_id, quick, rule));
    if let Some(t) = tripped {
        let against = match t.baseline {
            Some(b) if d.quick_hangup_ceiling.is_none() => format!(
                "its baseline of {:.0} % ({} of its first {} answered calls) plus {:.0} points",
                b.share() * 100.0,
                b.quick,
                b.of,
                d.quick_hangup_rise * 100.0
            ),
            _ => "the configured ceiling".to_string(),
        };
        let why = format!(
            "quick hang-ups: people ended {} of the last {} answered calls within {} s ({:.0} %), above {:.0} %, {against}: check the assistant's first message and voice, then resume",
            t.quick,
            t.window,
            d.quick_hangup_ms as f64 / 1000.0,
            t.quick as f64 * 100.0 / t.window as f64,
            t.limit * 100.0,
        );
        let pause = Pause::new(StopCause::Engine, why);
        pause_campaign(ctx, effect.campaign_id, Some(effect.call_id), &pause).await?;
    }
    Ok(())
}

/// The person ended the call within `quick_ms` of the answer.
fn is_quick_hangup(reason: &str, talk_ms: Option<i64>, quick_ms: u64) -> bool {
    reason == "customer-ended-call" && talk_ms.is_some_and(|t| t < quick_ms as i64)
}

/// The baseline from a campaign's first answered calls (oldest first): the share of quick
/// hang-ups among its first `calls` conversations, once it has had that many.
fn baseline_of(first: &[(String, Option<i64>)], calls: u32, quick_ms: u64) -> Option<Baseline> {
    let answered: Vec<bool> = first
        .iter()
        .filter(|(reason, _)| {
            crate::model::classify_ended_reason(reason, true) == EndedClass::Outcome
        })
        .map(|(reason, talk)| is_quick_hangup(reason, *talk, quick_ms))
        .take(calls as usize)
        .collect();
    (answered.len() == calls as usize).then(|| Baseline {
        quick: answered.iter().filter(|q| **q).count(),
        of: answered.len(),
    })
}

/// When a bench ends: the next midnight in the daily limit's zone, or after the cool-down.
pub(crate) fn bench_until(ctx: &Ctx, at: DateTime<Utc>, next_day: bool) -> DateTime<Utc> {
    if next_day {
        let zone = ctx
            .config
            .dispatch
            .daily_limit_time_zone
            .parse::<chrono_tz::Tz>()
            .unwrap_or(chrono_tz::UTC);
        crate::store::numbers::next_day(at, zone)
    } else {
        at + chrono::Duration::seconds(ctx.config.dispatch.number_cooldown_s as i64)
    }
}

/// Benches `number` of a campaign until `until`; pauses the campaign when it was the last
/// usable one.
pub(crate) async fn bench(
    ctx: &Ctx,
    campaign_id: i64,
    call_id: Option<i64>,
    number: &str,
    until: DateTime<Utc>,
    why: &str,
) -> Result<(), StoreError> {
    let now = ctx.now();
    let usable = ctx
        .store
        .bench_number(campaign_id, number, until, why, now)
        .await?;
    let until_text = until.format("%Y-%m-%d %H:%M UTC");
    let message = format!(
        "phone number {number} of campaign #{campaign_id} benched until {until_text}: {why}; {usable} other number(s) usable"
    );
    tracing::warn!(target: "switchboard::engine", "{message}");
    ctx.gate
        .event(EventKind::Quota, call_id, None, message, None);
    if usable == 0 {
        let reason = format!(
            "every phone number of the campaign is benched (latest: {number} until {until_text}, {why}); resume once one is back, or add numbers with `campaign edit --phone-number-id`"
        );
        let pause = Pause::new(StopCause::Engine, reason);
        pause_campaign(ctx, campaign_id, call_id, &pause).await?;
    }
    Ok(())
}

/// Pauses a campaign with its cause and reason (once), and stops admitting its calls at once.
pub(crate) async fn pause_campaign(
    ctx: &Ctx,
    campaign_id: i64,
    call_id: Option<i64>,
    pause: &Pause,
) -> Result<(), StoreError> {
    ctx.gate.update(|s| {
        s.dialing.remove(&campaign_id);
        s.claimable.remove(&campaign_id);
    });
    if ctx.store.pause_campaign(campaign_id, pause).await? {
        let message = format!("campaign #{campaign_id} paused: {pause}");
        tracing::warn!(target: "switchboard::engine", "{message}");
        ctx.gate
            .event(EventKind::Quota, call_id, None, message, None);
    }
    Ok(())
}

/// Pauses all dispatch (every engine on the database): every call would fail the same way.
pub(crate) async fn pause_dispatch(ctx: &Ctx, pause: Pause) -> Result<(), StoreError> {
    ctx.store.set_dispatch_paused(Some(&pause)).await?;
    tracing::error!(target: "switchboard::engine", "{pause}");
    let reason = pause.reason.clone();
    ctx.gate.update(|s| s.paused = Some(pause));
    ctx.gate.event(EventKind::Pause, None, None, reason, None);
    Ok(())
}

/// What a Call object says, as a store update.
pub fn call_update(call: &VapiCall) -> CallUpdate {
    CallUpdate {
        status: call.status.as_deref().and_then(CallStatus::from_vapi),
        ended_reason: call.ended_reason.clone(),
        cost_usd: call.cost.filter(|c| c.is_finite() && *c >= 0.0),
        started_at: call.started_at.clone(),
        ended_at: call.ended_at.clone(),
    }
}
