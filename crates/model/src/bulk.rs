//! Acting on every row a filter matches, pure: what an operator can ask
//! ([`BulkAction`]), and for one matched row what that does to it ([`decide`]): an
//! [`Effect`], or why the row is left as it is ([`Ineligible`]). The store decides again
//! inside the transaction that applies a batch, on the rows as they are then, so a contact
//! the engine claimed meanwhile is left alone.

use std::fmt;

use crate::{CallStatus, ContactStatus};

/// What an operator asks of every match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    /// A FAILED call's contact is dialled again (an UNKNOWN one once settled as not created).
    Retry,
    /// A finished contact (done or skipped) goes back to the queue as a redial.
    Requeue,
    /// A waiting contact is skipped: never dialled in this campaign.
    Skip,
    /// The contact's number goes on the do-not-call list: no campaign dials it again.
    DoNotCall,
    /// A callback at a time (in the contact's zone, or RFC 3339), before fresh contacts.
    Reschedule { at: String },
    /// A waiting contact moves to another campaign (by name).
    MoveCampaign { to: String },
    /// A waiting contact is called with another arm of its campaign (an assistant id).
    MoveArm { to: String },
}

/// The actions as an operator types them (the CLI's and the console's prompt), one table.
pub const ACTIONS: &[(&str, &str)] = &[
    (
        "retry",
        "dial FAILED calls again (UNKNOWN ones once settled)",
    ),
    ("requeue", "put finished contacts back in the queue"),
    ("skip", "skip waiting contacts"),
    ("dnc", "add the numbers to the do-not-call list"),
    (
        "reschedule TIME",
        "book a callback at TIME (contact's zone, or RFC 3339)",
    ),
    ("campaign NAME", "move waiting contacts to campaign NAME"),
    ("arm ASSISTANT", "call waiting contacts with that arm"),
];

impl BulkAction {
    /// Reads `retry`, `skip`, `reschedule 2026-12-07 10:00`, `campaign spring`, ….
    pub fn parse(text: &str) -> Result<BulkAction, String> {
        let text = text.trim();
        let (word, rest) = match text.split_once(char::is_whitespace) {
            Some((word, rest)) => (word, rest.trim()),
            None => (text, ""),
        };
        let needs = |what: &str| -> Result<String, String> {
            if rest.is_empty() {
                Err(format!("`{word}` needs {what}"))
            } else {
                Ok(rest.to_string())
            }
        };
        let bare = |action: BulkAction| {
            if rest.is_empty() {
                Ok(action)
            } else {
                Err(format!("`{word}` takes nothing after it, found `{rest}`"))
            }
        };
        match word.to_ascii_lowercase().as_str() {
            "retry" => bare(BulkAction::Retry),
            "requeue" => bare(BulkAction::Requeue),
            "skip" => bare(BulkAction::Skip),
            "dnc" | "do-not-call" => bare(BulkAction::DoNotCall),
            "reschedule" | "callback" => Ok(BulkAction::Reschedule {
                at: needs("a time")?,
            }),
            "campaign" | "move" => Ok(BulkAction::MoveCampaign {
                to: needs("a campaign's name")?,
            }),
            "arm" => Ok(BulkAction::MoveArm {
                to: needs("an assistant id")?,
            }),
            "" => Err("no action given".into()),
            other => Err(format!(
                "unknown action `{other}` (actions: {})",
                ACTIONS
                    .iter()
                    .map(|(a, _)| *a)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The verb of the confirmation and the log line ("retry 5,000 calls").
    pub fn verb(&self) -> String {
        match self {
            BulkAction::Retry => "retry".into(),
            BulkAction::Requeue => "put back in the queue".into(),
            BulkAction::Skip => "skip".into(),
            BulkAction::DoNotCall => "add to the do-not-call list".into(),
            BulkAction::Reschedule { at } => format!("book a callback at {at} for"),
            BulkAction::MoveCampaign { to } => format!("move to campaign {to}"),
            BulkAction::MoveArm { to } => format!("move to arm {to}"),
        }
    }
}

/// A matched row as the decision needs it: the contact, and the call matched (over calls) or
/// the contact's latest call (over contacts; none if it was never dialled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub contact: ContactStatus,
    pub call: Option<CallStatus>,
    /// The call is the contact's latest attempt sequence (no newer call carries it on).
    pub latest: bool,
}

/// What the action does to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    /// The FAILED call is retried: its contact waits again.
    Retry,
    /// The UNKNOWN call is marked to be sent again once settled as not created.
    RetryOnceSettled,
    /// The finished contact waits again.
    Requeue,
    Skip,
    DoNotCall,
    Callback,
    Move,
}

impl Effect {
    /// How the log line and the CLI's answer name it, after the count.
    pub fn done(self) -> &'static str {
        match self {
            Effect::Retry => "retried",
            Effect::RetryOnceSettled => "UNKNOWN: retried once settled as not created",
            Effect::Requeue => "back in the queue",
            Effect::Skip => "skipped",
            Effect::DoNotCall => "added to the do-not-call list",
            Effect::Callback => "callback booked",
            Effect::Move => "moved",
        }
    }
}

/// Why a matched row is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ineligible {
    /// Only FAILED calls (and UNKNOWN ones) can be retried.
    NotFailed,
    /// A newer call of the contact carries it on.
    Superseded,
    /// The contact is being called now.
    BeingCalled,
    /// The contact already waits in the queue.
    AlreadyWaiting,
    /// The contact is done or skipped: only a waiting one can be skipped or moved.
    NotWaiting,
    /// The campaign it would move to already has that number.
    InTarget,
    /// Its campaign has no active arm with that assistant.
    NoSuchArm,
    /// The number is on the do-not-call list already (another match, or before).
    AlreadyListed,
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ineligible::NotFailed => "not FAILED or UNKNOWN",
            Ineligible::Superseded => "a newer call carries the contact on",
            Ineligible::BeingCalled => "being called now",
            Ineligible::AlreadyWaiting => "already waiting",
            Ineligible::NotWaiting => "not waiting",
            Ineligible::InTarget => "already in that campaign",
            Ineligible::NoSuchArm => "no such active arm in its campaign",
            Ineligible::AlreadyListed => "already on the do-not-call list",
        })
    }
}

