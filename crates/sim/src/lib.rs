//! An embedded Vapi API simulator: the subset of Vapi's REST API that switchboard uses
//! (`POST /call`, `GET /call`, `GET /call/{id}`), with fault injection, and its own
//! record (`SimStats`, also at `GET /_sim/stats`) so tests can prove that no call was
//! created twice.

mod api;
mod faults;
mod monitor;
mod query;
mod state;
mod validate;
mod webhooks;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use api::Shared;

/// How long `shutdown` waits for in-flight requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Knobs; Default gives a well-behaved simulator.
#[derive(Clone, Debug, clap::Args)]
pub struct SimConfig {
    /// Bearer key the simulator accepts.
    #[arg(long, default_value = "sim-key")]
    pub api_key: String,
    /// Probability that a POST /call gets 429 (nothing created).
    #[arg(long, default_value_t = 0.0)]
    pub fault_429: f64,
    /// Probability that a POST /call gets 503 (nothing created).
    #[arg(long, default_value_t = 0.0)]
    pub fault_503: f64,
    /// Probability that a POST /call gets 504 (nothing created).
    #[arg(long, default_value_t = 0.0)]
    pub fault_504: f64,
    /// Probability that a POST /call CREATES the call but only answers after
    /// `hang_ms`, with a 504 and no id.
    #[arg(long, default_value_t = 0.0)]
    pub fault_timeout: f64,
    /// How long a hung POST /call waits before answering, ms.
    #[arg(long, default_value_t = 60_000)]
    pub hang_ms: u64,
    /// Added latency per request, ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Time a call spends queued, ms.
    #[arg(long, default_value_t = 300)]
    pub queue_ms: u64,
    /// Time a call spends ringing, ms.
    #[arg(long, default_value_t = 700)]
    pub ring_ms: u64,
    /// Shortest talk time of an answered call, ms.
    #[arg(long, default_value_t = 4000)]
    pub talk_min_ms: u64,
    /// Longest talk time of an answered call, ms.
    #[arg(long, default_value_t = 8000)]
    pub talk_max_ms: u64,
    /// Account concurrency limit (calls not yet ended); 0 = unlimited.
    #[arg(long, default_value_t = 10)]
    pub concurrency_limit: u32,
    /// After this many dialled calls, further creates end at once with
    /// call.start.error-subscription-insufficient-credits (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub credit_calls: u64,
    /// Calls each phone number may place (for the simulator's whole life, its "day"):
    /// further creates from that number end at once with
    /// call.start.error-vapi-number-outbound-daily-limit (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub number_daily_limit: u64,
    /// RNG seed for reproducible runs (random if absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Retry-After seconds to put on 429 responses (no header if absent).
    #[arg(long)]
    pub retry_after_s: Option<u64>,

    // --- Realism: production's hard cases (all off by default; `--realism` sets them). ---
    /// Turn on the production-hard profile (`SimConfig::realism`); explicit flags still apply
    /// to the knobs they name only when the profile leaves them at their defaults.
    #[arg(long)]
    pub realism: bool,
    /// Order of `GET /call` results: newest, oldest or random (Vapi documents none).
    #[arg(long, value_enum, default_value_t = ListOrder::Newest)]
    pub list_order: ListOrder,
    /// Latency of reads (GET), ms; POSTs take `latency_ms`. Absent: `latency_ms` for both.
    #[arg(long)]
    pub read_latency_ms: Option<u64>,
    /// Probability that a POST /call hangs, the client gives up, and the call is created
    /// `late_create_ms` after the request arrived (the proxy answers 504 after `hang_ms`).
    #[arg(long, default_value_t = 0.0)]
    pub fault_late_create: f64,
    /// How long after arrival a late-created call appears, ms.
    #[arg(long, default_value_t = 1_500)]
    pub late_create_ms: u64,
    /// Probability that a POST /call creates the call and then answers 500, 502 or a
    /// Cloudflare 520-524 HTML page.
    #[arg(long, default_value_t = 0.0)]
    pub fault_5xx_after_create: f64,
    /// Probability that a read (GET /call, GET /call/{id}) gets 429.
    #[arg(long, default_value_t = 0.0)]
    pub fault_read_429: f64,
    /// Gateway limit over EVERY request (token bucket), requests per second; 0 = none.
    #[arg(long, default_value_t = 0.0)]
    pub gateway_rps: f64,
    /// Burst of the gateway's token bucket.
    #[arg(long, default_value_t = 10)]
    pub gateway_burst: u32,
    /// Known assistant ids (comma-separated): any other gets 400 "Couldn't Get Assistant.".
    #[arg(long, value_delimiter = ',')]
    pub assistants: Vec<String>,
    /// Known phone-number ids (comma-separated): any other gets 400.
    #[arg(long, value_delimiter = ',')]
    pub phone_numbers: Vec<String>,
    /// Phone-number ids `GET /phone-number/{id}` says are `blocked` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub blocked_numbers: Vec<String>,
    /// The system prompt `GET /assistant/{id}` serves for every assistant.
    #[arg(long, default_value = DEFAULT_PROMPT)]
    pub assistant_prompt: String,
    /// The first message `GET /assistant/{id}` serves.
    #[arg(long, default_value = DEFAULT_FIRST_MESSAGE)]
    pub first_message: String,
    /// Probability that a created call ends at once with a `call.start.*` fault (never rang).
    #[arg(long, default_value_t = 0.0)]
    pub fault_start_error: f64,
    /// Probability that an answered call ends early with a pipeline/LLM error.
    #[arg(long, default_value_t = 0.0)]
    pub fault_pipeline: f64,
    /// Probability that a call vanishes (deleted from the dashboard, say): from
    /// `vanish_after_ms` after its creation, GET /call/{id} answers 404 and listings leave it
    /// out. Not at once: a call deleted before a client could look it up would be dialled
    /// again by any client, and that is the operator's doing, not a fault to survive.
    #[arg(long, default_value_t = 0.0)]
    pub fault_vanish: f64,
    /// How long after its creation a vanishing call disappears.
    #[arg(long, default_value_t = 30_000)]
    pub vanish_after_ms: u64,
    /// The final cost (analysis added) appears this long after `ended`; before, the call
    /// shows 70 % of it. 0: final at once.
    #[arg(long, default_value_t = 0)]
    pub cost_final_ms: u64,

