//! "Never twice, for real": the outcomes that may have created a call are settled before
//! anything is re-sent, and only one engine dispatches from a database.
//!
//! A small Vapi stand-in (`Late`) plays production's hard cases exactly: a request that hangs
//! and creates its call after the client gave up, a 500 after the create, a 504 that created
//! nothing, listings in shuffled order that honour createdAt windows. Settle times are scaled
//! down (1-2 s) so the suite stays quick; the logic does not depend on the scale.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::*;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use switchboard::dispatch::{self, EngineError};
use switchboard::model::{AttemptOutcome, CallStatus, ContactStatus};
use switchboard::store::calls::RetryOutcome;

/// What the stand-in does with the next POST /call.
#[derive(Clone, Debug)]
enum Post {
    /// 201 with the call.
    Create,
    /// Holds the request past the client's timeout; the call appears `after` the request
    /// arrived (Vapi behind its proxy goes on after the client is gone).
    HangThenCreateLate { after: Duration },
    /// Creates the call, then answers this status with an HTML page (500, 502, 52x).
    CreateThenFail(u16),
    /// Answers this status and creates nothing (a 504 whose origin never got the request).
    FailOnly(u16),
}

#[derive(Default)]
struct LateState {
    script: VecDeque<Post>,
    calls: Vec<Value>,
    posts: Vec<(tokio::time::Instant, String)>,
    lists: usize,
    /// Answer GET /call with 500 while true (a look-up that cannot finish).
    lists_fail: bool,
}

#[derive(Clone)]
struct Late {
    state: Arc<Mutex<LateState>>,
    base_url: String,
}

impl Late {
    async fn start(script: Vec<Post>) -> Late {
        let state = Arc::new(Mutex::new(LateState {
            script: script.into(),
            ..LateState::default()
        }));
        let app = axum::Router::new()
            .route("/call", post(late_create).get(late_list))
            .route("/call/{id}", get(late_get))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Late {
            state,
            base_url: format!("http://{addr}"),
        }
    }

    fn created_per_name(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in &self.state.lock().unwrap().calls {
            *m.entry(c["name"].as_str().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
        m
    }

    fn posts(&self) -> Vec<(tokio::time::Instant, String)> {
        self.state.lock().unwrap().posts.clone()
    }

    fn set_lists_fail(&self, fail: bool) {
        self.state.lock().unwrap().lists_fail = fail;
    }
}

fn new_call(state: &mut LateState, name: &str) -> Value {
    let call = json!({
        "id": format!("late-{}", state.calls.len()),
        "orgId": "org",
        "name": name,
        "status": "ended",
        "endedReason": "customer-ended-call",
        "cost": 0.05,
        "createdAt": switchboard::store::now(),
        "startedAt": switchboard::store::now(),
        "endedAt": switchboard::store::now(),
    });
    state.calls.push(call.clone());
    call
}

async fn late_create(
    State(state): State<Arc<Mutex<LateState>>>,
    body: axum::Json<Value>,
) -> axum::response::Response {
    let name = body.0["name"].as_str().unwrap_or("").to_string();
    let step = {
        let mut s = state.lock().unwrap();
        s.posts.push((tokio::time::Instant::now(), name.clone()));
        s.script.pop_front().unwrap_or(Post::Create)
    };
    match step {
        Post::Create => {
            let call = new_call(&mut state.lock().unwrap(), &name);
            (StatusCode::CREATED, axum::Json(call)).into_response()
        }
        Post::HangThenCreateLate { after } => {
            // Created by a task of its own: the client's disconnect cancels only the answer.
            let late = state.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                new_call(&mut late.lock().unwrap(), &name);
            });
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Post::CreateThenFail(code) => {
            new_call(&mut state.lock().unwrap(), &name);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, "<html><body><h1>Internal error</h1></body></html>").into_response()
        }
        Post::FailOnly(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(json!({"message": "gateway timeout"}))).into_response()
        }
    }
}

async fn late_list(
    State(state): State<Arc<Mutex<LateState>>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> axum::response::Response {
    let mut s = state.lock().unwrap();
    s.lists += 1;
    if s.lists_fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
    }
    let ge = q.get("createdAtGe").cloned().unwrap_or_default();
    let le = q
        .get("createdAtLe")
        .cloned()
        .unwrap_or_else(|| "9999".into());
    let mut hits: Vec<Value> = s
        .calls
        .iter()
        .filter(|c| {
            let t = c["createdAt"].as_str().unwrap_or("");
            t >= ge.as_str() && t <= le.as_str()
        })
        .cloned()
        .collect();
    hits.shuffle(&mut rand::rng());
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    hits.truncate(limit);
    axum::Json(Value::Array(hits)).into_response()
}

