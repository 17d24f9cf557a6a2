//! Shared helpers for the integration tests: fresh databases, fast configs, engines against a
//! local server, waiting on snapshots, and a scripted Vapi that runs on the test's own tokio
//! runtime so paused-time tests can see when requests arrive.
#![allow(dead_code)]

pub mod late;
pub mod pg;
pub mod process;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use switchboard::config::{Config, Secret};
use switchboard::dispatch::{self, EngineHandle, Snapshot};
use switchboard::store::Store;
use switchboard::store::contacts::NewContact;
use switchboard::vapi::VapiClient;
use tempfile::TempDir;

pub const KEY: &str = "test-key";

/// A fresh database on the backend under test (`SWITCHBOARD_TEST_BACKEND`), kept alive by
/// the returned guard: a SQLite file in a temporary directory, or a throw-away PostgreSQL
/// server. Asking for PostgreSQL without its server binaries fails the test (it was asked).
pub async fn store() -> (Store, TestDb) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    test_store(&format!("store-{n}"))
        .await
        .expect("SWITCHBOARD_TEST_BACKEND=postgres needs PostgreSQL's server binaries")
}

/// Which backend the store-level and engine-level tests run on: `SWITCHBOARD_TEST_BACKEND`
/// = `postgres` (a throw-away server per test) or `sqlite` (the default).
pub fn backend_under_test() -> &'static str {
    match std::env::var("SWITCHBOARD_TEST_BACKEND").as_deref() {
        Ok("postgres") | Ok("pg") => "postgres",
        _ => "sqlite",
    }
}

/// Keeps a test database alive: its directory, and on PostgreSQL its server.
pub struct TestDb {
    dir: TempDir,
    pub pg: Option<pg::PgServer>,
}

impl TestDb {
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

/// A fresh store on the backend under test; `None` (after a `SKIPPED:` line) when that is
/// PostgreSQL and its server binaries are missing outside CI.
pub async fn test_store(test: &str) -> Option<(Store, TestDb)> {
    let dir = tempfile::tempdir().expect("temp dir");
    if backend_under_test() == "postgres" {
        let server = pg::PgServer::start(test)?;
        let url = server.url("postgres");
        let store = Store::open_postgres(&url)
            .await
            .expect("open postgres store");
        return Some((
            store,
            TestDb {
                dir,
                pg: Some(server),
            },
        ));
    }
    let store = Store::open_in(dir.path()).await.expect("open store");
    Some((store, TestDb { dir, pg: None }))
}

/// Creates a started campaign with `n` contacts (+1415300xxxx).
pub async fn campaign(store: &Store, name: &str, n: usize) -> i64 {
    let c = store
        .create_campaign(name, "asst-1", "pn-1")
        .await
        .expect("campaign");
    let contacts: Vec<NewContact> = (0..n)
        .map(|i| NewContact {
            name: Some(format!("Contact {i}")),
            phone: format!("+1415{:07}", 3_000_000 + i + 10_000 * c.id as usize),
            extension: None,
            variables: "{}".into(),
            ..Default::default()
        })
        .collect();
    store
        .insert_contacts(c.id, &contacts)
        .await
        .expect("contacts");
    store.start_campaign(c.id).await.expect("start");
    c.id
}

/// A config for tests against `base_url`: default retry rules, fast everything else.
pub fn config(base_url: &str) -> Config {
    let mut c = Config::default();
    c.vapi.base_url = base_url.to_string();
    c.vapi.request_timeout_ms = 2_000;
    // Tests settle unknown outcomes in a second; production waits two minutes.
    c.vapi.settle_after_ms = 1_000;
    c.vapi.lookup_skew_ms = 1_000;
    c.vapi.max_requests_per_second = 1_000.0;
    // The simulated calls last milliseconds: not the assistant's fault.
    c.dispatch.quick_hangup_ms = 0;
    c.dispatch.rate_per_second = 200.0;
    c.dispatch.tick_ms = 50;
    c.tracking.poll_interval_ms = 50;
    c.tracking.poll_requests_per_second = 500.0;
    c
}

/// Shorter backoff for tests that run in real time.
pub fn fast_retries(c: &mut Config) {
    c.dispatch.backoff_ms = vec![10, 20, 40];
    c.dispatch.breaker_cooldown_ms = 100;
}

pub fn client(config: &Config, key: &str) -> VapiClient {
    VapiClient::new(
        &config.vapi.base_url,
        Secret::from(key),
        config.request_timeout(),
    )
    .expect("client")
}

pub async fn engine(config: Config, store: &Store, key: &str) -> EngineHandle {
    let vapi = client(&config, key);
    dispatch::start(config, store.clone(), vapi)
        .await
        .expect("engine starts")
}

/// Waits (up to `limit` of tokio time) for a snapshot satisfying `f`; panics with the last
/// snapshot otherwise.
pub async fn wait_for(
    engine: &EngineHandle,
    limit: Duration,
    f: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let mut rx = engine.client().snapshots();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        {
            let s = rx.borrow_and_update();
            if f(&s) {
                return s.clone();
            }
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => {
                let s = rx.borrow().clone();
                panic!("condition not met in {limit:?}; last snapshot: {s:#?}");
            }
        }
    }
}

