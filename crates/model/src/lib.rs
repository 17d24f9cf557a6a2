//! switchboard's model: what the other crates agree on, with no I/O. Statuses and their
//! transitions (this file: every status is an enum stored as upper-case text, and every
//! decision about a status is an exhaustive `match`, so adding a status is a compile error
//! everywhere it matters), the one table of Vapi's ended reasons, pure calling policy, the
//! configuration with its bounds, the retry schedule and why things stop.

pub mod arms;
pub mod backoff;
pub mod bulk;
pub mod clock;
pub mod config;
pub mod filter;
pub mod forecast;
pub mod location;
pub mod number_health;
pub mod policy;
pub mod template;
pub mod text;

pub use cause::{Pause, StopCause};

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

        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }
            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Any>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                Ok(text.parse()?)
            }
        }
    };
}

// After the macro, which they use.
pub mod cause;
pub mod live;

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
    /// Which queue a waiting contact is in: the claim takes them in the campaign's lane
    /// order (`policy::follow_up`), so a long list never delays a promised call.
    Lane, "lane" {
        // A callback the person asked for (or an operator booked), due at its time.
        Callback => "CALLBACK",
        // Not yet dialled.
        Fresh => "FRESH",
        // Dialled again: a status redial (busy, no answer, voicemail) or an outcome follow-up.
        Redial => "REDIAL",
    }
);

text_enum!(
    /// Whether an arm of a campaign (`arms`) takes contacts: a paused one takes none until
    /// resumed, a stopped one never again; the contacts waiting for either move to the others.
    ArmStatus, "arm" {
        Active => "ACTIVE",
        Paused => "PAUSED",
        Stopped => "STOPPED",
    }
);

text_enum!(
    /// Where a contact is in its dial sequence. PENDING waits for the dispatcher; DIALING has
    /// a live call row (being created, being settled, or active at Vapi); DONE has a call in a
    /// final state; SKIPPED was never dialled for a policy reason (do-not-call, consent).
    /// A contact is never anywhere else, which is the "no contact lost" invariant.
    ContactStatus, "contact" {
        Pending => "PENDING",
        Dialing => "DIALING",
        Done => "DONE",
        Skipped => "SKIPPED",
    }
);

text_enum!(
    /// The life of a call row (one attempt sequence of a contact). The one state machine of
    /// the project; every transition is a named function in `store::calls`.
    ///
    /// ```text
    ///  claim ──► CREATING ──create 201──────────────► QUEUED…FORWARDING ──end──► ENDED
    ///              │  ▲ │                               (at Vapi: follows Vapi's status)
    ///              │  │ └─ambiguous (timeout, 5xx…)─► UNKNOWN ──found by look-up──┘ (adopt)
    ///              │  └──────settled: not created──────┘   │
    ///              ├─rejected / gave up──► FAILED ──operator retry──► RETRIED
    ///              ├─cancelled, campaign-level rejection──► REQUEUED (contact PENDING again)
    ///              └─pre-dial hook said no (nothing sent)──► REQUEUED (contact SKIPPED)
    /// ```
    CallStatus, "call" {
        // Intent committed, no call at Vapi yet: a request is in flight or waits to be re-sent.
        Creating => "CREATING",
        // A request may have created the call at Vapi and nothing proves either way yet: it is
        // being settled by look-up (adopted if found; re-sent only once settled as not created).
        Unknown => "UNKNOWN",
        // Vapi's statuses while the call exists there.
        Queued => "QUEUED",
        Scheduled => "SCHEDULED",
        Ringing => "RINGING",
        InProgress => "IN_PROGRESS",
        Forwarding => "FORWARDING",
        // Ended at Vapi (endedReason says how); includes calls closed as vanished or overdue.
        Ended => "ENDED",
        // Never created: rejected, or retries used up after every attempt was settled.
        Failed => "FAILED",
        // Never created, and not the contact's outcome: the contact went back to the queue
        // (or, refused by the pre-dial hook before any request went out, was SKIPPED).
        Requeued => "REQUEUED",
        // FAILED, then retried by an operator: history; a newer call carries the contact on.
        Retried => "RETRIED",
    }
);

