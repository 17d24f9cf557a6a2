//! Optional webhook listener for Vapi server messages (`status-update`,
//! `end-of-call-report`). The shared secret comes from an environment variable and is checked
//! against `X-Vapi-Secret`; a wrong secret gets 401 and changes nothing. Duplicated and
//! out-of-order messages are harmless: the store never moves a call backwards.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Deserialize;

use super::Ctx;
use super::worker::react_to_end;
use crate::config::Secret;
use crate::model::CallStatus;
use crate::store::calls::CallUpdate;

#[derive(Clone)]
struct WebhookState {
    ctx: Arc<Ctx>,
    secret: Secret,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    message: Message,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    call: Option<CallRef>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    ended_reason: Option<String>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    ended_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CallRef {
    id: String,
}

/// Binds `addr` and serves until the engine stops. Returns the bound address.
pub(crate) async fn serve(
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    secret: Secret,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(ctx.clone(), secret);
    tokio::spawn(async move {
        let stopped = async move {
            while !ctx.gate.read(|s| s.stopping) {
                ctx.gate
                    .changed(std::time::Duration::from_millis(500))
                    .await;
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(target: "switchboard::engine", "webhook listener failed: {e}");
        }
    });
    tracing::info!(target: "switchboard::engine", %bound, "webhook listener started");
    Ok(bound)
}

fn router(ctx: Arc<Ctx>, secret: Secret) -> Router {
    Router::new()
        .route("/webhook", post(receive))
        .route("/", post(receive))
        .with_state(WebhookState { ctx, secret })
}

async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let given = headers
        .get("x-vapi-secret")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), state.secret.expose().as_bytes()) {
        tracing::warn!(target: "switchboard::engine", "webhook rejected: wrong or missing X-Vapi-Secret");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(envelope) = serde_json::from_str::<Envelope>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let message = envelope.message;
    let Some(call) = message.call else {
        return StatusCode::OK;
    };
    let update = match message.kind.as_str() {
        "status-update" => CallUpdate {
            status: message.status.as_deref().and_then(CallStatus::from_vapi),
            ended_reason: message.ended_reason,
            cost_usd: None,
            started_at: None,
            ended_at: None,
        },
        "end-of-call-report" => CallUpdate {
            status: Some(CallStatus::Ended),
            ended_reason: message.ended_reason,
            cost_usd: message.cost.filter(|c| c.is_finite() && *c >= 0.0),
            started_at: message.started_at,
            ended_at: message.ended_at,
        },
        // Other server messages (transcripts, tool calls...) are not ours to handle.
        _ => return StatusCode::OK,
    };
    match state.ctx.store.apply_call_update(&call.id, &update).await {
        Ok(Some(effect)) => {
            if effect.ended {
                state.ctx.gate.call_ended();
            }
            if let Err(e) = react_to_end(&state.ctx, &effect).await {
                tracing::error!(target: "switchboard::engine", "cannot record a quota stop: {e}");
            }
            StatusCode::OK
        }
        Ok(None) => StatusCode::OK,
        Err(e) => {
            tracing::error!(target: "switchboard::engine", "webhook update not recorded: {e}");
            // Vapi retries on 5xx: the update is not lost.
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