/// Polls `condition` until it holds: a wait for evidence, never a guess at how long
/// something takes. Panics naming `what` after `limit`.
pub async fn until<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not seen in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the engine's gate has held `n` more requests back than it had: the engine
/// asked to dial `n` times and was refused each time (the evidence that a pause, a cancel or
/// a refusal is what stops it, not that it had no chance to ask).
pub async fn wait_held(engine: &EngineHandle, n: u64) {
    let from = engine.admissions_held();
    until(Duration::from_secs(15), "the gate holding requests", || {
        let held = engine.admissions_held();
        async move { held >= from + n }
    })
    .await;
}

/// The first campaign has `n` calls created at Vapi.
pub fn created(n: i64) -> impl Fn(&Snapshot) -> bool {
    move |s| s.campaigns.first().is_some_and(|c| c.created == n)
}

/// At least `n` calls created at Vapi in the first campaign.
pub fn created_at_least(n: i64) -> impl Fn(&Snapshot) -> bool {
    move |s| s.campaigns.first().is_some_and(|c| c.created >= n)
}

/// Every campaign COMPLETED and nothing in flight.
pub fn all_completed(s: &Snapshot) -> bool {
    !s.campaigns.is_empty()
        && s.creating == 0
        && s.active == 0
        && s.campaigns
            .iter()
            .all(|c| c.status == switchboard::model::CampaignStatus::Completed)
}

/// The invariants every scenario must leave: counters equal recomputed counts, no attempt in
/// flight after a clean stop, every contact PENDING or with a call.
pub async fn assert_invariants(store: &Store) {
    let mismatches = store.verify_counters().await.expect("verify");
    assert!(
        mismatches.is_empty(),
        "counters differ from rows: {mismatches:?}"
    );
    assert_eq!(
        store.in_flight_attempts().await.expect("count"),
        0,
        "attempts left in flight"
    );
}

// ---------------------------------------------------------------------------------------
// Scripted Vapi: POST /call answers from a script (then 201s); records the tokio instant of
// every request, so paused-time tests measure spacing and backoff exactly.

#[derive(Clone, Debug)]
pub enum Reply {
    Created,
    Status(u16, Option<u64>),
    /// The reply, sent this many milliseconds after the request arrived.
    After(u64, Box<Reply>),
}

#[derive(Default)]
pub struct ScriptState {
    pub script: VecDeque<Reply>,
    pub posts: Vec<(tokio::time::Instant, Value)>,
    pub gets: Vec<tokio::time::Instant>,
    pub created: Vec<Value>,
}

#[derive(Clone)]
pub struct Scripted {
    pub state: Arc<Mutex<ScriptState>>,
    pub base_url: String,
}