    // --- Server messages (webhooks), as Vapi posts them to an assistant's server URL. ---
    /// Post `status-update` and `end-of-call-report` messages for every call to this URL.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// How messages prove they are Vapi's: bearer, header, hmac or secret (legacy).
    #[arg(long, value_enum, default_value_t = WebhookSigning::Secret)]
    pub webhook_auth: WebhookSigning,
    /// The shared secret the messages are signed or authenticated with.
    #[arg(long, default_value = "sim-webhook-secret")]
    pub webhook_secret: String,
    /// Header carrying the secret when `--webhook-auth header`.
    #[arg(long, default_value = "x-vapi-secret")]
    pub webhook_header_name: String,
    /// Each message is posted up to this long after the change it reports, drawn uniformly:
    /// close changes then arrive out of order.
    #[arg(long, default_value_t = 0)]
    pub webhook_late_ms: u64,
    /// Probability that a request to a call's control URL fails with 500.
    #[arg(long, default_value_t = 0.0)]
    pub fault_control: f64,
    /// Share of calls whose assistant loops: it says the same line on every turn.
    #[arg(long, default_value_t = 0.0)]
    pub assistant_loops: f64,
    /// Scripted outcomes per customer number (tests): how its calls go, whatever the
    /// draw. Not a command-line option.
    #[arg(skip)]
    pub scripts: std::collections::HashMap<String, NumberScript>,
    /// Success rate per assistant id: the share of its conversations whose success
    /// evaluation is true (others: by talk time). Not a command-line option.
    #[arg(skip)]
    pub assistant_success: std::collections::HashMap<String, f64>,
    /// Probability that a message is posted twice.
    #[arg(long, default_value_t = 0.0)]
    pub webhook_duplicate: f64,
}

/// The prompt every simulated assistant has: the contact's name (a list without names is
/// found by `switchboard check`) and the demo contacts' columns, with defaults.
pub const DEFAULT_PROMPT: &str = "You are Sam from Switchboard, calling {{customer.name}} in \
     {{ city | default: \"their city\" }} about their {{ plan | default: \"current\" }} plan. \
     Today is {{date}}. Be brief and polite.";
pub const DEFAULT_FIRST_MESSAGE: &str = "Hi {{customer.name}}, this is Sam from Switchboard.";

/// How the simulator authenticates its server messages (Vapi's server credential types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookSigning {
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// The secret verbatim in `--webhook-header-name`.
    Header,
    /// `x-signature`: hex HMAC-SHA256 of "{x-timestamp}.{body}", `x-timestamp` in ms.
    Hmac,
    /// Legacy `X-Vapi-Secret: <secret>`.
    #[default]
    Secret,
}

/// Order of `GET /call` results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum ListOrder {
    #[default]
    Newest,
    Oldest,
    Random,
}

impl SimConfig {
    /// The production-hard profile: unordered lists, late creation after the client gave up,
    /// 5xx after a create, reads faster than creates, 429s on reads, start errors, pipeline
    /// errors, vanishing calls and a cost finalised after the end, on top of the usual
    /// refusals. Timing is scaled to seconds so tests stay quick: a client must settle
    /// longer than `late_create_ms` (default 1.5 s) after sending.
    pub fn realism() -> SimConfig {
        SimConfig::default().with_realism()
    }

