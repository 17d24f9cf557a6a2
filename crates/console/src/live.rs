//! The console's hands on live calls: say, whisper, mute, transfer, end, listen and the kill
//! switch. Each names the call and the person, asks where it matters, and goes through the
//! operations layer as a [`Command`]; the engine's answer comes back in the log.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{Action, App, Confirm, Popup, StatusKind};
use crate::dispatch::Command;
use crate::keys::KeyAction;
use crate::model::live::{AfterEnd, Destination, LiveAction, MAX_SPOKEN, spoken};
use crate::model::{ArmStatus, CallStatus};
use crate::store::stats::CallListRow;

/// What a text prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Say,
    Whisper,
    Transfer,
    /// A callback for the selected contact (`call_id` holds the campaign's id).
    Callback,
    /// An arm of the campaign to pause, resume or stop (`call_id` holds the campaign's id).
    Arm,
    /// An action on every row listed (`crate::bulk`).
    Bulk,
    /// A name to save the filter in force under (`who` holds the expression).
    SaveFilter,
}

/// A line typed for a live call.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub kind: PromptKind,
    /// The call it acts on (a callback or an arm: the campaign).
    pub call_id: i64,
    /// A callback: the contact's number.
    pub phone: Option<String>,
    /// `call 12 (Ada Lovelace, +14155550100)`.
    pub who: String,
    pub input: String,
    /// Say only: end the call once it is said (Tab toggles).
    pub end_after: bool,
}

impl Prompt {
    pub fn title(&self) -> &'static str {
        match self.kind {
            PromptKind::Say => "Say into the call",
            PromptKind::Whisper => "Whisper to the assistant",
            PromptKind::Transfer => "Transfer to a person",
            PromptKind::Callback => "Book a callback",
            PromptKind::Arm => "Arms of the campaign",
            PromptKind::Bulk => "Act on every row listed",
            PromptKind::SaveFilter => "Save the filter",
        }
    }

    pub fn hint(&self) -> String {
        match self.kind {
            PromptKind::Say => format!(
                "Enter: the assistant says it · Tab: then end the call [{}] · Esc: cancel",
                if self.end_after { "x" } else { " " }
            ),
            PromptKind::Whisper => {
                "Enter: added to the assistant's context, no reply spoken · Esc: cancel".into()
            }
            PromptKind::Transfer => {
                "a number (+14155550100) or a SIP URI (sip:desk@example.com) · Enter · Esc".into()
            }
            PromptKind::Callback => {
                "HH:MM or 2026-12-04 15:00 in the contact's zone, or RFC 3339 · Enter · Esc".into()
            }
            PromptKind::Arm => "ASSISTANT pause | resume | stop · Enter · Esc".into(),
            PromptKind::SaveFilter => {
                "a name (letters, digits, - _ .) · Enter: saved for every console · Esc".into()
            }
            PromptKind::Bulk => format!(
                "{} | export FILE · Enter: count, then ask · Esc",
                crate::model::bulk::ACTIONS
                    .iter()
                    .map(|(a, _)| *a)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        }
    }
}

/// How a call is named to the operator.
pub fn who(row: &CallListRow) -> String {
    match &row.contact_name {
        Some(name) if !name.is_empty() => format!("call {} ({name}, {})", row.id, row.phone),
        _ => format!("call {} ({})", row.id, row.phone),
    }
}

impl App {
    /// The selected row, when it is a live call (at Vapi), or why not.
    fn live_row(&self) -> Result<CallListRow, String> {
        let row = self.selected_row().ok_or("no call selected")?;
        if row.pending_contact {
            return Err("a pending contact has no live call".into());
        }
        if !row.status.is_at_vapi() {
            return Err(format!("{} is {}: it is not live", who(row), row.status));
        }
        Ok(row.clone())
    }

