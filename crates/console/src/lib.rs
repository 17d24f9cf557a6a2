//! The terminal operations console: one client of the engine's snapshot and command
//! interface. Where things are:
//!
//! - `mod.rs` (here): options, logging set-up and the async event loop, which turns terminal
//!   events, snapshots and finished reads into [`Update`]s and carries out [`Action`]s;
//! - `app.rs`: all UI state, `handle_key` and `apply`, synchronous and tested without a
//!   terminal;
//! - `keys.rs`: the one key registry (footer, help and `[keys]` remapping);
//! - `pager.rs`: debounced reads of the call list's visible window;
//! - `terminal.rs`: taking the terminal and giving it back in full, on a panic too;
//! - `view.rs`: the layout and `impl Widget for &App`;
//! - `panes/`: one file per pane and popup.

pub mod app;
mod bulk;
pub mod dispatch_state;
pub mod eta;
pub mod history;
mod hit;
pub mod keys;
pub mod layout;
mod listening;
pub mod live;
pub mod pager;
pub mod panes;
mod saved;
pub mod terminal;
pub mod view;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_engine::{dispatch, listen, shutdown};
use switchboard_model as model;
use switchboard_model::policy;
use switchboard_store as store;
use switchboard_vapi as vapi;

use chrono::Utc;
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, sleep_until};

pub use app::{Action, App, CallNow, Focus, Update};
pub use keys::{KeyAction, KeyError, KeyRegistry};

use crate::dispatch::command::{Command, EngineClient};
use crate::store::Store;
use crate::store::stats::{CallListRow, CallQuery};

/// How the console is started (from the CLI).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleOptions {
    /// Vapi is the embedded simulator: the header says so.
    pub demo: bool,
    /// Watch only: every action that changes anything is hidden and disabled.
    pub read_only: bool,
    /// The config's `[keys]`: action name → key.
    pub keys: BTreeMap<String, String>,
    /// Shown at the left of the header.
    pub title: String,
    /// Clicks and the wheel act on tabs, rows and campaigns (`--no-mouse` turns it off).
    pub mouse: bool,
    /// The player the listen key pipes a call's audio into (`console.listen_command`).
    pub listen_command: Option<String>,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        ConsoleOptions {
            demo: false,
            read_only: false,
            keys: BTreeMap::new(),
            title: "switchboard".into(),
            mouse: true,
            listen_command: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("cannot set up the console's log pane: {0}")]
    Logging(String),
}

/// The tracing layer that feeds the console's log pane. For callers that build their own
/// subscriber; [`init_logging`] does the whole set-up.
pub fn tracing_layer() -> tui_logger::TuiTracingSubscriberLayer {
    tui_logger::TuiTracingSubscriberLayer
}

/// How often new log lines are moved into the log pane's buffer.
const LOG_MOVE: Duration = Duration::from_millis(250);
/// Lines a LOG_MOVE may bring before the oldest are dropped (and counted as lost).
const HOT_LINES: usize = 20_000;

/// Sends all `tracing` output to the console's log pane, and nowhere else: nothing may
/// write to stdout or stderr while the console owns the screen. `directives` is an
/// `EnvFilter` string such as `"info,switchboard=debug"`. Call once, before the engine
/// starts, instead of the headless stdout subscriber.
pub fn init_logging(directives: &str) -> Result<(), ConsoleError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_new(directives)
        .map_err(|e| ConsoleError::Logging(format!("log filter {directives:?}: {e}")))?;
    // tui-logger's own `init_logger` starts a thread that wakes every 10 ms to move lines
    // into the pane's buffer: most of an idle console's CPU. This one wakes every
    // LOG_MOVE, with a hot buffer deep enough for LOG_MOVE of a busy engine's lines.
    tui_logger::set_default_level(tui_logger::LevelFilter::Trace);
    tui_logger::set_hot_buffer_depth(HOT_LINES);
    std::thread::Builder::new()
        .name("log-pane".into())
        .spawn(|| {
            loop {
                std::thread::park_timeout(LOG_MOVE);
                tui_logger::move_events();
            }
        })
        .map_err(|e| ConsoleError::Logging(e.to_string()))?;
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_layer())
        .try_init()
        .map_err(|e| ConsoleError::Logging(e.to_string()))
}

