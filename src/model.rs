//! Statuses and their transitions. Every status is an enum stored as upper-case text, and
//! every decision about a status is an exhaustive `match`, so adding a status is a compile
//! error everywhere it matters.

use std::fmt;
use std::str::FromStr;

/// Error for a status string that is not one of ours (a corrupted row or a typo on the CLI).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} status {value:?} (expected one of: {expected})")]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Declares a text-stored status enum with `as_str`, `Display`, `FromStr` and sqlx
/// encode/decode as TEXT. One macro instead of four hand-written copies per enum.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_uppercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownStatus {
                        kind: $kind,
                        value: s.to_string(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }

        impl sqlx::Type<sqlx::Sqlite> for $name {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
                <String as sqlx::Type<sqlx::Sqlite>>::type_info()
            }
            fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Sqlite>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for $name {
            fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Sqlite>>::decode(value)?;
                Ok(text.parse()?)
            }
        }
    };
}

text_enum!(
    /// Campaign lifecycle: DRAFT → DIALING ⇄ PAUSED → COMPLETED, or CANCELLED from any
    /// non-final state.
    CampaignStatus, "campaign" {
        Draft => "DRAFT",
        Dialing => "DIALING",
        Paused => "PAUSED",
        Completed => "COMPLETED",
        Cancelled => "CANCELLED",
    }
);

impl CampaignStatus {
    /// Final states accept no further dispatch and no status command.
    pub fn is_final(self) -> bool {
        match self {
            CampaignStatus::Completed | CampaignStatus::Cancelled => true,
            CampaignStatus::Draft | CampaignStatus::Dialing | CampaignStatus::Paused => false,
        }
    }
}

text_enum!(
    /// Where a contact is in its dial sequence. PENDING waits for the dispatcher; DIALING has
    /// a live call row (being created, or active at Vapi); DONE has a call in a final state.
    /// A contact is never anywhere else, which is the "no contact lost" invariant.
    ContactStatus, "contact" {
        Pending => "PENDING",
        Dialing => "DIALING",
        Done => "DONE",
    }
);

text_enum!(
    /// A call row's status. QUEUED covers both "intent committed, not yet created at Vapi"
    /// (provider_call_id NULL) and Vapi's own `queued`. The rest mirror Vapi's statuses,
    /// plus FAILED for calls that never got created.
    CallStatus, "call" {
        Queued => "QUEUED",
        Scheduled => "SCHEDULED",
        Ringing => "RINGING",
        InProgress => "IN_PROGRESS",
        Forwarding => "FORWARDING",
        Ended => "ENDED",
        Failed => "FAILED",
    }
);

impl CallStatus {
    pub fn is_terminal(self) -> bool {
        match self {
            CallStatus::Ended | CallStatus::Failed => true,
            CallStatus::Queued
            | CallStatus::Scheduled
            | CallStatus::Ringing
            | CallStatus::InProgress
            | CallStatus::Forwarding => false,
        }
    }

    /// Progress order, so that late or duplicated webhook/poll updates never move a call
    /// backwards (ringing after in-progress is ignored).
    pub fn rank(self) -> u8 {
        match self {
            CallStatus::Queued => 0,
            CallStatus::Scheduled => 1,
            CallStatus::Ringing => 2,
            CallStatus::InProgress => 3,
            CallStatus::Forwarding => 4,
            CallStatus::Ended | CallStatus::Failed => 5,
        }
    }

    /// Maps Vapi's `status` strings. `None` for values we do not know (Vapi adds some, and
    /// `not-found`/`deletion-failed` carry no lifecycle meaning): the caller keeps what it had.
    pub fn from_vapi(status: &str) -> Option<CallStatus> {
        match status {
            "scheduled" => Some(CallStatus::Scheduled),
            "queued" => Some(CallStatus::Queued),
            "ringing" => Some(CallStatus::Ringing),
            "in-progress" => Some(CallStatus::InProgress),
            "forwarding" => Some(CallStatus::Forwarding),
            "ended" => Some(CallStatus::Ended),
            _ => None,
        }
    }
}

text_enum!(
    /// The result of one HTTP attempt to create a call (one `call_attempts` row).
    AttemptOutcome, "attempt" {
        // Written before the request; an attempt still IN_FLIGHT at start-up was cut by a crash.
        InFlight => "IN_FLIGHT",
        Created => "CREATED",
        // A previous attempt's call was found at Vapi by its `name` and adopted.
        Adopted => "ADOPTED",
        // 429/503/504 or a connect error: the call was certainly not created.
        Transient => "TRANSIENT",
        // Timeout or reset after the request was sent: the call may exist at Vapi.
        Ambiguous => "AMBIGUOUS",
        Rejected => "REJECTED",
        AuthFailed => "AUTH_FAILED",
    }
);

/// Ended reasons that mean "the account is out of something", not "this contact failed".
/// The contact is re-queued and the campaign is paused with the reason.
pub fn quota_reason(ended_reason: &str) -> Option<QuotaStop> {
    match ended_reason {
        "call.start.error-subscription-concurrency-limit-reached" => Some(QuotaStop::Concurrency),
        "call.start.error-subscription-insufficient-credits" => {
            Some(QuotaStop::PauseCampaign("Vapi: insufficient credits"))
        }
        "call.start.error-subscription-frozen" => {
            Some(QuotaStop::PauseCampaign("Vapi: subscription frozen"))
        }
        "call.start.error-vapi-number-outbound-daily-limit" => Some(QuotaStop::PauseCampaign(
            "Vapi: phone number's outbound daily limit reached",
        )),
        _ => None,
    }
}

/// What a quota signal asks of the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaStop {
    /// Account concurrency is full: re-queue the contact and lower the cap; not a pause.
    Concurrency,
    /// Credits, freeze or number limit: re-queue and pause the campaign with this reason.
    PauseCampaign(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for s in CallStatus::ALL {
            assert_eq!(s.as_str().parse::<CallStatus>(), Ok(*s));
        }
        for s in CampaignStatus::ALL {
            assert_eq!(s.as_str().parse::<CampaignStatus>(), Ok(*s));
        }
        assert_eq!(
            "in_progress".parse::<CallStatus>(),
            Ok(CallStatus::InProgress)
        );
        let err = "DONE-ISH".parse::<CallStatus>().unwrap_err();
        assert!(err.to_string().contains("IN_PROGRESS"), "{err}");
    }

    #[test]
    fn vapi_statuses_map_and_unknown_ones_are_none() {
        assert_eq!(
            CallStatus::from_vapi("in-progress"),
            Some(CallStatus::InProgress)
        );
        assert_eq!(CallStatus::from_vapi("ended"), Some(CallStatus::Ended));
        assert_eq!(CallStatus::from_vapi("teleporting"), None);
        assert!(CallStatus::Ended.rank() > CallStatus::Ringing.rank());
    }

    #[test]
    fn quota_reasons_are_recognised() {
        assert_eq!(
            quota_reason("call.start.error-subscription-concurrency-limit-reached"),
            Some(QuotaStop::Concurrency)
        );
        assert!(matches!(
            quota_reason("call.start.error-subscription-insufficient-credits"),
            Some(QuotaStop::PauseCampaign(_))
        ));
        assert_eq!(quota_reason("customer-busy"), None);
    }
}
