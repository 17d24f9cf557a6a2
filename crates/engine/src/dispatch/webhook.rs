//! Optional webhook listener for Vapi server messages (`status-update`,
//! `end-of-call-report`, and what was said: `conversation-update`, final `transcript`s). The shared secret comes from an environment variable and is checked
//! the way `[webhook] auth` says (bearer, custom header, HMAC signature, legacy
//! `X-Vapi-Secret`); a message that fails gets 401 and changes nothing. Duplicated and
//! out-of-order messages are harmless: the store never moves a call backwards.

use crate::store::analysis::CallAnalysis;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Deserialize;

use super::Ctx;
use super::reactions::react_to_end;
use crate::config::{ExposeSecret, Secret, WebhookAuth, WebhookConfig};
use crate::model::CallStatus;
use crate::store::calls::CallUpdate;

/// End-of-call reports carry transcripts and messages: 10 MB happens; bounded all the same.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Clone)]
struct WebhookState {
    ctx: Arc<Ctx>,
    secret: Secret,
    check: AuthCheck,
    refusals: Arc<Refusals>,
}

/// How a message is authenticated, resolved from the config once.
#[derive(Debug, Clone)]
pub(crate) struct AuthCheck {
    pub mode: WebhookAuth,
    pub header_name: String,
    pub replay_window_s: u64,
}

impl AuthCheck {
    pub(crate) fn from_config(config: &WebhookConfig) -> AuthCheck {
        AuthCheck {
            mode: config.auth,
            header_name: config
                .header_name
                .clone()
                .unwrap_or_else(|| "x-vapi-secret".into()),
            replay_window_s: config.replay_window_s,
        }
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Refusal {
    MissingHeader,
    WrongCredential,
    BadSignature,
    StaleTimestamp,
}

impl Refusal {
    fn describe(self) -> &'static str {
        match self {
            Refusal::MissingHeader => "missing authentication header",
            Refusal::WrongCredential => "wrong credential",
            Refusal::BadSignature => "bad signature",
            Refusal::StaleTimestamp => "timestamp outside the replay window",
        }
    }
}

/// Counts refused messages; logs each reason once so a storm cannot flood the log.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    pub count: AtomicU64,
    pub last: Mutex<Option<String>>,
    logged: Mutex<Vec<Refusal>>,
}

impl Refusals {
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn last_reason(&self) -> Option<String> {
        self.last.lock().ok().and_then(|last| last.clone())
    }

    fn record(&self, refusal: Refusal) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(refusal.describe().to_string());
        }
        let first_time = match self.logged.lock() {
            Ok(mut logged) if !logged.contains(&refusal) => {
                logged.push(refusal);
                true
            }
            _ => false,
        };
        if first_time {
            tracing::warn!(target: "switchboard::engine",
                "webhook refused: {} (further refusals for this reason are counted, not logged)",
                refusal.describe());
        }
    }
}

/// Checks one message's credentials. `now_unix` is injected so tests control the clock.
pub(crate) fn authenticate(
    check: &AuthCheck,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), Refusal> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match check.mode {
        WebhookAuth::Secret => {
            let given = header("x-vapi-secret").ok_or(Refusal::MissingHeader)?;
            credential_matches(given, secret)
        }
        WebhookAuth::Header => {
            let given = header(&check.header_name).ok_or(Refusal::MissingHeader)?;
            credential_matches(given, secret)
        }
        WebhookAuth::Bearer => {
            let given = header("authorization").ok_or(Refusal::MissingHeader)?;
            let token = given
                .strip_prefix("Bearer ")
                .or_else(|| given.strip_prefix("bearer "))
                .ok_or(Refusal::WrongCredential)?;
            credential_matches(token.trim(), secret)
        }
        WebhookAuth::Hmac => {
            let signature = header("x-signature").ok_or(Refusal::MissingHeader)?;
            let timestamp = header("x-timestamp").ok_or(Refusal::MissingHeader)?;
            let signature = signature.strip_prefix("sha256=").unwrap_or(signature);
            let expected = hmac_hex(secret, timestamp, body);
            if !constant_time_eq(
                signature.to_ascii_lowercase().as_bytes(),
                expected.as_bytes(),
            ) {
                return Err(Refusal::BadSignature);
            }
            // Checked after the signature so a forger learns nothing from the answer.
            let sent = parse_timestamp(timestamp).ok_or(Refusal::StaleTimestamp)?;
            if now_unix.abs_diff(sent) > check.replay_window_s {
                return Err(Refusal::StaleTimestamp);
            }
            Ok(())
        }
    }
}

