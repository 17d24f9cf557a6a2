//! What can go wrong talking to Vapi, and what each failure means for a create request:
//! certainly not created (refused), maybe created (settled by look-up before anything is
//! re-sent), rejected (never retried), or bad credentials (stop everything).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VapiError {
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
        /// What the message names, read once where the answer is received.
        subject: Subject,
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

/// What a refusal of Vapi's names, read from its message once, where the answer arrives: the
/// engine decides on this (bench a number, pause a campaign, fail one contact), never on the
/// message's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The customer (the contact's number, name, extension): about this contact only.
    Customer,
    /// The phone number the call is made from.
    PhoneNumber,
    /// The campaign's assistant or what it needs (squad, workflow, credentials).
    Assistant,
    /// The account's money: credits, wallet, billing, subscription.
    Credits,
    /// The account otherwise: its organisation, limits, a fraud check.
    Account,
    /// Nothing the message names: about this request.
    Request,
}

/// Words of Vapi's messages and what they name, checked in order (the customer first: "customer.number
/// must be a valid phone number" is about the contact, not the campaign's number).
const SUBJECT_WORDS: &[(&str, Subject)] = &[
    ("customer", Subject::Customer),
    ("phonenumberid", Subject::PhoneNumber),
    ("phone number", Subject::PhoneNumber),
    ("phonenumber", Subject::PhoneNumber),
    ("assistant", Subject::Assistant),
    ("squad", Subject::Assistant),
    ("workflow", Subject::Assistant),
    ("credential", Subject::Assistant),
    ("credits", Subject::Credits),
    ("wallet", Subject::Credits),
    ("billing", Subject::Credits),
    ("subscription", Subject::Credits),
    ("organization", Subject::Account),
    ("daily limit", Subject::Account),
    ("concurrency", Subject::Account),
    ("fraud", Subject::Account),
];

impl Subject {
    /// Reads what a message of Vapi's names.
    pub fn of(message: &str) -> Subject {
        let m = message.to_ascii_lowercase();
        SUBJECT_WORDS
            .iter()
            .find(|(word, _)| m.contains(word))
            .map_or(Subject::Request, |(_, subject)| *subject)
    }

    /// Whether every contact of the campaign would be refused the same way (its resources or
    /// the account), rather than this one.
    pub fn is_the_campaign_s(self) -> bool {
        match self {
            Subject::PhoneNumber | Subject::Assistant | Subject::Credits | Subject::Account => true,
            Subject::Customer | Subject::Request => false,
        }
    }
}

/// What a failed create request says about the call, whatever happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Refused before any work (429, 503, no connection): the call was certainly not created.
    Refused,
    /// The request may have reached Vapi and may still be running there (timeout, reset after
    /// sending, unreadable 2xx, 500, 502, 504, 408, the proxy's 52x): the call may exist, now
    /// or later. It must be settled by look-up before anything is sent again.
    Ambiguous,
    /// Vapi refused this request (400/404/422...): the same request fails the same way.
    Rejected,
    /// 401/403: the key is wrong; every call would fail the same way.
    Auth,
}

impl VapiError {
    /// An HTTP error answer, with what its message names.
    pub fn status(status: u16, message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        let message = message.into();
        VapiError::Status {
            status,
            subject: Subject::of(&message),
            message,
            retry_after,
        }
    }

    /// What the refusal names (`Request` for anything that is not an HTTP answer).
    pub fn subject(&self) -> Subject {
        match self {
            VapiError::Status { subject, .. } => *subject,
            _ => Subject::Request,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            VapiError::Status {
                status: 401 | 403, ..
            } => ErrorClass::Auth,
            // Refusals: the gateway's rate limit, and "service unavailable" before any work.
            VapiError::Status {
                status: 429 | 503, ..
            } => ErrorClass::Refused,
            // 408 and every other 5xx (500 can follow the write; 502/504/52x are the proxy
            // giving up on an origin that may not have) may come after the call was created.
            VapiError::Status { status, .. } if *status == 408 || *status >= 500 => {
                ErrorClass::Ambiguous
            }
            VapiError::Status { .. } => ErrorClass::Rejected,
            VapiError::Connect(_) => ErrorClass::Refused,
            VapiError::Timeout(_) | VapiError::Interrupted(_) => ErrorClass::Ambiguous,
            // A 2xx we cannot read may still be a created call; anything else is a refusal.
            VapiError::Decode { status, .. } if (200..300).contains(status) => {
                ErrorClass::Ambiguous
            }
            VapiError::Decode { status, .. } if *status >= 500 => ErrorClass::Ambiguous,
            VapiError::Decode { .. } => ErrorClass::Rejected,
            VapiError::Setup(_) => ErrorClass::Rejected,
        }
    }

    /// The text of Vapi's answer (its message), without the HTTP status.
    pub fn message(&self) -> Option<&str> {
        match self {
            VapiError::Status { message, .. } => Some(message),
            _ => None,
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

/// Reads a Retry-After header: delay-seconds, or an HTTP date taken against `now` (the
/// response's own `Date`, so that our clock's skew does not count).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(3600)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - now;
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
        VapiError::status(code, "", None)
    }

    #[test]
    fn a_message_names_the_customer_before_the_campaign_s_resources() {
        for (message, subject) in [
            (
                "customer.number must be a valid phone number",
                Subject::Customer,
            ),
            ("Couldn't Get Phone Number.", Subject::PhoneNumber),
            ("phoneNumberId must be a UUID", Subject::PhoneNumber),
            ("Couldn't Get Assistant.", Subject::Assistant),
            ("Wallet balance is too low", Subject::Credits),
            ("Organization is suspended for fraud", Subject::Account),
            ("Bad Request", Subject::Request),
        ] {
            assert_eq!(Subject::of(message), subject, "{message}");
            assert_eq!(VapiError::status(400, message, None).subject(), subject);
        }
        assert_eq!(
            VapiError::Timeout(Duration::from_secs(1)).subject(),
            Subject::Request
        );
    }

    #[test]
    fn classification_separates_refusals_from_maybe_created() {
        for code in [429, 503] {
            assert_eq!(status(code).class(), ErrorClass::Refused, "{code}");
        }
        for code in [500, 502, 504, 408, 520, 521, 522, 523, 524] {
            assert_eq!(status(code).class(), ErrorClass::Ambiguous, "{code}");
        }
        for code in [400, 404, 409, 422] {
            assert_eq!(status(code).class(), ErrorClass::Rejected, "{code}");
        }
        assert_eq!(status(401).class(), ErrorClass::Auth);
        assert_eq!(status(403).class(), ErrorClass::Auth);
        assert_eq!(
            VapiError::Timeout(Duration::from_secs(1)).class(),
            ErrorClass::Ambiguous
        );
        assert_eq!(
            VapiError::Interrupted("reset".into()).class(),
            ErrorClass::Ambiguous
        );
        assert_eq!(VapiError::Connect("x".into()).class(), ErrorClass::Refused);
        let garbled = VapiError::Decode {
            status: 201,
            detail: "EOF".into(),
        };
        assert_eq!(garbled.class(), ErrorClass::Ambiguous);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon", now), None);
        let past = "Wed, 21 Oct 2015 07:27:00 GMT";
        assert_eq!(parse_retry_after(past, now), Some(Duration::ZERO));
        let later = "Wed, 21 Oct 2015 07:28:30 GMT";
        assert_eq!(parse_retry_after(later, now), Some(Duration::from_secs(30)));
        let far = "Thu, 22 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after(far, now), Some(Duration::from_secs(3600)));
    }
}
