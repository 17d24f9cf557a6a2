//! The one key registry. Every console action is a row of [`ACTIONS`]: its config name, its
//! default keys, what it does and whether it changes anything. The footer hints, the `?` help
//! overlay, read-only mode and the config's `[keys]` remapping are all built from that table,
//! so a key shown to the operator is always the key that works.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a key can ask of the console, outside dialogs and the filter input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyAction {
    PauseAll,
    PauseCampaign,
    RateUp,
    RateDown,
    RetryCall,
    RetryFailed,
    DoNotCall,
    CancelCampaign,
    StartCampaign,
    CampaignList,
    Report,
    NextCampaign,
    PrevCampaign,
    FocusNext,
    FocusPrev,
    TabPending,
    TabDialing,
    TabActive,
    TabFailed,
    TabDone,
    TabAll,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Sort,
    Filter,
    Details,
    LogSource,
    Freeze,
    Help,
    Acknowledge,
    Close,
    Say,
    Whisper,
    Mute,
    Unmute,
    Transfer,
    EndCall,
    Listen,
    KillSwitch,
    BookCallback,
    Arm,
    Bulk,
    NextSavedFilter,
    SaveFilter,
    Quit,
}

/// One row of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    pub action: KeyAction,
    /// The name used in the config's `[keys]` table.
    pub name: &'static str,
    pub default_keys: &'static [&'static str],
    /// Short label for the footer; `None` keeps the action out of the footer (help only).
    pub hint: Option<&'static str>,
    /// One line for the help overlay.
    pub description: &'static str,
    /// Changes the engine's state: hidden and disabled in read-only mode.
    pub mutates: bool,
}

const fn spec(
    action: KeyAction,
    name: &'static str,
    default_keys: &'static [&'static str],
    hint: Option<&'static str>,
    description: &'static str,
    mutates: bool,
) -> ActionSpec {
    ActionSpec {
        action,
        name,
        default_keys,
        hint,
        description,
        mutates,
    }
}

use KeyAction as A;