/// Frames are at least this far apart (25 per second) however busy the engine is.
const FRAME: Duration = Duration::from_millis(40);
/// Refreshes the ages in the call list; the only redraw without news.
const TICK: Duration = Duration::from_secs(1);
/// How long quitting waits for the engine to record in-flight requests.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// Runs the console until the operator quits (and the engine has stopped, or
/// [`QUIT_WAIT`] passed). Restores the terminal on every exit path; on a panic
/// `terminal.rs`'s hook restores it before color-eyre's report. Install color-eyre before
/// calling this.
pub async fn run(
    engine: EngineClient,
    store: Store,
    options: ConsoleOptions,
    vapi: Option<crate::vapi::VapiClient>,
) -> color_eyre::Result<()> {
    // Before the screen is taken, so that a bad [keys] table prints like any config error.
    let keys = KeyRegistry::new(&options.keys)?;
    let mouse = options.mouse;
    let options_listen = options.listen_command.clone();
    let app = App::new(options, keys);
    let mut terminal = terminal::take(mouse)?;
    let listen = listening::Listening::new(options_listen, vapi);
    let result = event_loop(&mut terminal, app, engine, store, listen).await;
    terminal::give_back();
    result
}

/// Results of work spawned by the loop.
enum Done {
    Page {
        query: CallQuery,
        rows: Vec<CallListRow>,
        total: i64,
        counted_at: Option<Instant>,
    },
    PageFailed(String),
    Update(Update),
}

/// What the loop owns besides the app: the engine and store handles, the page reader and
/// the quit deadline.
struct Runner {
    engine: EngineClient,
    store: Store,
    done: mpsc::UnboundedSender<Done>,
    pager: pager::Pager,
    quit_deadline: Option<tokio::time::Instant>,
    leave_now: bool,
    listen: listening::Listening,
}

