//! A scriptable Vapi stand-in for the lifecycle tests: production's hard cases on demand (a
//! request that hangs and creates its call late, a 5xx after the create, refusals), listings
//! in shuffled order that honour createdAt/updatedAt windows, and calls whose end (reason,
//! answer, cost now and final cost later, vanishing) each test chooses.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use rand::seq::SliceRandom;
use serde_json::{Value, json};

/// What the stand-in does with the next POST /call.
#[derive(Clone, Debug)]
pub enum Post {
    /// 201 with the call.
    Create,
    /// Holds the request past the client's timeout; the call appears `after` the request
    /// arrived (Vapi behind its proxy goes on after the client is gone).
    HangThenCreateLate { after: Duration },
    /// 400 with this message; nothing created.
    Reject(&'static str),
    /// Creates the call, then answers this status with an HTML page (500, 502, 52x).
    CreateThenFail(u16),
    /// Answers this status and creates nothing (a 504 whose origin never got the request).
    FailOnly(u16),
}

#[derive(Default)]
pub struct LateState {
    pub script: VecDeque<Post>,
    pub calls: Vec<Value>,
    pub posts: Vec<(tokio::time::Instant, String)>,
    /// Every POST /call body, in order.
    pub bodies: Vec<Value>,
    pub lists: usize,
    /// Answer GET /call with 500 while true (a look-up that cannot finish).
    pub lists_fail: bool,
    /// How the n-th created call ends (default: ended, customer-ended-call, $0.05).
    pub ends: Vec<End>,
}

/// How a created call looks when read back.
#[derive(Clone, Debug)]
pub struct End {
    pub reason: &'static str,
    /// Answered: startedAt set, and the call lasted this long.
    pub talk_ms: Option<i64>,
    /// The cost on the first read after the end…
    pub cost: f64,
    /// …and the final cost, shown once `final_after` has passed since creation.
    pub final_cost: Option<(f64, Duration)>,
    /// Vapi forgets the call: GET /call/{id} answers 404 and listings leave it out.
    pub vanished: bool,
}

impl Default for End {
    fn default() -> Self {
        End {
            reason: "customer-ended-call",
            talk_ms: Some(20_000),
            cost: 0.05,
            final_cost: None,
            vanished: false,
        }
    }
}

#[derive(Clone)]
pub struct Late {
    pub state: Arc<Mutex<LateState>>,
    pub base_url: String,
}

impl Late {
    pub async fn start(script: Vec<Post>) -> Late {
        Late::with_ends(script, Vec::new()).await
    }

    /// A stand-in whose n-th created call ends as `ends[n]` says.
    pub async fn with_ends(script: Vec<Post>, ends: Vec<End>) -> Late {
        let state = Arc::new(Mutex::new(LateState {
            script: script.into(),
            ends,
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

    pub fn created_per_name(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in &self.state.lock().unwrap().calls {
            *m.entry(c["name"].as_str().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
        m
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.state.lock().unwrap().bodies.clone()
    }

    pub fn posts(&self) -> Vec<(tokio::time::Instant, String)> {
        self.state.lock().unwrap().posts.clone()
    }

    pub fn set_lists_fail(&self, fail: bool) {
        self.state.lock().unwrap().lists_fail = fail;
    }
}

pub fn new_call(state: &mut LateState, name: &str) -> Value {
    let n = state.calls.len();
    let end = state.ends.get(n).cloned().unwrap_or_default();
    let now = chrono::Utc::now();
    let at = |t: chrono::DateTime<chrono::Utc>| switchboard::store::format_time(t);
    let started = end.talk_ms.map(|_| now);
    let ended = now + chrono::Duration::milliseconds(end.talk_ms.unwrap_or(0));
    let call = json!({
        "id": format!("late-{n}"),
        "orgId": "org",
        "name": name,
        "status": "ended",
        "endedReason": end.reason,
        "cost": end.cost,
        "createdAt": at(now),
        "updatedAt": at(now),
        "startedAt": started.map(at),
        "endedAt": at(ended),
        "_vanished": end.vanished,
        "_final": end.final_cost.map(|(c, after)| json!([c, at(now + chrono::Duration::from_std(after).unwrap_or_default())])),
    });
    state.calls.push(call.clone());
    call
}

/// The call as Vapi shows it now: the final cost once its time has come (updatedAt moves).
fn as_of_now(call: &Value) -> Value {
    let mut call = call.clone();
    if let Some([cost, at]) = call["_final"]
        .as_array()
        .map(|a| [a[0].clone(), a[1].clone()])
        && at
            .as_str()
            .is_some_and(|t| t <= switchboard::store::format_time(chrono::Utc::now()).as_str())
    {
        call["cost"] = cost;
        call["updatedAt"] = at;
    }
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
        s.bodies.push(body.0.clone());
        s.script.pop_front().unwrap_or(Post::Create)
    };
    match step {
        Post::Create => {
            let mut call = new_call(&mut state.lock().unwrap(), &name);
            if call["_vanished"] == true {
                // Answered as just queued; then Vapi loses it.
                call["status"] = json!("queued");
                call["endedReason"] = Value::Null;
            }
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
        Post::Reject(message) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": message, "error": "Bad Request", "statusCode": 400})),
        )
            .into_response(),
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
    let (field, ge, le) = if q.contains_key("updatedAtGe") {
        ("updatedAt", q.get("updatedAtGe"), q.get("updatedAtLe"))
    } else {
        ("createdAt", q.get("createdAtGe"), q.get("createdAtLe"))
    };
    let ge = ge.cloned().unwrap_or_default();
    let le = le.cloned().unwrap_or_else(|| "9999".into());
    let mut hits: Vec<Value> = s
        .calls
        .iter()
        .filter(|c| c["_vanished"] != true)
        .map(as_of_now)
        .filter(|c| {
            let t = c[field].as_str().unwrap_or("");
            t >= ge.as_str() && t <= le.as_str()
        })
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
    match s
        .calls
        .iter()
        .find(|c| c["id"] == id.as_str() && c["_vanished"] != true)
    {
        Some(call) => axum::Json(as_of_now(call)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