    pub(crate) fn run_live_action(&mut self, action: KeyAction) -> Option<Action> {
        if action == KeyAction::KillSwitch {
            return self.kill_switch();
        }
        let row = match self.live_row() {
            Ok(row) => row,
            Err(why) => {
                // A call still being created can be ended: as soon as Vapi shows it.
                let creating = self
                    .selected_row()
                    .filter(|r| !r.pending_contact && CallStatus::IN_CREATION.contains(&r.status));
                match (action, creating) {
                    (KeyAction::EndCall, Some(row)) => row.clone(),
                    _ => return self.refuse(why),
                }
            }
        };
        let prompt = |kind| {
            Popup::Prompt(Prompt {
                kind,
                call_id: row.id,
                phone: None,
                who: who(&row),
                input: String::new(),
                end_after: false,
            })
        };
        match action {
            KeyAction::Say => self.popup = Some(prompt(PromptKind::Say)),
            KeyAction::Whisper => self.popup = Some(prompt(PromptKind::Whisper)),
            KeyAction::Transfer => self.popup = Some(prompt(PromptKind::Transfer)),
            KeyAction::Mute => return self.live(row.id, LiveAction::Mute { mute: true }),
            KeyAction::Unmute => return self.live(row.id, LiveAction::Mute { mute: false }),
            KeyAction::EndCall => {
                let message = format!(
                    "End {} now? Vapi hangs up; the call is recorded as ended by operator. \
                     Its contact is done (r: end it and put the contact back in the queue).",
                    who(&row)
                );
                let end = |then| {
                    Action::Send(Command::Live {
                        call_id: row.id,
                        action: LiveAction::End,
                        then,
                    })
                };
                self.popup = Some(Popup::Confirm(Confirm {
                    title: "End call".into(),
                    message,
                    action: end(AfterEnd::Done),
                    confirm_selected: false,
                    keep_label: "Keep the call".into(),
                    act_label: "End it".into(),
                    extra: vec![('r', end(AfterEnd::Requeue))],
                }));
            }
            KeyAction::Listen => return Some(Action::Listen(row.id)),
            _ => {}
        }
        None
    }

    fn live(&mut self, call_id: i64, action: LiveAction) -> Option<Action> {
        self.send(Command::Live {
            call_id,
            action,
            then: AfterEnd::Done,
        })
    }

    /// Pause everything and end every live call, after a dialog that says how many.
    fn kill_switch(&mut self) -> Option<Action> {
        let snapshot = self.latest();
        let live: i64 = snapshot
            .campaigns
            .iter()
            .map(|c| c.active + c.creating)
            .sum();
        let campaign = self
            .latest_campaign()
            .map(|c| (c.id, c.name.clone(), c.active + c.creating));
        let end = |campaign_id, then| Action::Send(Command::EndLiveCalls { campaign_id, then });
        let mut message = format!(
            "Pause all dispatch and end {live} live call(s) now? Their contacts are done \
             (r: contacts back in the queue)."
        );
        let mut extra = vec![('r', end(None, AfterEnd::Requeue))];
        if let Some((id, name, n)) = campaign {
            message.push_str(&format!(" c: only campaign \"{name}\" ({n} live call(s))."));
            extra.push(('c', end(Some(id), AfterEnd::Done)));
        }
        self.popup = Some(Popup::Confirm(Confirm {
            title: "Kill switch".into(),
            message,
            action: end(None, AfterEnd::Done),
            confirm_selected: false,
            keep_label: "Keep calling".into(),
            act_label: format!("End {live} call(s)"),
            extra,
        }));
        None
    }