    /// Turns the realism knobs on (those still at their defaults).
    pub fn with_realism(mut self) -> SimConfig {
        let d = SimConfig::default();
        self.realism = true;
        let set = |value: &mut f64, default: f64, realistic: f64| {
            if *value == default {
                *value = realistic;
            }
        };
        set(&mut self.fault_429, d.fault_429, 0.02);
        set(&mut self.fault_503, d.fault_503, 0.01);
        set(&mut self.fault_504, d.fault_504, 0.01);
        set(&mut self.fault_timeout, d.fault_timeout, 0.01);
        set(&mut self.fault_late_create, d.fault_late_create, 0.01);
        set(
            &mut self.fault_5xx_after_create,
            d.fault_5xx_after_create,
            0.01,
        );
        set(&mut self.fault_read_429, d.fault_read_429, 0.01);
        set(&mut self.fault_start_error, d.fault_start_error, 0.01);
        set(&mut self.fault_pipeline, d.fault_pipeline, 0.005);
        set(&mut self.fault_vanish, d.fault_vanish, 0.005);
        set(&mut self.fault_control, d.fault_control, 0.02);
        if self.list_order == d.list_order {
            self.list_order = ListOrder::Random;
        }
        if self.hang_ms == d.hang_ms {
            self.hang_ms = 2_000;
        }
        if self.latency_ms == d.latency_ms {
            self.latency_ms = 150;
        }
        if self.read_latency_ms.is_none() {
            self.read_latency_ms = Some(20);
        }
        if self.cost_final_ms == d.cost_final_ms {
            self.cost_final_ms = 2_000;
        }
        self
    }

    /// The latency of a read.
    pub fn read_latency(&self) -> u64 {
        self.read_latency_ms.unwrap_or(self.latency_ms)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            api_key: "sim-key".into(),
            fault_429: 0.0,
            fault_503: 0.0,
            fault_504: 0.0,
            fault_timeout: 0.0,
            hang_ms: 60_000,
            latency_ms: 0,
            queue_ms: 300,
            ring_ms: 700,
            talk_min_ms: 4000,
            talk_max_ms: 8000,
            concurrency_limit: 10,
            credit_calls: 0,
            number_daily_limit: 0,
            seed: None,
            retry_after_s: None,
            realism: false,
            list_order: ListOrder::Newest,
            read_latency_ms: None,
            fault_late_create: 0.0,
            late_create_ms: 1_500,
            fault_5xx_after_create: 0.0,
            fault_read_429: 0.0,
            gateway_rps: 0.0,
            gateway_burst: 10,
            assistants: Vec::new(),
            phone_numbers: Vec::new(),
            blocked_numbers: Vec::new(),
            assistant_prompt: DEFAULT_PROMPT.into(),
            first_message: DEFAULT_FIRST_MESSAGE.into(),
            fault_start_error: 0.0,
            fault_pipeline: 0.0,
            fault_vanish: 0.0,
            vanish_after_ms: 30_000,
            webhook_url: None,
            webhook_auth: WebhookSigning::Secret,
            webhook_secret: "sim-webhook-secret".into(),
            webhook_header_name: "x-vapi-secret".into(),
            webhook_late_ms: 0,
            webhook_duplicate: 0.0,
            cost_final_ms: 0,
            fault_control: 0.0,
            assistant_loops: 0.0,
            scripts: std::collections::HashMap::new(),
            assistant_success: std::collections::HashMap::new(),
        }
    }
}

/// How the calls to one number go (`SimConfig::scripts`): a voicemail box answers the first
/// `voicemail_first`, then the person talks for `talk_ms` and the end-of-call report says
/// `success` and `structured` (e.g. `{"callback_at": "15:00"}`, `{"appointment_booked":
/// true}`). A later attempt past the list repeats its last entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NumberScript {
    pub voicemail_first: u32,
    pub talk_ms: u64,
    /// Per conversation, in order: its success evaluation and structured data.
    pub conversations: Vec<(Option<bool>, serde_json::Value)>,
}