impl Runner {
    /// Carries out an action without waiting for it: reads and commands run as tasks and
    /// report back on the `done` channel.
    fn exec(&mut self, action: Option<Action>) {
        match action {
            None => {}
            Some(Action::Send(command)) => {
                let engine = self.engine.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    let reply = engine.send(command).await;
                    let _ = done.send(Done::Update(Update::Reply(reply)));
                });
            }
            Some(Action::LoadPage(query)) => self.pager.want(query),
            Some(
                action @ (Action::LoadSavedFilters
                | Action::SaveFilter { .. }
                | Action::Export { .. }
                | Action::BulkPreview(_)
                | Action::Bulk(_)),
            ) => self.in_background(action),
            Some(Action::RefreshLive(call_id)) => {
                let engine = self.engine.clone();
                tokio::spawn(async move {
                    // Not an operator's action: its answer is not shown.
                    let _ = engine.send(Command::WatchCall { call_id }).await;
                });
                self.exec(Some(Action::LoadAttempts(call_id)));
            }
            Some(Action::Listen(call_id)) => {
                let line = self.listen.toggle(call_id, &self.store, self.done.clone());
                let _ = self.done.send(Done::Update(Update::Reply(line)));
            }
            Some(Action::LoadAttempts(call_id)) => {
                let store = self.store.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    let analysis = store.call_analysis(call_id).await.ok().flatten();
                    let transcript = store.transcript(call_id).await.unwrap_or_default();
                    let now = store.call(call_id).await.ok().map(|c| CallNow {
                        status: c.status,
                        ended_reason: c.ended_reason,
                        cost_usd: c.cost_usd,
                    });
                    let update = match store.attempts(call_id).await {
                        Ok(rows) => Update::Attempts {
                            call_id,
                            rows,
                            analysis,
                            transcript,
                            now,
                        },
                        Err(e) => Update::LoadFailed(format!(
                            "cannot read attempts of call {call_id}: {e}"
                        )),
                    };
                    let _ = done.send(Done::Update(update));
                });
            }
            Some(Action::LoadReport(campaign_id)) => {
                let store = self.store.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    let update = match store.campaign_report(campaign_id).await {
                        Ok(report) => Update::Report {
                            campaign_id,
                            report,
                        },
                        Err(e) => Update::LoadFailed(format!(
                            "cannot read the report of campaign {campaign_id}: {e}"
                        )),
                    };
                    let _ = done.send(Done::Update(update));
                });
            }
            Some(Action::Quit) => {
                if self.quit_deadline.is_some() {
                    // Asked twice: stop waiting.
                    self.leave_now = true;
                    return;
                }
                self.quit_deadline = Some(tokio::time::Instant::now() + QUIT_WAIT);
                self.exec(Some(Action::Send(Command::Quit)));
            }
        }
    }

    /// The actions that read or write the store in a task of their own (saved filters, a
    /// bulk action's count and run); their answers come back as updates.
    fn in_background(&self, action: Action) {
        match action {
            Action::LoadSavedFilters => {
                let store = self.store.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    // A failed read keeps the list as it was; the next tick reads again.
                    if let Ok(saved) = store.saved_filters().await {
                        let _ = done.send(Done::Update(Update::SavedFilters(saved)));
                    }
                });
            }
            Action::SaveFilter { name, expression } => {
                let store = self.store.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    let line = switchboard_engine::ops::save_filter(
                        &store,
                        &name,
                        &expression,
                        switchboard_engine::ops::Actor::Console,
                    )
                    .await;
                    if let Ok(saved) = store.saved_filters().await {
                        let _ = done.send(Done::Update(Update::SavedFilters(saved)));
                    }
                    let _ = done.send(Done::Update(Update::Reply(line)));
                });
            }
            Action::BulkPreview(request) => {
                let store = self.store.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    let preview = switchboard_engine::bulk::preview(&store, &request)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = done.send(Done::Update(Update::BulkPreview { request, preview }));
                });
            }
            Action::Bulk(request) => {
                let store = self.store.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    let progress = done.clone();
                    let mut report = move |walked: u64| {
                        let _ = progress.send(Done::Update(Update::BulkProgress(walked)));
                    };
                    let line = switchboard_engine::bulk::run(
                        &store,
                        &request,
                        switchboard_engine::ops::Actor::Console,
                        &mut report,
                        &|| false,
                    )
                    .await
                    .map_err(|e| e.to_string());
                    let _ = done.send(Done::Update(Update::Reply(line)));
                });
            }
            Action::Export {
                campaign_id,
                filter,
                path,
            } => {
                let store = self.store.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    let line = export_to(&store, campaign_id, filter, &path).await;
                    let _ = done.send(Done::Update(Update::Reply(line)));
                });
            }
            // Not background work: `exec` carries them out itself.
            _ => {}
        }
    }

    /// Starts the next page read if one is due.
    fn start_page(&mut self) {
        let Some((query, known)) = self.pager.start(Instant::now()) else {
            return;
        };
        let store = self.store.clone();
        let done = self.done.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let message = match pager::load(&store, &query, known).await {
                Ok((rows, total, counted)) => Done::Page {
                    query,
                    rows,
                    total,
                    counted_at: counted.then_some(started),
                },
                Err(e) => Done::PageFailed(format!("cannot read calls: {e}")),
            };
            let _ = done.send(message);
        });
    }
}

