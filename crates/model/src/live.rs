//! Supervising calls that are live: what an operator can ask of one (say, whisper, mute,
//! transfer, end), why switchboard ended a call itself, what becomes of its contact, and the
//! transcript lines kept per call. Pure: the requests are carried out by the engine, through
//! the call's control URL, which never leaves the engine's memory.

use std::fmt;
use std::str::FromStr;

use super::UnknownStatus;

/// What an operator asks of a live call. Stored as JSON in `live_requests` (it holds no
/// secret: the control URL is the engine's to find).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum LiveAction {
    /// The assistant says `text`; the call ends after it when `end_after`.
    Say { text: String, end_after: bool },
    /// `text` joins the assistant's context without a spoken reply.
    Whisper { text: String },
    /// The assistant stops speaking (`mute`) or speaks again.
    Mute { mute: bool },
    /// The call goes to a person: a phone number (E.164) or a SIP URI.
    Transfer { to: Destination },
    /// The call ends now.
    End,
}

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "address", rename_all = "lowercase")]
pub enum Destination {
    Number(String),
    Sip(String),
}

/// Longest line an operator can say or whisper (Vapi speaks it; a paragraph is plenty).
pub const MAX_SPOKEN: usize = 1000;

/// Why a destination or a spoken line was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("nothing to say: the text is empty")]
    Empty,
    #[error("the text is {0} characters; at most {MAX_SPOKEN}")]
    TooLong(usize),
    #[error(
        "{0:?} is neither a phone number in E.164 form (+14155550100) nor a SIP URI (sip:desk@example.com)"
    )]
    BadDestination(String),
}

impl Destination {
    /// `+14155550100` → a number; `sip:…` / `sips:…` → a SIP URI.
    pub fn parse(text: &str) -> Result<Destination, ActionError> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if (lower.starts_with("sip:") || lower.starts_with("sips:"))
            && text.len() > 4
            && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Ok(Destination::Sip(text.to_string()));
        }
        let digits = text.strip_prefix('+').unwrap_or("");
        if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Destination::Number(text.to_string()));
        }
        Err(ActionError::BadDestination(text.to_string()))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Number(n) | Destination::Sip(n) => f.write_str(n),
        }
    }
}

/// Checks a line to say or whisper.
pub fn spoken(text: &str) -> Result<String, ActionError> {
    let text = text.trim();
    let n = text.chars().count();
    if n == 0 {
        Err(ActionError::Empty)
    } else if n > MAX_SPOKEN {
        Err(ActionError::TooLong(n))
    } else {
        Ok(text.to_string())
    }
}

impl LiveAction {
    /// What the action does, for the log and the dialog (`say "…"`, `transfer to +1…`).
    pub fn describe(&self) -> String {
        match self {
            LiveAction::Say { text, end_after } => {
                let then = if *end_after {
                    ", then end the call"
                } else {
                    ""
                };
                format!("say {:?}{then}", crate::text::bounded(text, 60))
            }
            LiveAction::Whisper { text } => {
                format!("whisper {:?}", crate::text::bounded(text, 60))
            }
            LiveAction::Mute { mute: true } => "mute the assistant".into(),
            LiveAction::Mute { mute: false } => "unmute the assistant".into(),
            LiveAction::Transfer { to } => format!("transfer to {to}"),
            LiveAction::End => "end the call".into(),
        }
    }

    /// Whether the call ends because of this action (its contact then follows the
    /// operator's rule, and the call counts as ended by switchboard).
    pub fn ends_call(&self) -> bool {
        match self {
            LiveAction::End
            | LiveAction::Say {
                end_after: true, ..
            } => true,
            LiveAction::Say { .. }
            | LiveAction::Whisper { .. }
            | LiveAction::Mute { .. }
            | LiveAction::Transfer { .. } => false,
        }
    }
}

