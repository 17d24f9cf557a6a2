//! All of the console's state, and the two ways it changes: a key press
//! ([`App::handle_key`]) or news from outside ([`App::apply`]). Both are synchronous and
//! return at most one [`Action`] for the event loop to carry out, so tests drive the whole
//! console with keys and fabricated updates, no terminal and no engine needed.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_logger::TuiWidgetState;

use super::ConsoleOptions;
use super::keys::{KeyAction, KeyRegistry};
use super::layout;
use crate::dispatch::command::{Command, CommandReply};
use crate::dispatch::snapshot::{CampaignView, Snapshot};
use crate::model::filter::{self, Filter};
use crate::model::live::TranscriptLine;
use crate::model::{CallStatus, CampaignStatus};
use crate::store::attempts::Attempt;
use crate::store::stats::{Anchor, CallListRow, CallQuery, CallSort, CallTab, CampaignReport};

/// Steps of `+`/`-`, and the lowest rate `-` goes to.
pub const RATE_STEP: f64 = 0.5;
pub const RATE_MIN: f64 = 0.1;

/// How far (rows) from the window a loaded row may be and still anchor a keyset read; the
/// store skips the rows in between.
const MAX_ANCHOR_DISTANCE: i64 = 500;
/// Windows starting this deep are read by key around a held row (keyset paging).
const KEYSET_FROM: i64 = 1_000;
/// The longest filter the prompt takes (an expression of several comparisons fits).
const MAX_FILTER_CHARS: usize = 240;

/// What the event loop should do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a command to the engine; its answer comes back as [`Update::Reply`].
    Send(Command),
    /// Read this window of the call list; the rows come back as [`Update::Page`].
    LoadPage(CallQuery),
    /// Read a call's attempt history; it comes back as [`Update::Attempts`].
    LoadAttempts(i64),
    /// Read a campaign's report; it comes back as [`Update::Report`].
    LoadReport(i64),
    /// A live call is shown: read its attempts and transcript again, and tell the engine a
    /// console watches it (without webhooks it then reads the call from Vapi).
    RefreshLive(i64),
    /// Play a live call's audio through `console.listen_command`; again: stop.
    Listen(i64),
    /// Count what a bulk action would do (writes nothing); comes back as
    /// [`Update::BulkPreview`].
    BulkPreview(switchboard_engine::bulk::BulkRequest),
    /// Write the campaign's contacts the filter matches to a CSV file (the answer comes back
    /// as [`Update::Reply`]).
    Export {
        campaign_id: i64,
        filter: Option<Filter>,
        path: std::path::PathBuf,
    },
    /// Save a filter under a name (through the operations layer); the list is read again.
    SaveFilter { name: String, expression: String },
    /// Read the saved filters; they come back as [`Update::SavedFilters`].
    LoadSavedFilters,
    /// Carry out a bulk action the operator confirmed; progress comes back as
    /// [`Update::BulkProgress`], its line as [`Update::Reply`].
    Bulk(switchboard_engine::bulk::BulkRequest),
    /// Stop the engine and leave. A second `Quit` while stopping means "leave now".
    Quit,
}

/// News for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Snapshot(Box<Snapshot>),
    Page {
        query: CallQuery,
        rows: Vec<CallListRow>,
        total: i64,
    },
    Attempts {
        call_id: i64,
        rows: Vec<Attempt>,
        analysis: Option<crate::store::analysis::CallAnalysis>,
        transcript: Vec<TranscriptLine>,
        /// The call as read with them (the popup follows a live call to its end).
        now: Option<CallNow>,
    },
    Report {
        campaign_id: i64,
        report: CampaignReport,
    },
    /// A page or attempt load failed; shown on the status line.
    LoadFailed(String),
    /// A bulk action's dry run.
    BulkPreview {
        request: switchboard_engine::bulk::BulkRequest,
        preview: Result<switchboard_engine::bulk::Preview, String>,
    },
    /// Rows a running bulk action has walked.
    BulkProgress(u64),
    /// The saved filters, as read.
    SavedFilters(Vec<crate::store::saved_filters::SavedFilter>),
    Reply(CommandReply),
    /// The clock: ages are computed against this, never the wall clock, so that tests
    /// render the same screen every time.
    Tick(DateTime<Utc>),
    Resize {
        width: u16,
        height: u16,
    },
}

/// A call's state read with its details: the popup's header follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallNow {
    pub status: CallStatus,
    pub ended_reason: Option<String>,
    pub cost_usd: Option<f64>,
}

/// Panes that take the movement keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Calls,
    Log,
}

/// What the log pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// The engine's event ring from the snapshot: attempts, retries, breaker, pauses.
    Events,
    /// Everything logged through `tracing` (tui-logger).
    Tracing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Pending,
    Ok,
    Error,
}

/// A dangerous action waiting for a yes. The default button is Cancel.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub message: String,
    pub action: Action,
    pub confirm_selected: bool,
    /// The buttons say what they do: the safe one (default) and the one that acts.
    pub keep_label: String,
    pub act_label: String,
    /// Other answers, by key, that the message names (`r`: end and re-queue…).
    pub extra: Vec<(char, Action)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    pub call: CallListRow,
    /// `None` while loading.
    pub attempts: Option<Vec<Attempt>>,
    /// What the end-of-call report said (summary, evaluation, recording), if anything.
    pub analysis: Option<crate::store::analysis::CallAnalysis>,
    /// What was said so far (live) or in the end.
    pub transcript: Vec<TranscriptLine>,
    /// Lines scrolled (the pane clamps it to its content).
    pub scroll: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    /// The campaign list (`C`): the highlighted row, an index into the snapshot's campaigns.
    Campaigns {
        selected: usize,
    },
    Confirm(Confirm),
    /// A line typed for a live call (say, whisper, transfer).
    Prompt(super::live::Prompt),
    Details(Details),
    /// The campaign report (`o`); `None` while it is read.
    Report {
        campaign_id: i64,
        report: Option<CampaignReport>,
    },
}

