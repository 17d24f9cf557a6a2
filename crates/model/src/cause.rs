//! Why dispatch or a campaign stopped, as the engine and the console read it.

/// Why dispatch or a campaign is paused, read from the pause reason the engine or an
/// operator stored. The engine's stops are recognised by the words it uses for them; any
/// other text is an operator's (`dispatch pause --reason "lunch"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// Paused from the console or the CLI: resumed the same way.
    Operator,
    /// Vapi rejected the API key.
    Credentials,
    /// The Vapi account is out of credits or frozen.
    Credits,
    /// `dispatch.budget_usd` reached.
    Budget,
    /// `dispatch.daily_call_limit` reached.
    DailyLimit,
    /// Another stop Vapi's answer caused (`Vapi: …`, e.g. a campaign's number refused).
    Engine,
}

impl StopCause {
    pub fn of(reason: &str) -> StopCause {
        let r = reason.to_ascii_lowercase();
        if r.starts_with("paused by operator") {
            StopCause::Operator
        } else if r.contains("rejected the api key") {
            StopCause::Credentials
        } else if r.contains("insufficient credits")
            || r.contains("insufficient-credits")
            || r.contains("subscription-frozen")
        {
            StopCause::Credits
        } else if r.starts_with("budget of $") {
            StopCause::Budget
        } else if r.starts_with("daily call limit of") {
            StopCause::DailyLimit
        } else if r.starts_with("vapi")
            || r.contains("then resume")
            || r.contains("fix the")
            || r.contains("in a row refused")
            || r.contains("use another number")
            || r.starts_with("every phone number")
        {
            // The engine's own pauses say what to fix (src/model.rs CAMPAIGN_STOPS, the
            // worker's campaign-level refusals, the assistant's health).
            StopCause::Engine
        } else {
            StopCause::Operator
        }
    }

    /// What to fix, for the exit message.
    pub fn label(self) -> &'static str {
        match self {
            StopCause::Operator => "paused by an operator",
            StopCause::Credentials => "credentials",
            StopCause::Credits => "Vapi credits",
            StopCause::Budget => "budget",
            StopCause::DailyLimit => "daily call limit",
            StopCause::Engine => "stopped by the engine",
        }
    }
}
