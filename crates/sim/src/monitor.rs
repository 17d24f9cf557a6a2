//! A call's monitor, as Vapi serves it: `controlUrl` accepts the `ClientInboundMessage*`
//! bodies (validated as strictly as the spec writes them) and `listenUrl` is a WebSocket of
//! the call's audio (16-bit stereo PCM at 16 kHz in binary frames, plus a JSON frame). The
//! scripted conversation every answered call has lives here too.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::api::Shared;

/// What the assistant and the customer say, turn by turn (the assistant first).
const SCRIPT: &[&str] = &[
    "Hi, this is Ava from Northwind Dental. Am I speaking with the patient?",
    "Yes, speaking. What is this about?",
    "You are due for your check-up. Would Tuesday at 10 work for you?",
    "Tuesday is hard. Do you have anything on Thursday?",
    "Thursday at 2 pm is open. Shall I book it?",
    "Yes please, Thursday at 2.",
    "Done: Thursday at 2 pm. You will get a text reminder. Anything else?",
    "No, that's all. Thanks!",
    "Thank you, goodbye!",
];
/// What a looping assistant says on every one of its turns.
const LOOP_LINE: &str = "Sorry, could you repeat that?";
/// A turn every this long once the call is answered; the first after `FIRST_TURN_MS`.
const TURN_MS: u64 = 3_000;
const FIRST_TURN_MS: u64 = 500;
/// PCM per frame: 20 ms of 16 kHz stereo 16-bit.
const FRAME_MS: u64 = 20;
const FRAME_BYTES: usize = 16_000 * 2 * 2 * FRAME_MS as usize / 1000;

/// The offsets (ms since creation) of the turns of a call answered at `started` that talks
/// until `until`.
pub fn turns(started: u64, until: u64) -> impl Iterator<Item = u64> {
    (0..)
        .map(move |i: u64| started + FIRST_TURN_MS + i * TURN_MS)
        .take_while(move |at| *at < until)
}

/// The scripted lines said by `until`: (offset, role, text), role as Vapi's `messages` spell it.
pub fn script(started: u64, until: u64, loops: bool) -> Vec<(u64, &'static str, String)> {
    turns(started, until)
        .enumerate()
        .map(|(i, at)| {
            let assistant = i % 2 == 0;
            let role = if assistant { "bot" } else { "user" };
            let text = if assistant && loops {
                LOOP_LINE
            } else {
                SCRIPT[i % SCRIPT.len()]
            };
            (at, role, text.to_string())
        })
        .collect()
}

/// Checks a control body against the spec's `ClientInboundMessage*` schemas; the error is
/// Vapi's 400 message.
pub fn validate(body: &Value) -> Result<(), String> {
    let Some(object) = body.as_object() else {
        return Err("message must be an object".into());
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    let allowed: &[&str] = match text("type") {
        Some("say") => &[
            "type",
            "content",
            "endCallAfterSpoken",
            "interruptAssistantEnabled",
            "interruptionsEnabled",
        ],
        Some("add-message") => &["type", "message", "triggerResponseEnabled"],
        Some("control") => &["type", "control"],
        Some("end-call") => &["type"],
        Some("transfer") => &["type", "destination", "content"],
        Some(other) => return Err(format!("type {other} is not a valid control message type")),
        None => return Err("type must be a string".into()),
    };
    if let Some(key) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("property {key} should not exist"));
    }
    for flag in [
        "endCallAfterSpoken",
        "interruptAssistantEnabled",
        "interruptionsEnabled",
        "triggerResponseEnabled",
    ] {
        if object.get(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(format!("{flag} must be a boolean value"));
        }
    }
    match text("type") {
        Some("say") if text("content").is_none_or(|c| c.is_empty()) => {
            Err("content must be a non-empty string".into())
        }
        Some("add-message") => {
            let message = object.get("message").and_then(Value::as_object);
            let role = message.and_then(|m| m.get("role")).and_then(Value::as_str);
            let content = message.and_then(|m| m.get("content")).and_then(Value::as_str);
            match (role, content) {
                (Some("assistant" | "function" | "user" | "system" | "tool"), Some(_)) => Ok(()),
                _ => Err("message must have a role (assistant, function, user, system, tool) and a content".into()),
            }
        }
        Some("control") => match text("control") {
            Some("mute-assistant" | "unmute-assistant" | "mute-customer" | "unmute-customer" | "say-first-message") => Ok(()),
            _ => Err("control must be one of the following values: mute-assistant, unmute-assistant, mute-customer, unmute-customer, say-first-message".into()),
        },
        Some("transfer") => {
            let destination = object.get("destination").and_then(Value::as_object);
            let kind = destination.and_then(|d| d.get("type")).and_then(Value::as_str);
            let field = |k: &str| destination.and_then(|d| d.get(k)).and_then(Value::as_str);
            match kind {
                Some("number") if field("number").is_some_and(|n| n.starts_with('+')) => Ok(()),
                Some("sip") if field("sipUri").is_some_and(|u| u.starts_with("sip")) => Ok(()),
                _ => Err("destination must be a number (type number, number) or a SIP URI (type sip, sipUri)".into()),
            }
        }
        _ => Ok(()),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "statusCode": status.as_u16()})),
    )
        .into_response()
}