async fn late_get(
    State(state): State<Arc<Mutex<LateState>>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::response::Response {
    let s = state.lock().unwrap();
    match s.calls.iter().find(|c| c["id"] == id.as_str()) {
        Some(call) => axum::Json(call.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn settle_config(base_url: &str, settle_ms: u64) -> switchboard::config::Config {
    let mut c = config(base_url);
    c.vapi.request_timeout_ms = 300;
    c.vapi.settle_after_ms = settle_ms;
    c.vapi.lookup_skew_ms = 500;
    fast_retries(&mut c);
    c
}

async fn the_call(store: &switchboard::store::Store) -> switchboard::store::calls::Call {
    store.call(1).await.expect("call 1")
}

fn outcomes(attempts: &[switchboard::store::attempts::Attempt]) -> Vec<AttemptOutcome> {
    attempts.iter().map(|a| a.outcome).collect()
}

/// A request that hangs, whose call Vapi creates after the client gave up, and after the
/// first look-up found nothing: adopted once it shows up, never dialled again.
#[tokio::test]
async fn a_call_created_late_by_a_hung_request_is_adopted_not_redialled() {
    let vapi = Late::start(vec![Post::HangThenCreateLate {
        after: Duration::from_millis(900),
    }])
    .await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let engine = engine(settle_config(&vapi.base_url, 2_000), &store, KEY).await;
    wait_for(&engine, Duration::from_secs(15), all_completed).await;
    engine.shutdown().await;
    assert_eq!(vapi.posts().len(), 1, "sent once");
    let call = the_call(&store).await;
    assert_eq!(call.provider_call_id.as_deref(), Some("late-0"));
    assert_eq!(call.status, CallStatus::Ended);
    let attempts = store.attempts(call.id).await.unwrap();
    assert_eq!(outcomes(&attempts), vec![AttemptOutcome::Adopted]);
    assert_eq!(vapi.created_per_name().get(&call.reference), Some(&1));
    assert_invariants(&store).await;
}

/// A 500 (HTML page) after Vapi created the call: looked up and adopted.
#[tokio::test]
async fn a_500_after_the_create_is_adopted() {
    for code in [500, 502, 520] {
        let vapi = Late::start(vec![Post::CreateThenFail(code)]).await;
        let (store, _dir) = store().await;
        campaign(&store, "c", 1).await;
        let engine = engine(settle_config(&vapi.base_url, 1_000), &store, KEY).await;
        wait_for(&engine, Duration::from_secs(10), all_completed).await;
        engine.shutdown().await;
        assert_eq!(vapi.posts().len(), 1, "HTTP {code}: sent once");
        let call = the_call(&store).await;
        let attempts = store.attempts(call.id).await.unwrap();
        assert_eq!(outcomes(&attempts), vec![AttemptOutcome::Adopted], "{code}");
        assert!(
            attempts[0].error.as_deref().is_none_or(|e| e.len() < 400),
            "the HTML page is not stored whole"
        );
        assert_invariants(&store).await;
    }
}

/// An unknown outcome is neither failed nor re-sent until it is settled: the re-send comes
/// only after a complete look-up made once the settle time has passed.
#[tokio::test]
async fn an_unknown_outcome_is_not_resent_before_it_is_settled() {
    let settle = Duration::from_millis(1_500);
    let vapi = Late::start(vec![Post::FailOnly(504)]).await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let engine = engine(
        settle_config(&vapi.base_url, settle.as_millis() as u64),
        &store,
        KEY,
    )
    .await;
    // Soon after the 504 the call is UNKNOWN, not FAILED, and nothing was sent again.
    wait_for(&engine, Duration::from_secs(5), |s| s.creating == 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let call = the_call(&store).await;
    assert_eq!(call.status, CallStatus::Unknown);
    assert_eq!(vapi.posts().len(), 1);
    wait_for(&engine, Duration::from_secs(10), all_completed).await;
    engine.shutdown().await;
    let posts = vapi.posts();
    assert_eq!(posts.len(), 2);
    assert!(
        posts[1].0 - posts[0].0 >= settle,
        "re-sent {:?} after the first request, before the settle time {settle:?}",
        posts[1].0 - posts[0].0
    );
    let attempts = store.attempts(1).await.unwrap();
    assert_eq!(
        outcomes(&attempts),
        vec![AttemptOutcome::NotCreated, AttemptOutcome::Created]
    );
    assert_invariants(&store).await;
}

/// A look-up that cannot finish proves nothing: the call stays UNKNOWN (never FAILED, never
/// re-sent) for as long as that lasts, and is settled once look-ups work again.
#[tokio::test]
async fn a_lookup_that_cannot_finish_keeps_the_call_unknown() {
    let vapi = Late::start(vec![Post::FailOnly(504)]).await;
    vapi.set_lists_fail(true);
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let mut cfg = settle_config(&vapi.base_url, 500);
    cfg.dispatch.max_retries = 1;
    let engine = engine(cfg, &store, KEY).await;
    // Well past the settle time and more failed look-ups than retries: still unknown.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(vapi.state.lock().unwrap().lists >= 3, "looked up again");
    assert_eq!(the_call(&store).await.status, CallStatus::Unknown);
    assert_eq!(vapi.posts().len(), 1);
    vapi.set_lists_fail(false);
    wait_for(&engine, Duration::from_secs(15), all_completed).await;
    engine.shutdown().await;
    assert_eq!(vapi.posts().len(), 2, "re-sent once settled");
    assert_invariants(&store).await;
}

/// An operator's retry of an UNKNOWN call dials only once it is settled as not created —
/// even when the call's own retries are used up.
#[tokio::test]
async fn an_operators_retry_of_an_unknown_call_waits_for_the_settle() {
    let settle = Duration::from_millis(1_500);
    let vapi = Late::start(vec![Post::FailOnly(504)]).await;
    let (store, _dir) = store().await;
    let id = campaign(&store, "c", 1).await;
    let mut cfg = settle_config(&vapi.base_url, settle.as_millis() as u64);
    cfg.dispatch.max_retries = 0; // without the operator, it would fail once settled
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(5), |s| s.creating == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store.retry_call(1).await.unwrap(),
        RetryOutcome::AfterSettling
    );
    assert_eq!(vapi.posts().len(), 1, "the retry sent nothing by itself");
    wait_for(&engine, Duration::from_secs(10), all_completed).await;
    engine.shutdown().await;
    let posts = vapi.posts();
    assert_eq!(posts.len(), 2);
    assert!(posts[1].0 - posts[0].0 >= settle);
    let c = store.campaign(id).await.unwrap();
    assert_eq!((c.total_calls_created, c.failed_calls), (1, 0));
    assert_invariants(&store).await;
}

/// A crash right after a slow create was sent, and an immediate restart: the new engine takes
/// the interrupted attempt for UNKNOWN and adopts the call Vapi created late, never re-sending.
#[tokio::test]
async fn a_restart_right_after_a_crash_settles_the_interrupted_attempt() {
    let vapi = Late::start(vec![]).await;
    let (store, _dir) = store().await;
    let id = campaign(&store, "c", 2).await;
    // The crashed engine: both contacts claimed, attempts IN_FLIGHT. The first request
    // reached Vapi, which creates its call 700 ms later (after the restart's first look-up);
    // the second never left the machine.
    let instance = store.instance_id().await.unwrap();
    let (first, _) = store
        .claim_call(id, &instance, "crashed")
        .await
        .unwrap()
        .unwrap();
    store
        .claim_call(id, &instance, "crashed")
        .await
        .unwrap()
        .unwrap();
    let late = vapi.state.clone();
    let name = first.reference.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        new_call(&mut late.lock().unwrap(), &name);
    });
    let engine = engine(settle_config(&vapi.base_url, 1_500), &store, KEY).await;
    wait_for(&engine, Duration::from_secs(15), all_completed).await;
    engine.shutdown().await;
    let per_name = vapi.created_per_name();
    assert_eq!(
        per_name.get(&first.reference),
        Some(&1),
        "not dialled again"
    );
    assert_eq!(per_name.len(), 2);
    assert_eq!(vapi.posts().len(), 1, "only the second contact was sent");
    assert_eq!(
        outcomes(&store.attempts(first.call_id).await.unwrap()),
        vec![AttemptOutcome::Adopted]
    );
    assert_invariants(&store).await;
}

/// Two engines on one database: the second is refused before it reads or sends anything.
#[tokio::test]
async fn a_second_engine_on_the_same_database_is_refused_and_sends_nothing() {
    let vapi = Late::start(vec![]).await;
    let (store, dir) = store().await;
    campaign(&store, "c", 3).await;
    let first = engine(settle_config(&vapi.base_url, 1_000), &store, KEY).await;
    // Another process's view of the same file.
    let other = switchboard::store::Store::open_in(dir.path())
        .await
        .unwrap();
    let cfg = settle_config(&vapi.base_url, 1_000);
    let second = dispatch::start(cfg.clone(), other.clone(), client(&cfg, KEY)).await;
    match second {
        Err(EngineError::LeaseHeld { holder, .. }) => {
            assert!(holder.contains(':'), "names host:pid, got {holder}")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a second engine started on the same database"),
    }
    wait_for(&first, Duration::from_secs(10), all_completed).await;
    first.shutdown().await;
    assert_eq!(
        vapi.posts().len(),
        3,
        "every contact dialled once, by one engine"
    );
    // After a clean stop the lease is free: the next engine starts at once.
    let next = dispatch::start(cfg.clone(), other, client(&cfg, KEY)).await;
    assert!(next.is_ok(), "the lease was released");
    next.unwrap().shutdown().await;
    assert_eq!(
        store.count_contacts(1, ContactStatus::Done).await.unwrap(),
        3
    );
}
