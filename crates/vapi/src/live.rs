//! A live call's monitor (schema `Monitor`): `controlUrl`, where control messages are POSTed
//! (schemas `ClientInboundMessage*`), and `listenUrl`, a WebSocket of the call's audio. Both
//! are capabilities (Vapi's default is no authentication on them): they are held as secrets,
//! never serialized, and an error about them never names them.

use futures::StreamExt;
use serde::Serialize;
use switchboard_model::live::{Destination, LiveAction, Speaker, TranscriptLine};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::config::{ExposeSecret, Secret};
use crate::{VapiClient, VapiError};

/// The URLs Vapi gives a call.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    pub listen_url: Option<Secret>,
    pub control_url: Option<Secret>,
}

impl PartialEq for Monitor {
    fn eq(&self, other: &Monitor) -> bool {
        let same = |a: &Option<Secret>, b: &Option<Secret>| match (a, b) {
            (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
            (None, None) => true,
            _ => false,
        };
        same(&self.listen_url, &other.listen_url) && same(&self.control_url, &other.control_url)
    }
}

impl Monitor {
    /// Reads `{listenUrl, controlUrl}`; anything else (absent, not an object, no URL) is none.
    pub fn from_value(value: &serde_json::Value) -> Option<Monitor> {
        let url = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(|s| Secret::from(s.to_string()))
        };
        let monitor = Monitor {
            listen_url: url("listenUrl"),
            control_url: url("controlUrl"),
        };
        (monitor.listen_url.is_some() || monitor.control_url.is_some()).then_some(monitor)
    }
}

/// Reads what was said from a `messages` array (the Call's, or a `conversation-update`'s):
/// `{role, message, secondsFromStart}` items, or OpenAI-formatted `{role, content}`. The
/// system prompt is left out. None when `value` is not an array.
pub fn transcript_of(value: &serde_json::Value) -> Option<Vec<TranscriptLine>> {
    let items = value.as_array()?;
    let lines = items
        .iter()
        .filter_map(|item| {
            let speaker = Speaker::from_vapi_role(item.get("role")?.as_str()?)?;
            let text = item
                .get("message")
                .or_else(|| item.get("content"))
                .and_then(|t| t.as_str())
                .unwrap_or("");
            let text = if text.is_empty() && speaker == Speaker::Tool {
                "(tool call)"
            } else {
                text
            };
            let at = item
                .get("secondsFromStart")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            (!text.trim().is_empty()).then(|| TranscriptLine::new(speaker, at, text))
        })
        .collect();
    Some(switchboard_model::live::bounded(lines))
}

/// A control message as Vapi's spec writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ControlMessage {
    Say {
        content: String,
        #[serde(rename = "endCallAfterSpoken")]
        end_call_after_spoken: bool,
    },
    AddMessage {
        message: OpenAiMessage,
        #[serde(rename = "triggerResponseEnabled")]
        trigger_response_enabled: bool,
    },
    Control {
        control: &'static str,
    },
    EndCall,
    Transfer {
        destination: TransferDestination,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenAiMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TransferDestination {
    Number {
        number: String,
    },
    Sip {
        #[serde(rename = "sipUri")]
        sip_uri: String,
    },
}

impl From<&LiveAction> for ControlMessage {
    fn from(action: &LiveAction) -> ControlMessage {
        match action {
            LiveAction::Say { text, end_after } => ControlMessage::Say {
                content: text.clone(),
                end_call_after_spoken: *end_after,
            },
            // A whisper: in the assistant's context, with no reply spoken.
            LiveAction::Whisper { text } => ControlMessage::AddMessage {
                message: OpenAiMessage {
                    role: "system",
                    content: text.clone(),
                },
                trigger_response_enabled: false,
            },
            LiveAction::Mute { mute } => ControlMessage::Control {
                control: if *mute {
                    "mute-assistant"
                } else {
                    "unmute-assistant"
                },
            },
            LiveAction::Transfer { to } => ControlMessage::Transfer {
                destination: match to {
                    Destination::Number(n) => TransferDestination::Number { number: n.clone() },
                    Destination::Sip(uri) => TransferDestination::Sip {
                        sip_uri: uri.clone(),
                    },
                },
            },
            LiveAction::End => ControlMessage::EndCall,
        }
    }
}

/// What comes down a listen socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Raw PCM, 16-bit little-endian.
    Audio(Vec<u8>),
    /// A JSON frame of Vapi's.
    Text(String),
}