text_enum!(
    /// Why switchboard ended a live call (stored in `calls.end_cause`).
    EndCause, "end cause" {
        Operator => "OPERATOR",
        KillSwitch => "KILL_SWITCH",
        OverDuration => "OVER_DURATION",
        OverCost => "OVER_COST",
        Repeating => "REPEATING",
    }
);

impl EndCause {
    /// The ended reason recorded for the call: counted apart from Vapi's (the customer's)
    /// outcomes in the report's histogram.
    pub fn ended_reason(self) -> &'static str {
        match self {
            EndCause::Operator => "ended by operator",
            EndCause::KillSwitch => "ended by operator (kill switch)",
            EndCause::OverDuration => "ended by switchboard: longer than the campaign allows",
            EndCause::OverCost => "ended by switchboard: cost more than the campaign allows",
            EndCause::Repeating => "ended by switchboard: the assistant repeated itself",
        }
    }

    /// The runaway guard's causes, as opposed to an operator's.
    pub fn is_guard(self) -> bool {
        match self {
            EndCause::OverDuration | EndCause::OverCost | EndCause::Repeating => true,
            EndCause::Operator | EndCause::KillSwitch => false,
        }
    }
}

text_enum!(
    /// What becomes of the contact of a call switchboard ended (stored in `calls.end_then`).
    AfterEnd, "after end" {
        Done => "DONE",
        Requeue => "REQUEUE",
    }
);

text_enum!(
    /// Where a request for a live call is (`live_requests.status`).
    RequestStatus, "live request" {
        Pending => "PENDING",
        Taken => "TAKEN",
        Done => "DONE",
        Failed => "FAILED",
    }
);

text_enum!(
    /// Who spoke a transcript line.
    Speaker, "speaker" {
        Assistant => "ASSISTANT",
        Customer => "CUSTOMER",
        Operator => "OPERATOR",
        Tool => "TOOL",
    }
);

impl Speaker {
    /// The role names Vapi uses in `messages` (`bot`, `assistant`, `user`, tool calls); the
    /// system prompt is not part of what was said.
    pub fn from_vapi_role(role: &str) -> Option<Speaker> {
        match role {
            "bot" | "assistant" => Some(Speaker::Assistant),
            "user" | "customer" => Some(Speaker::Customer),
            "tool_calls" | "tool_call_result" | "tool" | "function" => Some(Speaker::Tool),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Speaker::Assistant => "assistant",
            Speaker::Customer => "customer",
            Speaker::Operator => "operator",
            Speaker::Tool => "tool",
        }
    }
}

/// Transcript lines kept per call: the newest win (a long call keeps its end).
pub const MAX_TRANSCRIPT_LINES: usize = 400;
/// Characters kept of one line.
pub const MAX_LINE_CHARS: usize = 2000;

/// One line of what was said.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TranscriptLine {
    pub speaker: Speaker,
    /// Seconds from the call's start.
    pub at_s: f64,
    pub text: String,
}

impl TranscriptLine {
    pub fn new(speaker: Speaker, at_s: f64, text: &str) -> TranscriptLine {
        TranscriptLine {
            speaker,
            at_s: if at_s.is_finite() { at_s.max(0.0) } else { 0.0 },
            text: crate::text::bounded(text.trim(), MAX_LINE_CHARS - 1),
        }
    }
}

/// Keeps the newest [`MAX_TRANSCRIPT_LINES`] lines.
pub fn bounded(mut lines: Vec<TranscriptLine>) -> Vec<TranscriptLine> {
    if lines.len() > MAX_TRANSCRIPT_LINES {
        lines.drain(..lines.len() - MAX_TRANSCRIPT_LINES);
    }
    lines
}