pub struct App {
    pub(crate) options: ConsoleOptions,
    pub(crate) keys: KeyRegistry,
    /// What is on screen.
    pub(crate) snapshot: Snapshot,
    /// The newest snapshot that arrived while frozen; applied on unfreeze.
    pub(crate) held: Option<Snapshot>,
    pub(crate) frozen: bool,
    pub(crate) campaign_id: Option<i64>,
    pub(crate) tab: CallTab,
    pub(crate) sort: CallSort,
    /// What `/` applied, as typed: text to search for, or an expression (then parsed in
    /// `expression`).
    pub(crate) filter: Option<String>,
    pub(crate) expression: Option<Filter>,
    /// The filter being typed after `/`, and why Enter refused it (shown in the prompt).
    pub(crate) input: Option<String>,
    pub(crate) input_error: Option<String>,
    /// The rows held: a window of the list starting at `page_offset`.
    pub(crate) page: Vec<CallListRow>,
    pub(crate) page_offset: i64,
    /// Rows in the whole list (for the current filter); `None` until the first page.
    pub(crate) total: Option<i64>,
    /// Absolute index of the selected row, and of the first visible row.
    pub(crate) selected: i64,
    /// The selected call: the selection follows it (not its index) as rows arrive.
    /// `None` until a row under the cursor is loaded.
    pub(crate) selected_id: Option<i64>,
    pub(crate) scroll: i64,
    /// The last window asked for, so moving inside it reads nothing.
    requested: Option<CallQuery>,
    pub(crate) focus: Focus,
    pub(crate) log_source: LogSource,
    /// Lines scrolled up from the newest log line.
    pub(crate) log_scroll: usize,
    pub(crate) log_state: TuiWidgetState,
    pub(crate) popup: Option<Popup>,
    pub(crate) status: Option<(String, StatusKind)>,
    pub(crate) now: DateTime<Utc>,
    pub(crate) size: (u16, u16),
    pub(crate) quitting: bool,
    /// The state that needs the operator (header word), while it lasts.
    alert: Option<&'static str>,
    alert_seen: bool,
    /// The bell is due (once per new alert); the loop rings it.
    bell: bool,
    /// One sample a second of the last ten minutes: sparklines and the ETA's pace.
    pub(crate) history: super::history::History,
    /// The saved filters (`F`, `W`), as last read, and whether they were read yet.
    pub(crate) saved: Vec<crate::store::saved_filters::SavedFilter>,
    pub(crate) saved_loaded: bool,
}

impl App {
    pub fn new(options: ConsoleOptions, keys: KeyRegistry) -> App {
        App {
            options,
            keys,
            snapshot: Snapshot::default(),
            held: None,
            frozen: false,
            campaign_id: None,
            tab: CallTab::default(),
            sort: CallSort::default(),
            filter: None,
            expression: None,
            input_error: None,
            input: None,
            page: Vec::new(),
            page_offset: 0,
            total: None,
            selected: 0,
            selected_id: None,
            scroll: 0,
            requested: None,
            focus: Focus::Calls,
            log_source: LogSource::Events,
            log_scroll: 0,
            log_state: TuiWidgetState::new(),
            popup: None,
            status: None,
            now: DateTime::<Utc>::UNIX_EPOCH,
            size: (80, 24),
            quitting: false,
            alert: None,
            alert_seen: false,
            bell: false,
            history: Default::default(),
            saved: Vec::new(),
            saved_loaded: false,
        }
    }

    /// True once the operator asked to leave; the loop then waits for the engine to stop.
    pub fn quitting(&self) -> bool {
        self.quitting
    }

    /// The newest snapshot, even while the display is frozen: decisions use this one.
    pub fn latest(&self) -> &Snapshot {
        self.held.as_ref().unwrap_or(&self.snapshot)
    }

    /// True once per new state that needs the operator: the loop rings the terminal bell.
    pub fn take_bell(&mut self) -> bool {
        std::mem::take(&mut self.bell)
    }

    /// A state needs the operator and they have not said they saw it.
    pub fn alert_unacknowledged(&self) -> bool {
        self.alert.is_some() && !self.alert_seen
    }

    pub fn popup(&self) -> Option<&Popup> {
        self.popup.as_ref()
    }

    pub fn status(&self) -> Option<&(String, StatusKind)> {
        self.status.as_ref()
    }

    /// The campaign shown, from the displayed snapshot.
    pub fn campaign(&self) -> Option<&CampaignView> {
        let id = self.campaign_id?;
        self.snapshot.campaigns.iter().find(|c| c.id == id)
    }

    pub(crate) fn latest_campaign(&self) -> Option<&CampaignView> {
        let id = self.campaign_id?;
        self.latest().campaigns.iter().find(|c| c.id == id)
    }

    /// The selected call, if its row is loaded.
    pub fn selected_row(&self) -> Option<&CallListRow> {
        let index = usize::try_from(self.selected - self.page_offset).ok()?;
        if self.total? == 0 {
            return None;
        }
        self.page.get(index)
    }

    /// The text searched for: what `/` applied when it is not an expression.
    pub fn search(&self) -> Option<&str> {
        match self.expression {
            Some(_) => None,
            None => self.filter.as_deref(),
        }
    }

    /// How many table rows the calls pane shows at the current terminal size.
    pub fn visible_rows(&self) -> i64 {
        let (width, height) = self.size;
        let areas = layout::layout(ratatui::layout::Rect::new(0, 0, width, height));
        i64::from(layout::calls_table_rows(areas.calls)).max(1)
    }