/// What `action` does to the row `target`.
pub fn decide(action: &BulkAction, target: Target) -> Result<Effect, Ineligible> {
    use ContactStatus as K;
    if !target.latest && !matches!(action, BulkAction::DoNotCall) {
        return Err(Ineligible::Superseded);
    }
    match action {
        BulkAction::DoNotCall => Ok(Effect::DoNotCall),
        BulkAction::Retry => match target.call {
            Some(CallStatus::Failed) => Ok(Effect::Retry),
            Some(CallStatus::Unknown) => Ok(Effect::RetryOnceSettled),
            _ => Err(Ineligible::NotFailed),
        },
        BulkAction::Requeue => match (target.contact, target.call) {
            (K::Dialing, _) => Err(Ineligible::BeingCalled),
            (K::Pending, _) => Err(Ineligible::AlreadyWaiting),
            // A failed call goes back the way a retry takes it, so the counters agree.
            (K::Done, Some(CallStatus::Failed)) => Ok(Effect::Retry),
            (K::Done | K::Skipped, _) => Ok(Effect::Requeue),
        },
        BulkAction::Reschedule { .. } => match target.contact {
            K::Dialing => Err(Ineligible::BeingCalled),
            K::Pending | K::Done | K::Skipped => Ok(Effect::Callback),
        },
        BulkAction::Skip | BulkAction::MoveCampaign { .. } | BulkAction::MoveArm { .. } => {
            match target.contact {
                K::Dialing => Err(Ineligible::BeingCalled),
                K::Done | K::Skipped => Err(Ineligible::NotWaiting),
                K::Pending => Ok(if matches!(action, BulkAction::Skip) {
                    Effect::Skip
                } else {
                    Effect::Move
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallStatus as C;
    use ContactStatus as K;

    fn at(contact: K, call: Option<C>, latest: bool) -> Target {
        Target {
            contact,
            call,
            latest,
        }
    }

    #[test]
    fn each_action_on_each_kind_of_row() {
        let moved = BulkAction::MoveCampaign { to: "b".into() };
        let later = BulkAction::Reschedule { at: "10:00".into() };
        let table: &[(BulkAction, Target, Result<Effect, Ineligible>)] = &[
            (
                BulkAction::Retry,
                at(K::Done, Some(C::Failed), true),
                Ok(Effect::Retry),
            ),
            (
                BulkAction::Retry,
                at(K::Dialing, Some(C::Unknown), true),
                Ok(Effect::RetryOnceSettled),
            ),
            (
                BulkAction::Retry,
                at(K::Done, Some(C::Failed), false),
                Err(Ineligible::Superseded),
            ),
            (
                BulkAction::Retry,
                at(K::Done, Some(C::Ended), true),
                Err(Ineligible::NotFailed),
            ),
            (
                BulkAction::Retry,
                at(K::Pending, None, true),
                Err(Ineligible::NotFailed),
            ),
            (
                BulkAction::Requeue,
                at(K::Done, Some(C::Ended), true),
                Ok(Effect::Requeue),
            ),
            (
                BulkAction::Requeue,
                at(K::Done, Some(C::Failed), true),
                Ok(Effect::Retry),
            ),
            (
                BulkAction::Requeue,
                at(K::Skipped, None, true),
                Ok(Effect::Requeue),
            ),
            (
                BulkAction::Requeue,
                at(K::Pending, None, true),
                Err(Ineligible::AlreadyWaiting),
            ),
            (
                BulkAction::Requeue,
                at(K::Dialing, Some(C::InProgress), true),
                Err(Ineligible::BeingCalled),
            ),
            (
                BulkAction::Skip,
                at(K::Pending, None, true),
                Ok(Effect::Skip),
            ),
            (
                BulkAction::Skip,
                at(K::Pending, Some(C::Requeued), true),
                Ok(Effect::Skip),
            ),
            (
                BulkAction::Skip,
                at(K::Done, Some(C::Ended), true),
                Err(Ineligible::NotWaiting),
            ),
            (
                BulkAction::Skip,
                at(K::Dialing, Some(C::Creating), true),
                Err(Ineligible::BeingCalled),
            ),
            (
                BulkAction::DoNotCall,
                at(K::Dialing, Some(C::InProgress), false),
                Ok(Effect::DoNotCall),
            ),
            (
                later.clone(),
                at(K::Done, Some(C::Ended), true),
                Ok(Effect::Callback),
            ),
            (
                later.clone(),
                at(K::Pending, None, true),
                Ok(Effect::Callback),
            ),
            (
                later,
                at(K::Dialing, Some(C::Ringing), true),
                Err(Ineligible::BeingCalled),
            ),
            (moved.clone(), at(K::Pending, None, true), Ok(Effect::Move)),
            (
                moved,
                at(K::Skipped, None, true),
                Err(Ineligible::NotWaiting),
            ),
        ];
        for (action, target, want) in table {
            assert_eq!(decide(action, *target), *want, "{action:?} on {target:?}");
        }
    }

    #[test]
    fn actions_parse_as_typed_and_refuse_what_is_not_one() {
        let table: &[(&str, Result<BulkAction, &str>)] = &[
            ("retry", Ok(BulkAction::Retry)),
            (" DNC ", Ok(BulkAction::DoNotCall)),
            (
                "reschedule 2026-12-07 10:00",
                Ok(BulkAction::Reschedule {
                    at: "2026-12-07 10:00".into(),
                }),
            ),
            (
                "campaign spring sale",
                Ok(BulkAction::MoveCampaign {
                    to: "spring sale".into(),
                }),
            ),
            (
                "arm asst-b",
                Ok(BulkAction::MoveArm {
                    to: "asst-b".into(),
                }),
            ),
            ("reschedule", Err("`reschedule` needs a time")),
            (
                "skip now",
                Err("`skip` takes nothing after it, found `now`"),
            ),
            ("", Err("no action given")),
        ];
        for (text, want) in table {
            assert_eq!(
                BulkAction::parse(text),
                want.clone().map_err(String::from),
                "{text:?}"
            );
        }
        let unknown = BulkAction::parse("delete").unwrap_err();
        assert!(
            unknown.starts_with("unknown action `delete` (actions: retry, requeue"),
            "{unknown}"
        );
    }
}
