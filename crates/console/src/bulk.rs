//! `B`: act on every row the list shows (its tab, campaign and `/` filter), not only the
//! selected one. The action is typed (`retry`, `skip`, `reschedule 10:00`, …); the console
//! then counts exactly what it would do (the dry run, [`switchboard_engine::bulk::preview`]),
//! asks with that count and the action named, and runs it in batches through the operations
//! layer, the status line showing its progress.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use switchboard_engine::bulk::{BulkRequest, Preview};

use crate::app::{Action, App, Popup, StatusKind};
use crate::live::{Prompt, PromptKind};
use crate::model::bulk::BulkAction;
use crate::model::filter::Scope;
use crate::store::bulk::Selection;
use crate::store::stats::CallTab;

/// The longest action line the prompt takes.
const MAX_ACTION_CHARS: usize = 120;

impl App {
    /// What a bulk action would match now: the list as shown, without its window. The
    /// Pending tab lists contacts; every other tab lists calls.
    pub(crate) fn bulk_selection(&self) -> Selection {
        let mut query = self.current_query();
        query.offset = 0;
        query.limit = 1;
        query.anchor = None;
        let scope = if self.tab == CallTab::Pending {
            // The Pending tab's contacts: waiting ones, the expression over each contact and
            // its latest call, as the list shows them.
            Scope::Contacts
        } else {
            Scope::Calls
        };
        Selection { scope, query }
    }

    /// How the selection reads in the confirmation and the log.
    fn bulk_described(&self) -> String {
        let mut parts = vec![format!("tab {}", self.tab_name())];
        if let Some(filter) = &self.filter {
            parts.push(format!("`{filter}`"));
        }
        if let Some(id) = self.campaign_id {
            let name = self
                .snapshot
                .campaigns
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| format!("#{id}"));
            parts.push(format!("campaign {name}"));
        }
        parts.join(", ")
    }

    fn tab_name(&self) -> &'static str {
        match self.tab {
            CallTab::Pending => "Pending",
            CallTab::Dialing => "Dialing",
            CallTab::Active => "Active",
            CallTab::Failed => "Failed",
            CallTab::Done => "Done",
            CallTab::All => "All",
        }
    }

    /// `B`: the action prompt, naming what it acts on.
    pub(crate) fn bulk_prompt(&mut self) -> Option<Action> {
        self.popup = Some(Popup::Prompt(Prompt {
            kind: PromptKind::Bulk,
            call_id: 0,
            phone: None,
            who: format!(
                "every row of {} ({} rows)",
                self.bulk_described(),
                self.total.unwrap_or(0)
            ),
            input: String::new(),
            end_after: false,
        }));
        None
    }

    /// A key in the bulk prompt: Enter asks for the dry run of the typed action.
    pub(crate) fn bulk_prompt_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Some(Popup::Prompt(prompt)) = &mut self.popup else {
            return None;
        };
        match key.code {
            KeyCode::Esc => {
                self.popup = None;
                self.set_status("bulk action: cancelled", StatusKind::Info);
                None
            }
            KeyCode::Backspace => {
                prompt.input.pop();
                None
            }
            KeyCode::Enter if prompt.input.trim_start().starts_with("export") => {
                let path = prompt.input.trim_start()["export".len()..]
                    .trim()
                    .to_string();
                self.export_prompted(path)
            }
            KeyCode::Enter => match BulkAction::parse(&prompt.input) {
                // The prompt stays open to be corrected.
                Err(e) => self.refuse(e),
                Ok(action) => {
                    self.popup = None;
                    let request = BulkRequest {
                        selection: self.bulk_selection(),
                        action,
                        described: self.bulk_described(),
                    };
                    self.set_status("bulk action: counting the matches…", StatusKind::Pending);
                    Some(Action::BulkPreview(request))
                }
            },
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if prompt.input.chars().count() < MAX_ACTION_CHARS {
                    prompt.input.push(c);
                }
                None
            }
            _ => None,
        }
    }

    /// `export FILE` in the bulk prompt: the shown campaign's contacts the `/` expression
    /// matches (over contacts and their latest call), as `export CAMPAIGN --where` writes them.
    fn export_prompted(&mut self, path: String) -> Option<Action> {
        if path.is_empty() {
            return self.refuse("`export` needs a file to write (export calls.csv)");
        }
        let Some(campaign_id) = self.campaign_id else {
            return self.refuse("export: show a campaign first ([ and ] step through them)");
        };
        self.popup = None;
        self.set_status(format!("exporting to {path}…"), StatusKind::Pending);
        Some(Action::Export {
            campaign_id,
            filter: self.expression.clone(),
            path: std::path::PathBuf::from(path),
        })
    }

    /// The dry run's count arrived: ask, naming the count and the action.
    pub(crate) fn bulk_previewed(
        &mut self,
        request: BulkRequest,
        preview: Result<Preview, String>,
    ) -> Option<Action> {
        let preview = match preview {
            Ok(preview) => preview,
            Err(e) => {
                self.set_status(format!("refused: {e}"), StatusKind::Error);
                return None;
            }
        };
        if preview.changing() == 0 {
            self.set_status(
                format!("bulk action: nothing to do ({})", preview.describe()),
                StatusKind::Info,
            );
            return None;
        }
        let question = switchboard_engine::bulk::question(&request, &preview);
        let label = format!(
            "{} {}",
            request.action.verb(),
            switchboard_engine::bulk::thousands(preview.changing())
        );
        self.ask(
            "Bulk action",
            question,
            ("Leave them", &label),
            Action::Bulk(request),
        )
    }

    /// A batch of a running bulk action is done.
    pub(crate) fn bulk_progress(&mut self, walked: u64) {
        self.set_status(
            format!(
                "bulk action: {} rows done…",
                switchboard_engine::bulk::thousands(walked)
            ),
            StatusKind::Pending,
        );
    }
}