/// The registry, in the order the footer and the help overlay list it.
#[rustfmt::skip]
pub const ACTIONS: &[ActionSpec] = &[
    spec(A::PauseAll, "pause_all", &["p"], Some("pause"), "pause / resume all dispatch", true),
    spec(A::PauseCampaign, "pause_campaign", &["P"], Some("pause campaign"), "pause / resume the selected campaign", true),
    spec(A::RateUp, "rate_up", &["+"], Some("rate"), "raise the create rate by 0.5/s", true),
    spec(A::RateDown, "rate_down", &["-"], None, "lower the create rate by 0.5/s (min 0.1/s)", true),
    spec(A::RetryCall, "retry_call", &["r"], Some("retry"), "retry the selected failed call", true),
    spec(A::RetryFailed, "retry_failed", &["R"], Some("retry all"), "retry every failed call of the campaign (asks first)", true),
    spec(A::DoNotCall, "do_not_call", &["D"], None, "put the selected number on the do-not-call list (asks first)", true),
    spec(A::CancelCampaign, "cancel_campaign", &["c"], Some("cancel"), "cancel the selected campaign (asks first)", true),
    spec(A::StartCampaign, "start_campaign", &["S"], None, "start the selected draft campaign", true),
    spec(A::CampaignList, "campaign_list", &["C"], Some("campaigns"), "list campaigns: Enter shows one; S, P and c act on it", false),
    spec(A::Report, "report", &["o"], None, "campaign report: ended calls by reason, hour of day and dial", false),
    spec(A::NextCampaign, "next_campaign", &["]"], None, "show the next campaign", false),
    spec(A::PrevCampaign, "prev_campaign", &["["], None, "show the previous campaign", false),
    spec(A::FocusNext, "focus_next", &["tab"], None, "move focus to the next pane", false),
    spec(A::FocusPrev, "focus_prev", &["shift-tab"], None, "move focus to the previous pane", false),
    spec(A::TabPending, "tab_pending", &["1"], None, "tab Pending: contacts waiting for a call", false),
    spec(A::TabDialing, "tab_dialing", &["2"], None, "tab Dialing: calls being created at Vapi", false),
    spec(A::TabActive, "tab_active", &["3"], None, "tab Active: calls at Vapi", false),
    spec(A::TabFailed, "tab_failed", &["4"], None, "tab Failed: unresolved failures (retried ones leave)", false),
    spec(A::TabDone, "tab_done", &["5"], None, "tab Done: calls that ended", false),
    spec(A::TabAll, "tab_all", &["6"], None, "tab All: every call", false),
    spec(A::Down, "down", &["j", "down"], None, "move down one row", false),
    spec(A::Up, "up", &["k", "up"], None, "move up one row", false),
    spec(A::PageDown, "page_down", &["pgdn"], None, "move down one page", false),
    spec(A::PageUp, "page_up", &["pgup"], None, "move up one page", false),
    spec(A::Top, "top", &["g", "home"], None, "go to the first row", false),
    spec(A::Bottom, "bottom", &["G", "end"], None, "go to the last row", false),
    spec(A::Sort, "sort", &["s"], Some("sort"), "cycle the sort order: newest, oldest, status, attempts", false),
    spec(A::Filter, "filter", &["/"], Some("filter"), "filter calls: text to search for, or an expression (? lists its fields)", false),
    spec(A::Details, "details", &["enter"], Some("details"), "show the attempt history of the selected call", false),
    spec(A::LogSource, "log_source", &["l"], None, "log pane: engine events / tracing log", false),
    spec(A::Freeze, "freeze", &["f"], Some("freeze"), "freeze the display (dispatch goes on)", false),
    spec(A::Help, "help", &["?"], Some("help"), "show this help", false),
    spec(A::Acknowledge, "acknowledge", &["a"], None, "acknowledge the alert: stop highlighting a state that needs you", false),
    spec(A::Close, "close", &["esc"], None, "close a popup, or clear the filter", false),
    spec(A::Say, "say", &["e"], None, "live call: the assistant says a line you type (Tab: then end the call)", true),
    spec(A::Whisper, "whisper", &["w"], None, "live call: add a line to the assistant's context, no reply spoken", true),
    spec(A::Mute, "mute", &["m"], None, "live call: mute the assistant", true),
    spec(A::Unmute, "unmute", &["M"], None, "live call: unmute the assistant", true),
    spec(A::Transfer, "transfer", &["t"], None, "live call: transfer it to a number or SIP URI (a person)", true),
    spec(A::EndCall, "end_call", &["E"], None, "live call: end it now (asks first; r: contact back in the queue)", true),
    spec(A::Listen, "listen", &["L"], None, "live call: play its audio through console.listen_command (again: stop)", false),
    spec(A::KillSwitch, "kill_switch", &["K"], Some("kill"), "kill switch: pause all dispatch and end every live call (asks first)", true),
    spec(A::BookCallback, "book_callback", &["b"], None, "book a callback for the selected contact at a time in its zone (HH:MM…)", true),
    spec(A::Arm, "arm", &["A"], None, "pause, resume or stop an arm of the campaign (ASSISTANT pause|resume|stop)", true),
    spec(A::Bulk, "bulk", &["B"], None, "act on every row listed: retry, requeue, skip, dnc, reschedule, move (asks)", true),
    spec(A::NextSavedFilter, "next_saved_filter", &["F"], None, "apply the next saved filter (shared by consoles and the CLI)", false),
    spec(A::SaveFilter, "save_filter", &["W"], None, "save the filter in force under a name", true),
    spec(A::Quit, "quit", &["q"], Some("quit"), "quit (stops the engine; asks while calls are in flight)", false),
];

impl KeyAction {
    pub fn spec(self) -> &'static ActionSpec {
        // The table lists every variant (a test holds this); the fallback is never reached.
        ACTIONS
            .iter()
            .find(|s| s.action == self)
            .unwrap_or(&ACTIONS[ACTIONS.len() - 1])
    }
}