/// The runaway guard's phrase rule: the assistant said the same line `times` times in a row
/// (ignoring case and punctuation), the customer's lines in between notwithstanding.
pub fn repeats(lines: &[TranscriptLine], times: u32) -> Option<String> {
    if times < 2 {
        return None;
    }
    let norm = |t: &str| {
        t.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let said: Vec<String> = lines
        .iter()
        .filter(|l| l.speaker == Speaker::Assistant)
        .map(|l| norm(&l.text))
        .filter(|t| !t.is_empty())
        .collect();
    let last = said.last()?;
    let run = said.iter().rev().take_while(|t| *t == last).count();
    (run >= times as usize).then(|| last.clone())
}

/// The runaway guard of a campaign: limits past which switchboard ends a call itself.
/// Zero switches a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Guard {
    pub max_call_s: u64,
    pub max_call_cost: f64,
    pub end_on_repeats: u32,
}

/// What is known of a live call when the guard looks at it.
#[derive(Debug, Clone, Default)]
pub struct LiveFacts<'a> {
    /// Seconds since it was answered (or, before, since it was created).
    pub age_s: f64,
    /// Its cost so far, as Vapi last said.
    pub cost: Option<f64>,
    /// What was said so far.
    pub transcript: &'a [TranscriptLine],
}

impl Guard {
    pub fn is_off(&self) -> bool {
        self.max_call_s == 0 && self.max_call_cost <= 0.0 && self.end_on_repeats == 0
    }

    /// Whether the call must end, why, and the figures that say so.
    pub fn judge(&self, facts: &LiveFacts) -> Option<(EndCause, String)> {
        if self.max_call_s > 0 && facts.age_s > self.max_call_s as f64 {
            return Some((
                EndCause::OverDuration,
                format!(
                    "live {:.0} s, the campaign allows {} s",
                    facts.age_s, self.max_call_s
                ),
            ));
        }
        if self.max_call_cost > 0.0
            && let Some(cost) = facts.cost.filter(|c| *c > self.max_call_cost)
        {
            return Some((
                EndCause::OverCost,
                format!(
                    "cost ${cost:.2} so far, the campaign allows ${:.2}",
                    self.max_call_cost
                ),
            ));
        }
        let line = repeats(facts.transcript, self.end_on_repeats)?;
        Some((
            EndCause::Repeating,
            format!(
                "the assistant said {:?} {} times in a row",
                crate::text::bounded(&line, 60),
                self.end_on_repeats
            ),
        ))
    }
}

