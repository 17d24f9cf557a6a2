//! Why dispatch or a campaign stopped: a cause stored beside the text the operator reads.
//! Whatever decides on a stop (the `--until-done` exit code, the console's header, the new
//! day's resume) reads the cause, never the wording of the text.

use std::fmt;
use std::str::FromStr;

use crate::UnknownStatus;

text_enum!(
    /// Why dispatch or a campaign is paused.
    StopCause, "pause cause" {
        // Paused from the console or the CLI: resumed the same way.
        Operator => "OPERATOR",
        // Vapi rejected the API key.
        Credentials => "CREDENTIALS",
        // The Vapi account is out of credits, or its billing stops calls.
        Credits => "CREDITS",
        // `dispatch.budget_usd` reached.
        Budget => "BUDGET",
        // `dispatch.daily_call_limit` reached: resumed by the next day.
        DailyLimit => "DAILY_LIMIT",
        // Another stop the engine made from Vapi's answers (a campaign's settings refused, its
        // numbers all benched, its assistant failing, the pre-dial hook failing).
        Engine => "ENGINE",
        // The campaign's scheduled end (`--end-by`) came: it is done as planned.
        Schedule => "SCHEDULE",
    }
);

impl StopCause {
    /// What to fix, for the exit message.
    pub fn label(self) -> &'static str {
        match self {
            StopCause::Operator => "paused by an operator",
            StopCause::Credentials => "credentials",
            StopCause::Credits => "Vapi credits",
            StopCause::Budget => "budget",
            StopCause::DailyLimit => "daily call limit",
            StopCause::Engine => "stopped by the engine",
            StopCause::Schedule => "its end-by time came",
        }
    }

    /// Whether an operator's resume is the way out (rather than a fix elsewhere first).
    pub fn is_operator(self) -> bool {
        self == StopCause::Operator
    }
}

/// A stop: its cause, and the sentence the operator reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pause {
    pub cause: StopCause,
    pub reason: String,
}

impl Pause {
    pub fn new(cause: StopCause, reason: impl Into<String>) -> Pause {
        Pause {
            cause,
            reason: reason.into(),
        }
    }

    /// A pause a stored row gives: a row from before causes were stored reads as the
    /// operator's (the migration classified every row it found).
    pub fn stored(cause: Option<StopCause>, reason: Option<&str>) -> Pause {
        Pause {
            cause: cause.unwrap_or(StopCause::Operator),
            reason: reason.unwrap_or("paused").to_string(),
        }
    }
}

impl fmt::Display for Pause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}