/// An open listen socket.
pub struct Listener {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Listener {
    /// The next frame; None when the call (or the socket) ended.
    pub async fn next(&mut self) -> Option<Result<Frame, VapiError>> {
        loop {
            return match self.socket.next().await? {
                Ok(WsMessage::Binary(bytes)) => Some(Ok(Frame::Audio(bytes.to_vec()))),
                Ok(WsMessage::Text(text)) => Some(Ok(Frame::Text(text.to_string()))),
                Ok(WsMessage::Close(_)) => None,
                Ok(_) => continue,
                Err(e) => Some(Err(VapiError::Interrupted(ws_error(&e)))),
            };
        }
    }
}

/// A WebSocket error without the URL it was about.
fn ws_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(response) => format!("HTTP {}", response.status().as_u16()),
        E::Io(io) => format!("{}", io.kind()),
        E::Tls(_) => "TLS failure".into(),
        E::Url(_) => "not a WebSocket URL".into(),
        E::ConnectionClosed | E::AlreadyClosed => "connection closed".into(),
        other => switchboard_model::text::bounded(&other.to_string(), 120),
    }
}

impl VapiClient {
    /// POSTs `message` to a call's control URL; Vapi's answer (its body, one line) on 2xx.
    pub async fn control(
        &self,
        control_url: &Secret,
        message: &ControlMessage,
    ) -> Result<String, VapiError> {
        let url = control_url.expose_secret();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(VapiError::Decode {
                status: 0,
                detail: "the call's control URL is not an http(s) URL".into(),
            });
        }
        let mut builder = self.http.post(url).json(message);
        if let Some(key) = &self.monitor_key {
            builder = builder.bearer_auth(key.expose_secret());
        }
        let response = builder
            .send()
            .await
            .map_err(|e| VapiError::from_transport(&e.without_url(), self.timeout))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| VapiError::from_transport(&e.without_url(), self.timeout))?;
        if status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Ok(crate::truncate(text.trim()));
        }
        Err(VapiError::status(
            status.as_u16(),
            crate::error_message(status, &body),
            None,
        ))
    }

    /// Opens a call's listen socket.
    pub async fn listen(&self, listen_url: &Secret) -> Result<Listener, VapiError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        crate::http::ensure_tls_provider();
        let url = listen_url.expose_secret();
        if !(url.starts_with("wss://") || url.starts_with("ws://")) {
            return Err(VapiError::Decode {
                status: 0,
                detail: "the call's listen URL is not a WebSocket URL".into(),
            });
        }
        let mut request = url
            .into_client_request()
            .map_err(|e| VapiError::Connect(ws_error(&e)))?;
        if let Some(key) = &self.monitor_key {
            let value = format!("Bearer {}", key.expose_secret())
                .parse()
                .map_err(|_| VapiError::Setup("the public key is not a header value".into()))?;
            request.headers_mut().insert("authorization", value);
        }
        let connect = tokio_tungstenite::connect_async(request);
        let (socket, _) = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| VapiError::Timeout(self.timeout))?
            .map_err(|e| VapiError::Connect(ws_error(&e)))?;
        Ok(Listener { socket })
    }
}