/// POST {controlUrl}.
pub(super) async fn control(
    State(shared): State<Arc<Shared>>,
    Path((id, token)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let now = Instant::now();
    if shared
        .with_state(|s| s.monitor_live(&id, &token, now))
        .is_none()
    {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let config = shared.config();
    let fails =
        config.fault_control > 0.0 && shared.with_state(|s| s.roll()) < config.fault_control;
    if fails {
        shared.with_state(|s| s.counters().faults_control += 1);
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body must be JSON");
    };
    if let Err(message) = validate(&body) {
        return error(StatusCode::BAD_REQUEST, &message);
    }
    match shared.with_state(|s| s.control(&id, &body, now)) {
        Ok(()) => (StatusCode::OK, Json(json!({"success": true}))).into_response(),
        Err(()) => error(StatusCode::BAD_REQUEST, "Call has ended"),
    }
}

/// GET {listenUrl}: the call's audio until it ends.
pub(super) async fn listen(
    State(shared): State<Arc<Shared>>,
    Path((id, token)): Path<(String, String)>,
    upgrade: WebSocketUpgrade,
) -> Response {
    match shared.with_state(|s| s.monitor_live(&id, &token, Instant::now())) {
        None => error(StatusCode::NOT_FOUND, "Not Found"),
        Some(false) => error(StatusCode::BAD_REQUEST, "Call has ended"),
        Some(true) => upgrade.on_upgrade(move |socket| stream(shared, id, token, socket)),
    }
}

async fn stream(shared: Arc<Shared>, id: String, token: String, mut socket: WebSocket) {
    let start =
        json!({"type": "start", "encoding": "linear16", "sampleRate": 16000, "channels": 2});
    if socket
        .send(Message::Text(start.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        if shared.with_state(|s| s.monitor_live(&id, &token, Instant::now())) != Some(true) {
            break;
        }
        if socket.send(Message::Binary(tone(n).into())).await.is_err() {
            return;
        }
        n += 1;
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// Frame `n` of a quiet 440 Hz tone on the assistant's side, silence on the customer's.
fn tone(n: u64) -> Vec<u8> {
    let samples = FRAME_BYTES / 4;
    let mut pcm = Vec::with_capacity(FRAME_BYTES);
    for i in 0..samples {
        let t = (n * samples as u64 + i as u64) as f64 / 16_000.0;
        let left = ((t * 440.0 * std::f64::consts::TAU).sin() * 3_000.0) as i16;
        pcm.extend_from_slice(&left.to_le_bytes());
        pcm.extend_from_slice(&0i16.to_le_bytes());
    }
    pcm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bodies_are_checked_as_the_spec_writes_them() {
        let ok = [
            json!({"type": "say", "content": "Hi", "endCallAfterSpoken": false}),
            json!({"type": "add-message", "message": {"role": "system", "content": "x"}, "triggerResponseEnabled": false}),
            json!({"type": "control", "control": "mute-assistant"}),
            json!({"type": "end-call"}),
            json!({"type": "transfer", "destination": {"type": "number", "number": "+14155550100"}}),
            json!({"type": "transfer", "destination": {"type": "sip", "sipUri": "sip:a@b"}}),
        ];
        for body in &ok {
            assert_eq!(validate(body), Ok(()), "{body}");
        }
        let bad = [
            json!({"type": "say"}),
            json!({"type": "say", "content": "x", "endCall": true}),
            json!({"type": "say", "content": "x", "endCallAfterSpoken": "yes"}),
            json!({"type": "add-message", "message": {"role": "boss", "content": "x"}}),
            json!({"type": "control", "control": "mute"}),
            json!({"type": "end-call", "reason": "x"}),
            json!({"type": "transfer", "destination": {"type": "number"}}),
            json!({"type": "hangup"}),
            json!("end-call"),
        ];
        for body in &bad {
            assert!(validate(body).is_err(), "{body} accepted");
        }
    }

    #[test]
    fn the_script_takes_turns_and_a_looping_assistant_repeats_itself() {
        let lines = script(1_000, 10_000, false);
        assert_eq!(lines.len(), 3, "turns at 1.5 s, 4.5 s and 7.5 s");
        assert_eq!(lines[0].1, "bot");
        assert_eq!(lines[1].1, "user");
        let looping = script(1_000, 20_000, true);
        let said: Vec<_> = looping
            .iter()
            .filter(|l| l.1 == "bot")
            .map(|l| l.2.as_str())
            .collect();
        assert!(said.len() >= 3 && said.iter().all(|t| *t == LOOP_LINE));
        assert_eq!(tone(0).len(), FRAME_BYTES);
    }
}
