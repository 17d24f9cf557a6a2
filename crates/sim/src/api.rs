//! The HTTP surface: routes, auth, and Vapi-shaped error bodies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::faults::Fault;
use super::query::ListFilter;
use super::state::SimState;
use super::validate::{self, Invalid};
use super::{SimConfig, SimStats};

const BAD_KEY: &str = "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.";

/// Everything the handlers share.
pub struct Shared {
    config: RwLock<SimConfig>,
    state: Arc<Mutex<SimState>>,
    /// The gateway's token bucket: (tokens, last refill).
    gateway: Mutex<(f64, Instant)>,
    /// Flips to true on shutdown, cutting short latency and hang sleeps.
    stop: watch::Receiver<bool>,
}

impl Shared {
    pub fn new(config: SimConfig, stop: watch::Receiver<bool>) -> Shared {
        Shared {
            state: Arc::new(Mutex::new(SimState::new(config.seed))),
            gateway: Mutex::new((f64::from(config.gateway_burst), Instant::now())),
            config: RwLock::new(config),
            stop,
        }
    }

    /// The current knobs. A panicking handler must not wedge the simulator, so
    /// poisoned locks are simply recovered.
    pub fn config(&self) -> SimConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_config(&self, config: SimConfig) {
        self.state().reseed(config.seed);
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    pub fn stats(&self) -> SimStats {
        self.state().snapshot(Instant::now())
    }

    /// Runs `f` on the state under its lock (never held across an await).
    pub(super) fn with_state<T>(&self, f: impl FnOnce(&mut SimState) -> T) -> T {
        f(&mut self.state())
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleep `ms`, or less if the simulator is shutting down.
    async fn pause(&self, ms: u64) {
        if ms == 0 {
            return;
        }
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = stop.wait_for(|stopping| *stopping) => {}
        }
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/call", post(create_call).get(list_calls))
        .route("/call/{id}", get(get_call))
        .route("/assistant/{id}", get(get_assistant))
        .route("/phone-number/{id}", get(get_phone_number))
        .route("/_sim/stats", get(sim_stats))
        .route(
            "/monitor/{id}/{token}/control",
            post(super::monitor::control),
        )
        .route("/monitor/{id}/{token}/listen", get(super::monitor::listen))
        .fallback(not_found)
        .with_state(shared)
}

/// The gateway in front of the API: a token bucket over every request; empty → 429.
fn gateway_refuses(shared: &Shared, config: &SimConfig) -> Option<Response> {
    if config.gateway_rps <= 0.0 || !config.gateway_rps.is_finite() {
        return None;
    }
    let mut bucket = shared
        .gateway
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    let burst = f64::from(config.gateway_burst.max(1));
    let refill = now.saturating_duration_since(bucket.1).as_secs_f64() * config.gateway_rps;
    *bucket = ((bucket.0 + refill).min(burst), now);
    if bucket.0 >= 1.0 {
        bucket.0 -= 1.0;
        return None;
    }
    drop(bucket);
    shared.state().counters().gateway_rejected += 1;
    Some(rate_limited(config))
}

/// A Cloudflare-style error page after the origin did the work.
fn server_error_page(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let page = format!(
        "<!DOCTYPE html><html><head><title>api.vapi.ai | {code}</title></head><body>\
         <h1>Error {code}</h1><p>The web server reported an error.</p>{}</body></html>",
        "<!-- padding -->".repeat(40)
    );
    (status, [("content-type", "text/html")], page).into_response()
}

async fn create_call(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.state().counters().create_requests += 1;
    if let Some(refused) = gateway_refuses(&shared, &shared.config()) {
        return refused;
    }
    shared.pause(shared.config().latency_ms).await;
    // Re-read after the latency so a set_config made meanwhile applies.
    let config = shared.config();
    if let Some(denied) = check_key(&shared, &config, &headers) {
        return denied;
    }
    let request = match validate::parse_create(&body) {
        Ok(request) => request,
        Err(invalid) => {
            shared.state().counters().rejected_400 += 1;
            return bad_request(invalid);
        }
    };
    // Resources the account does not have: Vapi answers 400 about the campaign's settings.
    let unknown = |known: &[String], id: &str| !known.is_empty() && !known.iter().any(|k| k == id);
    if unknown(&config.assistants, &request.assistant_id) {
        shared.state().counters().rejected_400 += 1;
        return vapi_error(StatusCode::BAD_REQUEST, json!("Couldn't Get Assistant."));
    }
    if unknown(&config.phone_numbers, &request.phone_number_id) {
        shared.state().counters().rejected_400 += 1;
        return vapi_error(StatusCode::BAD_REQUEST, json!("Couldn't Get Phone Number."));
    }
    let immediate = {
        let mut state = shared.state();
        match state.draw_fault(&config) {
            Some(Fault::RateLimited) => Some(rate_limited(&config)),
            Some(Fault::Unavailable) => Some(vapi_error(
                StatusCode::SERVICE_UNAVAILABLE,
                json!("Service Unavailable"),
            )),
            Some(Fault::GatewayTimeout) => Some(gateway_timeout()),
            Some(Fault::Hang) => {
                state.create(request, &config, Instant::now(), Utc::now());
                None
            }
            Some(Fault::LateCreate) => {
                // Created by a task of its own: a client that gives up drops this handler,
                // not the origin's work.
                let late = Arc::clone(&shared.state);
                let config = config.clone();
                let delay = Duration::from_millis(config.late_create_ms);
                let arrived = Instant::now();
                tokio::spawn(async move {
                    tokio::time::sleep_until(arrived + delay).await;
                    late.lock().unwrap_or_else(PoisonError::into_inner).create(
                        request,
                        &config,
                        Instant::now(),
                        Utc::now(),
                    );
                });
                None
            }
            Some(Fault::ServerErrorAfterCreate) => {
                state.create(request, &config, Instant::now(), Utc::now());
                let codes = [500, 502, 520, 521, 522, 523, 524];
                let code = codes[(state.counters().faults_5xx_after_create as usize) % codes.len()];
                Some(server_error_page(code))
            }
            None => {
                let call = state.create(request, &config, Instant::now(), Utc::now());
                Some((StatusCode::CREATED, Json(call)).into_response())
            }
        }
    };
    match immediate {
        Some(response) => response,
        None => {
            // The call exists, but the client never learns its id: it either gives up
            // first or, after `hang_ms`, gets a gateway timeout like a real proxy sends.
            tracing::debug!(
                hang_ms = config.hang_ms,
                "simulator: hanging a created call"
            );
            shared.pause(config.hang_ms).await;
            gateway_timeout()
        }
    }
}

async fn get_call(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    shared.state().counters().get_requests += 1;
    if let Some(refused) = read_refused(&shared).await {
        return refused;
    }
    if let Some(denied) = check_key(&shared, &shared.config(), &headers) {
        return denied;
    }
    let found = id
        .ok()
        .and_then(|Path(id)| shared.state().get(&id, Instant::now()));
    match found {
        Some(call) => Json(call).into_response(),
        None => vapi_error(StatusCode::NOT_FOUND, json!("Call not found")),
    }
}

async fn list_calls(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    {
        let mut state = shared.state();
        state.counters().get_requests += 1;
        state.counters().list_requests += 1;
    }
    if let Some(refused) = read_refused(&shared).await {
        return refused;
    }
    if let Some(denied) = check_key(&shared, &shared.config(), &headers) {
        return denied;
    }
    let filter = match query {
        Ok(Query(params)) => ListFilter::parse(&params),
        Err(rejection) => Err(Invalid::Message(rejection.body_text())),
    };
    match filter {
        Ok(filter) => {
            let order = shared.config().list_order;
            Json(shared.state().list(&filter, Instant::now(), order)).into_response()
        }
        Err(invalid) => {
            shared.state().counters().rejected_400 += 1;
            bad_request(invalid)
        }
    }
}

/// What every read goes through: the gateway, the read latency, an injected 429.
async fn read_refused(shared: &Shared) -> Option<Response> {
    let config = shared.config();
    if let Some(refused) = gateway_refuses(shared, &config) {
        return Some(refused);
    }
    shared.pause(config.read_latency()).await;
    let injected = {
        let mut state = shared.state();
        let hit = state.roll() < config.fault_read_429;
        if hit {
            state.counters().faults_read_429 += 1;
        }
        hit
    };
    injected.then(|| rate_limited(&config))
}

/// `GET /assistant/{id}`: any assistant when none is configured, else the known ones; all
/// share the configured prompt and first message.
async fn get_assistant(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = read_refused(&shared).await {
        return refused;
    }
    let config = shared.config();
    if let Some(denied) = check_key(&shared, &config, &headers) {
        return denied;
    }
    if !config.assistants.is_empty() && !config.assistants.contains(&id) {
        return vapi_error(StatusCode::NOT_FOUND, json!("Couldn't Get Assistant."));
    }
    let at = Utc::now().to_rfc3339();
    Json(json!({
        "id": id,
        "orgId": "sim-org",
        "createdAt": at,
        "updatedAt": at,
        "name": "Sam",
        "firstMessage": config.first_message,
        "model": {
            "provider": "openai",
            "model": "gpt-4o",
            "messages": [{"role": "system", "content": config.assistant_prompt}],
        },
    }))
    .into_response()
}

/// `GET /phone-number/{id}`: as `get_assistant`, `blocked` for the configured ones.
async fn get_phone_number(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = read_refused(&shared).await {
        return refused;
    }
    let config = shared.config();
    if let Some(denied) = check_key(&shared, &config, &headers) {
        return denied;
    }
    if !config.phone_numbers.is_empty() && !config.phone_numbers.contains(&id) {
        return vapi_error(StatusCode::NOT_FOUND, json!("Couldn't Get Phone Number."));
    }
    let status = if config.blocked_numbers.contains(&id) {
        "blocked"
    } else {
        "active"
    };
    let at = Utc::now().to_rfc3339();
    Json(json!({
        "id": id,
        "orgId": "sim-org",
        "provider": "vapi",
        "number": "+14155550199",
        "status": status,
        "name": "switchboard sim",
        "createdAt": at,
        "updatedAt": at,
    }))
    .into_response()
}

/// The simulator's own record, for tests (no auth, no latency, not counted).
async fn sim_stats(State(shared): State<Arc<Shared>>) -> Json<SimStats> {
    Json(shared.stats())
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!("Cannot {method} {}", uri.path());
    vapi_error(StatusCode::NOT_FOUND, json!(message))
}

/// `Authorization: Bearer <api_key>`, scheme case-insensitive; `Some(401)` if not.
fn check_key(shared: &Shared, config: &SimConfig, headers: &HeaderMap) -> Option<Response> {
    let key = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    if key == Some(config.api_key.as_str()) {
        return None;
    }
    shared.state().counters().rejected_401 += 1;
    Some(vapi_error(StatusCode::UNAUTHORIZED, json!(BAD_KEY)))
}

fn bad_request(invalid: Invalid) -> Response {
    let message = match invalid {
        Invalid::Fields(errors) => json!(errors),
        Invalid::Message(message) => json!(message),
    };
    vapi_error(StatusCode::BAD_REQUEST, message)
}

fn rate_limited(config: &SimConfig) -> Response {
    let mut response = vapi_error(StatusCode::TOO_MANY_REQUESTS, json!("Too Many Requests"));
    if let Some(seconds) = config.retry_after_s {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn gateway_timeout() -> Response {
    vapi_error(StatusCode::GATEWAY_TIMEOUT, json!("Gateway Timeout"))
}

/// Vapi's (NestJS) error body: `{"message": .., "error": .., "statusCode": ..}`;
/// `message` is a string or an array of strings.
fn vapi_error(status: StatusCode, message: Value) -> Response {
    let body = json!({
        "message": message,
        "error": status.canonical_reason().unwrap_or("Error"),
        "statusCode": status.as_u16(),
    });
    (status, Json(body)).into_response()
}