/// A WAV header for 16-bit PCM. `data_len` None writes the largest sizes, as streaming tools
/// (aplay, ffplay) expect of a stream whose end is not known yet.
pub fn wav_header(sample_rate: u32, channels: u16, data_len: Option<u32>) -> [u8; 44] {
    let data = data_len.unwrap_or(u32::MAX - 36);
    let block = channels * 2;
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&(sample_rate * u32::from(block)).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_model::live::Destination;

    fn body(action: LiveAction) -> serde_json::Value {
        serde_json::to_value(ControlMessage::from(&action)).expect("serializes")
    }

    #[test]
    fn control_messages_have_the_specs_shapes() {
        assert_eq!(
            body(LiveAction::Say {
                text: "Hi".into(),
                end_after: true
            }),
            serde_json::json!({"type": "say", "content": "Hi", "endCallAfterSpoken": true})
        );
        assert_eq!(
            body(LiveAction::Whisper {
                text: "be brief".into()
            }),
            serde_json::json!({"type": "add-message",
                "message": {"role": "system", "content": "be brief"},
                "triggerResponseEnabled": false})
        );
        assert_eq!(
            body(LiveAction::Mute { mute: true }),
            serde_json::json!({"type": "control", "control": "mute-assistant"})
        );
        assert_eq!(
            body(LiveAction::Mute { mute: false }),
            serde_json::json!({"type": "control", "control": "unmute-assistant"})
        );
        assert_eq!(
            body(LiveAction::End),
            serde_json::json!({"type": "end-call"})
        );
        assert_eq!(
            body(LiveAction::Transfer {
                to: Destination::Number("+14155550100".into())
            }),
            serde_json::json!({"type": "transfer",
                "destination": {"type": "number", "number": "+14155550100"}})
        );
        assert_eq!(
            body(LiveAction::Transfer {
                to: Destination::Sip("sip:desk@example.com".into())
            }),
            serde_json::json!({"type": "transfer",
                "destination": {"type": "sip", "sipUri": "sip:desk@example.com"}})
        );
    }

    #[test]
    fn a_calls_monitor_is_read_but_never_printed_or_serialized() {
        let call: crate::VapiCall = serde_json::from_str(
            r#"{"id":"c1","monitor":{"listenUrl":"wss://h/abc/listen","controlUrl":"https://h/abc/control"},
                "messages":[{"role":"system","message":"prompt","secondsFromStart":0},
                            {"role":"bot","message":"Hello!","secondsFromStart":0.5},
                            {"role":"user","message":"Who is this?","secondsFromStart":2.25}]}"#,
        )
        .expect("parses");
        let monitor = call.monitor.clone().expect("monitor read");
        assert_eq!(
            monitor.control_url.as_ref().map(|u| u.expose_secret()),
            Some("https://h/abc/control")
        );
        assert!(!format!("{call:?}").contains("abc"), "Debug shows a URL");
        let json = serde_json::to_string(&call).expect("serializes");
        assert!(!json.contains("abc"), "serialized with its URLs: {json}");
        let lines = call.messages.expect("messages read");
        assert_eq!(lines.len(), 2, "the prompt is not what was said");
        assert_eq!(lines[1].speaker, Speaker::Customer);
        assert_eq!(lines[1].at_s, 2.25);
        // A monitor of the wrong shape is none, not a failed read.
        let odd: crate::VapiCall =
            serde_json::from_str(r#"{"id":"c2","monitor":"x","messages":7}"#).expect("parses");
        assert_eq!((odd.monitor, odd.messages), (None, None));
    }

    #[test]
    fn wav_headers_describe_16_bit_pcm() {
        let h = wav_header(16_000, 2, Some(64_000));
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 64_036);
        assert_eq!(u16::from_le_bytes([h[22], h[23]]), 2);
        assert_eq!(u32::from_le_bytes([h[24], h[25], h[26], h[27]]), 16_000);
        assert_eq!(u32::from_le_bytes([h[28], h[29], h[30], h[31]]), 64_000);
        assert_eq!(u32::from_le_bytes([h[40], h[41], h[42], h[43]]), 64_000);
        let streaming = wav_header(16_000, 2, None);
        assert_eq!(
            u32::from_le_bytes([streaming[4], streaming[5], streaming[6], streaming[7]]),
            u32::MAX
        );
    }

    #[tokio::test]
    async fn control_errors_never_name_the_url() {
        let client = VapiClient::new(
            "http://127.0.0.1:9",
            Secret::from("k".to_string()),
            std::time::Duration::from_millis(500),
        )
        .expect("client");
        let url = Secret::from("http://127.0.0.1:9/secret-token-xyz/control".to_string());
        let e = client
            .control(&url, &ControlMessage::EndCall)
            .await
            .expect_err("nothing listens on port 9");
        assert!(!e.to_string().contains("secret-token-xyz"), "{e}");
        let e = client
            .listen(&Secret::from(
                "ws://127.0.0.1:9/secret-token-xyz/listen".to_string(),
            ))
            .await
            .err()
            .expect("nothing listens");
        assert!(!e.to_string().contains("secret-token-xyz"), "{e}");
    }
}