/// A key as the console matches it: code plus the modifiers that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyBinding {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeyBinding {
    /// Normalises a key event so that terminals that differ in how they report Shift agree:
    /// `P` is `Char('P')` with or without SHIFT, Shift-Tab is always `BackTab`.
    pub fn from_event(event: &KeyEvent) -> KeyBinding {
        let modifiers = event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let shift = event.modifiers.contains(KeyModifiers::SHIFT);
        let code = match event.code {
            // ctrl-R and ctrl-r are one key to the operator.
            KeyCode::Char(c) if modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            KeyCode::Char(c) if shift => KeyCode::Char(c.to_ascii_uppercase()),
            KeyCode::Tab if shift => KeyCode::BackTab,
            other => other,
        };
        KeyBinding { code, modifiers }
    }

    /// Parses the config's key syntax: `p`, `P`, `+`, `ctrl-r`, `alt-x`, `f5`, `enter`,
    /// `esc`, `tab`, `shift-tab`, `space`, `up`, `pgdn`, `home`...
    pub fn parse(text: &str) -> Result<KeyBinding, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty key".into());
        }
        // A single character is always that character, even `-` or `+`.
        if text.chars().count() == 1 {
            let c = text.chars().next().ok_or("empty key")?;
            return Ok(KeyBinding {
                code: KeyCode::Char(c),
                modifiers: KeyModifiers::NONE,
            });
        }
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = strip_any(&lower, &["ctrl-", "ctrl+", "c-"]) {
                modifiers |= KeyModifiers::CONTROL;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = strip_any(&lower, &["alt-", "alt+", "m-"]) {
                modifiers |= KeyModifiers::ALT;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = strip_any(&lower, &["shift-", "shift+", "s-"]) {
                modifiers |= KeyModifiers::SHIFT;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let code = if rest.chars().count() == 1 {
            let c = rest.chars().next().ok_or("missing key after modifier")?;
            KeyCode::Char(c)
        } else {
            let lower = rest.to_ascii_lowercase();
            match lower.as_str() {
                "" => return Err("missing key after modifier".into()),
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pgdown" | "pagedown" => KeyCode::PageDown,
                f if f.starts_with('f') => match f[1..].parse::<u8>() {
                    Ok(n @ 1..=24) => KeyCode::F(n),
                    _ => return Err(format!("unknown key name {rest:?}")),
                },
                _ => return Err(format!("unknown key name {rest:?}")),
            }
        };
        // Normalise the same way as key events do.
        let event = KeyEvent::new(code, modifiers);
        Ok(KeyBinding::from_event(&event))
    }
}

fn strip_any<'a>(text: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| text.strip_prefix(p))
}

impl fmt::Display for KeyBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("S-Tab"),
            KeyCode::Backspace => f.write_str("Bksp"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Insert => f.write_str("Ins"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Why a `[keys]` table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("config [keys]: unknown action {name:?}; known actions: {known}")]
    UnknownAction { name: String, known: String },
    #[error(
        "config [keys]: {action} = {key:?}: {reason} (write keys like \"p\", \"P\", \"+\", \"ctrl-r\", \"f5\", \"enter\")"
    )]
    BadKey {
        action: String,
        key: String,
        reason: String,
    },
    #[error(
        "config [keys]: key {key} is bound to both {first} and {second}; give one of them another key"
    )]
    Conflict {
        key: String,
        first: &'static str,
        second: &'static str,
    },
}

/// Ctrl-C always quits: it is not remappable, and no action may take it.
const CTRL_C: KeyBinding = KeyBinding {
    code: KeyCode::Char('c'),
    modifiers: KeyModifiers::CONTROL,
};

/// The keys in force: the defaults with the config's remapping applied.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRegistry {
    /// Same order as [`ACTIONS`].
    bindings: Vec<(&'static ActionSpec, Vec<KeyBinding>)>,
}

impl Default for KeyRegistry {
    fn default() -> Self {
        Self::build(&BTreeMap::new()).unwrap_or(KeyRegistry {
            bindings: Vec::new(),
        })
    }
}

impl KeyRegistry {
    /// The defaults with `remap` (action name → key, from the config's `[keys]`) applied. A
    /// remapped action loses its default keys. Unknown names, unparsable keys and one key
    /// bound to two actions are errors.
    pub fn new(remap: &BTreeMap<String, String>) -> Result<KeyRegistry, KeyError> {
        Self::build(remap)
    }