/// The simulator's own record of what it was asked and what it did.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SimStats {
    /// POST /call received (all, including rejected ones).
    pub create_requests: u64,
    /// Call objects created (including hang-fault and blocked/refused ones).
    pub calls_created: u64,
    /// `name` -> how many calls were created with it (the double-dial detector);
    /// calls without a name are not listed.
    pub created_per_name: BTreeMap<String, u64>,
    pub rejected_400: u64,
    pub rejected_401: u64,
    pub faults_429: u64,
    pub faults_503: u64,
    pub faults_504: u64,
    pub faults_timeout: u64,
    pub concurrency_blocked: u64,
    /// Calls not ended at this instant.
    pub active_now: u64,
    /// Max active calls seen at any create (calls only start at a create, so this is exact).
    pub peak_concurrency: u64,
    /// GET /call and GET /call/{id} received.
    pub get_requests: u64,
    /// GET /call (listings) received, a part of `get_requests`.
    #[serde(default)]
    pub list_requests: u64,
    /// 429s answered to reads (injected).
    #[serde(default)]
    pub faults_read_429: u64,
    /// Requests refused by the gateway's rate limit (429), of every kind.
    #[serde(default)]
    pub gateway_rejected: u64,
    /// Calls created after their request's client gave up.
    #[serde(default)]
    pub late_created: u64,
    /// Calls created and then answered with a 5xx.
    #[serde(default)]
    pub faults_5xx_after_create: u64,
    /// Calls ended at once with a `call.start.*` fault, or early with a pipeline error.
    #[serde(default)]
    pub start_errors: u64,
    #[serde(default)]
    pub pipeline_errors: u64,
    /// Calls that vanished from reads.
    #[serde(default)]
    pub vanished: u64,
    /// The most creates in any one-second window.
    #[serde(default)]
    pub max_creates_per_second: u64,
    /// Server messages posted and answered 2xx.
    #[serde(default)]
    pub webhooks_delivered: u64,
    /// Server messages the receiver refused (401/403).
    #[serde(default)]
    pub webhooks_refused: u64,
    /// Server messages given up after retries (5xx, no connection).
    #[serde(default)]
    pub webhooks_failed: u64,
    /// Voicemails reached by a call carrying `assistantOverrides.voicemailMessage` (the
    /// message was left).
    #[serde(default)]
    pub voicemail_messages_left: u64,
    /// Voicemails reached without one (hung up).
    #[serde(default)]
    pub voicemail_hang_ups: u64,
    /// Control messages received, in order: `{"callId", "body"}` (valid bodies only).
    #[serde(default)]
    pub control_messages: Vec<serde_json::Value>,
    /// Control requests answered 500 (injected).
    #[serde(default)]
    pub faults_control: u64,
}

/// A running simulator; serves until `shutdown` (or until dropped).
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<io::Result<()>>,
}

impl Simulator {
    /// Bind `addr` (e.g. 127.0.0.1:0 for a random port) and serve in a background tokio task.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> io::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, stop_rx.clone()));
        shared.with_state(|state| state.set_monitor_base(format!("http://{addr}/monitor")));
        let (created, created_rx) = tokio::sync::mpsc::unbounded_channel();
        shared.with_state(|state| state.post_webhooks_to(created));
        tokio::spawn(webhooks::post_messages(
            Arc::clone(&shared),
            created_rx,
            stop_rx.clone(),
        ));
        let app = api::router(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let mut stop_rx = stop_rx;
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Also fires if the Simulator is dropped (sender gone).
                    let _ = stop_rx.wait_for(|stopping| *stopping).await;
                })
                .await
        });
        Ok(Simulator {
            addr,
            shared,
            stop,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A consistent copy of the record.
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Change knobs live (faults on/off mid-test). Affects requests from now on;
    /// calls already created keep the durations they were drawn with. A changed
    /// seed re-seeds the RNG.
    pub fn set_config(&self, config: SimConfig) {
        self.shared.set_config(config);
    }

    /// Graceful stop: hung and delayed requests are cut short; anything still
    /// running after a few seconds is aborted.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let abort = self.server.abort_handle();
        match tokio::time::timeout(SHUTDOWN_GRACE, self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "simulator: server error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "simulator: server task failed"),
            Err(_) => {
                tracing::warn!("simulator: graceful shutdown timed out; aborting");
                abort.abort();
            }
        }
    }
}

