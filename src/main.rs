//! switchboard's binary: argument parsing and wiring only. Everything it runs lives in the
//! library (engine, store, console, CLI subcommands).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use color_eyre::eyre::WrapErr;

use switchboard::cli::args::LogFormatArg;
use switchboard::cli::headless::{self, Outcome, UntilDone};
use switchboard::cli::{Cli, Commands, UserError, commands};
use switchboard::config::{Config, LogFormat};
use switchboard::store::{Location, Store};
use switchboard::vapi::VapiClient;
use switchboard::{console, demo, dispatch, simulator};

/// Where the demo keeps its (fresh each run) database.
const DEMO_DB: &str = "switchboard-demo.db";

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let verbose = cli.verbose || backtrace_requested();
    install_error_hooks();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(report) if verbose => {
            eprintln!("error: {report:?}");
            ExitCode::FAILURE
        }
        Err(report) => {
            eprintln!("error: {}", one_line(&report));
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refused. Help and version print as usual; a refused value is its one
/// line (the message names the argument and its range); other mistakes keep clap's usage tip.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: invalid value"));
            ExitCode::FAILURE
        }
        _ => {
            let _ = e.print();
            ExitCode::FAILURE
        }
    }
}

/// `RUST_BACKTRACE=1` (or `full`) asks for the full report, as `-v` does.
fn backtrace_requested() -> bool {
    std::env::var("RUST_BACKTRACE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// color-eyre for the full report and panics; without colour when stderr is not a terminal.
fn install_error_hooks() {
    let mut hooks = color_eyre::config::HookBuilder::default();
    if !std::io::stderr().is_terminal() {
        hooks = hooks.theme(color_eyre::config::Theme::new());
    }
    if let Err(e) = hooks.install() {
        eprintln!("warning: cannot install error reporting: {e}");
    }
}

/// Longest one-line error printed (a cause chain can quote a whole response).
const MAX_ERROR_LINE: usize = 500;

/// The error and its causes on one line, `outer: inner: root`, without repeats.
fn one_line(report: &color_eyre::Report) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in report.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
    }
    let line = parts.join(": ");
    if line.chars().count() > MAX_ERROR_LINE {
        let mut cut: String = line.chars().take(MAX_ERROR_LINE).collect();
        cut.push('…');
        cut
    } else {
        line
    }
}

/// The config file in force: --config, else ./switchboard.toml if it exists.
fn config_path(cli: &Cli) -> Result<Option<PathBuf>, UserError> {
    match &cli.config {
        Some(path) if !path.exists() => Err(UserError(format!(
            "config file {} does not exist",
            path.display()
        ))),
        Some(path) => Ok(Some(path.clone())),
        None => {
            let default = Path::new("switchboard.toml");
            Ok(default.exists().then(|| default.to_path_buf()))
        }
    }
}

async fn run(cli: Cli) -> color_eyre::Result<ExitCode> {
    let path = config_path(&cli)?;
    let config = Config::load(path.as_deref())?;
    let _ = LOG_FORMAT.set(match cli.log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => config.log.format,
    });
    let mouse = !cli.no_mouse;
    match cli.command {
        None => console(config, path.is_none(), false, mouse).await,
        Some(Commands::Console { read_only, demo }) => {
            console(config, demo || path.is_none(), read_only, mouse).await
        }
        Some(Commands::Demo {
            headless: true,
            contacts,
        }) => demo_headless(contacts).await,
        Some(Commands::Demo {
            headless: false,
            contacts,
        }) => demo_console(contacts, false, config.keys, mouse).await,
        Some(Commands::Run {
            headless: _,
            until_done,
            exit_on_pause,
            json,
        }) => run_headless(config, until_done, exit_on_pause, json).await,
        Some(Commands::MigrateDb { from, to }) => migrate_db(&from, &to).await,
        Some(Commands::Status { json }) => service_status(&config, json).await,
        Some(Commands::Simulate { port, config: sim }) => simulate(*sim, port).await,
        Some(command) => store_command(&config, command).await,
    }
}