    fn build(remap: &BTreeMap<String, String>) -> Result<KeyRegistry, KeyError> {
        for name in remap.keys() {
            if !ACTIONS.iter().any(|s| s.name == name) {
                return Err(KeyError::UnknownAction {
                    name: name.clone(),
                    known: ACTIONS
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let mut bindings = Vec::with_capacity(ACTIONS.len());
        for spec in ACTIONS {
            let keys = match remap.get(spec.name) {
                Some(text) => {
                    let key = KeyBinding::parse(text).map_err(|reason| KeyError::BadKey {
                        action: spec.name.to_string(),
                        key: text.clone(),
                        reason,
                    })?;
                    if key == CTRL_C {
                        return Err(KeyError::BadKey {
                            action: spec.name.to_string(),
                            key: text.clone(),
                            reason: "ctrl-c is reserved for quitting".into(),
                        });
                    }
                    vec![key]
                }
                None => spec
                    .default_keys
                    .iter()
                    .filter_map(|k| KeyBinding::parse(k).ok())
                    .collect(),
            };
            bindings.push((spec, keys));
        }
        // One key, one action.
        let mut seen: BTreeMap<String, &'static str> = BTreeMap::new();
        for (spec, keys) in &bindings {
            for key in keys {
                let id = format!("{:?}/{:?}", key.code, key.modifiers);
                if let Some(first) = seen.insert(id, spec.name) {
                    return Err(KeyError::Conflict {
                        key: key.to_string(),
                        first,
                        second: spec.name,
                    });
                }
            }
        }
        Ok(KeyRegistry { bindings })
    }

    /// The action a key press asks for, if any. Ctrl-C is always [`KeyAction::Quit`].
    pub fn action_for(&self, event: &KeyEvent) -> Option<KeyAction> {
        let key = KeyBinding::from_event(event);
        if key == CTRL_C {
            return Some(KeyAction::Quit);
        }
        self.bindings
            .iter()
            .find(|(_, keys)| keys.contains(&key))
            .map(|(spec, _)| spec.action)
    }

    pub fn keys_for(&self, action: KeyAction) -> &[KeyBinding] {
        self.bindings
            .iter()
            .find(|(spec, _)| spec.action == action)
            .map(|(_, keys)| keys.as_slice())
            .unwrap_or(&[])
    }

    /// The first key of an action as shown to the operator ("?" if it has none).
    pub fn key_label(&self, action: KeyAction) -> String {
        self.keys_for(action)
            .first()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "?".into())
    }

    /// Every action with its keys, for the help overlay; read-only drops the mutating ones.
    pub fn entries(&self, read_only: bool) -> Vec<(&'static ActionSpec, &[KeyBinding])> {
        self.bindings
            .iter()
            .filter(|(spec, _)| !(read_only && spec.mutates))
            .map(|(spec, keys)| (*spec, keys.as_slice()))
            .collect()
    }

    /// Footer hints as (key, label), in registry order; read-only drops the mutating ones.
    pub fn hints(&self, read_only: bool) -> Vec<(String, &'static str)> {
        self.entries(read_only)
            .into_iter()
            .filter_map(|(spec, keys)| {
                let label = spec.hint?;
                let key = keys.first()?;
                // `+` and `-` read as one hint.
                let key = if spec.action == KeyAction::RateUp {
                    match self.keys_for(KeyAction::RateDown).first() {
                        Some(down) => format!("{key}/{down}"),
                        None => key.to_string(),
                    }
                } else {
                    key.to_string()
                };
                Some((key, label))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn remap(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, k)| (a.to_string(), k.to_string()))
            .collect()
    }

    #[test]
    fn registry_lists_every_action_once() {
        let mut names: Vec<_> = ACTIONS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len());
        for spec in ACTIONS {
            assert_eq!(spec.action.spec().name, spec.name);
        }
    }

    #[test]
    fn defaults_map_the_documented_keys() {
        let keys = KeyRegistry::new(&BTreeMap::new()).unwrap();
        let cases = [
            (press(KeyCode::Char('p')), KeyAction::PauseAll),
            (press(KeyCode::Char('P')), KeyAction::PauseCampaign),
            (
                KeyEvent::new(KeyCode::Char('P'), KeyModifiers::SHIFT),
                KeyAction::PauseCampaign,
            ),
            (press(KeyCode::Char('+')), KeyAction::RateUp),
            (press(KeyCode::Char('-')), KeyAction::RateDown),
            (press(KeyCode::Char('r')), KeyAction::RetryCall),
            (press(KeyCode::Char('R')), KeyAction::RetryFailed),
            (press(KeyCode::Char('c')), KeyAction::CancelCampaign),
            (press(KeyCode::Tab), KeyAction::FocusNext),
            (
                KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
                KeyAction::FocusPrev,
            ),
            (press(KeyCode::Char('4')), KeyAction::TabFailed),
            (press(KeyCode::Down), KeyAction::Down),
            (press(KeyCode::Char('k')), KeyAction::Up),
            (press(KeyCode::PageDown), KeyAction::PageDown),
            (press(KeyCode::Char('G')), KeyAction::Bottom),
            (press(KeyCode::Char('/')), KeyAction::Filter),
            (press(KeyCode::Enter), KeyAction::Details),
            (press(KeyCode::Char('f')), KeyAction::Freeze),
            (press(KeyCode::Char('?')), KeyAction::Help),
            (press(KeyCode::Char('q')), KeyAction::Quit),
            (
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                KeyAction::Quit,
            ),
            (press(KeyCode::Esc), KeyAction::Close),
            (press(KeyCode::Char(']')), KeyAction::NextCampaign),
        ];
        for (event, action) in cases {
            assert_eq!(keys.action_for(&event), Some(action), "{event:?}");
        }
        assert_eq!(keys.action_for(&press(KeyCode::Char('z'))), None);
    }

    #[test]
    fn remapping_replaces_the_default_key() {
        let keys = KeyRegistry::new(&remap(&[
            ("pause_all", "ctrl-p"),
            ("retry_call", "f5"),
            ("freeze", "Z"),
        ]))
        .unwrap();
        assert_eq!(keys.action_for(&press(KeyCode::Char('p'))), None);
        assert_eq!(
            keys.action_for(&KeyEvent::new(KeyCode::Char('p'), KeyModifiers::CONTROL)),
            Some(KeyAction::PauseAll)
        );
        assert_eq!(
            keys.action_for(&press(KeyCode::F(5))),
            Some(KeyAction::RetryCall)
        );
        assert_eq!(
            keys.action_for(&press(KeyCode::Char('Z'))),
            Some(KeyAction::Freeze)
        );
        assert_eq!(keys.action_for(&press(KeyCode::Char('f'))), None);
        assert_eq!(keys.key_label(KeyAction::PauseAll), "ctrl-p");
    }

    #[test]
    fn unknown_action_is_an_error_naming_it() {
        let err = KeyRegistry::new(&remap(&[("pause_everything", "x")])).unwrap_err();
        assert!(matches!(err, KeyError::UnknownAction { .. }));
        let text = err.to_string();
        assert!(text.contains("pause_everything"), "{text}");
        assert!(
            text.contains("pause_all"),
            "lists the known actions: {text}"
        );
    }

    #[test]
    fn unparsable_key_is_an_error() {
        let err = KeyRegistry::new(&remap(&[("help", "hyper-x")])).unwrap_err();
        assert!(matches!(err, KeyError::BadKey { .. }), "{err}");
        assert!(err.to_string().contains("help"), "{err}");
        let err = KeyRegistry::new(&remap(&[("help", "f99")])).unwrap_err();
        assert!(matches!(err, KeyError::BadKey { .. }), "{err}");
        let err = KeyRegistry::new(&remap(&[("help", "ctrl-c")])).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
    }

    #[test]
    fn conflicting_keys_are_an_error() {
        // `r` is retry_call's default.
        let err = KeyRegistry::new(&remap(&[("freeze", "r")])).unwrap_err();
        assert_eq!(
            err,
            KeyError::Conflict {
                key: "r".into(),
                first: "retry_call",
                second: "freeze",
            }
        );
        // Moving retry_call away frees `r`.
        KeyRegistry::new(&remap(&[("freeze", "r"), ("retry_call", "x")])).unwrap();
    }

    #[test]
    fn key_syntax_round_trips() {
        for (text, shown) in [
            ("p", "p"),
            ("P", "P"),
            ("+", "+"),
            ("-", "-"),
            ("ctrl-r", "ctrl-r"),
            ("Ctrl+R", "ctrl-r"),
            ("f5", "F5"),
            ("enter", "Enter"),
            ("shift-tab", "S-Tab"),
            ("pgdn", "PgDn"),
            ("space", "space"),
            ("alt-x", "alt-x"),
        ] {
            assert_eq!(
                KeyBinding::parse(text).unwrap().to_string(),
                shown,
                "{text}"
            );
        }
    }

    #[test]
    fn hints_and_help_come_from_the_registry() {
        let keys = KeyRegistry::new(&remap(&[("pause_all", "F2")])).unwrap();
        let hints = keys.hints(false);
        assert_eq!(hints.first(), Some(&("F2".to_string(), "pause")));
        assert!(hints.contains(&("+/-".to_string(), "rate")));
        assert!(hints.contains(&("?".to_string(), "help")));
        let help = keys.entries(false);
        assert_eq!(help.len(), ACTIONS.len());

        // Read-only drops everything that changes state, from both.
        let ro_hints = keys.hints(true);
        assert!(ro_hints.iter().all(|(_, label)| *label != "pause"));
        assert!(ro_hints.iter().all(|(_, label)| *label != "retry"));
        assert!(keys.entries(true).iter().all(|(spec, _)| !spec.mutates));
        assert!(ro_hints.contains(&("q".to_string(), "quit")));
    }
}