impl CallStatus {
    /// Statuses of a call that exists at Vapi and has not ended: it holds a concurrency slot.
    pub const AT_VAPI: &'static [CallStatus] = &[
        CallStatus::Queued,
        CallStatus::Scheduled,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Forwarding,
    ];
    /// Statuses of a sequence still being created or settled (no provider id yet). An UNKNOWN
    /// call may occupy a slot at Vapi, so both count against the concurrency cap.
    pub const IN_CREATION: &'static [CallStatus] = &[CallStatus::Creating, CallStatus::Unknown];

    pub fn is_terminal(self) -> bool {
        match self {
            CallStatus::Ended | CallStatus::Failed | CallStatus::Requeued | CallStatus::Retried => {
                true
            }
            CallStatus::Creating
            | CallStatus::Unknown
            | CallStatus::Queued
            | CallStatus::Scheduled
            | CallStatus::Ringing
            | CallStatus::InProgress
            | CallStatus::Forwarding => false,
        }
    }

    /// The call exists at Vapi and has not ended.
    pub fn is_at_vapi(self) -> bool {
        Self::AT_VAPI.contains(&self)
    }

    /// Progress order of Vapi's statuses, so that late or duplicated webhook/poll updates
    /// never move a call backwards (ringing after in-progress is ignored).
    pub fn rank(self) -> u8 {
        match self {
            CallStatus::Creating | CallStatus::Unknown => 0,
            CallStatus::Queued => 1,
            CallStatus::Scheduled => 2,
            CallStatus::Ringing => 3,
            CallStatus::InProgress => 4,
            CallStatus::Forwarding => 5,
            CallStatus::Ended | CallStatus::Failed | CallStatus::Requeued | CallStatus::Retried => {
                6
            }
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

/// `('A','B')` for an SQL `IN`, built from the enums so that no status literal is written by
/// hand in a query.
pub fn sql_in<T: Copy + fmt::Display>(values: &[T]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!("({})", items.join(","))
}

text_enum!(
    /// The result of one HTTP attempt to create a call (one `call_attempts` row).
    AttemptOutcome, "attempt" {
        // Written before the request; an attempt still IN_FLIGHT at start-up was cut by a crash.
        InFlight => "IN_FLIGHT",
        Created => "CREATED",
        // An earlier request's call was found at Vapi by its `name` and adopted.
        Adopted => "ADOPTED",
        // Refused before any work (503, connect error): certainly not created.
        Refused => "REFUSED",
        // 429: refused by the gateway's rate limit; never counts as one of the call's retries.
        RateLimited => "RATE_LIMITED",
        // Timeout, reset, 5xx, unreadable 2xx, crash: the call may exist at Vapi.
        Ambiguous => "AMBIGUOUS",
        // An AMBIGUOUS attempt settled: a complete look-up after the settle time found nothing.
        NotCreated => "NOT_CREATED",
        Rejected => "REJECTED",
        AuthFailed => "AUTH_FAILED",
    }
);

impl AttemptOutcome {
    /// Whether this attempt uses up one of the call's retries (429s wait for the request
    /// budget instead, so a long rate-limit storm fails no call).
    pub fn counts_as_retry(self) -> bool {
        match self {
            AttemptOutcome::RateLimited => false,
            AttemptOutcome::InFlight
            | AttemptOutcome::Created
            | AttemptOutcome::Adopted
            | AttemptOutcome::Refused
            | AttemptOutcome::Ambiguous
            | AttemptOutcome::NotCreated
            | AttemptOutcome::Rejected
            | AttemptOutcome::AuthFailed => true,
        }
    }
}

/// What an ended call means for its contact and its campaign: the classification of every
/// `endedReason` in Vapi's spec, in one place ([`classify_ended_reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedClass {
    /// A conversation or a dial outcome (busy, no answer, voicemail…): the contact is done.
    Outcome,
    /// The call was answered and then the assistant or its pipeline failed: the contact is
    /// done (a person's patience is spent), and it counts against the assistant's health.
    AssistantFault,
    /// The phone never rang (a start error, a Vapi or provider fault before the call began):
    /// the contact goes back to the queue, a bounded number of times.
    NeverRang,
    /// Vapi's account concurrency was full: back to the queue, and the cap is lowered.
    Concurrency,
    /// The account or the campaign's resources stop every call the same way (credits, a
    /// frozen subscription, the number's limits, a missing assistant): back to the queue, and
    /// the campaign pauses with this reason.
    CampaignStop { cause: StopCause, why: &'static str },
    /// The phone number the call was made from cannot call now (its daily limit, its set-up
    /// at Vapi): back to the queue, and that number is benched (until the next day when
    /// `next_day`, else for a cool-down); the campaign goes on with its pool's other numbers,
    /// and pauses with this reason when none is left.
    NumberStop { why: &'static str, next_day: bool },
    /// A value not in the table (Vapi adds some): treated as an outcome, logged once.
    Unclassified,
    /// switchboard ended the call (an operator, the kill switch, the runaway guard):
    /// counted apart from the customer's outcomes and the assistant's health; the contact
    /// follows the rule chosen when the end was asked for.
    EndedBySwitchboard,
}

impl EndedClass {
    /// Whether the contact goes back to the queue rather than being done.
    pub fn requeues_contact(self) -> bool {
        match self {
            EndedClass::NeverRang
            | EndedClass::Concurrency
            | EndedClass::CampaignStop { .. }
            | EndedClass::NumberStop { .. } => true,
            EndedClass::Outcome
            | EndedClass::AssistantFault
            | EndedClass::Unclassified
            | EndedClass::EndedBySwitchboard => false,
        }
    }
}

/// Ended reasons that stop every call of the campaign the same way, with what to tell the
/// operator.
const CAMPAIGN_STOPS: &[(&str, &str)] = &[
    (
        "call.start.error-subscription-insufficient-credits",
        "Vapi: insufficient credits; add credits, then resume",
    ),
    (
        "call.start.error-subscription-frozen",
        "Vapi: subscription frozen; settle the account, then resume",
    ),
    (
        "call.start.error-subscription-wallet-does-not-exist",
        "Vapi: the account has no wallet; set up billing, then resume",
    ),
    (
        "call.start.error-subscription-upgrade-failed",
        "Vapi: subscription upgrade failed; check billing, then resume",
    ),
    (
        "call.start.error-fraud-check-failed",
        "Vapi: fraud check failed for this account; contact Vapi, then resume",
    ),
    (
        "call.start.error-vapi-number-international",
        "Vapi: this phone number cannot call internationally; use another number",
    ),
    (
        "call.start.error-get-assistant",
        "Vapi could not load the campaign's assistant; fix the assistantId, then resume",
    ),
    (
        "call.start.error-get-resources-validation",
        "Vapi rejected the campaign's resources; check the assistant and number",
    ),
    (
        "call.start.assistant-version-error-validation",
        "Vapi rejected the assistant's version; fix the assistant",
    ),
    (
        "call.start.error-enterprise-feature-not-available-recording-consent",
        "the assistant needs an enterprise feature (recording consent); fix the assistant, then resume",
    ),
    (
        "call-start-error-neither-assistant-nor-server-set",
        "neither an assistant nor a server is set; fix the campaign's assistant, then resume",
    ),
    (
        "assistant-not-valid",
        "the assistant is not valid; fix the assistant in Vapi, then resume",
    ),
    (
        "assistant-not-found",
        "the assistant was not found; fix the assistantId, then resume",
    ),
    (
        "assistant-request-failed",
        "the assistant request to your server failed; fix the server, then resume",
    ),
    (
        "assistant-request-returned-error",
        "your server returned an error for the assistant request; fix the server, then resume",
    ),
    (
        "assistant-request-returned-unspeakable-error",
        "your server returned an error for the assistant request; fix the server, then resume",
    ),
    (
        "assistant-request-returned-invalid-assistant",
        "your server returned an invalid assistant; fix the server, then resume",
    ),
    (
        "assistant-request-returned-no-assistant",
        "your server returned no assistant; fix the server, then resume",
    ),
    (
        "assistant-request-returned-forwarding-phone-number",
        "your server returned a forwarding number instead of an assistant; fix the server, then resume",
    ),
];

/// Ended reasons about the phone number the call was made from: (reason, what to tell the
/// operator, benched until the next day rather than for a cool-down).
const NUMBER_STOPS: &[(&str, &str, bool)] = &[
    (
        "call.start.error-vapi-number-outbound-daily-limit",
        "Vapi: phone number's outbound daily limit reached; resume tomorrow or use another number",
        true,
    ),
    (
        "call.start.error-get-phone-number",
        "Vapi could not load the phone number; fix the phoneNumberId, then resume",
        false,
    ),
    (
        "call.start.error-get-transport",
        "Vapi could not set up the number's transport; fix the phone number, then resume",
        false,
    ),
];

/// What an outcome's ended reason says about the person on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Talk {
    /// Nobody talked (busy, no answer, voicemail, cancelled).
    No,
    /// Somebody talked, but the call did not reach its normal end (silence, a failed transfer).
    Conversation,
    /// A conversation that ended normally: a success when Vapi gives no evaluation.
    Success,
}

/// Plain dial and conversation outcomes (the contact is done), with what each says about the
/// conversation. The one list of them: the success rate, the report's conversations and the
/// rule that never redials a conversation all read it.
const OUTCOMES: &[(&str, Talk)] = &[
    ("assistant-ended-call", Talk::Success),
    ("assistant-said-end-call-phrase", Talk::Success),
    ("assistant-ended-call-with-hangup-task", Talk::Success),
    ("assistant-ended-call-after-message-spoken", Talk::Success),
    ("assistant-forwarded-call", Talk::Success),
    ("customer-busy", Talk::No),
    ("customer-ended-call", Talk::Success),
    (
        "customer-ended-call-before-warm-transfer",
        Talk::Conversation,
    ),
    (
        "customer-ended-call-after-warm-transfer-attempt",
        Talk::Conversation,
    ),
    ("customer-ended-call-during-transfer", Talk::Conversation),
    ("customer-did-not-answer", Talk::No),
    ("customer-did-not-give-microphone-permission", Talk::No),
    ("exceeded-max-duration", Talk::Success),
    ("manually-canceled", Talk::No),
    ("silence-timed-out", Talk::Conversation),
    ("twilio-reported-customer-misdialed", Talk::No),
    ("vonage-completed", Talk::No),
    ("vonage-rejected", Talk::No),
    ("vonage-disconnected", Talk::No),
    ("voicemail", Talk::No),
    ("scheduled-call-deleted", Talk::No),
    ("call-deleted", Talk::No),
];

/// What an ended reason says about the conversation (`Talk::No` for every reason that is not
/// a plain outcome).
pub fn talk_of(reason: &str) -> Talk {
    OUTCOMES
        .iter()
        .find(|(r, _)| *r == reason)
        .map_or(Talk::No, |(_, talk)| *talk)
}

/// Whether an ended reason means somebody talked (never redialled; the report's
/// conversations).
pub fn is_conversation(reason: &str) -> bool {
    talk_of(reason) != Talk::No
}

/// Whether a call succeeded: Vapi's evaluation wins when present and readable (rubrics:
/// PassFail true/false, NumericScale 1-10 with 6 and up a pass, PercentageScale 0-100 with 50
/// and up, LikertScale / DescriptiveScale words); otherwise a conversation that ended normally
/// ([`Talk::Success`]) is one. `None` when neither tells. The one definition of success: the
/// campaign pane's rate and the report's count both use it.
pub fn success_of(ended_reason: Option<&str>, success_evaluation: Option<&str>) -> Option<bool> {
    if let Some(verdict) = success_evaluation.and_then(evaluation_verdict) {
        return Some(verdict);
    }
    ended_reason.map(|reason| talk_of(reason) == Talk::Success)
}

fn evaluation_verdict(text: &str) -> Option<bool> {
    let text = text.trim().trim_matches('"').trim().to_ascii_lowercase();
    match text.as_str() {
        "true" | "pass" | "passed" | "yes" | "success" | "successful" | "excellent" | "good"
        | "agree" | "strongly agree" => return Some(true),
        "false" | "fail" | "failed" | "no" | "failure" | "unsuccessful" | "poor" | "fair"
        | "disagree" | "strongly disagree" | "neutral" => return Some(false),
        _ => {}
    }
    let number: f64 = text.trim_end_matches('%').parse().ok()?;
    if !number.is_finite() {
        return None;
    }
    Some(if number <= 10.0 {
        number >= 6.0
    } else {
        number >= 50.0
    })
}

/// The phone never rang, whoever's fault it was (these happen before a call starts).
const NEVER_RANG: &[&str] = &[
    "twilio-failed-to-connect-call",
    "vonage-failed-to-connect-call",
    "phone-call-provider-bypass-enabled-but-no-call-received",
    "phone-call-provider-closed-websocket",
    "worker-shutdown",
    "call.start.error-get-customer",
];

/// Classifies Vapi's `endedReason`. `started` says whether the call was answered (Vapi gave a
/// `startedAt`): a Vapi or provider fault before that means the phone never rang; after it,
/// the assistant failed a person on the line.
pub fn classify_ended_reason(reason: &str, started: bool) -> EndedClass {
    // switchboard's own closing reasons (vanished, overdue): the outcome is unknown, so the
    // contact is done rather than risk calling a person twice.
    if reason.starts_with("switchboard: ") {
        return EndedClass::Outcome;
    }
    if reason == "call.start.error-subscription-concurrency-limit-reached" {
        return EndedClass::Concurrency;
    }
    if let Some((_, why)) = CAMPAIGN_STOPS.iter().find(|(r, _)| *r == reason) {
        // Vapi's subscription reasons are the account's billing; the rest are the campaign's.
        let cause = if reason.starts_with("call.start.error-subscription-") {
            StopCause::Credits
        } else {
            StopCause::Engine
        };
        return EndedClass::CampaignStop { cause, why };
    }
    if let Some((_, why, next_day)) = NUMBER_STOPS.iter().find(|(r, _, _)| *r == reason) {
        return EndedClass::NumberStop {
            why,
            next_day: *next_day,
        };
    }
    if OUTCOMES.iter().any(|(r, _)| *r == reason) {
        return EndedClass::Outcome;
    }
    if NEVER_RANG.contains(&reason) {
        return EndedClass::NeverRang;
    }
    // The remaining families, by their documented prefixes.
    if reason.starts_with("call.start.") {
        return EndedClass::NeverRang; // start errors (vapifault-database-error, get-org…)
    }
    if reason.starts_with("call.forwarding.")
        || reason.starts_with("call.ringing.")
        || reason.starts_with("call.ending.")
        || reason.starts_with("call.in-progress.error-sip-")
        || reason.starts_with("call.in-progress.error-warm-transfer")
        || reason.starts_with("call.in-progress.error-transfer")
    {
        return EndedClass::Outcome;
    }
    if reason == "assistant-join-timed-out"
        || reason.starts_with("pipeline-error-")
        || reason.starts_with("call.in-progress.error-")
        || reason.starts_with("call.in-progress.")
    {
        return if started {
            EndedClass::AssistantFault
        } else {
            EndedClass::NeverRang
        };
    }
    EndedClass::Unclassified
}

/// Whether a call that never rang points at the phone number it was made from (its carrier
/// or trunk failed to connect) rather than at Vapi or the customer: such failures in a row
/// bench the number (`dispatch.bench_number_after_failures`).
pub fn blames_the_number(reason: &str) -> bool {
    reason.ends_with("-failed-to-connect-call")
        || reason.starts_with("phone-call-provider-")
        || reason.contains("providerfault-transport")
        || reason.contains("providerfault-outbound-sip")
}

/// Ended reasons switchboard itself writes when it closes a call Vapi no longer reports.
pub mod local_reason {
    /// Vapi answers 404 (or `not-found`) for a call it created.
    pub const VANISHED: &str = "switchboard: vanished at Vapi (404)";
    /// Still reported active long after any call could last.
    pub const OVERDUE: &str = "switchboard: overdue (active past the maximum duration)";
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

    /// Every endedReason of Vapi's spec (assets/vapi_ended_reasons.txt, made from
    /// shared/vapi/openapi.json) is classified: a new value cannot go unclassified silently.
    #[test]
    fn every_ended_reason_in_the_spec_is_classified() {
        let listed = include_str!("../../../assets/vapi_ended_reasons.txt");
        let reasons: Vec<&str> = listed
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert!(reasons.len() > 600, "{} reasons", reasons.len());
        for r in &reasons {
            for started in [false, true] {
                assert_ne!(
                    classify_ended_reason(r, started),
                    EndedClass::Unclassified,
                    "{r} is not classified"
                );
            }
        }
        // The spec itself, when the shared folder is beside the checkout (CI, developers).
        let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/vapi/openapi.json");
        if let Ok(text) = std::fs::read_to_string(&spec) {
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            let values = doc["components"]["schemas"]["Call"]["properties"]["endedReason"]["enum"]
                .as_array()
                .unwrap();
            for v in values {
                let v = v.as_str().unwrap();
                assert!(
                    reasons.contains(&v),
                    "{v} is in the spec but not in the list: regenerate it"
                );
            }
        }
    }

    #[test]
    fn every_call_start_reason_requeues_or_pauses_never_finishes_the_contact() {
        let listed = include_str!("../../../assets/vapi_ended_reasons.txt");
        for r in listed.lines().filter(|l| l.starts_with("call.start")) {
            let class = classify_ended_reason(r, false);
            assert!(class.requeues_contact(), "{r}: {class:?}");
        }
        assert_eq!(
            classify_ended_reason("call.start.error-vapifault-database-error", false),
            EndedClass::NeverRang
        );
        assert!(matches!(
            classify_ended_reason("call.start.error-fraud-check-failed", false),
            EndedClass::CampaignStop { .. }
        ));
        assert_eq!(
            classify_ended_reason(
                "call.start.error-subscription-concurrency-limit-reached",
                false
            ),
            EndedClass::Concurrency
        );
    }

    #[test]
    fn a_number_limit_benches_the_number_until_the_next_day() {
        assert_eq!(
            classify_ended_reason("call.start.error-vapi-number-outbound-daily-limit", false),
            EndedClass::NumberStop {
                why: NUMBER_STOPS[0].1,
                next_day: true
            }
        );
        assert!(matches!(
            classify_ended_reason("call.start.error-get-transport", false),
            EndedClass::NumberStop {
                next_day: false,
                ..
            }
        ));
    }

    #[test]
    fn only_carrier_failures_blame_the_number() {
        for r in [
            "twilio-failed-to-connect-call",
            "vonage-failed-to-connect-call",
            "phone-call-provider-closed-websocket",
            "call.in-progress.error-providerfault-outbound-sip-503-service-unavailable",
            "call.in-progress.error-providerfault-transport-never-connected",
        ] {
            assert!(blames_the_number(r), "{r}");
        }
        for r in [
            "call.start.error-vapifault-database-error",
            "call.start.error-get-customer",
            "call.in-progress.error-providerfault-openai-llm-failed",
            "worker-shutdown",
        ] {
            assert!(!blames_the_number(r), "{r}");
        }
    }

    #[test]
    fn every_campaign_stop_is_the_engine_s_or_the_account_s() {
        for (reason, _) in CAMPAIGN_STOPS {
            let EndedClass::CampaignStop { cause, .. } = classify_ended_reason(reason, false)
            else {
                panic!("{reason} is not a campaign stop");
            };
            let expected = if reason.contains("subscription") {
                StopCause::Credits
            } else {
                StopCause::Engine
            };
            assert_eq!(cause, expected, "{reason}");
        }
        let EndedClass::CampaignStop { cause, .. } =
            classify_ended_reason("call.start.error-subscription-insufficient-credits", false)
        else {
            panic!("credits are a campaign stop");
        };
        assert_eq!(cause, StopCause::Credits);
    }

    #[test]
    fn faults_depend_on_whether_the_call_was_answered() {
        let r = "pipeline-error-openai-llm-failed";
        assert_eq!(classify_ended_reason(r, true), EndedClass::AssistantFault);
        assert_eq!(classify_ended_reason(r, false), EndedClass::NeverRang);
        assert_eq!(
            classify_ended_reason("customer-busy", false),
            EndedClass::Outcome
        );
        assert_eq!(
            classify_ended_reason("teleported-away", true),
            EndedClass::Unclassified
        );
    }

    #[test]
    fn evaluation_wins_over_the_ended_reason() {
        assert_eq!(
            success_of(Some("customer-ended-call"), Some("false")),
            Some(false)
        );
        assert_eq!(
            success_of(Some("customer-did-not-answer"), Some("true")),
            Some(true)
        );
        assert_eq!(success_of(None, Some("Pass")), Some(true));
        assert_eq!(success_of(None, Some("8")), Some(true));
        assert_eq!(success_of(None, Some("3")), Some(false));
        assert_eq!(success_of(None, Some("75%")), Some(true));
        assert_eq!(success_of(None, Some("40")), Some(false));
    }

    #[test]
    fn without_a_readable_evaluation_the_ended_reason_decides() {
        assert_eq!(success_of(Some("customer-ended-call"), None), Some(true));
        assert_eq!(
            success_of(Some("customer-busy"), Some("maybe?")),
            Some(false)
        );
        assert_eq!(success_of(None, None), None);
    }

    /// The lists that disagreed before there was one table: a forwarded call is a success
    /// and a conversation; a silence time-out is a conversation but not a success; every
    /// success is a conversation.
    #[test]
    fn one_table_says_conversation_and_success() {
        assert_eq!(
            success_of(Some("assistant-forwarded-call"), None),
            Some(true)
        );
        assert!(is_conversation("assistant-forwarded-call"));
        assert!(is_conversation("silence-timed-out"));
        assert_eq!(success_of(Some("silence-timed-out"), None), Some(false));
        for (reason, talk) in OUTCOMES {
            if *talk == Talk::Success {
                assert!(is_conversation(reason), "{reason}");
            }
        }
        assert!(!is_conversation("voicemail"));
        assert!(!is_conversation("pipeline-error-openai-llm-failed"));
    }
}