    /// The window of the list on screen, as a store query: the visible rows and a screenful
    /// either side, so that a selected call pushed off screen by newer rows is found again.
    pub fn current_query(&self) -> CallQuery {
        let rows = self.visible_rows();
        let offset = (self.scroll - rows).max(0);
        // Not past the end of a list of known length.
        let end =
            (self.scroll + 2 * rows).min(self.total.unwrap_or(i64::MAX).max(self.scroll + rows));
        let limit = end - offset;
        CallQuery {
            campaign_id: self.campaign_id,
            tab: self.tab,
            status: None,
            text: self.search().map(str::to_owned),
            filter: self.expression.clone(),
            sort: self.sort,
            offset,
            limit,
            anchor: self.anchor_near(offset, offset + limit),
        }
    }

    /// A loaded row to read the window from by key (keyset paging): the first visible row,
    /// else the loaded row nearest the window. None when nothing loaded is near (a jump to
    /// the end: the store then reads from that end).
    fn anchor_near(&self, start: i64, end: i64) -> Option<Anchor> {
        // Near the top an OFFSET read is cheap and always true, and an anchor's index goes
        // stale as newer rows arrive above it: read from the top there.
        if start < KEYSET_FROM {
            return None;
        }
        if let Some(row) = self.row_at(self.scroll) {
            return Some(Anchor::of(self.scroll, row));
        }
        let (index, row) = self
            .page
            .iter()
            .enumerate()
            .map(|(i, row)| (self.page_offset + i64::try_from(i).unwrap_or(0), row))
            .min_by_key(|(index, _)| (start - index).max(index - end).max(0))?;
        let distance = (start - index).max(index - end).max(0);
        (distance <= MAX_ANCHOR_DISTANCE).then(|| Anchor::of(index, row))
    }

    /// The loaded row at an absolute index of the list.
    pub(crate) fn row_at(&self, index: i64) -> Option<&CallListRow> {
        let at = usize::try_from(index - self.page_offset).ok()?;
        self.page.get(at)
    }

