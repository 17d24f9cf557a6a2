//! Vapi HTTP client: `POST /call`, `GET /call/{id}`, `GET /call`. It only speaks HTTP and
//! classifies failures; retries, look-ups and persistence belong to the dispatcher. Also the
//! DTOs (`types`), the complete look-up by time window (`search`) and the webhook signature,
//! which the simulator shares.

pub mod error;
pub mod http;
pub mod live;
pub mod resources;
pub mod search;
mod signature;
pub mod types;

pub use signature::webhook_signature;
use switchboard_model::config;

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

pub use error::{ErrorClass, Subject, VapiError};
pub use types::{
    CreateCallRequest, CreateCallResponse, ListCallsFilter, SubscriptionLimits, VapiCall,
};

use crate::config::{ExposeSecret, Secret};

/// Longest error text kept from a response body (it ends up in ended_reason and logs).
const MAX_MESSAGE: usize = 300;

#[derive(Debug, Clone)]
pub struct VapiClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Secret,
    timeout: Duration,
    clock: switchboard_model::clock::Clock,
    /// The public key sent to a call's control and listen URLs when the assistant asks for
    /// their authentication (`monitorPlan.*AuthenticationEnabled`).
    monitor_key: Option<Secret>,
}

impl VapiClient {
    pub fn new(base_url: &str, api_key: Secret, timeout: Duration) -> Result<Self, VapiError> {
        let http = http::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VapiError::Setup(e.to_string()))?;
        Ok(VapiClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            timeout,
            clock: switchboard_model::clock::Clock::system(),
            monitor_key: None,
        })
    }

    /// The same client authenticating to monitor URLs with Vapi's public key.
    pub fn with_monitor_key(mut self, key: Option<Secret>) -> VapiClient {
        self.monitor_key = key;
        self
    }

    /// The same client reading wall time from `clock` (for a Retry-After date without a
    /// `Date` header).
    pub fn with_clock(mut self, clock: switchboard_model::clock::Clock) -> VapiClient {
        self.clock = clock;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn create_call(
        &self,
        request: &CreateCallRequest,
    ) -> Result<CreateCallResponse, VapiError> {
        let builder = self
            .http
            .post(format!("{}/call", self.base_url))
            .json(request);
        self.send(builder).await
    }

    pub async fn get_call(&self, id: &str) -> Result<VapiCall, VapiError> {
        self.get_by_id("call", id).await
    }

    /// `GET /assistant/{id}`: its prompt and messages (`switchboard check`).
    pub async fn get_assistant(&self, id: &str) -> Result<resources::Assistant, VapiError> {
        self.get_by_id("assistant", id).await
    }

    /// `GET /phone-number/{id}`: whether it can place calls (`switchboard check`).
    pub async fn get_phone_number(&self, id: &str) -> Result<resources::PhoneNumber, VapiError> {
        self.get_by_id("phone-number", id).await
    }

    async fn get_by_id<T: DeserializeOwned>(&self, what: &str, id: &str) -> Result<T, VapiError> {
        // The id goes in the path: refuse anything that could change the path.
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(VapiError::Decode {
                status: 0,
                detail: format!("refusing to look up a malformed {what} id {id:?}"),
            });
        }
        let builder = self.http.get(format!("{}/{what}/{id}", self.base_url));
        self.send(builder).await
    }

    pub async fn list_calls(&self, filter: &ListCallsFilter) -> Result<Vec<VapiCall>, VapiError> {
        let builder = self
            .http
            .get(format!("{}/call", self.base_url))
            .query(filter);
        self.send(builder).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, VapiError> {
        let response = builder
            .bearer_auth(self.api_key.expose_secret())
            .send()
            .await
            .map_err(|e| VapiError::from_transport(&e, self.timeout))?;
        let status = response.status();
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok());
        // An HTTP date is read against the response's own Date (no skew), else our clock.
        let now = header(reqwest::header::DATE)
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or_else(|| self.clock.now());
        let retry_after =
            header(reqwest::header::RETRY_AFTER).and_then(|v| error::parse_retry_after(v, now));
        let body = response
            .bytes()
            .await
            .map_err(|e| VapiError::from_transport(&e, self.timeout))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| VapiError::Decode {
                status: status.as_u16(),
                detail: truncate(&e.to_string()),
            });
        }
        Err(VapiError::status(
            status.as_u16(),
            error_message(status, &body),
            retry_after,
        ))
    }
}

/// Vapi's message (string or array), else the start of the body, else the status's name.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<types::ErrorBody>(body)
        && let Some(text) = parsed.text()
    {
        return truncate(&text);
    }
    let raw = String::from_utf8_lossy(body);
    let raw = raw.trim();
    if looks_like_html(raw) {
        // A proxy's error page says nothing a log line can use; its size says it was one.
        return format!(
            "HTTP {} (HTML page, {})",
            status.as_u16(),
            human_size(body.len())
        );
    }
    if raw.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        truncate(raw)
    }
}

/// Whether a body is an HTML page (a gateway's or load balancer's error page).
fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.starts_with("<head")
}

/// `812 B`, `1.2 kB`, `3.4 MB` (decimal units, like the size of a page).
fn human_size(bytes: usize) -> String {
    let b = bytes as f64;
    if bytes < 1000 {
        format!("{bytes} B")
    } else if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

fn truncate(text: &str) -> String {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.chars().count() <= MAX_MESSAGE {
        text
    } else {
        let mut cut: String = text.chars().take(MAX_MESSAGE).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod message_tests {
    use super::*;

    #[test]
    fn an_html_error_page_becomes_one_short_line() {
        let page = format!(
            "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "x".repeat(1150)
        );
        let message = error_message(StatusCode::BAD_GATEWAY, page.as_bytes());
        assert_eq!(message, "HTTP 502 (HTML page, 1.2 kB)");
        let small = error_message(StatusCode::BAD_GATEWAY, b"<html><body>bad</body></html>");
        assert_eq!(small, "HTTP 502 (HTML page, 29 B)");
    }

    #[test]
    fn other_bodies_are_kept_to_the_message_limit() {
        let long = "e".repeat(10_000);
        let message = error_message(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes());
        assert_eq!(message.chars().count(), MAX_MESSAGE + 1);
        assert!(message.ends_with('…'));
        let json = br#"{"message":"phoneNumberId not found"}"#;
        assert_eq!(
            error_message(StatusCode::BAD_REQUEST, json),
            "phoneNumberId not found"
        );
        assert_eq!(error_message(StatusCode::BAD_GATEWAY, b""), "Bad Gateway");
    }
}
