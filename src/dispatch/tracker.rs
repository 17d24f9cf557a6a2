//! Follows active calls to their end by polling `GET /call/{id}` on a request budget: each
//! call about every `poll_interval_ms`, never more than `poll_requests_per_second` overall.
//! (Webhooks, when configured, bring the same updates sooner; both paths are idempotent.)

use std::sync::Arc;
use std::time::Duration;

use super::Ctx;
use super::worker::{call_update, react_to_end};
use crate::store::calls::CallUpdate;
use crate::store::parse_time;
use crate::vapi::VapiError;

pub(crate) async fn run_poller(ctx: Arc<Ctx>) {
    let tracking = &ctx.config.tracking;
    let interval = Duration::from_millis(tracking.poll_interval_ms);
    let spacing = Duration::from_secs_f64(1.0 / tracking.poll_requests_per_second);
    // Calls fetched per round: what the budget allows in one interval, at least one.
    let per_round =
        ((interval.as_secs_f64() * tracking.poll_requests_per_second).ceil() as i64).max(1);
    loop {
        if ctx.gate.read(|s| s.stopping) {
            return;
        }
        let calls = match ctx.store.active_calls(per_round).await {
            Ok(calls) => calls,
            Err(e) => {
                tracing::error!(target: "switchboard::engine", "poller cannot read active calls: {e}");
                Vec::new()
            }
        };
        let now = chrono::Utc::now();
        let mut polled = 0;
        for call in calls {
            let due = parse_time(&call.updated_at)
                .is_none_or(|t| (now - t).to_std().unwrap_or(Duration::ZERO) >= interval);
            // Calls come least recently updated first: the rest are not due either.
            if !due {
                break;
            }
            let Some(provider_id) = call.provider_call_id.as_deref() else {
                continue;
            };
            polled += 1;
            match ctx.vapi.get_call(provider_id).await {
                Ok(remote) => {
                    match ctx
                        .store
                        .apply_call_update(provider_id, &call_update(&remote))
                        .await
                    {
                        Ok(Some(effect)) => {
                            if effect.ended {
                                ctx.gate.call_ended();
                                tracing::info!(target: "switchboard::engine", call_id = call.id, reason = effect.ended_reason.as_deref().unwrap_or(""), "call ended");
                            }
                            if let Err(e) = react_to_end(&ctx, &effect).await {
                                tracing::error!(target: "switchboard::engine", "cannot record a quota stop: {e}");
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(target: "switchboard::engine", call_id = call.id, "cannot record a call update: {e}")
                        }
                    }
                }
                Err(e) if e.is_rate_limited() => {
                    ctx.gate.on_rate_limited(e.retry_after());
                    tracing::warn!(target: "switchboard::engine", "polling rate limited (429): the engine backs off");
                    break;
                }
                Err(e) => {
                    if let VapiError::Status { status: 404, .. } = e {
                        tracing::warn!(target: "switchboard::engine", call_id = call.id, provider_id, "Vapi does not know this call (404)");
                    } else {
                        tracing::warn!(target: "switchboard::engine", call_id = call.id, "poll failed: {e}");
                    }
                    // Touch the row so the next round polls other calls first.
                    let _ = ctx
                        .store
                        .apply_call_update(provider_id, &CallUpdate::default())
                        .await;
                }
            }
            if !ctx.gate.sleep(spacing).await {
                return;
            }
        }
        if polled == 0 {
            if ctx.gate.read(|s| s.active == 0 && s.creating == 0) {
                // Nothing at Vapi: sleep until something changes (a call is created).
                ctx.gate.changed(Duration::from_secs(2)).await;
            } else if !ctx
                .gate
                .sleep(interval.min(Duration::from_millis(250)))
                .await
            {
                // New calls become due one interval after creation: look again shortly.
                return;
            }
        }
    }
}