    // ---- keys -------------------------------------------------------------------------

    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            // A second Ctrl-C in the quit dialog means yes.
            if let Some(Popup::Confirm(confirm)) = &self.popup
                && confirm.action == Action::Quit
            {
                return self.confirm();
            }
            self.input = None;
            self.popup = None;
            return self.request_quit();
        }
        if self.input.is_some() {
            return self.filter_key(key);
        }
        match &self.popup {
            Some(Popup::Confirm(_)) => return self.confirm_key(key),
            Some(Popup::Prompt(_)) => return self.prompt_key(key),
            Some(Popup::Help { .. }) => return self.help_key(key),
            Some(Popup::Details(_)) => return self.details_key(key),
            Some(Popup::Campaigns { .. }) => return self.campaigns_key(key),
            Some(Popup::Report { .. }) => return self.report_key(key),
            None => {}
        }
        let action = self.keys.action_for(&key)?;
        if self.options.read_only && action.spec().mutates {
            self.set_status(
                format!(
                    "read-only console: \"{}\" is disabled",
                    action.spec().description
                ),
                StatusKind::Info,
            );
            return None;
        }
        self.run_action(action)
    }

    fn run_action(&mut self, action: KeyAction) -> Option<Action> {
        match action {
            KeyAction::PauseAll => self.pause_or_resume_all(),
            KeyAction::PauseCampaign => {
                let Some(id) = self.campaign_id else {
                    return self.refuse("no campaign selected");
                };
                self.pause_or_resume(id)
            }
            KeyAction::StartCampaign => {
                let Some(id) = self.campaign_id else {
                    return self.refuse("no campaign selected");
                };
                self.start_campaign(id)
            }
            KeyAction::CampaignList => self.open_campaign_list(),
            KeyAction::RateUp | KeyAction::RateDown => self.step_rate(action),
            KeyAction::RetryCall => self.retry_selected_call(),
            KeyAction::RetryFailed => self.retry_failed_calls(),
            KeyAction::DoNotCall => self.do_not_call_selected(),
            KeyAction::CancelCampaign => {
                let Some(id) = self.campaign_id else {
                    return self.refuse("no campaign selected");
                };
                self.cancel_campaign(id)
            }
            KeyAction::Report => {
                let Some(id) = self.campaign_id else {
                    return self.refuse("no campaign selected");
                };
                self.popup = Some(Popup::Report {
                    campaign_id: id,
                    report: None,
                });
                Some(Action::LoadReport(id))
            }
            KeyAction::NextCampaign | KeyAction::PrevCampaign => self.step_campaign(action),
            KeyAction::FocusNext | KeyAction::FocusPrev => {
                // Two focusable panes: both keys toggle.
                self.focus = match self.focus {
                    Focus::Calls => Focus::Log,
                    Focus::Log => Focus::Calls,
                };
                None
            }
            KeyAction::TabPending => self.set_tab(CallTab::Pending),
            KeyAction::TabDialing => self.set_tab(CallTab::Dialing),
            KeyAction::TabActive => self.set_tab(CallTab::Active),
            KeyAction::TabFailed => self.set_tab(CallTab::Failed),
            KeyAction::TabDone => self.set_tab(CallTab::Done),
            KeyAction::TabAll => self.set_tab(CallTab::All),
            KeyAction::Down
            | KeyAction::Up
            | KeyAction::PageDown
            | KeyAction::PageUp
            | KeyAction::Top
            | KeyAction::Bottom => match self.focus {
                Focus::Calls => self.move_selection(action),
                Focus::Log => {
                    self.scroll_log(action);
                    None
                }
            },
            KeyAction::Sort => self.cycle_sort(),
            KeyAction::Filter => {
                self.input = Some(self.filter.clone().unwrap_or_default());
                None
            }
            KeyAction::Details => self.open_details(),
            KeyAction::LogSource => {
                self.log_source = match self.log_source {
                    LogSource::Events => LogSource::Tracing,
                    LogSource::Tracing => LogSource::Events,
                };
                self.log_scroll = 0;
                None
            }
            KeyAction::Freeze => self.toggle_freeze(),
            KeyAction::Help => {
                self.popup = Some(Popup::Help { scroll: 0 });
                None
            }
            KeyAction::Close => {
                if self.filter.is_some() {
                    self.filter = None;
                    self.expression = None;
                    self.set_status("filter cleared", StatusKind::Info);
                    return self.reset_list();
                }
                None
            }
            KeyAction::Acknowledge => {
                if self.alert_unacknowledged() {
                    self.alert_seen = true;
                    self.set_status("alert acknowledged", StatusKind::Info);
                }
                None
            }
            KeyAction::Say
            | KeyAction::Whisper
            | KeyAction::Mute
            | KeyAction::Unmute
            | KeyAction::Transfer
            | KeyAction::EndCall
            | KeyAction::Listen
            | KeyAction::KillSwitch => self.run_live_action(action),
            KeyAction::BookCallback => self.book_callback(),
            KeyAction::Arm => self.arm_prompt(),
            KeyAction::Bulk => self.bulk_prompt(),
            KeyAction::NextSavedFilter => self.next_saved_filter(),
            KeyAction::SaveFilter => self.save_filter_prompt(),
            KeyAction::Quit => self.request_quit(),
        }
    }

    fn open_campaign_list(&mut self) -> Option<Action> {
        let at = self
            .latest()
            .campaigns
            .iter()
            .position(|c| Some(c.id) == self.campaign_id)
            .unwrap_or(0);
        self.popup = Some(Popup::Campaigns { selected: at });
        None
    }

    fn step_rate(&mut self, action: KeyAction) -> Option<Action> {
        let current = self.latest().rate_per_second;
        let step = if action == KeyAction::RateUp {
            RATE_STEP
        } else {
            -RATE_STEP
        };
        // Tenths, so that 0.1 + 0.5 shows as 0.6 and not 0.6000000000000001.
        let wanted = (((current + step) * 10.0).round() / 10.0).max(RATE_MIN);
        if (wanted - current).abs() < f64::EPSILON {
            return self.refuse(format!("rate is already at the minimum {RATE_MIN}/s"));
        }
        // Shown at once, so that `+ + +` climbs by three steps before the engine
        // publishes; the next snapshot has the engine's word on it.
        self.snapshot.rate_per_second = wanted;
        if let Some(held) = &mut self.held {
            held.rate_per_second = wanted;
        }
        self.send(Command::SetRate { per_second: wanted })
    }

    fn retry_selected_call(&mut self) -> Option<Action> {
        let Some(row) = self.selected_row() else {
            return self.refuse("no call selected");
        };
        if row.pending_contact {
            return self.refuse("a pending contact has no call to retry yet");
        }
        if row.status != CallStatus::Failed {
            let text = format!(
                "call {} is {}: only failed calls can be retried",
                row.id, row.status
            );
            return self.refuse(text);
        }
        let call_id = row.id;
        self.send(Command::RetryCall { call_id })
    }

    fn retry_failed_calls(&mut self) -> Option<Action> {
        let Some(campaign) = self.latest_campaign() else {
            return self.refuse("no campaign selected");
        };
        // FAILED calls only: a retried call is RETRIED and not counted again.
        if campaign.failed == 0 {
            let text = format!("campaign \"{}\" has no failed calls", campaign.name);
            return self.refuse(text);
        }
        let (failed, name, id) = (campaign.failed, campaign.name.clone(), campaign.id);
        let message = format!(
            "Retry the {failed} failed calls of \"{name}\"? Each contact is dialled again."
        );
        let action = Action::Send(Command::RetryFailed { campaign_id: id });
        self.ask(
            "Retry failed calls",
            message,
            ("Leave them", &format!("Retry {failed} calls")),
            action,
        )
    }

    fn do_not_call_selected(&mut self) -> Option<Action> {
        let Some(row) = self.selected_row() else {
            return self.refuse("no call or contact selected");
        };
        let phone = row.phone.clone();
        let who = match &row.contact_name {
            Some(name) => format!("{phone} ({name})"),
            None => phone.clone(),
        };
        let message = format!(
            "Put {who} on the do-not-call list? No campaign will dial this number \
             again: its waiting contacts are skipped when their turn comes. A call \
             already at Vapi goes on."
        );
        let action = Action::Send(Command::AddToDnc {
            phone,
            reason: "added by an operator in the console".into(),
        });
        self.ask(
            "Do not call",
            message,
            ("Keep the number", "Never call it"),
            action,
        )
    }

    fn step_campaign(&mut self, action: KeyAction) -> Option<Action> {
        let campaigns = &self.latest().campaigns;
        if campaigns.len() < 2 {
            return None;
        }
        let at = campaigns
            .iter()
            .position(|c| Some(c.id) == self.campaign_id)
            .unwrap_or(0);
        let next = if action == KeyAction::NextCampaign {
            (at + 1) % campaigns.len()
        } else {
            (at + campaigns.len() - 1) % campaigns.len()
        };
        self.campaign_id = Some(campaigns[next].id);
        self.reset_list()
    }

    fn cycle_sort(&mut self) -> Option<Action> {
        self.sort = match self.sort {
            CallSort::Newest => CallSort::Oldest,
            CallSort::Oldest => CallSort::Status,
            CallSort::Status => CallSort::Attempts,
            CallSort::Attempts => CallSort::Newest,
        };
        self.set_status(
            format!("sorted by {}", sort_name(self.sort)),
            StatusKind::Info,
        );
        self.reset_list()
    }

    fn open_details(&mut self) -> Option<Action> {
        let row = self.selected_row()?.clone();
        if row.pending_contact {
            return self.refuse(format!(
                "contact {} is waiting for its first call of this round: no attempts yet",
                row.contact_id
            ));
        }
        let call_id = row.id;
        self.popup = Some(Popup::Details(Details {
            call: row,
            attempts: None,
            analysis: None,
            transcript: Vec::new(),
            scroll: 0,
        }));
        Some(Action::LoadAttempts(call_id))
    }

    fn toggle_freeze(&mut self) -> Option<Action> {
        self.frozen = !self.frozen;
        if self.frozen {
            self.set_status("display frozen: dispatch goes on", StatusKind::Info);
            None
        } else {
            self.set_status("display live again", StatusKind::Info);
            match self.held.take() {
                Some(snapshot) => self.show_snapshot(snapshot),
                None => None,
            }
        }
    }

    fn pause_or_resume_all(&mut self) -> Option<Action> {
        let command = match self.latest().dispatch_paused {
            Some(_) => Command::ResumeAll,
            None => Command::PauseAll {
                reason: "paused by operator".into(),
            },
        };
        self.send(command)
    }

    fn request_quit(&mut self) -> Option<Action> {
        if self.quitting {
            // Already stopping: the loop leaves without waiting any longer.
            return Some(Action::Quit);
        }
        let latest = self.latest();
        let in_flight = latest.creating + latest.active;
        // Attached to an engine elsewhere: leaving stops nothing there.
        if in_flight > 0 && !latest.stopped && latest.attached_to.is_none() {
            let message = format!(
                "{in_flight} calls are in flight. Quit stops new dispatch, waits for requests \
                 already sent, and leaves the calls at Vapi to finish."
            );
            return self.ask("Quit", message, ("Keep running", "Quit"), Action::Quit);
        }
        self.start_quit()
    }

    fn start_quit(&mut self) -> Option<Action> {
        self.quitting = true;
        self.set_status(
            "stopping: waiting for in-flight requests to be recorded…",
            StatusKind::Pending,
        );
        Some(Action::Quit)
    }

    fn filter_key(&mut self, key: KeyEvent) -> Option<Action> {
        let input = self.input.as_mut()?;
        self.input_error = None;
        match key.code {
            KeyCode::Enter => {
                let text = input.trim().to_string();
                let expression = if filter::is_expression(&text) {
                    match filter::parse(&text) {
                        Ok(parsed) => Some(parsed),
                        Err(e) => {
                            // The prompt stays open on what was typed and says where.
                            self.input_error = Some(e.to_string());
                            return None;
                        }
                    }
                } else {
                    None
                };
                self.input = None;
                self.expression = expression;
                self.filter = (!text.is_empty()).then_some(text);
                self.reset_list()
            }
            KeyCode::Esc => {
                self.input = None;
                self.expression = None;
                if self.filter.take().is_some() {
                    self.set_status("filter cleared", StatusKind::Info);
                    return self.reset_list();
                }
                None
            }
            KeyCode::Backspace => {
                input.pop();
                None
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if input.chars().count() < MAX_FILTER_CHARS {
                    input.push(c);
                }
                None
            }
            _ => None,
        }
    }

    fn confirm_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Some(Popup::Confirm(confirm)) = &mut self.popup else {
            return None;
        };
        if let KeyCode::Char(c) = key.code
            && let Some(at) = confirm.extra.iter().position(|(k, _)| *k == c)
        {
            let action = confirm.extra.swap_remove(at).1;
            self.popup = None;
            return match action {
                Action::Send(command) => self.send(command),
                other => Some(other),
            };
        }
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => self.confirm(),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => self.cancel_confirm(),
            KeyCode::Left
            | KeyCode::Right
            | KeyCode::Tab
            | KeyCode::BackTab
            | KeyCode::Char('h')
            | KeyCode::Char('l') => {
                confirm.confirm_selected = !confirm.confirm_selected;
                None
            }
            KeyCode::Enter => {
                if confirm.confirm_selected {
                    self.confirm()
                } else {
                    self.cancel_confirm()
                }
            }
            _ => None,
        }
    }

    fn confirm(&mut self) -> Option<Action> {
        let Some(Popup::Confirm(confirm)) = self.popup.take() else {
            return None;
        };
        match confirm.action {
            Action::Quit => self.start_quit(),
            Action::Send(command) => self.send(command),
            other => Some(other),
        }
    }

    fn cancel_confirm(&mut self) -> Option<Action> {
        if let Some(Popup::Confirm(confirm)) = self.popup.take() {
            self.set_status(format!("{}: cancelled", confirm.title), StatusKind::Info);
        }
        None
    }

    fn help_key(&mut self, key: KeyEvent) -> Option<Action> {
        let action = self.keys.action_for(&key);
        let Some(Popup::Help { scroll }) = &mut self.popup else {
            return None;
        };
        match action {
            Some(KeyAction::Down) => *scroll = scroll.saturating_add(1),
            Some(KeyAction::Up) => *scroll = scroll.saturating_sub(1),
            Some(KeyAction::PageDown) => *scroll = scroll.saturating_add(10),
            Some(KeyAction::PageUp) => *scroll = scroll.saturating_sub(10),
            Some(KeyAction::Top) => *scroll = 0,
            Some(KeyAction::Close | KeyAction::Help | KeyAction::Quit | KeyAction::Details) => {
                self.popup = None
            }
            _ => {}
        }
        None
    }

    fn report_key(&mut self, key: KeyEvent) -> Option<Action> {
        if let Some(KeyAction::Close | KeyAction::Report | KeyAction::Quit | KeyAction::Details) =
            self.keys.action_for(&key)
        {
            self.popup = None;
        }
        None
    }

    fn details_key(&mut self, key: KeyEvent) -> Option<Action> {
        let action = self.keys.action_for(&key);
        if let Some(Popup::Details(details)) = &mut self.popup {
            let scroll = &mut details.scroll;
            match action {
                Some(KeyAction::Down) => *scroll = scroll.saturating_add(1),
                Some(KeyAction::Up) => *scroll = scroll.saturating_sub(1),
                Some(KeyAction::PageDown) => *scroll = scroll.saturating_add(10),
                Some(KeyAction::PageUp) => *scroll = scroll.saturating_sub(10),
                Some(KeyAction::Top) => *scroll = 0,
                _ => {}
            }
        }
        self.clamp_details_scroll();
        match action {
            // On the call shown: mute and listen keep the popup; the others open their dialog.
            Some(live @ (KeyAction::Mute | KeyAction::Unmute | KeyAction::Listen))
                if !self.options.read_only =>
            {
                self.run_live_action(live)
            }
            Some(
                live @ (KeyAction::Say
                | KeyAction::Whisper
                | KeyAction::Transfer
                | KeyAction::EndCall),
            ) if !self.options.read_only => {
                self.popup = None;
                self.run_live_action(live)
            }
            Some(KeyAction::Close | KeyAction::Details | KeyAction::Quit) => {
                self.popup = None;
                None
            }
            // Retrying from the attempt history is the natural next step.
            Some(KeyAction::RetryCall) if !self.options.read_only => {
                let Some(Popup::Details(details)) = &self.popup else {
                    return None;
                };
                if details.call.status != CallStatus::Failed {
                    let text = format!(
                        "call {} is {}: only failed calls can be retried",
                        details.call.id, details.call.status
                    );
                    return self.refuse(text);
                }
                let call_id = details.call.id;
                self.popup = None;
                self.send(Command::RetryCall { call_id })
            }
            _ => None,
        }
    }

    /// Asks before `action`; `labels` are the safe button (the default) and the acting one.
    pub(crate) fn ask(
        &mut self,
        title: &str,
        message: String,
        labels: (&str, &str),
        action: Action,
    ) -> Option<Action> {
        self.popup = Some(Popup::Confirm(Confirm {
            title: title.to_string(),
            message,
            action,
            confirm_selected: false,
            keep_label: labels.0.to_string(),
            act_label: labels.1.to_string(),
            extra: Vec::new(),
        }));
        None
    }

    // ---- campaigns (the shown one, or the campaign list's) -----------------------------

    fn campaign_by_id(&self, id: i64) -> Option<&CampaignView> {
        self.latest().campaigns.iter().find(|c| c.id == id)
    }

    fn pause_or_resume(&mut self, id: i64) -> Option<Action> {
        let Some(campaign) = self.campaign_by_id(id) else {
            return self.refuse("that campaign is gone");
        };
        let (name, status) = (campaign.name.clone(), campaign.status);
        match status {
            CampaignStatus::Completed | CampaignStatus::Cancelled => {
                self.refuse(format!("campaign \"{name}\" is {status}: nothing to pause"))
            }
            CampaignStatus::Draft => self.refuse(format!(
                "campaign \"{name}\" is a draft: start it with {}",
                self.keys.key_label(KeyAction::StartCampaign)
            )),
            CampaignStatus::Paused => self.send(Command::ResumeCampaign { campaign_id: id }),
            CampaignStatus::Dialing => self.send(Command::PauseCampaign { campaign_id: id }),
        }
    }

    fn start_campaign(&mut self, id: i64) -> Option<Action> {
        let Some(campaign) = self.campaign_by_id(id) else {
            return self.refuse("that campaign is gone");
        };
        if campaign.status != CampaignStatus::Draft {
            let text = format!(
                "campaign \"{}\" is {}: only a draft can be started",
                campaign.name, campaign.status
            );
            return self.refuse(text);
        }
        self.send(Command::StartCampaign { campaign_id: id })
    }

    fn cancel_campaign(&mut self, id: i64) -> Option<Action> {
        let Some(campaign) = self.campaign_by_id(id) else {
            return self.refuse("that campaign is gone");
        };
        if campaign.status.is_final() {
            let text = format!(
                "campaign \"{}\" is already {}",
                campaign.name, campaign.status
            );
            return self.refuse(text);
        }
        let keep = match campaign.status {
            CampaignStatus::Dialing => "Keep running",
            _ => "Keep it",
        };
        let message = format!(
            "Cancel the campaign \"{}\"? Its {} waiting contacts will not be dialled; calls \
             at Vapi finish.",
            campaign.name,
            crate::panes::count(campaign.pending)
        );
        let action = Action::Send(Command::CancelCampaign { campaign_id: id });
        self.ask(
            "Cancel campaign",
            message,
            (keep, "Cancel campaign"),
            action,
        )
    }

    pub(crate) fn campaigns_key(&mut self, key: KeyEvent) -> Option<Action> {
        let action = self.keys.action_for(&key);
        let Some(Popup::Campaigns { selected }) = &mut self.popup else {
            return None;
        };
        let len = self.snapshot.campaigns.len();
        let last = len.saturating_sub(1);
        let at = (*selected).min(last);
        match action {
            Some(KeyAction::Down) => *selected = (at + 1).min(last),
            Some(KeyAction::Up) => *selected = at.saturating_sub(1),
            Some(KeyAction::Top | KeyAction::PageUp) => *selected = 0,
            Some(KeyAction::Bottom | KeyAction::PageDown) => *selected = last,
            Some(KeyAction::Close | KeyAction::CampaignList | KeyAction::Quit) => self.popup = None,
            Some(
                action @ (KeyAction::Details
                | KeyAction::PauseCampaign
                | KeyAction::StartCampaign
                | KeyAction::CancelCampaign),
            ) => {
                let id = self.snapshot.campaigns.get(at)?.id;
                if action.spec().mutates && self.options.read_only {
                    return self.refuse(format!(
                        "read-only console: \"{}\" is disabled",
                        action.spec().description
                    ));
                }
                return match action {
                    KeyAction::Details => {
                        self.popup = None;
                        if self.campaign_id == Some(id) {
                            return None;
                        }
                        self.campaign_id = Some(id);
                        self.reset_list()
                    }
                    KeyAction::PauseCampaign => self.pause_or_resume(id),
                    KeyAction::StartCampaign => self.start_campaign(id),
                    // The dialog replaces the list; its answer closes both.
                    _ => self.cancel_campaign(id),
                };
            }
            _ => {}
        }
        None
    }

    pub(crate) fn send(&mut self, command: Command) -> Option<Action> {
        self.set_status(format!("{}…", describe(&command)), StatusKind::Pending);
        Some(Action::Send(command))
    }

    pub(crate) fn refuse(&mut self, text: impl Into<String>) -> Option<Action> {
        self.set_status(text, StatusKind::Error);
        None
    }

    pub(crate) fn set_status(&mut self, text: impl Into<String>, kind: StatusKind) {
        self.status = Some((text.into(), kind));
    }

    // ---- the call list window ---------------------------------------------------------

    pub(crate) fn set_tab(&mut self, tab: CallTab) -> Option<Action> {
        if self.tab == tab {
            return None;
        }
        self.tab = tab;
        self.reset_list()
    }

    /// The list's filter changed: back to the top, drop rows of the old list, read anew.
    pub(crate) fn reset_list(&mut self) -> Option<Action> {
        self.selected = 0;
        self.selected_id = None;
        self.scroll = 0;
        self.page.clear();
        self.page_offset = 0;
        self.total = None;
        self.request_window(true)
    }

    pub(crate) fn move_selection(&mut self, action: KeyAction) -> Option<Action> {
        let page = self.visible_rows();
        let target = match action {
            KeyAction::Down => self.selected + 1,
            KeyAction::Up => self.selected - 1,
            KeyAction::PageDown => self.selected + page,
            KeyAction::PageUp => self.selected - page,
            KeyAction::Top => 0,
            KeyAction::Bottom => i64::MAX,
            _ => self.selected,
        };
        self.selected = target;
        self.clamp_window();
        // The cursor now names this call (or, if its row is not read yet, the one that
        // will be there when it is).
        self.selected_id = self.row_at(self.selected).map(|r| r.id);
        self.request_window(false)
    }

    /// After a read: finds the selected call again and keeps it where it was on screen, so
    /// rows arriving above it move the window, not the cursor. A call that left the list
    /// (another tab now) leaves the cursor on the row that took its place.
    fn follow_selection(&mut self) {
        let Some(id) = self.selected_id else {
            return;
        };
        let Some(at) = self.page.iter().position(|r| r.id == id) else {
            return;
        };
        let index = self.page_offset + i64::try_from(at).unwrap_or(0);
        let on_screen = self.selected - self.scroll;
        self.selected = index;
        self.scroll = (index - on_screen).max(0);
    }

    /// Keeps the selection inside the list and the window around the selection.
    pub(crate) fn clamp_window(&mut self) {
        let rows = self.visible_rows();
        let total = self.total.unwrap_or(0);
        self.selected = self.selected.clamp(0, (total - 1).max(0));
        if self.selected < self.scroll {
            self.scroll = self.selected;
        } else if self.selected >= self.scroll + rows {
            self.scroll = self.selected - rows + 1;
        }
        self.scroll = self.scroll.clamp(0, (total - rows).max(0));
    }

    /// Asks for the visible window unless it was asked for already (`force` after the data
    /// changed).
    pub(crate) fn request_window(&mut self, force: bool) -> Option<Action> {
        let query = self.current_query();
        // The anchor says how to read the window, not which: it does not make a new one.
        let same = |asked: &CallQuery| {
            CallQuery {
                anchor: None,
                ..asked.clone()
            } == CallQuery {
                anchor: None,
                ..query.clone()
            }
        };
        if !force && self.requested.as_ref().is_some_and(same) {
            return None;
        }
        self.requested = Some(query.clone());
        Some(Action::LoadPage(query))
    }

    pub(crate) fn scroll_log(&mut self, action: KeyAction) {
        if self.log_source == LogSource::Tracing {
            use tui_logger::TuiWidgetEvent as E;
            let event = match action {
                KeyAction::Up => E::UpKey,
                KeyAction::Down => E::DownKey,
                KeyAction::PageUp => E::PrevPageKey,
                KeyAction::PageDown => E::NextPageKey,
                _ => E::EscapeKey,
            };
            self.log_state.transition(event);
            return;
        }
        // Scrolled up at most until the oldest event is on the pane's top line.
        let (width, height) = self.size;
        let log = layout::layout(ratatui::layout::Rect::new(0, 0, width, height)).log;
        let newest = self
            .snapshot
            .events
            .len()
            .saturating_sub(usize::from(log.height.saturating_sub(2)).max(1));
        self.log_scroll = match action {
            KeyAction::Up => self.log_scroll + 1,
            KeyAction::Down => self.log_scroll.saturating_sub(1),
            KeyAction::PageUp => self.log_scroll + 10,
            KeyAction::PageDown => self.log_scroll.saturating_sub(10),
            KeyAction::Top => newest,
            _ => 0,
        }
        .min(newest);
    }

    // ---- updates ----------------------------------------------------------------------

    /// Applies news; may ask for a page read (the data under the window changed).
    pub fn apply(&mut self, update: Update) -> Option<Action> {
        match update {
            Update::Snapshot(snapshot) => {
                if self.frozen {
                    self.held = Some(*snapshot);
                    return None;
                }
                self.show_snapshot(*snapshot)
            }
            Update::Page { query, rows, total } => {
                let wanted = self.current_query();
                // Rows of another list (an older tab or filter) are dropped; rows of this
                // list at another offset are kept until the right window arrives.
                if !same_list(&query, &wanted) {
                    return None;
                }
                self.page = rows;
                self.page_offset = query.offset;
                self.total = Some(total.max(0));
                let before = self.scroll;
                self.follow_selection();
                self.clamp_window();
                self.selected_id = self.row_at(self.selected).map(|r| r.id);
                if self.scroll != before {
                    return self.request_window(false);
                }
                None
            }
            Update::Attempts {
                call_id,
                rows,
                analysis,
                transcript,
                now,
            } => {
                if let Some(Popup::Details(details)) = &mut self.popup
                    && details.call.id == call_id
                {
                    details.attempts = Some(rows);
                    details.analysis = analysis;
                    details.transcript = transcript;
                    if let Some(now) = now {
                        details.call.status = now.status;
                        details.call.ended_reason = now.ended_reason;
                        details.call.cost_usd = now.cost_usd;
                    }
                }
                self.clamp_details_scroll();
                None
            }
            Update::Report {
                campaign_id,
                report,
            } => {
                if let Some(Popup::Report {
                    campaign_id: shown,
                    report: slot,
                }) = &mut self.popup
                    && *shown == campaign_id
                {
                    *slot = Some(report);
                }
                None
            }
            Update::LoadFailed(text) => {
                self.set_status(text, StatusKind::Error);
                None
            }
            Update::BulkPreview { request, preview } => self.bulk_previewed(request, preview),
            Update::SavedFilters(saved) => {
                self.saved_filters_read(saved);
                None
            }
            Update::BulkProgress(walked) => {
                self.bulk_progress(walked);
                None
            }
            Update::Reply(reply) => {
                match reply {
                    Ok(text) => self.set_status(text, StatusKind::Ok),
                    Err(text) => self.set_status(format!("refused: {text}"), StatusKind::Error),
                }
                None
            }
            Update::Tick(now) => {
                self.now = now;
                // The newest snapshot, frozen or not: the history is of the engine.
                let (snapshot, campaign) = (
                    self.held.as_ref().unwrap_or(&self.snapshot),
                    self.campaign_id,
                );
                self.history.record(now, snapshot, campaign);
                // The saved filters, read at start and every ten seconds (odd ones: the even
                // ones refresh a live call).
                if !self.saved_loaded || now.timestamp() % 10 == 1 {
                    self.saved_loaded = true;
                    return Some(Action::LoadSavedFilters);
                }
                // A live call's details follow the conversation, every other second.
                match &self.popup {
                    Some(Popup::Details(details))
                        if details.call.status.is_at_vapi() && now.timestamp() % 2 == 0 =>
                    {
                        Some(Action::RefreshLive(details.call.id))
                    }
                    _ => None,
                }
            }
            Update::Resize { width, height } => {
                self.size = (width, height);
                self.clamp_window();
                self.request_window(false)
            }
        }
    }

    fn show_snapshot(&mut self, snapshot: Snapshot) -> Option<Action> {
        self.snapshot = snapshot;
        let action = self.pick_campaign();
        self.watch_alert();
        action
    }

    fn pick_campaign(&mut self) -> Option<Action> {
        let known = self
            .campaign_id
            .is_some_and(|id| self.snapshot.campaigns.iter().any(|c| c.id == id));
        if !known {
            // First snapshot, or the campaign went away: show a dialling one if any.
            let pick = self
                .snapshot
                .campaigns
                .iter()
                .find(|c| c.status == CampaignStatus::Dialing)
                .or_else(|| self.snapshot.campaigns.first())
                .map(|c| c.id);
            if pick != self.campaign_id {
                self.campaign_id = pick;
                return self.reset_list();
            }
        }
        self.log_scroll = self
            .log_scroll
            .min(self.snapshot.events.len().saturating_sub(1));
        // Statuses and counts under the window changed: read it again (the loop debounces).
        self.request_window(true)
    }
}

