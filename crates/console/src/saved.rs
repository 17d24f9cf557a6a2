//! Saved filters in the console: `W` saves the filter in force under a name, `F` steps
//! through the saved ones (each a tab of the call list, its name shown beside the tabs),
//! and the list is read again every few seconds, so a filter another console or the CLI
//! saved appears here. The store holds them ([`crate::store::saved_filters`]); saving goes
//! through the operations layer, which checks and logs it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{Action, App, Popup, StatusKind};
use crate::live::{Prompt, PromptKind};
use crate::model::filter;
use crate::store::saved_filters::SavedFilter;

impl App {
    /// The saved filter in force, if the `/` filter is one.
    pub(crate) fn active_saved(&self) -> Option<&SavedFilter> {
        let typed = self.filter.as_deref()?;
        self.saved.iter().find(|f| f.expression == typed)
    }

    /// The list read from the store.
    pub(crate) fn saved_filters_read(&mut self, saved: Vec<SavedFilter>) {
        self.saved = saved;
        self.saved_loaded = true;
    }

    /// `F`: the next saved filter (after the last: none).
    pub(crate) fn next_saved_filter(&mut self) -> Option<Action> {
        if self.saved.is_empty() {
            return self.refuse("no saved filters: W saves the filter in force");
        }
        let next = match self.active_saved() {
            Some(active) => {
                let at = self.saved.iter().position(|f| f.name == active.name);
                at.and_then(|i| self.saved.get(i + 1)).cloned()
            }
            None => self.saved.first().cloned(),
        };
        match next {
            Some(saved) => match filter::parse(&saved.expression) {
                Ok(parsed) => {
                    self.expression = Some(parsed);
                    self.filter = Some(saved.expression.clone());
                    self.set_status(format!("filter {}", saved.name), StatusKind::Info);
                    self.reset_list()
                }
                Err(e) => self.refuse(format!("saved filter {}: {e}", saved.name)),
            },
            None => {
                self.expression = None;
                self.filter = None;
                self.set_status("filter cleared", StatusKind::Info);
                self.reset_list()
            }
        }
    }

    /// `W`: name the filter in force to save it.
    pub(crate) fn save_filter_prompt(&mut self) -> Option<Action> {
        let Some(expression) = self.filter.clone() else {
            return self.refuse("no filter to save: type one after / first");
        };
        if self.expression.is_none() {
            return self.refuse("only an expression can be saved (status = FAILED, …)");
        }
        self.popup = Some(Popup::Prompt(Prompt {
            kind: PromptKind::SaveFilter,
            call_id: 0,
            phone: None,
            who: expression,
            input: String::new(),
            end_after: false,
        }));
        None
    }

    /// A key in the save prompt: Enter saves under the typed name.
    pub(crate) fn save_filter_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Some(Popup::Prompt(prompt)) = &mut self.popup else {
            return None;
        };
        match key.code {
            KeyCode::Esc => {
                self.popup = None;
                self.set_status("save filter: cancelled", StatusKind::Info);
                None
            }
            KeyCode::Backspace => {
                prompt.input.pop();
                None
            }
            KeyCode::Enter => {
                let name = prompt.input.trim().to_string();
                let expression = prompt.who.clone();
                match filter::check_name(&name) {
                    Err(e) => self.refuse(e),
                    Ok(()) => {
                        self.popup = None;
                        Some(Action::SaveFilter { name, expression })
                    }
                }
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if prompt.input.chars().count() < filter::MAX_NAME_CHARS {
                    prompt.input.push(c);
                }
                None
            }
            _ => None,
        }
    }
}
