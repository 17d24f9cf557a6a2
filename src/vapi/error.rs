//! What can go wrong talking to Vapi, and what each failure means for a create request:
//! certainly not created (retry), maybe created (look up before re-sending), rejected
//! (never retry), or bad credentials (stop everything).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VapiError {
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("could not connect to Vapi: {0}")]
    Connect(String),
    #[error("no response within {}ms", .0.as_millis())]
    Timeout(Duration),
    #[error("connection lost after the request was sent: {0}")]
    Interrupted(String),
    #[error("unreadable response from Vapi (HTTP {status}): {detail}")]
    Decode { status: u16, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
}

/// How a failed create request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The call was certainly not created (429, or no connection): retry with backoff.
    Transient,
    /// The request may have created the call (timeout, reset, 503/504 from a gateway,
    /// garbled 2xx): retried with backoff, but looked up at Vapi before anything is re-sent.
    Ambiguous,
    /// Vapi refused this request (400/404/422...): the same request fails the same way.
    Rejected,
    /// 401/403: the key is wrong; every call would fail the same way.
    Auth,
}

impl VapiError {
    pub fn class(&self, retry_on_status: &[u16]) -> ErrorClass {
        match self {
            VapiError::Status {
                status: 401 | 403, ..
            } => ErrorClass::Auth,
            // A 429 is refused before any work; a 503/504 from a gateway may come after the
            // backend created the call, so those are looked up before a re-send.
            VapiError::Status { status: 429, .. } if retry_on_status.contains(&429) => {
                ErrorClass::Transient
            }
            VapiError::Status { status, .. } if retry_on_status.contains(status) => {
                ErrorClass::Ambiguous
            }
            VapiError::Status { .. } => ErrorClass::Rejected,
            VapiError::Connect(_) => ErrorClass::Transient,
            VapiError::Timeout(_) | VapiError::Interrupted(_) => ErrorClass::Ambiguous,
            // A 2xx we cannot read may still be a created call; anything else is a refusal.
            VapiError::Decode { status, .. } if (200..300).contains(status) => {
                ErrorClass::Ambiguous
            }
            VapiError::Decode { .. } => ErrorClass::Rejected,
            VapiError::Setup(_) => ErrorClass::Rejected,
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            VapiError::Status { status, .. } | VapiError::Decode { status, .. } => Some(*status),
            VapiError::Connect(_)
            | VapiError::Timeout(_)
            | VapiError::Interrupted(_)
            | VapiError::Setup(_) => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            VapiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn is_rate_limited(&self) -> bool {
        self.http_status() == Some(429)
    }

    /// Maps a transport error. A connect failure never reached Vapi; anything after the
    /// connection was made may have.
    pub(crate) fn from_transport(error: &reqwest::Error, timeout: Duration) -> VapiError {
        // The URL never holds the key (that is a header), but it adds nothing to the reason.
        let mut detail = error.to_string();
        if let Some(url) = error.url() {
            detail = detail.replace(&format!(" for url ({url})"), "");
        }
        if error.is_connect() {
            VapiError::Connect(detail)
        } else if error.is_timeout() {
            VapiError::Timeout(timeout)
        } else {
            VapiError::Interrupted(detail)
        }
    }
}

/// Reads a Retry-After header: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(3600)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(
        delta
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> VapiError {
        VapiError::Status {
            status: code,
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn classification_follows_the_retry_rules() {
        let retry_on = [429, 503, 504];
        assert_eq!(status(429).class(&retry_on), ErrorClass::Transient);
        assert_eq!(status(503).class(&retry_on), ErrorClass::Ambiguous);
        assert_eq!(status(504).class(&retry_on), ErrorClass::Ambiguous);
        assert_eq!(status(400).class(&retry_on), ErrorClass::Rejected);
        assert_eq!(status(422).class(&retry_on), ErrorClass::Rejected);
        assert_eq!(status(500).class(&retry_on), ErrorClass::Rejected);
        assert_eq!(status(401).class(&retry_on), ErrorClass::Auth);
        assert_eq!(status(403).class(&retry_on), ErrorClass::Auth);
        assert_eq!(
            VapiError::Timeout(Duration::from_secs(1)).class(&retry_on),
            ErrorClass::Ambiguous
        );
        assert_eq!(
            VapiError::Connect("x".into()).class(&retry_on),
            ErrorClass::Transient
        );
        let garbled = VapiError::Decode {
            status: 201,
            detail: "EOF".into(),
        };
        assert_eq!(garbled.class(&retry_on), ErrorClass::Ambiguous);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon"), None);
        let past = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after(past), Some(Duration::ZERO));
    }
}