/// BEL on the terminal: moves nothing on screen, so ratatui's buffer stays true.
fn ring_bell() {
    use std::io::Write;
    let mut out = std::io::stdout();
    // A bell that cannot be written is not worth stopping the console for.
    let _ = out.write_all(b"\x07").and_then(|()| out.flush());
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    mut app: App,
    engine: EngineClient,
    store: Store,
    listen: listening::Listening,
) -> color_eyre::Result<()> {
    let mut events = EventStream::new();
    let mut snapshots = engine.snapshots();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut runner = Runner {
        engine,
        store,
        done: done_tx,
        pager: pager::Pager::default(),
        quit_deadline: None,
        leave_now: false,
        listen,
    };
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let size = terminal.size()?;
    app.apply(Update::Tick(Utc::now()));
    app.apply(Update::Resize {
        width: size.width,
        height: size.height,
    });
    let first = snapshots.borrow_and_update().clone();
    runner.exec(app.apply(Update::Snapshot(Box::new(first))));
    if app.take_bell() {
        ring_bell();
    }

    let mut engine_gone = false;
    let mut dirty = true;
    let mut last_draw: Option<tokio::time::Instant> = None;
    loop {
        let now = tokio::time::Instant::now();
        if dirty && last_draw.is_none_or(|at| now >= at + FRAME) {
            terminal.draw(|frame| frame.render_widget(&app, frame.area()))?;
            dirty = false;
            last_draw = Some(now);
        }
        if runner.leave_now {
            break;
        }
        if let Some(deadline) = runner.quit_deadline
            && (engine_gone || snapshots.borrow().stopped || now >= deadline)
        {
            break;
        }
        runner.start_page();

        let draw_at = dirty.then(|| last_draw.map_or(now, |at| at + FRAME));
        let page_at = runner.pager.due().map(tokio::time::Instant::from_std);
        tokio::select! {
            // SIGTERM, SIGHUP or SIGINT: leave like `q` would (the engine then quits gracefully).
            _ = crate::shutdown::requested() => break,
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) => {
                    let action = app.handle_key(key);
                    runner.exec(action);
                    dirty = true;
                }
                Some(Ok(Event::Mouse(mouse))) => {
                    runner.exec(app.handle_mouse(mouse));
                    dirty = true;
                }
                Some(Ok(Event::Resize(width, height))) => {
                    runner.exec(app.apply(Update::Resize { width, height }));
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                // The terminal went away: nobody is left to watch.
                None => break,
            },
            changed = snapshots.changed(), if !engine_gone => {
                match changed {
                    Ok(()) => {
                        let snapshot = snapshots.borrow_and_update().clone();
                        runner.exec(app.apply(Update::Snapshot(Box::new(snapshot))));
                        if app.take_bell() {
                            ring_bell();
                        }
                    }
                    Err(_) => {
                        engine_gone = true;
                        app.apply(Update::LoadFailed(
                            "the engine has stopped; press q to leave".into(),
                        ));
                    }
                }
                dirty = true;
            }
            Some(done) = done_rx.recv() => {
                match done {
                    Done::Page { query, rows, total, counted_at } => {
                        runner.pager.finished(&query, total, counted_at);
                        runner.exec(app.apply(Update::Page { query, rows, total }));
                    }
                    Done::PageFailed(text) => {
                        runner.pager.failed();
                        app.apply(Update::LoadFailed(text));
                    }
                    Done::Update(update) => {
                        runner.exec(app.apply(update));
                    }
                }
                dirty = true;
            }
            _ = ticker.tick() => {
                runner.exec(app.apply(Update::Tick(Utc::now())));
                dirty = true;
            }
            _ = sleep_until(draw_at.unwrap_or(now)), if draw_at.is_some() => {}
            _ = sleep_until(page_at.unwrap_or(now)), if page_at.is_some() => {}
            _ = sleep_until(runner.quit_deadline.unwrap_or(now)), if runner.quit_deadline.is_some() => {}
        }
    }
    Ok(())
}

/// Writes `campaign_id`'s contacts that `filter` matches to `path` as CSV: under a temporary
/// name, renamed once complete (a failed export leaves no file). The one-line answer.
pub(crate) async fn export_to(
    store: &store::Store,
    campaign_id: i64,
    filter: Option<model::filter::Filter>,
    path: &std::path::Path,
) -> Result<String, String> {
    let only = match &filter {
        Some(filter) => Some(
            store
                .resolve_filter(filter)
                .await
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let file = std::fs::File::create(&partial)
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    let format = switchboard_engine::export::Format::Csv;
    let written =
        switchboard_engine::export::export(store, campaign_id, format, file, only.as_ref(), |_| {})
            .await;
    match written {
        Ok(n) => {
            std::fs::rename(&partial, path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(format!("exported {n} contacts to {}", path.display()))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e.to_string())
        }
    }
}