impl Scripted {
    pub async fn start(script: Vec<Reply>) -> Scripted {
        let state = Arc::new(Mutex::new(ScriptState {
            script: script.into(),
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/call", post(scripted_create).get(scripted_list))
            .route("/call/{id}", get(scripted_get))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Scripted {
            state,
            base_url: format!("http://{addr}"),
        }
    }

    pub fn post_times(&self) -> Vec<tokio::time::Instant> {
        self.state
            .lock()
            .unwrap()
            .posts
            .iter()
            .map(|(t, _)| *t)
            .collect()
    }

    pub fn posts(&self) -> usize {
        self.state.lock().unwrap().posts.len()
    }
}

/// Gaps between consecutive instants, in milliseconds.
pub fn gaps_ms(times: &[tokio::time::Instant]) -> Vec<u128> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect()
}

async fn scripted_create(
    State(state): State<Arc<Mutex<ScriptState>>>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> axum::response::Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Invalid Key"})),
        )
            .into_response();
    }
    let mut reply = {
        let mut s = state.lock().unwrap();
        s.posts.push((tokio::time::Instant::now(), body.0.clone()));
        s.script.pop_front().unwrap_or(Reply::Created)
    };
    while let Reply::After(ms, inner) = reply {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        reply = *inner;
    }
    let mut s = state.lock().unwrap();
    match reply {
        Reply::After(..) => unreachable!("delays were waited out above"),
        Reply::Created => {
            let n = s.created.len();
            let call = json!({
                "id": format!("call-{n}"),
                "orgId": "org",
                "status": "queued",
                "name": body.0.get("name").cloned().unwrap_or(Value::Null),
                "createdAt": "2026-11-24T00:00:00.000Z",
                "subscriptionLimits": {"concurrencyBlocked": false, "concurrencyLimit": 100, "remainingConcurrentCalls": 99}
            });
            s.created.push(call.clone());
            (StatusCode::CREATED, axum::Json(call)).into_response()
        }
        Reply::Status(code, retry_after) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (
                status,
                axum::Json(json!({"message": format!("scripted {code}")})),
            )
                .into_response();
            if let Some(secs) = retry_after {
                response.headers_mut().insert("retry-after", secs.into());
            }
            response
        }
    }
}

async fn scripted_list(State(state): State<Arc<Mutex<ScriptState>>>) -> axum::Json<Value> {
    let mut s = state.lock().unwrap();
    s.gets.push(tokio::time::Instant::now());
    axum::Json(Value::Array(s.created.clone()))
}

/// Calls stay queued forever (the timing tests do not need them to end).
async fn scripted_get(
    State(state): State<Arc<Mutex<ScriptState>>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::response::Response {
    let s = state.lock().unwrap();
    match s.created.iter().find(|c| c["id"] == id.as_str()) {
        Some(call) => axum::Json(call.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Vapi created the claimed call `call_id` (attempt `attempt`) as `provider_id`.
pub async fn created_as(store: &Store, call_id: i64, attempt: i64, provider_id: &str) {
    store
        .record_created(
            call_id,
            attempt,
            switchboard::model::AttemptOutcome::Created,
            provider_id,
            &switchboard::store::calls::CallUpdate::default(),
        )
        .await
        .expect("created");
}

/// Vapi reports `provider_id` ended with `reason` at `end`, after `talked_s` seconds of
/// conversation (None: never answered), costing `cost`.
pub async fn ended_as(
    store: &Store,
    provider_id: &str,
    end: chrono::DateTime<chrono::Utc>,
    reason: &str,
    talked_s: Option<i64>,
    cost: Option<f64>,
) {
    let update = switchboard::store::calls::CallUpdate {
        status: Some(switchboard::model::CallStatus::Ended),
        ended_reason: Some(reason.into()),
        started_at: talked_s
            .map(|s| switchboard::store::format_time(end - chrono::Duration::seconds(s))),
        ended_at: Some(switchboard::store::format_time(end)),
        cost_usd: cost,
    };
    store
        .apply_call_update(provider_id, &update)
        .await
        .expect("ended");
}
