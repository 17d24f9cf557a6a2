//! The engine's service endpoints on `metrics.listen`: `/metrics` (Prometheus's text format,
//! metrics.rs), `/healthz` answers while the process
//! serves requests at all; `/readyz` answers 200 only while the engine can dispatch (the
//! database answers, the lease is this engine's, Vapi has not refused the key, the webhook
//! listener is up when configured, and it is not stopping), else 503, with each check in a
//! JSON body. The listener is bound before the lease is taken, like the webhook's.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::{Ctx, EngineError};
use crate::config::Config;
use crate::model::StopCause;

/// Binds `metrics.listen`, if set (nothing is served yet).
pub(crate) async fn bind(config: &Config) -> Result<Option<tokio::net::TcpListener>, EngineError> {
    let Some(listen) = &config.metrics.listen else {
        return Ok(None);
    };
    let bad = |source| EngineError::Listener {
        what: "metrics.listen",
        addr: listen.clone(),
        source,
    };
    let addr: SocketAddr = listen.parse().map_err(|e: std::net::AddrParseError| {
        bad(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    })?;
    Ok(Some(
        tokio::net::TcpListener::bind(addr).await.map_err(bad)?,
    ))
}

/// What `/readyz` needs besides the engine's shared state.
#[derive(Clone)]
struct Served {
    ctx: Arc<Ctx>,
    webhook_up: bool,
}

/// Serves the endpoints until the engine stops; returns where.
pub(crate) fn serve(
    ctx: Arc<Ctx>,
    listener: tokio::net::TcpListener,
    webhook_up: bool,
) -> Result<SocketAddr, EngineError> {
    let bound = listener
        .local_addr()
        .map_err(|source| EngineError::Listener {
            what: "metrics.listen",
            addr: ctx.config.metrics.listen.clone().unwrap_or_default(),
            source,
        })?;
    let prometheus = super::metrics::install();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move || async move {
                let body = prometheus.map(|h| h.render()).unwrap_or_default();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    body,
                )
            }),
        )
        .with_state(Served {
            ctx: ctx.clone(),
            webhook_up,
        });
    super::serve_until_stopping(ctx, listener, app, "health listener");
    tracing::info!(target: "switchboard::engine", %bound, "health endpoints served (/healthz, /readyz)");
    Ok(bound)
}

/// The checks of `/readyz`, each true when it passes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    pub database: bool,
    pub lease: bool,
    pub vapi_key: bool,
    pub webhook: bool,
    pub not_stopping: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database && self.lease && self.vapi_key && self.webhook && self.not_stopping
    }
}

async fn readyz(State(served): State<Served>) -> (StatusCode, String) {
    let ctx = &served.ctx;
    let lease = ctx.store.holds_lease(&ctx.engine).await;
    let (stopping, key_refused) = ctx.gate.read(|s| {
        let refused = s
            .paused
            .as_ref()
            .is_some_and(|p| p.cause == StopCause::Credentials);
        (s.stopping, refused)
    });
    let readiness = Readiness {
        database: lease.is_ok(),
        lease: lease.unwrap_or(false),
        vapi_key: !key_refused,
        webhook: ctx.config.webhook.listen.is_none() || served.webhook_up,
        not_stopping: !stopping,
    };
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": readiness.ready(), "checks": readiness });
    (status, format!("{body}\n"))
}