impl FromStr for LiveAction {
    type Err = serde_json::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_numbers_or_sip_uris() {
        assert_eq!(
            Destination::parse(" +14155550100 "),
            Ok(Destination::Number("+14155550100".into()))
        );
        assert_eq!(
            Destination::parse("sip:desk@example.com"),
            Ok(Destination::Sip("sip:desk@example.com".into()))
        );
        for bad in [
            "",
            "4155550100",
            "+1",
            "sip:",
            "sip:a b",
            "+1415555010O",
            "http://x",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn spoken_lines_are_trimmed_and_bounded() {
        assert_eq!(spoken("  hello "), Ok("hello".into()));
        assert_eq!(spoken("   "), Err(ActionError::Empty));
        let long = "a".repeat(MAX_SPOKEN + 1);
        assert_eq!(spoken(&long), Err(ActionError::TooLong(MAX_SPOKEN + 1)));
    }

    #[test]
    fn actions_round_trip_as_json_and_say_what_they_do() {
        let actions = [
            LiveAction::Say {
                text: "One moment".into(),
                end_after: true,
            },
            LiveAction::Whisper {
                text: "offer the discount".into(),
            },
            LiveAction::Mute { mute: true },
            LiveAction::Mute { mute: false },
            LiveAction::Transfer {
                to: Destination::Sip("sip:desk@example.com".into()),
            },
            LiveAction::End,
        ];
        for a in &actions {
            let text = serde_json::to_string(a).expect("serializes");
            assert_eq!(&text.parse::<LiveAction>().expect("parses"), a);
        }
        assert_eq!(
            actions[0].describe(),
            "say \"One moment\", then end the call"
        );
        assert_eq!(actions[4].describe(), "transfer to sip:desk@example.com");
        assert!(actions[0].ends_call() && actions[5].ends_call());
        assert!(!actions[1].ends_call() && !actions[4].ends_call());
    }

    fn line(speaker: Speaker, text: &str) -> TranscriptLine {
        TranscriptLine::new(speaker, 0.0, text)
    }

    #[test]
    fn repeats_counts_the_assistants_same_line_in_a_row() {
        let a = |t| line(Speaker::Assistant, t);
        let c = |t| line(Speaker::Customer, t);
        let lines = vec![
            a("Hello!"),
            c("hi"),
            a("Can you hear me?"),
            c("yes"),
            a("can you hear me"),
            c("YES"),
            a("Can you hear me?!"),
        ];
        assert_eq!(repeats(&lines, 3).as_deref(), Some("can you hear me"));
        assert_eq!(repeats(&lines, 4), None);
        assert_eq!(repeats(&lines[..5], 3), None);
        assert_eq!(repeats(&lines, 0), None, "0 and 1 switch the rule off");
        assert_eq!(repeats(&[], 2), None);
    }

    #[test]
    fn transcripts_keep_their_newest_lines_and_lines_are_clipped() {
        let many: Vec<_> = (0..MAX_TRANSCRIPT_LINES + 5)
            .map(|i| line(Speaker::Customer, &i.to_string()))
            .collect();
        let kept = bounded(many);
        assert_eq!(kept.len(), MAX_TRANSCRIPT_LINES);
        assert_eq!(kept[0].text, "5");
        let long = line(Speaker::Assistant, &"x".repeat(MAX_LINE_CHARS + 10));
        assert!(long.text.chars().count() <= MAX_LINE_CHARS);
        assert_eq!(TranscriptLine::new(Speaker::Tool, f64::NAN, "t").at_s, 0.0);
    }

    #[test]
    fn the_guard_ends_a_call_over_its_duration_its_cost_or_repeating_itself() {
        let guard = Guard {
            max_call_s: 300,
            max_call_cost: 0.5,
            end_on_repeats: 3,
        };
        let looping: Vec<_> = (0..3)
            .map(|_| line(Speaker::Assistant, "Are you there?"))
            .collect();
        type Case<'a> = (f64, Option<f64>, &'a [TranscriptLine], Option<EndCause>);
        let cases: &[Case] = &[
            (10.0, Some(0.1), &[], None),
            (300.0, None, &[], None),
            (300.5, None, &[], Some(EndCause::OverDuration)),
            (10.0, Some(0.5), &[], None),
            (10.0, Some(0.51), &[], Some(EndCause::OverCost)),
            (10.0, None, &looping, Some(EndCause::Repeating)),
            (10.0, None, &looping[..2], None),
            // Duration first when several are true.
            (301.0, Some(9.0), &looping, Some(EndCause::OverDuration)),
        ];
        for (age_s, cost, transcript, want) in cases {
            let facts = LiveFacts {
                age_s: *age_s,
                cost: *cost,
                transcript,
            };
            assert_eq!(
                guard.judge(&facts).map(|(cause, _)| cause),
                *want,
                "age {age_s} cost {cost:?} lines {}",
                transcript.len()
            );
        }
        let off = Guard::default();
        assert!(off.is_off());
        let facts = LiveFacts {
            age_s: 1e9,
            cost: Some(1e9),
            transcript: &looping,
        };
        assert_eq!(off.judge(&facts), None, "an unset guard ends nothing");
        let (_, why) = guard
            .judge(&LiveFacts {
                age_s: 301.0,
                ..LiveFacts::default()
            })
            .expect("over");
        assert_eq!(why, "live 301 s, the campaign allows 300 s");
    }

    #[test]
    fn vapi_roles_map_to_speakers_and_the_prompt_is_left_out() {
        assert_eq!(Speaker::from_vapi_role("bot"), Some(Speaker::Assistant));
        assert_eq!(Speaker::from_vapi_role("user"), Some(Speaker::Customer));
        assert_eq!(Speaker::from_vapi_role("system"), None);
    }
}