impl App {
    /// A new state that needs the operator rings once and is highlighted until seen; a
    /// state that clears and comes back is new again.
    fn watch_alert(&mut self) {
        let state = super::dispatch_state::dispatch_state(&self.snapshot, self.campaign());
        let now = state.needs_operator.then_some(state.word);
        if now.is_some() && now != self.alert {
            self.bell = true;
            self.alert_seen = false;
        }
        self.alert = now;
    }
}

/// Same list (campaign, tab, filter, sort), any window.
fn same_list(a: &CallQuery, b: &CallQuery) -> bool {
    a.campaign_id == b.campaign_id
        && a.tab == b.tab
        && a.status == b.status
        && a.text == b.text
        && a.sort == b.sort
}

pub fn sort_name(sort: CallSort) -> &'static str {
    match sort {
        CallSort::Newest => "newest",
        CallSort::Oldest => "oldest",
        CallSort::Status => "status",
        CallSort::Attempts => "attempts",
    }
}

/// What a command is doing, for the status line until its answer arrives.
pub fn describe(command: &Command) -> String {
    match command {
        Command::PauseAll { .. } => "pausing all dispatch".into(),
        Command::ResumeAll => "resuming dispatch".into(),
        Command::StartCampaign { campaign_id } => format!("starting campaign {campaign_id}"),
        Command::PauseCampaign { campaign_id } => format!("pausing campaign {campaign_id}"),
        Command::ResumeCampaign { campaign_id } => format!("resuming campaign {campaign_id}"),
        Command::CancelCampaign { campaign_id } => format!("cancelling campaign {campaign_id}"),
        Command::SetRate { per_second } => format!("setting rate to {per_second:.1}/s"),
        Command::ResetRate => "returning to the config's rate".into(),
        Command::RetryCall { call_id } => format!("retrying call {call_id}"),
        Command::RetryFailed { campaign_id } => {
            format!("retrying failed calls of campaign {campaign_id}")
        }
        Command::AddToDnc { phone, .. } => {
            format!("putting {phone} on the do-not-call list")
        }
        Command::Live {
            call_id, action, ..
        } => {
            format!("asking: {} on call {call_id}", action.describe())
        }
        Command::EndLiveCalls {
            campaign_id: Some(id),
            ..
        } => format!("ending the live calls of campaign {id}"),
        Command::EndLiveCalls {
            campaign_id: None, ..
        } => "kill switch: ending every live call".into(),
        Command::WatchCall { call_id } => format!("watching call {call_id}"),
        Command::BookCallback { phone, at, .. } => format!("booking a callback to {phone} at {at}"),
        Command::SetArm {
            assistant_id,
            status,
            ..
        } => format!(
            "setting arm {assistant_id} {}",
            status.as_str().to_lowercase()
        ),
        Command::Quit => "stopping".into(),
    }
}
