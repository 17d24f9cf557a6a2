//! What follows a failed create attempt, decided by pure functions of the error and the
//! sequence so far (the worker records, this module decides):
//!
//! - [`classify`]: the next [`Step`] (send again, settle, fail, pause);
//! - [`retry_delay`]: how long to wait first: the configured schedule for that retry (1 s, 4 s,
//!   10 s by default; the last entry repeats), or longer when Vapi's Retry-After or the
//!   engine-wide 429 back-off asks for more. These are minimum waits: an ambiguous attempt is
//!   re-sent only once settled (`vapi.settle_after_ms` after it was sent).

use crate::vapi::{ErrorClass, VapiError};

/// The next step of a call's attempt sequence after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing was created: wait, then send again. A 429 does not use up a retry (it waits for
    /// the request budget instead); `look_up_first` asks for one look-up before re-sending
    /// (a 503 is a refusal, but a cheap look-up costs less than a person called twice).
    Resend {
        uses_retry: bool,
        look_up_first: bool,
    },
    /// The call may exist at Vapi: wait, look it up (adopt if found) and send again only once
    /// settled as not created; `resend` is false when the status is not one to retry, so a
    /// settled call then fails instead.
    Settle { resend: bool },
    /// Vapi refused this contact's request: FAILED with Vapi's message.
    Fail,
    /// Vapi refused the key: FAILED, and all dispatch paused.
    FailAndPauseDispatch,
    /// Vapi refused the campaign's resources (assistant, phone number, account): the contact
    /// goes back to the queue and the campaign pauses with Vapi's message.
    PauseCampaign,
}

/// Decides the step after `error`. `retry_on_status` lists the HTTP statuses worth sending
/// again (a connect error or timeout always is); 400/401/403 never are.
pub fn classify(error: &VapiError, retry_on_status: &[u16]) -> Step {
    let retryable = error
        .http_status()
        .filter(|s| !(200..300).contains(s))
        .is_none_or(|status| retry_on_status.contains(&status));
    match error.class() {
        ErrorClass::Auth => Step::FailAndPauseDispatch,
        ErrorClass::Rejected if error.message().is_some_and(is_about_campaign) => {
            Step::PauseCampaign
        }
        ErrorClass::Rejected => Step::Fail,
        ErrorClass::Refused if !retryable => Step::Fail,
        ErrorClass::Refused => Step::Resend {
            uses_retry: !error.is_rate_limited(),
            look_up_first: error.http_status() == Some(503),
        },
        ErrorClass::Ambiguous => Step::Settle { resend: retryable },
    }
}

/// Whether a 400's message is about the campaign's resources or the account rather than the
/// contact: every other contact would be refused the same way, so the campaign pauses instead
/// of burning its contacts. A message naming the customer is about the contact.
pub fn is_about_campaign(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    if m.contains("customer") {
        return false;
    }
    const CAMPAIGN_WORDS: &[&str] = &[
        "assistant",
        "phonenumberid",
        "phone number",
        "phonenumber",
        "squad",
        "workflow",
        "credential",
        "subscription",
        "credits",
        "wallet",
        "billing",
        "organization",
        "daily limit",
        "concurrency",
        "fraud",
    ];
    CAMPAIGN_WORDS.iter().any(|w| m.contains(w))
}

pub use crate::model::backoff::retry_delay;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DEFAULT: &[u64] = &[1_000, 4_000, 10_000];

    fn status(code: u16, message: &str) -> VapiError {
        VapiError::Status {
            status: code,
            message: message.into(),
            retry_after: None,
        }
    }

    const RETRY_ON: &[u16] = &[429, 503, 504, 500, 502];

    #[test]
    fn refusals_resend_and_only_429_spares_the_retry_count() {
        assert_eq!(
            classify(&status(429, ""), RETRY_ON),
            Step::Resend {
                uses_retry: false,
                look_up_first: false
            }
        );
        assert_eq!(
            classify(&status(503, ""), RETRY_ON),
            Step::Resend {
                uses_retry: true,
                look_up_first: true
            }
        );
        assert_eq!(
            classify(&VapiError::Connect("refused".into()), RETRY_ON),
            Step::Resend {
                uses_retry: true,
                look_up_first: false
            }
        );
    }

    #[test]
    fn anything_that_may_have_created_a_call_is_settled() {
        for e in [
            status(500, "System failure"),
            status(502, "<html>Bad gateway</html>"),
            status(504, ""),
            VapiError::Timeout(Duration::from_secs(10)),
            VapiError::Interrupted("connection reset".into()),
            VapiError::Decode {
                status: 201,
                detail: "EOF".into(),
            },
        ] {
            assert_eq!(classify(&e, RETRY_ON), Step::Settle { resend: true }, "{e}");
        }
        // A 520 is not in the list to re-send: settled all the same, then failed.
        assert_eq!(
            classify(&status(520, ""), RETRY_ON),
            Step::Settle { resend: false }
        );
    }

    #[test]
    fn rejections_fail_the_contact_or_pause_the_campaign() {
        let contact = status(400, "customer.number must be a valid phone number");
        assert_eq!(classify(&contact, RETRY_ON), Step::Fail);
        for message in [
            "Couldn't Get Phone Number.",
            "Couldn't Get Assistant.",
            "phoneNumberId must be a UUID",
            "Wallet balance is too low",
        ] {
            assert_eq!(
                classify(&status(400, message), RETRY_ON),
                Step::PauseCampaign,
                "{message}"
            );
        }
        assert_eq!(
            classify(&status(401, "Invalid key"), RETRY_ON),
            Step::FailAndPauseDispatch
        );
        // A refusal that is not in the list is not re-sent.
        assert_eq!(classify(&status(503, ""), &[429]), Step::Fail);
    }

    #[test]
    fn retry_after_wins_only_when_longer() {
        let s = Duration::from_secs;
        assert_eq!(retry_delay(DEFAULT, 1, Some(s(7)), None), s(7));
        assert_eq!(retry_delay(DEFAULT, 3, Some(s(7)), None), s(10));
        assert_eq!(retry_delay(DEFAULT, 1, None, Some(s(4))), s(4));
    }
}