/// Serve in the foreground on 127.0.0.1:`port` until `stop` completes with the signal's
/// name (for `switchboard simulate`); prints one line with the base URL and key to stdout at
/// start.
pub async fn run_standalone(
    config: SimConfig,
    port: u16,
    stop: impl std::future::Future<Output = &'static str>,
) -> io::Result<()> {
    let api_key = config.api_key.clone();
    let sim = Simulator::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    println!(
        "Vapi simulator listening: base_url={} api_key={api_key}",
        sim.base_url()
    );
    let signal = stop.await;
    let stats = sim.stats();
    sim.shutdown().await;
    tracing::info!(?stats, "simulator stopped");
    tracing::info!("simulator stopped on {signal}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use super::*;

    const ASSISTANT: &str = "asst-1";

    /// Fast lifecycle: every call has ended 30 ms after creation.
    fn fast() -> SimConfig {
        SimConfig {
            queue_ms: 5,
            ring_ms: 5,
            talk_min_ms: 10,
            talk_max_ms: 20,
            seed: Some(1),
            ..SimConfig::default()
        }
    }

    /// Slow lifecycle: calls stay active for the whole test.
    fn slow() -> SimConfig {
        SimConfig {
            queue_ms: 60_000,
            seed: Some(1),
            ..SimConfig::default()
        }
    }

    async fn start(config: SimConfig) -> Simulator {
        Simulator::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    fn body(name: &str) -> Value {
        json!({
            "assistantId": ASSISTANT,
            "phoneNumberId": "pn-1",
            "name": name,
            "customer": {"number": "+14155550123", "externalId": "c-1"},
            "assistantOverrides": {"metadata": {"ref": name}, "variableValues": {"first": "Ann"}}
        })
    }

    async fn post(sim: &Simulator, body: &Value) -> (StatusCode, Value) {
        let response = switchboard_vapi::http::client()
            .post(format!("{}/call", sim.base_url()))
            .bearer_auth("sim-key")
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn get(sim: &Simulator, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = switchboard_vapi::http::client()
            .get(format!("{}{path}", sim.base_url()))
            .bearer_auth("sim-key")
            .query(query)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn create_then_lifecycle_to_ended() {
        let sim = start(fast()).await;
        let (status, call) = post(&sim, &body("ref-1")).await;
        assert_eq!(status, StatusCode::CREATED);
        let id = call["id"].as_str().unwrap().to_owned();
        assert_eq!(call["status"], "queued");
        assert_eq!(call["type"], "outboundPhoneCall");
        assert_eq!(call["name"], "ref-1");
        assert_eq!(call["customer"]["number"], "+14155550123");
        assert_eq!(call["assistantOverrides"]["metadata"]["ref"], "ref-1");
        assert_eq!(call["subscriptionLimits"]["concurrencyBlocked"], false);
        assert_eq!(call["subscriptionLimits"]["concurrencyLimit"], 10);
        assert_eq!(call["subscriptionLimits"]["remainingConcurrentCalls"], 9);
        let created_at = call["createdAt"].as_str().unwrap();
        assert_eq!(created_at.len(), "2026-11-24T10:00:00.123Z".len());
        assert!(created_at.ends_with('Z'));

        let (status, fetched) = get(&sim, &format!("/call/{id}"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(fetched["id"], call["id"]);
        assert!(fetched.get("subscriptionLimits").is_none());

        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, ended) = get(&sim, &format!("/call/{id}"), &[]).await;
        assert_eq!(ended["status"], "ended");
        assert!(ended["endedReason"].is_string());
        assert!(ended["cost"].is_number());
        assert!(ended["endedAt"].is_string());
        let stats = sim.stats();
        assert_eq!(stats.active_now, 0);
        assert_eq!(stats.get_requests, 2);

        let (status, missing) = get(&sim, "/call/nope", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["message"], "Call not found");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn validation_and_auth_errors() {
        let sim = start(fast()).await;
        let mut with_metadata = body("ref-1");
        with_metadata["metadata"] = json!({"ref": "ref-1"});
        let (status, error) = post(&sim, &with_metadata).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["statusCode"], 400);
        assert!(
            error["message"]
                .as_array()
                .unwrap()
                .contains(&json!("property metadata should not exist"))
        );

        let mut bad_number = body("ref-2");
        bad_number["customer"]["number"] = json!("0415 555 0123");
        let (status, error) = post(&sim, &bad_number).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error["message"].is_string());

        let response = switchboard_vapi::http::client()
            .post(format!("{}/call", sim.base_url()))
            .bearer_auth("wrong-key")
            .json(&body("ref-3"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["statusCode"], 401);

        let response = switchboard_vapi::http::client()
            .get(format!("{}/call", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

        let response = switchboard_vapi::http::client()
            .post(format!("{}/call", sim.base_url()))
            .bearer_auth("sim-key")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        let stats = sim.stats();
        assert_eq!(stats.create_requests, 4);
        assert_eq!(stats.rejected_400, 3);
        assert_eq!(stats.rejected_401, 2);
        assert_eq!(stats.calls_created, 0);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn rate_limit_fault_creates_nothing_and_can_be_switched_off() {
        let config = SimConfig {
            fault_429: 1.0,
            retry_after_s: Some(2),
            ..fast()
        };
        let sim = start(config.clone()).await;
        let response = switchboard_vapi::http::client()
            .post(format!("{}/call", sim.base_url()))
            .bearer_auth("sim-key")
            .json(&body("ref-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "2");
        let stats = sim.stats();
        assert_eq!((stats.faults_429, stats.calls_created), (1, 0));
        let (_, listed) = get(&sim, "/call", &[]).await;
        assert_eq!(listed, json!([]));

        sim.set_config(SimConfig {
            fault_429: 0.0,
            ..config
        });
        let (status, _) = post(&sim, &body("ref-1")).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(sim.stats().created_per_name["ref-1"], 1);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn gateway_faults_create_nothing() {
        for (config, status) in [
            (
                SimConfig {
                    fault_503: 1.0,
                    ..fast()
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                SimConfig {
                    fault_504: 1.0,
                    ..fast()
                },
                StatusCode::GATEWAY_TIMEOUT,
            ),
        ] {
            let sim = start(config).await;
            let (got, error) = post(&sim, &body("ref-1")).await;
            assert_eq!(got, status);
            assert_eq!(error["statusCode"], status.as_u16());
            assert_eq!(sim.stats().calls_created, 0);
            sim.shutdown().await;
        }
    }

    #[tokio::test]
    async fn hang_fault_creates_the_call_but_the_client_never_learns_it() {
        let sim = start(SimConfig {
            fault_timeout: 1.0,
            hang_ms: 5_000,
            ..slow()
        })
        .await;
        let before = state::iso(Utc::now() - chrono::TimeDelta::seconds(1));
        let client = switchboard_vapi::http::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let err = client
            .post(format!("{}/call", sim.base_url()))
            .bearer_auth("sim-key")
            .json(&body("ref-hang"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");

        let (status, listed) = get(
            &sim,
            "/call",
            &[("assistantId", ASSISTANT), ("createdAtGe", &before)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["name"], "ref-hang");
        let stats = sim.stats();
        assert_eq!(stats.created_per_name["ref-hang"], 1);
        assert_eq!(stats.faults_timeout, 1);

        // Shutdown must not wait out the 5 s hang.
        let started = std::time::Instant::now();
        sim.shutdown().await;
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn concurrency_limit_blocks_the_third_call() {
        let sim = start(SimConfig {
            concurrency_limit: 2,
            ..slow()
        })
        .await;
        let mut calls = Vec::new();
        for i in 0..3 {
            let (status, call) = post(&sim, &body(&format!("ref-{i}"))).await;
            assert_eq!(status, StatusCode::CREATED);
            calls.push(call);
        }
        assert_eq!(
            calls[0]["subscriptionLimits"]["remainingConcurrentCalls"],
            1
        );
        assert_eq!(
            calls[1]["subscriptionLimits"]["remainingConcurrentCalls"],
            0
        );
        assert_eq!(calls[1]["status"], "queued");
        let blocked = &calls[2];
        assert_eq!(blocked["status"], "ended");
        assert_eq!(
            blocked["endedReason"],
            "call.start.error-subscription-concurrency-limit-reached"
        );
        assert_eq!(blocked["cost"], 0.0);
        assert_eq!(blocked["subscriptionLimits"]["concurrencyBlocked"], true);
        let stats = sim.stats();
        assert_eq!(stats.peak_concurrency, 2);
        assert_eq!(stats.concurrency_blocked, 1);
        assert_eq!(stats.active_now, 2);
        assert_eq!(stats.calls_created, 3);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn list_filters_and_stats_endpoint() {
        let sim = start(slow()).await;
        for (assistant, name) in [(ASSISTANT, "a-1"), ("other", "b-1"), (ASSISTANT, "a-2")] {
            let mut call = body(name);
            call["assistantId"] = json!(assistant);
            assert_eq!(post(&sim, &call).await.0, StatusCode::CREATED);
        }
        let names = |calls: &Value| -> Vec<String> {
            calls
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect()
        };

        let (_, all) = get(&sim, "/call", &[]).await;
        assert_eq!(names(&all), ["a-2", "b-1", "a-1"]);
        let (_, mine) = get(&sim, "/call", &[("assistantId", ASSISTANT)]).await;
        assert_eq!(names(&mine), ["a-2", "a-1"]);
        let (_, one) = get(&sim, "/call", &[("limit", "1")]).await;
        assert_eq!(names(&one), ["a-2"]);

        // createdAtGe is inclusive at the emitted millisecond; Gt excludes it.
        let newest_at = all[0]["createdAt"].as_str().unwrap();
        let (_, since) = get(&sim, "/call", &[("createdAtGe", newest_at)]).await;
        assert!(names(&since).contains(&"a-2".to_owned()));
        let (_, after) = get(&sim, "/call", &[("createdAtGt", newest_at)]).await;
        assert!(!names(&after).contains(&"a-2".to_owned()));
        let future = state::iso(Utc::now() + chrono::TimeDelta::hours(1));
        let (_, none) = get(&sim, "/call", &[("createdAtGe", &future)]).await;
        assert_eq!(none, json!([]));

        let (status, error) = get(&sim, "/call", &[("createdAtGe", "last tuesday")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error["message"].is_array());

        let id = all[1]["id"].as_str().unwrap();
        let (_, by_id) = get(&sim, "/call", &[("id", id)]).await;
        assert_eq!(names(&by_id), ["b-1"]);

        let remote: SimStats = reqwest::get(format!("{}/_sim/stats", sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(remote, sim.stats());
        assert_eq!(remote.calls_created, 3);
        assert_eq!(remote.get_requests, 8);
        assert_eq!(remote.created_per_name.len(), 3);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn latency_applies_to_gets() {
        let sim = start(SimConfig {
            latency_ms: 150,
            ..fast()
        })
        .await;
        let started = std::time::Instant::now();
        let (status, _) = get(&sim, "/call", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(150));
        sim.shutdown().await;
    }

    #[test]
    fn cli_defaults_match_default() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            sim: SimConfig,
        }
        let parsed = Cli::parse_from(["sim"]).sim;
        assert_eq!(format!("{parsed:?}"), format!("{:?}", SimConfig::default()));
        let parsed = Cli::parse_from(["sim", "--concurrency-limit", "3", "--seed", "9"]).sim;
        assert_eq!((parsed.concurrency_limit, parsed.seed), (3, Some(9)));
    }

    // --- the realism profile's hard cases ---

    fn names(list: &Value) -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("").to_string())
            .collect()
    }

    #[tokio::test]
    async fn listings_follow_the_configured_order() {
        for (order, expected) in [
            (ListOrder::Newest, vec!["c", "b", "a"]),
            (ListOrder::Oldest, vec!["a", "b", "c"]),
        ] {
            let sim = start(SimConfig {
                list_order: order,
                ..slow()
            })
            .await;
            for name in ["a", "b", "c"] {
                post(&sim, &body(name)).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let (_, list) = get(&sim, "/call", &[]).await;
            assert_eq!(names(&list), expected, "{order:?}");
            sim.shutdown().await;
        }
        // Random: every call is there, in some order, and the orders differ between reads.
        let sim = start(SimConfig {
            list_order: ListOrder::Random,
            ..slow()
        })
        .await;
        for i in 0..30 {
            post(&sim, &body(&format!("r{i}"))).await;
        }
        let (_, first) = get(&sim, "/call", &[]).await;
        let (_, second) = get(&sim, "/call", &[]).await;
        let mut sorted = names(&first);
        sorted.sort();
        assert_eq!(sorted.len(), 30);
        assert_ne!(names(&first), names(&second), "shuffled on each read");
        let (status, _) = get(&sim, "/call", &[("limit", "1001")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit above 1000");
        sim.shutdown().await;
    }

    /// The client gives up; the call is created afterwards all the same.
    #[tokio::test]
    async fn a_late_create_appears_after_the_client_gave_up() {
        let sim = start(SimConfig {
            fault_late_create: 1.0,
            late_create_ms: 300,
            hang_ms: 5_000,
            ..slow()
        })
        .await;
        let gave_up = switchboard_vapi::http::builder()
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap()
            .post(format!("{}/call", sim.base_url()))
            .bearer_auth("sim-key")
            .json(&body("late-1"))
            .send()
            .await;
        assert!(gave_up.is_err(), "the client timed out");
        let (_, list) = get(&sim, "/call", &[]).await;
        assert!(names(&list).is_empty(), "not created yet");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (_, list) = get(&sim, "/call", &[]).await;
        assert_eq!(names(&list), vec!["late-1"]);
        assert_eq!(sim.stats().late_created, 1);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_5xx_after_the_create_leaves_the_call_created() {
        let sim = start(SimConfig {
            fault_5xx_after_create: 1.0,
            ..slow()
        })
        .await;
        let response = switchboard_vapi::http::client()
            .post(format!("{}/call", sim.base_url()))
            .bearer_auth("sim-key")
            .json(&body("x-1"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_server_error());
        assert!(
            response.text().await.unwrap().contains("<html>"),
            "an HTML page"
        );
        let (_, list) = get(&sim, "/call", &[]).await;
        assert_eq!(names(&list), vec!["x-1"]);
        assert_eq!(sim.stats().created_per_name.get("x-1"), Some(&1));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_gateway_limits_every_request_and_reads_can_be_refused() {
        let sim = start(SimConfig {
            gateway_rps: 1.0,
            gateway_burst: 2,
            ..slow()
        })
        .await;
        assert_eq!(post(&sim, &body("g1")).await.0, StatusCode::CREATED);
        assert_eq!(get(&sim, "/call", &[]).await.0, StatusCode::OK);
        assert_eq!(
            get(&sim, "/call", &[]).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            post(&sim, &body("g2")).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(sim.stats().gateway_rejected, 2);
        sim.shutdown().await;

        let sim = start(SimConfig {
            fault_read_429: 1.0,
            ..slow()
        })
        .await;
        assert_eq!(post(&sim, &body("r1")).await.0, StatusCode::CREATED);
        assert_eq!(
            get(&sim, "/call", &[]).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(sim.stats().faults_read_429, 1);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn unknown_resources_are_refused_like_vapi_does() {
        let sim = start(SimConfig {
            assistants: vec![ASSISTANT.into()],
            phone_numbers: vec!["pn-2".into()],
            ..slow()
        })
        .await;
        let (status, error) = post(&sim, &body("u1")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["message"], "Couldn't Get Phone Number.");
        let mut other = body("u2");
        other["assistantId"] = json!("asst-unknown");
        let (_, error) = post(&sim, &other).await;
        assert_eq!(error["message"], "Couldn't Get Assistant.");
        sim.shutdown().await;
    }

    /// A vanishing call is there to be found first (a client's look-up can adopt it), and
    /// gone only `vanish_after_ms` after its creation.
    #[tokio::test]
    async fn a_vanishing_call_is_listed_until_its_time() {
        let sim = start(SimConfig {
            fault_vanish: 1.0,
            vanish_after_ms: 400,
            ..slow()
        })
        .await;
        let (_, call) = post(&sim, &body("v2")).await;
        let path = format!("/call/{}", call["id"].as_str().unwrap());
        assert_eq!(get(&sim, &path, &[]).await.0, StatusCode::OK);
        assert_eq!(names(&get(&sim, "/call", &[]).await.1), vec!["v2"]);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(get(&sim, &path, &[]).await.0, StatusCode::NOT_FOUND);
        assert!(names(&get(&sim, "/call", &[]).await.1).is_empty());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn start_errors_vanishing_calls_and_late_costs() {
        let sim = start(SimConfig {
            fault_start_error: 1.0,
            ..fast()
        })
        .await;
        let (_, call) = post(&sim, &body("s1")).await;
        let reason = call["endedReason"].as_str().unwrap().to_string();
        assert!(state::START_ERRORS.contains(&reason.as_str()), "{reason}");
        assert_eq!(call["status"], "ended");
        sim.shutdown().await;

        let sim = start(SimConfig {
            fault_vanish: 1.0,
            vanish_after_ms: 0,
            ..slow()
        })
        .await;
        let (status, call) = post(&sim, &body("v1")).await;
        assert_eq!(status, StatusCode::CREATED);
        let id = call["id"].as_str().unwrap();
        assert_eq!(
            get(&sim, &format!("/call/{id}"), &[]).await.0,
            StatusCode::NOT_FOUND
        );
        assert!(names(&get(&sim, "/call", &[]).await.1).is_empty());
        sim.shutdown().await;

        let sim = start(SimConfig {
            cost_final_ms: 300,
            talk_min_ms: 1_000,
            talk_max_ms: 1_000,
            ..fast()
        })
        .await;
        // Answered calls only: draw until one is answered (seeded, deterministic).
        let mut answered = None;
        for i in 0..20 {
            let (_, call) = post(&sim, &body(&format!("c{i}"))).await;
            answered = Some(call["id"].as_str().unwrap().to_string());
            tokio::time::sleep(Duration::from_millis(1_050)).await;
            let (_, now) = get(&sim, &format!("/call/{}", answered.as_ref().unwrap()), &[]).await;
            if now["startedAt"].is_string() {
                break;
            }
        }
        let id = answered.unwrap();
        let (_, partial) = get(&sim, &format!("/call/{id}"), &[]).await;
        assert_eq!(partial["status"], "ended");
        tokio::time::sleep(Duration::from_millis(350)).await;
        let (_, settled) = get(&sim, &format!("/call/{id}"), &[]).await;
        let (p, f) = (
            partial["cost"].as_f64().unwrap(),
            settled["cost"].as_f64().unwrap(),
        );
        assert!(f > p, "final cost {f} above the first {p}");
        assert!(
            settled["updatedAt"].as_str() > partial["updatedAt"].as_str(),
            "updatedAt moved with the final cost"
        );
        sim.shutdown().await;
    }

    #[test]
    fn the_realism_profile_turns_the_hard_cases_on_and_keeps_explicit_knobs() {
        let r = SimConfig::realism();
        assert!(r.fault_late_create > 0.0 && r.fault_5xx_after_create > 0.0);
        assert!(r.fault_read_429 > 0.0 && r.fault_start_error > 0.0 && r.fault_vanish > 0.0);
        assert_eq!(r.list_order, ListOrder::Random);
        assert!(r.read_latency() < r.latency_ms, "reads faster than creates");
        assert!(r.cost_final_ms > 0);
        let mine = SimConfig {
            fault_429: 0.3,
            ..SimConfig::default()
        }
        .with_realism();
        assert_eq!(mine.fault_429, 0.3, "an explicit knob is kept");
    }
}