fn credential_matches(given: &str, secret: &str) -> Result<(), Refusal> {
    if constant_time_eq(given.as_bytes(), secret.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::WrongCredential)
    }
}

/// Seconds since the epoch; milliseconds are accepted too (13 digits and more).
fn parse_timestamp(text: &str) -> Option<i64> {
    let value: i64 = text.parse().ok()?;
    Some(if value > 100_000_000_000 {
        value / 1000
    } else {
        value
    })
}

pub(crate) use crate::vapi::webhook_signature as hmac_hex;

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
    /// `conversation-update`: the conversation so far.
    #[serde(default)]
    messages: Option<serde_json::Value>,
    /// `transcript`: one utterance.
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    transcript_type: Option<String>,
    #[serde(default)]
    transcript: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CallRef {
    id: String,
}

/// Only the report's `analysis`, `artifact.recordingUrl`, `recordingUrl` and the tool calls
/// of its messages, read from the body without keeping transcripts and message texts.
fn report_fields(body: &[u8]) -> serde_json::Value {
    #[derive(Deserialize)]
    struct Report {
        message: ReportMessage,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ReportMessage {
        #[serde(default)]
        analysis: serde_json::Value,
        #[serde(default)]
        artifact: Option<ArtifactUrl>,
        #[serde(default)]
        recording_url: Option<String>,
        #[serde(default)]
        messages: serde_json::Value,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ArtifactUrl {
        #[serde(default)]
        recording_url: Option<String>,
        #[serde(default)]
        messages: serde_json::Value,
    }
    match serde_json::from_slice::<Report>(body) {
        Ok(r) => {
            let (recording, artifact_messages) = match r.message.artifact {
                Some(a) => (a.recording_url, a.messages),
                None => (None, serde_json::Value::Null),
            };
            // Only the messages' tool calls are kept (never what was said).
            let messages: Vec<serde_json::Value> = artifact_messages
                .as_array()
                .or_else(|| r.message.messages.as_array())
                .into_iter()
                .flatten()
                .filter(|m| m["toolCalls"].as_array().is_some_and(|a| !a.is_empty()))
                .map(|m| serde_json::json!({"toolCalls": m["toolCalls"]}))
                .collect();
            serde_json::json!({
                "analysis": r.message.analysis,
                "artifact": {"recordingUrl": recording, "messages": messages},
                "recordingUrl": r.message.recording_url,
            })
        }
        Err(_) => serde_json::Value::Null,
    }
}

/// Binds `addr` and serves until the engine stops. Returns the bound address.
/// Serves the webhook routes on `listener` (bound before the engine took its lease, so a
/// port in use stops the start before anything else is done).
pub(crate) fn serve(
    ctx: Arc<Ctx>,
    listener: tokio::net::TcpListener,
    secret: Secret,
    check: AuthCheck,
    refusals: Arc<Refusals>,
) -> std::io::Result<SocketAddr> {
    let bound = listener.local_addr()?;
    let app = router(ctx.clone(), secret, check, refusals);
    super::serve_until_stopping(ctx, listener, app, "webhook listener");
    tracing::info!(target: "switchboard::engine", %bound, "webhook listener started");
    Ok(bound)
}

fn router(ctx: Arc<Ctx>, secret: Secret, check: AuthCheck, refusals: Arc<Refusals>) -> Router {
    Router::new()
        .route("/webhook", post(receive))
        .route("/", post(receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(WebhookState {
            ctx,
            secret,
            check,
            refusals,
        })
}

/// One webhook message, counted by result.
async fn receive(state: State<WebhookState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = handle_message(state, headers, body).await;
    super::metrics::webhook(match status.as_u16() {
        200..=299 => "accepted",
        401 => "refused",
        400..=499 => "malformed",
        _ => "failed",
    });
    status
}

async fn handle_message(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = state.ctx.now().timestamp();
    if let Err(refusal) = authenticate(
        &state.check,
        state.secret.expose_secret(),
        &headers,
        &body,
        now,
    ) {
        state.refusals.record(refusal);
        return StatusCode::UNAUTHORIZED;
    }
    // Unknown fields (transcripts, messages) are skipped by serde, not kept.
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let message = envelope.message;
    if message.kind == "end-of-call-report"
        && let Some(call) = &message.call
    {
        if let Some(analysis) = CallAnalysis::from_report(&report_fields(&body))
            && let Err(e) = state.ctx.store.record_analysis(&call.id, &analysis).await
        {
            tracing::error!(target: "switchboard::engine", "analysis not recorded: {e}");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        // The report is in (with an analysis or none): nothing more to wait for.
        if let Ok(Some(ours)) = state.ctx.store.call_by_provider_id(&call.id).await {
            state
                .ctx
                .gate
                .update(|s| s.awaiting_reports.remove(&ours.id));
        }
    }
    let Some(call) = message.call.as_ref() else {
        return StatusCode::OK;
    };
    if let Some(answer) = transcript(&state.ctx, &message, &call.id).await {
        return answer;
    }
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

/// Keeps what a `conversation-update` or a final `transcript` says was said; None for the
/// other messages.
async fn transcript(ctx: &Ctx, message: &Message, provider_id: &str) -> Option<StatusCode> {
    use crate::model::live::{Speaker, TranscriptLine};
    let kept = match message.kind.as_str() {
        "conversation-update" => {
            let lines = message
                .messages
                .as_ref()
                .and_then(crate::vapi::live::transcript_of)?;
            ctx.store.set_transcript(provider_id, &lines).await
        }
        "transcript" | "transcript[transcriptType=\"final\"]" => {
            if message.transcript_type.as_deref() != Some("final") {
                return Some(StatusCode::OK);
            }
            let speaker = message.role.as_deref().and_then(Speaker::from_vapi_role);
            let (Some(speaker), Some(text)) = (speaker, message.transcript.as_deref()) else {
                return Some(StatusCode::OK);
            };
            if text.trim().is_empty() {
                return Some(StatusCode::OK);
            }
            let line = TranscriptLine::new(speaker, 0.0, text);
            ctx.store.append_transcript(provider_id, &line).await
        }
        _ => return None,
    };
    Some(match kept {
        Ok(_) => StatusCode::OK,
        Err(e) => {
            tracing::error!(target: "switchboard::engine", "transcript not kept: {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "s3cret";
    const NOW: i64 = 1_790_000_000;

    fn check(mode: WebhookAuth) -> AuthCheck {
        AuthCheck {
            mode,
            header_name: "x-my-token".into(),
            replay_window_s: 300,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("test header"));
        }
        map
    }

    #[test]
    fn a_report_keeps_its_analysis_and_tool_calls_and_drops_what_was_said() {
        let body = serde_json::json!({"message": {
            "type": "end-of-call-report",
            "analysis": {"summary": "s", "structuredData": {"callback_at": "15:00"}},
            "artifact": {
                "recordingUrl": "https://r/1.wav",
                "messages": [
                    {"role": "user", "message": "call me back at three"},
                    {"role": "tool_calls", "toolCalls": [{"id": "t1", "type": "function",
                        "function": {"name": "book_callback", "arguments": "{\"at\": \"15:00\"}"}}]},
                    {"role": "bot", "toolCalls": "not a list"},
                    "not an object"
                ]
            }
        }});
        let reduced = report_fields(body.to_string().as_bytes());
        assert!(!reduced.to_string().contains("call me back"), "{reduced}");
        let analysis = CallAnalysis::from_report(&reduced).expect("an analysis");
        assert_eq!(analysis.recording_url.as_deref(), Some("https://r/1.wav"));
        let tools: serde_json::Value =
            serde_json::from_str(analysis.tool_calls.as_deref().expect("tool calls")).unwrap();
        assert_eq!(
            tools,
            serde_json::json!([{"name": "book_callback", "arguments": "{\"at\": \"15:00\"}"}])
        );
        // A report without messages still keeps its analysis.
        let bare = serde_json::json!({"message": {"analysis": {"summary": "s"}}});
        let analysis = CallAnalysis::from_report(&report_fields(bare.to_string().as_bytes()));
        assert_eq!(analysis.and_then(|a| a.summary).as_deref(), Some("s"));
    }

    #[test]
    fn secret_mode_accepts_the_secret_and_refuses_forged_or_missing() {
        let c = check(WebhookAuth::Secret);
        let good = headers(&[("x-vapi-secret", SECRET)]);
        assert_eq!(authenticate(&c, SECRET, &good, b"{}", NOW), Ok(()));
        let forged = headers(&[("x-vapi-secret", "guess")]);
        assert_eq!(
            authenticate(&c, SECRET, &forged, b"{}", NOW),
            Err(Refusal::WrongCredential)
        );
        assert_eq!(
            authenticate(&c, SECRET, &HeaderMap::new(), b"{}", NOW),
            Err(Refusal::MissingHeader)
        );
    }

    #[test]
    fn bearer_mode_reads_the_authorization_header() {
        let c = check(WebhookAuth::Bearer);
        let good = headers(&[("authorization", "Bearer s3cret")]);
        assert_eq!(authenticate(&c, SECRET, &good, b"{}", NOW), Ok(()));
        let forged = headers(&[("authorization", "Bearer nope")]);
        assert_eq!(
            authenticate(&c, SECRET, &forged, b"{}", NOW),
            Err(Refusal::WrongCredential)
        );
        // The legacy header is not a bearer token.
        let legacy = headers(&[("x-vapi-secret", SECRET)]);
        assert_eq!(
            authenticate(&c, SECRET, &legacy, b"{}", NOW),
            Err(Refusal::MissingHeader)
        );
    }

    #[test]
    fn header_mode_reads_the_configured_header() {
        let c = check(WebhookAuth::Header);
        let good = headers(&[("x-my-token", SECRET)]);
        assert_eq!(authenticate(&c, SECRET, &good, b"{}", NOW), Ok(()));
        let forged = headers(&[("x-my-token", "s3cre")]);
        assert_eq!(
            authenticate(&c, SECRET, &forged, b"{}", NOW),
            Err(Refusal::WrongCredential)
        );
        let other = headers(&[("x-vapi-secret", SECRET)]);
        assert_eq!(
            authenticate(&c, SECRET, &other, b"{}", NOW),
            Err(Refusal::MissingHeader)
        );
    }

    #[test]
    fn hmac_mode_checks_signature_and_replay_window() {
        let c = check(WebhookAuth::Hmac);
        let body = br#"{"message":{"type":"status-update"}}"#;
        let ts = NOW.to_string();
        let sig = hmac_hex(SECRET, &ts, body);
        let good = headers(&[("x-signature", &sig), ("x-timestamp", &ts)]);
        assert_eq!(authenticate(&c, SECRET, &good, body, NOW), Ok(()));
        let prefixed = format!("sha256={sig}");
        let good_prefixed = headers(&[("x-signature", &prefixed), ("x-timestamp", &ts)]);
        assert_eq!(authenticate(&c, SECRET, &good_prefixed, body, NOW), Ok(()));
        // Body changed after signing.
        assert_eq!(
            authenticate(&c, SECRET, &good, br#"{"message":{}}"#, NOW),
            Err(Refusal::BadSignature)
        );
        // Signed with another secret.
        let forged_sig = hmac_hex("other", &ts, body);
        let forged = headers(&[("x-signature", &forged_sig), ("x-timestamp", &ts)]);
        assert_eq!(
            authenticate(&c, SECRET, &forged, body, NOW),
            Err(Refusal::BadSignature)
        );
        // Correctly signed, but replayed after the window.
        let old = (NOW - 301).to_string();
        let old_sig = hmac_hex(SECRET, &old, body);
        let stale = headers(&[("x-signature", &old_sig), ("x-timestamp", &old)]);
        assert_eq!(
            authenticate(&c, SECRET, &stale, body, NOW),
            Err(Refusal::StaleTimestamp)
        );
        // Inside the window is fine.
        let recent = (NOW - 299).to_string();
        let recent_sig = hmac_hex(SECRET, &recent, body);
        let fresh = headers(&[("x-signature", &recent_sig), ("x-timestamp", &recent)]);
        assert_eq!(authenticate(&c, SECRET, &fresh, body, NOW), Ok(()));
        let unsigned = headers(&[("x-timestamp", &ts)]);
        assert_eq!(
            authenticate(&c, SECRET, &unsigned, body, NOW),
            Err(Refusal::MissingHeader)
        );
    }

    #[test]
    fn refusals_are_counted_each_time_and_remember_the_last_reason() {
        let refusals = Refusals::default();
        for _ in 0..1000 {
            refusals.record(Refusal::BadSignature);
        }
        refusals.record(Refusal::StaleTimestamp);
        assert_eq!(refusals.count.load(Ordering::Relaxed), 1001);
        assert_eq!(
            refusals.last.lock().expect("not poisoned").as_deref(),
            Some("timestamp outside the replay window")
        );
        assert_eq!(refusals.logged.lock().expect("not poisoned").len(), 2);
    }
}