/// The commands that work on the store alone (an engine may run meanwhile).
async fn store_command(config: &Config, command: Commands) -> color_eyre::Result<ExitCode> {
    let store = store_for(config).await?;
    match command {
        Commands::Campaign { action } => {
            commands::campaign(&store, config, *action).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Contacts { action, list } => {
            match action {
                Some(action) => commands::contacts(&store, config, action).await?,
                None => switchboard::cli::bulk::list_contacts(&store, list).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Calls(list) => {
            commands::calls(&store, list).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Filters { action } => {
            commands::filters(&store, action).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Bulk(args) => {
            switchboard::cli::bulk::bulk(&store, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Retry { call_id, campaign } => {
            commands::retry(&store, config, call_id, campaign).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Export {
            campaign,
            format,
            out,
            filter,
        } => {
            let filter = match filter.as_deref() {
                Some(text) => Some(commands::where_filter(&store, text).await?),
                None => None,
            };
            commands::export(&store, &campaign, format, out.as_deref(), filter).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Dnc { action } => {
            commands::dnc(&store, config, action).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Callback {
            number,
            at,
            campaign,
        } => {
            let line =
                commands::callback(&store, config, &number, &at, campaign.as_deref()).await?;
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Commands::Why { number } => {
            commands::why(&store, config, &number).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Dispatch { action } => {
            commands::dispatch(&store, config, action).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Call { action } => {
            switchboard::cli::live::call(&store, config, action).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Listen {
            call_id,
            out,
            sample_rate,
            channels,
        } => {
            let format = switchboard::listen::Format {
                sample_rate,
                channels,
            };
            switchboard::cli::live::listen(&store, config, call_id, out, format).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Check {
            campaign,
            json,
            check,
        } => {
            let ready = commands::check(&store, config, &campaign, json, &check).await?;
            Ok(if ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Commands::Console { .. }
        | Commands::Demo { .. }
        | Commands::Run { .. }
        | Commands::MigrateDb { .. }
        | Commands::Status { .. }
        | Commands::Simulate { .. } => Err(color_eyre::eyre::eyre!(
            "internal: a command that needs more than the store reached store_command"
        )),
    }
}

/// `simulate`: the simulator on its own, until a signal.
async fn simulate(sim: simulator::SimConfig, port: u16) -> color_eyre::Result<ExitCode> {
    init_stderr_logging();
    let sim = if sim.realism { sim.with_realism() } else { sim };
    simulator::run_standalone(sim, port, switchboard::shutdown::requested())
        .await
        .wrap_err_with(|| format!("cannot serve the simulator on 127.0.0.1:{port}"))?;
    Ok(ExitCode::SUCCESS)
}

/// `status`: 0 when an engine is ready to dispatch from the database, 1 when not.
async fn service_status(config: &Config, json: bool) -> color_eyre::Result<ExitCode> {
    init_stderr_logging();
    // A database that cannot be opened is a failed check, not an error.
    let store = open_store(config).await.ok();
    let ready = commands::service_status(store.as_ref(), config, json).await?;
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A command of the store's: its log on stderr, the store opened.
async fn store_for(config: &Config) -> color_eyre::Result<Store> {
    init_stderr_logging();
    open_store(config).await
}

/// `demo --headless`: the demo campaign against the simulator, until done.
async fn demo_headless(contacts: Option<usize>) -> color_eyre::Result<ExitCode> {
    init_stdout_logging(false);
    let demo = demo::prepare(Path::new(DEMO_DB), contacts)
        .await
        .map_err(demo_error)?;
    println!(
        "DEMO: Vapi is simulated at {} · database {DEMO_DB}",
        demo.simulator.base_url()
    );
    let engine = dispatch::start(demo.config, demo.store.clone(), demo.vapi).await?;
    let json_log = log_format() == LogFormat::Json;
    let outcome = headless::run(
        engine.client(),
        Some(UntilDone::WaitThroughPauses),
        json_log,
    )
    .await;
    engine.join().await;
    let stats = demo.simulator.stats();
    println!(
        "simulator: {} create requests, {} calls created, peak concurrency {}",
        stats.create_requests, stats.calls_created, stats.peak_concurrency
    );
    demo.simulator.shutdown().await;
    Ok(exit_code(outcome, json_log))
}

/// `run`: the engine against real Vapi, no console.
async fn run_headless(
    config: Config,
    until_done: bool,
    exit_on_pause: bool,
    json: bool,
) -> color_eyre::Result<ExitCode> {
    let key = config.api_key()?;
    init_stdout_logging(json);
    let store = open_store(&config).await?;
    log_rate_override(&store, &config).await?;
    let vapi = VapiClient::new(&config.vapi.base_url, key, config.request_timeout())?
        .with_monitor_key(config.public_key());
    let engine = start_engine(config, store, vapi).await?;
    let mode = match (until_done, exit_on_pause) {
        (false, _) => None,
        (true, false) => Some(UntilDone::WaitThroughPauses),
        (true, true) => Some(UntilDone::ExitOnPause),
    };
    let json_log = json || log_format() == LogFormat::Json;
    let outcome = headless::run(engine.client(), mode, json_log).await;
    engine.join().await;
    Ok(exit_code(outcome, json_log))
}

/// `migrate-db`: opens both stores (creating and migrating the target) and copies.
/// Tables this long show their progress while `migrate-db` copies them.
const PROGRESS_FROM: u64 = 10_000;

async fn migrate_db(from: &str, to: &str) -> color_eyre::Result<ExitCode> {
    let (from, to) = (Location::parse(from), Location::parse(to));
    if from == to {
        return Err(UserError("--from and --to are the same database".into()).into());
    }
    if let Location::Sqlite(path) = &from
        && !path.is_file()
    {
        return Err(UserError(format!("no database file at {}", path.display())).into());
    }
    let open = |l: Location| async move {
        Store::open_location(&l).await.map_err(|e| match e {
            // Already names the server (password hidden).
            switchboard::store::StoreError::Connect { .. } => UserError(e.to_string()),
            _ => UserError(format!("cannot open {}: {e}", l.display())),
        })
    };
    let source = open(from.clone()).await?;
    let target = open(to.clone()).await?;
    // A big table's progress on one line of stderr, rewritten after every page.
    let shown = std::cell::Cell::new(false);
    let progress = |table: &str, rows: u64| {
        if rows >= PROGRESS_FROM {
            eprint!("\rcopying {table}: {rows} rows…");
            shown.set(true);
        }
    };
    let end_progress = || {
        if shown.replace(false) {
            eprintln!();
        }
    };
    // One transaction on the target: stopped by Ctrl-C or SIGTERM, it is rolled back.
    let report = tokio::select! {
        copied = source.copy_into(&target, progress) => {
            end_progress();
            copied.map_err(|e| UserError(format!("cannot copy into {}: {e}", to.display())))?
        }
        signal = switchboard::shutdown::requested() => {
            end_progress();
            return Err(UserError(format!(
                "{signal}: migrate-db stopped; nothing was copied into {}",
                to.display()
            ))
            .into());
        }
    };
    for (table, rows) in &report.rows {
        println!("{table}: {rows} rows");
    }
    println!("copied {} into {}", from.display(), to.display());
    source.close().await;
    target.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The last line of a headless run and its exit status. With a JSON log the line is logged
/// (target `switchboard::progress`) so that stdout stays one JSON object a line.
fn exit_code(outcome: Outcome, json_log: bool) -> ExitCode {
    let say = |line: String| headless::say(&line, json_log);
    match outcome {
        Outcome::Completed(what) => {
            say(format!("done: {what}"));
            ExitCode::SUCCESS
        }
        Outcome::NeedsOperator(why) => {
            eprintln!("stopped, needs a fix before it can go on: {why}");
            ExitCode::from(2)
        }
        Outcome::Interrupted => {
            say("interrupted: in-flight requests were recorded; run again to continue".into());
            ExitCode::from(130)
        }
    }
}

/// Says at start when `dispatch rate N` left an override in the database: the config's rate
/// is not the one in force.
async fn log_rate_override(store: &Store, config: &Config) -> color_eyre::Result<()> {
    let control = store
        .engine_control()
        .await
        .wrap_err("cannot read the engine controls")?;
    let status = switchboard::cli::status::DispatchStatus::new(&control, config);
    if status.rate_is_override {
        tracing::info!(
            target: "switchboard::engine",
            "rate override from the database in force: {}/s (config {}/s; `switchboard dispatch rate --reset` returns to it)",
            status.rate_per_second,
            status.config_rate_per_second
        );
    }
    Ok(())
}

async fn open_store(config: &Config) -> color_eyre::Result<Store> {
    let location = config.database.location();
    let path = match &location {
        Location::Sqlite(path) => path,
        Location::Postgres(_) => {
            // A server that cannot be reached is a one-line user error (password hidden).
            return Store::open_location(&location)
                .await
                .map_err(|e| UserError(e.to_string()).into());
        }
    };
    if let Some(folder) = path.parent()
        && !folder.as_os_str().is_empty()
        && !folder.is_dir()
    {
        return Err(UserError(format!(
            "the database folder {} does not exist (database.path = {})",
            folder.display(),
            path.display()
        ))
        .into());
    }
    Store::open(path)
        .await
        .wrap_err_with(|| format!("cannot open the database {}", path.display()))
}

/// The log format in force (`--log-format`, else `[log] format`), set once by `run`.
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

fn log_format() -> LogFormat {
    LOG_FORMAT.get().copied().unwrap_or_default()
}

/// The engine's log on stdout (`run`, the headless demo); `json` also when `run --json`.
fn init_stdout_logging(json: bool) {
    let json = json || log_format() == LogFormat::Json;
    init_logging(
        "info",
        json,
        std::io::stdout().is_terminal(),
        std::io::stdout,
    );
}

/// A command's log on stderr (warnings and errors unless RUST_LOG says otherwise).
fn init_stderr_logging() {
    let json = log_format() == LogFormat::Json;
    init_logging(
        "warn",
        json,
        std::io::stderr().is_terminal(),
        std::io::stderr,
    );
}

/// Text, or one JSON object per line with the event's fields (the ids the engine logs with)
/// beside `level`, `target` and `message`, no span lists. Secrets are never logged: the key
/// and the webhook secret are `SecretString`s, and monitor URLs are not logged.
fn init_logging<W>(default_level: &str, json: bool, ansi: bool, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_ansi(ansi).try_init()
    };
    if let Err(e) = result {
        eprintln!("warning: logging not initialised: {e}");
    }
}

async fn console(
    config: Config,
    demo: bool,
    read_only: bool,
    mouse: bool,
) -> color_eyre::Result<ExitCode> {
    if demo {
        return demo_console(None, read_only, config.keys, mouse).await;
    }
    // Everything that can fail for a user's reason fails before the screen is taken.
    console::KeyRegistry::new(&config.keys).map_err(|e| UserError(format!("[keys]: {e}")))?;
    let store = open_store(&config).await?;
    let keys = config.keys.clone();
    let listen_command = config.console.listen_command.clone();
    // Listening needs the key; an attached console without one says so when asked.
    let listen_vapi = config.api_key().ok().and_then(|key| {
        VapiClient::new(&config.vapi.base_url, key, config.request_timeout())
            .ok()
            .map(|v| v.with_monitor_key(config.public_key()))
    });
    // An engine already dispatching from this database: attach to it, never start a second.
    let holder = store
        .lease_holder(config.vapi.lease_timeout_ms as i64)
        .await?;
    let engine = match holder {
        Some(holder) => {
            console::init_logging("info")?;
            dispatch::attach(config, store.clone(), holder.name()).await?
        }
        None => {
            let key = config.api_key()?;
            let vapi = VapiClient::new(&config.vapi.base_url, key, config.request_timeout())?
                .with_monitor_key(config.public_key());
            console::init_logging("info")?;
            start_engine(config, store.clone(), vapi).await?
        }
    };
    let options = console::ConsoleOptions {
        demo: false,
        read_only,
        keys,
        title: "switchboard".into(),
        mouse,
        listen_command,
    };
    let result = console::run(engine.client(), store, options, listen_vapi).await;
    finish(engine).await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn demo_console(
    contacts: Option<usize>,
    read_only: bool,
    keys: std::collections::BTreeMap<String, String>,
    mouse: bool,
) -> color_eyre::Result<ExitCode> {
    console::KeyRegistry::new(&keys).map_err(|e| UserError(format!("[keys]: {e}")))?;
    console::init_logging("info")?;
    let demo = demo::prepare(Path::new(DEMO_DB), contacts)
        .await
        .map_err(demo_error)?;
    let listen_command = demo.config.console.listen_command.clone();
    let listen_vapi = Some(demo.vapi.clone());
    let engine = dispatch::start(demo.config, demo.store.clone(), demo.vapi).await?;
    let options = console::ConsoleOptions {
        demo: true,
        read_only,
        keys,
        title: "switchboard".into(),
        mouse,
        listen_command,
    };
    let result = console::run(engine.client(), demo.store.clone(), options, listen_vapi).await;
    finish(engine).await;
    demo.simulator.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// A demo already running here is the user's to stop: one line.
fn demo_error(e: demo::DemoError) -> color_eyre::Report {
    match e {
        demo::DemoError::Running { .. } => UserError(e.to_string()).into(),
        other => other.into(),
    }
}

/// Starts the engine; another engine holding the database is a one-line user error.
async fn start_engine(
    config: Config,
    store: Store,
    vapi: VapiClient,
) -> color_eyre::Result<dispatch::EngineHandle> {
    match dispatch::start(config, store, vapi).await {
        Ok(engine) => Ok(engine),
        Err(e @ dispatch::EngineError::LeaseHeld { .. }) => Err(UserError(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

/// Makes sure the engine has stopped (the console may leave before it reports so).
async fn finish(engine: dispatch::EngineHandle) {
    let client = engine.client();
    let _ = client.send(dispatch::Command::Quit).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), engine.join()).await;
}