    pub(crate) fn prompt_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Some(Popup::Prompt(prompt)) = &mut self.popup else {
            return None;
        };
        match prompt.kind {
            PromptKind::Bulk => return self.bulk_prompt_key(key),
            PromptKind::SaveFilter => return self.save_filter_key(key),
            _ => {}
        }
        match key.code {
            KeyCode::Esc => {
                let title = prompt.title();
                self.popup = None;
                self.set_status(format!("{title}: cancelled"), StatusKind::Info);
                None
            }
            KeyCode::Tab if prompt.kind == PromptKind::Say => {
                prompt.end_after = !prompt.end_after;
                None
            }
            KeyCode::Backspace => {
                prompt.input.pop();
                None
            }
            KeyCode::Enter if matches!(prompt.kind, PromptKind::Callback | PromptKind::Arm) => {
                let prompt = prompt.clone();
                let command = match prompt.kind {
                    PromptKind::Callback => {
                        prompt.phone.clone().map(|phone| Command::BookCallback {
                            campaign_id: prompt.call_id,
                            phone,
                            at: prompt.input.trim().to_string(),
                        })
                    }
                    _ => arm_command(prompt.call_id, &prompt.input),
                };
                match command {
                    Some(command) => {
                        self.popup = None;
                        self.send(command)
                    }
                    None => self.refuse(match prompt.kind {
                        PromptKind::Arm => {
                            "type an assistant id, then pause, resume or stop".to_string()
                        }
                        _ => "no contact to call back".to_string(),
                    }),
                }
            }
            KeyCode::Enter => {
                let prompt = prompt.clone();
                let action = match prompt.kind {
                    PromptKind::Say => spoken(&prompt.input).map(|text| LiveAction::Say {
                        text,
                        end_after: prompt.end_after,
                    }),
                    PromptKind::Whisper => {
                        spoken(&prompt.input).map(|text| LiveAction::Whisper { text })
                    }
                    PromptKind::Transfer => {
                        Destination::parse(&prompt.input).map(|to| LiveAction::Transfer { to })
                    }
                    // Handled above.
                    PromptKind::Callback
                    | PromptKind::Arm
                    | PromptKind::Bulk
                    | PromptKind::SaveFilter => return None,
                };
                match action {
                    // The prompt stays open to be corrected.
                    Err(e) => self.refuse(e.to_string()),
                    Ok(action) => {
                        self.popup = None;
                        self.live(prompt.call_id, action)
                    }
                }
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if prompt.input.chars().count() < MAX_SPOKEN {
                    prompt.input.push(c);
                }
                None
            }
            _ => None,
        }
    }
}

/// `asst-b pause` as the command for the campaign's arm (None: not that shape).
fn arm_command(campaign_id: i64, input: &str) -> Option<Command> {
    let mut words = input.split_whitespace();
    let (assistant, verb) = (words.next()?, words.next()?);
    if words.next().is_some() {
        return None;
    }
    let status = match verb.to_ascii_lowercase().as_str() {
        "pause" => ArmStatus::Paused,
        "resume" => ArmStatus::Active,
        "stop" => ArmStatus::Stopped,
        _ => return None,
    };
    Some(Command::SetArm {
        campaign_id,
        assistant_id: assistant.to_string(),
        status,
    })
}

impl App {
    /// `b`: a callback for the selected row's contact, at a time typed in its zone.
    pub(crate) fn book_callback(&mut self) -> Option<Action> {
        let Some(row) = self.selected_row().cloned() else {
            return self.refuse("no contact selected");
        };
        let who = match &row.contact_name {
            Some(name) if !name.is_empty() => format!("{name}, {}", row.phone),
            _ => row.phone.clone(),
        };
        self.popup = Some(Popup::Prompt(Prompt {
            kind: PromptKind::Callback,
            call_id: row.campaign_id,
            phone: Some(row.phone.clone()),
            who,
            input: String::new(),
            end_after: false,
        }));
        None
    }

    /// `A`: pause, resume or stop an arm of the campaign shown.
    pub(crate) fn arm_prompt(&mut self) -> Option<Action> {
        let Some((id, name)) = self.latest_campaign().map(|c| (c.id, c.name.clone())) else {
            return self.refuse("no campaign selected");
        };
        self.popup = Some(Popup::Prompt(Prompt {
            kind: PromptKind::Arm,
            call_id: id,
            phone: None,
            who: format!("campaign {name}"),
            input: String::new(),
            end_after: false,
        }));
        None
    }
}
