//! clap definitions. `switchboard --help` and `--help` on every subcommand come from here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::policy::limits;
use crate::simulator::SimConfig;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Operations console and dispatcher for outbound AI-voice call campaigns on Vapi",
    long_about = "Operations console and dispatcher for outbound AI-voice call campaigns on Vapi.\n\n\
        With no subcommand and no config file it opens a demo console against an embedded Vapi \
        simulator. With a config (./switchboard.toml or --config) and VAPI_API_KEY set it drives real Vapi."
)]
pub struct Cli {
    /// Config file (TOML). Default: ./switchboard.toml if it exists, else built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// On an error, print the full report (cause chain, location) instead of one line.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Console: leave the mouse to the terminal (text selection) instead of clicks and the
    /// wheel acting on tabs, rows and campaigns.
    #[arg(long, global = true)]
    pub no_mouse: bool,
    /// Log lines as `text` or `json` (one object per line: level, target, message and the
    /// campaign, contact, call and attempt ids as fields). Default: `[log] format`, else text.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Option<Commands>,
}

/// `--log-format`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Open the operations console (the default).
    Console {
        /// Hide and disable every action that changes anything.
        #[arg(long)]
        read_only: bool,
        /// Run the demo (embedded simulator, local demo database) even if a config exists.
        #[arg(long)]
        demo: bool,
    },
    /// Run the demo: a local database, the embedded simulator with a little fault injection,
    /// and a demo campaign dispatching at once.
    Demo {
        /// No console: log to stdout and exit when the campaign is done.
        #[arg(long)]
        headless: bool,
        /// Number of demo contacts (default: the bundled assets/demo_contacts.csv).
        #[arg(long)]
        contacts: Option<usize>,
    },
    /// Manage campaigns.
    Campaign {
        #[command(subcommand)]
        action: Box<CampaignAction>,
    },
    /// List contacts (with their latest call) a filter matches, or import contacts into a
    /// campaign.
    #[command(args_conflicts_with_subcommands = true)]
    Contacts {
        #[command(subcommand)]
        action: Option<ContactsAction>,
        #[command(flatten)]
        list: super::bulk::ContactList,
    },
    /// Run the dispatcher.
    Run {
        /// Without the console, logging to stdout (the only mode of `run`; the console is
        /// `switchboard console`).
        #[arg(long)]
        headless: bool,
        /// Exit when every started campaign is finished (0), waiting through an operator's
        /// pause; 2 when a stop needs a fix outside switchboard (credentials, credits,
        /// budget, daily limit), saying which.
        #[arg(long)]
        until_done: bool,
        /// With --until-done: also exit (2) when dispatch or a campaign is paused with no
        /// call active, whatever the reason.
        #[arg(long, requires = "until_done")]
        exit_on_pause: bool,
        /// Log as JSON lines instead of text (the same as `--log-format json`).
        #[arg(long)]
        json: bool,
    },
    /// Whether an engine is ready to dispatch from this database (what its `/readyz` says):
    /// the database answers, a live engine holds the lease, Vapi has not refused the key.
    /// Exit 0 when ready, 1 when not.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a campaign before it dials: its assistants and numbers at Vapi, the
    /// `{{variables}}` their prompts use against every waiting contact, zones, do-not-call
    /// and cap hits, zones no window reaches, and when it will finish. One line per finding;
    /// exit 1 when something would fail calls (a blocker), else 0.
    Check {
        campaign: String,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        check: CheckArgs,
    },
    /// List calls.
    Calls(super::commands::CallList),
    /// Act on every call (or, with --contacts, every contact) a filter matches: retry,
    /// requeue, skip, dnc, reschedule TIME, campaign NAME, arm ASSISTANT. Prints the exact
    /// count first and asks; runs in batches while an engine dials; logged as one action.
    Bulk(super::bulk::BulkArgs),
    /// Dial a failed call's contact again (a new attempt sequence; the old call stays as
    /// history). Works while an engine runs on the same database.
    Retry {
        /// The failed call's id (see `switchboard calls --status FAILED`).
        #[arg(conflicts_with = "campaign", required_unless_present = "campaign")]
        call_id: Option<i64>,
        /// Retry every failed call of this campaign instead.
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Act on a live call (CALL: the call id `calls` shows): say a line, whisper to the
    /// assistant, mute it, transfer the call to a person, end it. Carried out by the engine
    /// holding the call (or by this command when no engine runs); prints Vapi's answer.
    Call {
        #[command(subcommand)]
        action: CallAction,
    },
    /// Listen to a live call: its audio as WAV (16-bit PCM) on stdout, for `aplay` or
    /// `ffplay -`, or into a file. Ends with the call or Ctrl-C.
    Listen {
        call_id: i64,
        /// Write here instead of stdout (the WAV header is completed at the end).
        #[arg(long, value_name = "FILE.wav")]
        out: Option<PathBuf>,
        /// Samples per second of the stream (Vapi sends 16 kHz).
        #[arg(long, default_value_t = 16_000)]
        sample_rate: u32,
        /// Channels of the stream (Vapi sends 2: one per side of the call).
        #[arg(long, default_value_t = 2)]
        channels: u16,
    },
    /// Engine-wide controls, picked up by a running engine within a tick.
    Dispatch {
        #[command(subcommand)]
        action: DispatchAction,
    },
    /// One row per contact of a campaign: outcome, attempts, ended reason, duration, cost,
    /// analysis (summary, success evaluation, structured data) and recording URL. Streams.
    Export {
        campaign: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: crate::export::Format,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only the contacts this filter matches (over contacts and their latest call).
        #[arg(long = "where", value_name = "EXPR")]
        filter: Option<String>,
    },
    /// Saved filters, shared by every console and command (`--where @NAME` uses one; the
    /// console's F steps through them): list, save NAME EXPR, delete NAME.
    Filters {
        #[command(subcommand)]
        action: Option<FilterAction>,
    },
    /// The do-not-call list: numbers no campaign dials (checked at every claim).
    Dnc {
        #[command(subcommand)]
        action: DncAction,
    },
    /// A number's history across campaigns: every dial, skip and deferral with its reason,
    /// and its do-not-call entry.
    Why { number: String },
    /// Book a callback by hand: the contact is dialled at TIME in its own zone (moved to the
    /// window's next opening when TIME is outside it), before fresh contacts. A finished
    /// campaign re-opens. Not held to the campaign's attempt cap; the claim still checks
    /// window, do-not-call, caps and consent.
    Callback {
        number: String,
        /// RFC 3339 (2026-12-04T15:00:00-06:00), a local date and time (2026-12-04 15:00)
        /// or HH:MM, both in the contact's zone.
        #[arg(long, value_name = "TIME")]
        at: String,
        /// The campaign, when several have the number.
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Serve the embedded Vapi simulator on 127.0.0.1.
    Simulate {
        #[arg(long, default_value_t = 8089)]
        port: u16,
        #[command(flatten)]
        config: Box<SimConfig>,
    },
    /// Copy a campaign history from one database to another, e.g. from SQLite to PostgreSQL:
    /// `migrate-db --from switchboard.db --to postgres://user:pw@host/db`. The target must
    /// have no campaign yet; stop every engine first.
    MigrateDb {
        /// The source: a SQLite path or `sqlite:` URL, or a `postgres://` URL.
        #[arg(long)]
        from: String,
        /// The target: a `postgres://` URL, or a SQLite path.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CampaignAction {
    /// Create a campaign (status DRAFT).
    Create {
        name: String,
        /// Vapi assistantId, or arms tested side by side: `asst-a,asst-b:2` (a weight after
        /// a colon); each contact keeps its arm for its follow-ups.
        #[arg(long, value_name = "ID[,ID[:WEIGHT]…]")]
        assistant_id: String,
        /// Vapi phoneNumberId, or a pool used in turn: `pn-1,pn-2:3` (a weight after a colon).
        #[arg(long, value_name = "ID[,ID[:WEIGHT]…]")]
        phone_number_id: String,
        /// Share of the concurrency beside other campaigns dialling at once (1-1000).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=1000))]
        weight: i64,
        #[command(flatten)]
        rules: RuleArgs,
        #[command(flatten)]
        follow_up: FollowUpArgs,
    },
    /// Change a campaign's compliance rules (only the options given).
    Edit {
        name: String,
        /// Replace the phone-number pool: `pn-1,pn-2:3` (numbers kept keep their counts).
        #[arg(long, value_name = "ID[,ID[:WEIGHT]…]")]
        phone_number_id: Option<String>,
        /// Replace the assistant or the arms: `asst-a,asst-b:2` (an arm left out is stopped,
        /// its waiting contacts move to the others).
        #[arg(long, value_name = "ID[,ID[:WEIGHT]…]")]
        assistant_id: Option<String>,
        #[command(flatten)]
        rules: RuleArgs,
        #[command(flatten)]
        follow_up: FollowUpArgs,
    },
    /// Calls, answered, conversations, successes with a 95 % interval, cost per success and
    /// voicemail messages left, in all and per arm, each arm against the best.
    Report {
        name: String,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pause, resume or stop one arm (by its assistant id): its waiting contacts move to the
    /// other arms.
    Arm {
        name: String,
        assistant_id: String,
        #[arg(value_enum)]
        action: ArmAction,
    },
    /// A campaign's counts and every rule in force.
    Show { name: String },
    /// Set a campaign's weight: its share of the concurrency beside other campaigns.
    Weight {
        name: String,
        #[arg(value_parser = clap::value_parser!(i64).range(1..=1000))]
        weight: i64,
    },
    /// Status and counts per campaign.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start dialling (DRAFT or PAUSED → DIALING), after `switchboard check` finds nothing
    /// that would fail calls. With --at, dispatch begins then; with --end-by, it stops then
    /// (the campaign pauses; calls still live run to their end).
    Start {
        name: String,
        /// When dispatch begins: HH:MM (the next such time), a local date and time
        /// (2026-12-07 09:00), both in the campaign's zone, or RFC 3339.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// When dispatch stops: as --at (an HH:MM is the next such time after the start).
        #[arg(long, value_name = "TIME")]
        end_by: Option<String>,
        /// Start without the check (it is printed and refuses the start when something
        /// would fail calls).
        #[arg(long)]
        no_check: bool,
        #[command(flatten)]
        check: CheckArgs,
    },
    /// Stop new calls for this campaign (active calls are still tracked).
    Pause { name: String },
    /// PAUSED → DIALING.
    Resume { name: String },
    /// Cancel: pending contacts are never dialled.
    Cancel { name: String },
}

/// Compliance rules of a campaign (`campaign create` defaults: 08:00-21:00 mon-sat in the
/// contact's zone, at most 3 calls a number in 24 h and 7 in 7 days, consent not required).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RuleArgs {
    /// Calling hours in the contact's local time, HH:MM-HH:MM (or `all`). Default 08:00-21:00.
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub window: Option<String>,
    /// Days it may call: mon-fri, mon,wed,fri, all. Default mon-sat.
    #[arg(long)]
    pub days: Option<String>,
    /// Zone of contacts whose zone is unknown (IANA name). Default UTC.
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Calls a number may get across all campaigns: PER_24H/PER_7D (0 = no cap) or `off`.
    /// Default 3/7.
    #[arg(long, value_name = "N/M")]
    pub caps: Option<String>,
    /// Skip contacts without consent_source and consent_at (true/false).
    #[arg(long)]
    pub require_consent: Option<bool>,
    /// Structured-data field of the call analysis that, when true, puts the number on the
    /// do-not-call list (default do_not_call; `off` for none).
    #[arg(long, value_name = "FIELD")]
    pub dnc_field: Option<String>,
    /// Ended reasons dialled again, comma-separated (default
    /// customer-busy,customer-did-not-answer,voicemail). Never after a conversation.
    #[arg(long, value_name = "REASONS")]
    pub redial_reasons: Option<String>,
    /// Minutes before a redial (default 120).
    #[arg(long, value_name = "MINUTES", value_parser = |s: &str| limits::REDIAL_DELAY_MIN.parse_whole(s))]
    pub redial_delay_min: Option<i64>,
    /// Redials per contact (default 2; 0 turns redials off).
    #[arg(long, value_name = "N", value_parser = |s: &str| limits::REDIAL_COUNT.parse_whole(s))]
    pub redial_count: Option<i64>,
    /// A state rule pack narrowing the window and caps: us-tcpa, us-fl, us-ok, us-md, us-tx
    /// (`off` for none).
    #[arg(long, value_name = "PACK")]
    pub pack: Option<String>,
    /// Skip a number another campaign called in the last N days (0 = off, the default).
    #[arg(long, value_name = "DAYS", value_parser = |s: &str| limits::SUPPRESS_DAYS.parse_whole(s))]
    pub suppress_days: Option<i64>,
    /// Runaway guard: end a live call after this many seconds (0 = off, the default).
    #[arg(long, value_name = "SECONDS", value_parser = |s: &str| limits::MAX_CALL_S.parse_whole(s))]
    pub max_call_duration: Option<i64>,
    /// Runaway guard: end a live call whose cost so far passes this many dollars (0 = off).
    #[arg(long, value_name = "USD", value_parser = |s: &str| limits::MAX_CALL_COST.parse(s))]
    pub max_call_cost: Option<f64>,
    /// Runaway guard: end a call whose assistant says the same line N times in a row (0 = off).
    #[arg(long, value_name = "N", value_parser = |s: &str| limits::END_ON_REPEATS.parse_whole(s))]
    pub end_on_repeats: Option<i64>,
    /// Number health: bench (for dispatch.number_cooldown_s) a pool number whose answer rate
    /// over the last day falls below this share of its peers' (0.5: half; 0 = off, flagged
    /// only).
    #[arg(long, value_name = "SHARE", value_parser = |s: &str| limits::REST_NUMBERS_BELOW.parse(s))]
    pub rest_numbers_below: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ArmAction {
    Pause,
    Resume,
    Stop,
}

/// What follows a campaign's conversations (`campaign create` defaults: callbacks from the
/// analysis field callback_at, 3 attempts per contact in all, no outcome rules).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FollowUpArgs {
    /// The order the claim takes its lanes in (default callback,fresh,redial).
    #[arg(long, value_name = "LANES")]
    pub lane_order: Option<String>,
    /// Dials of one contact in all, shared by status redials, outcome follow-ups and
    /// callbacks from calls (default 3; 0 = no shared cap).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..=100))]
    pub max_attempts: Option<i64>,
    /// Structured-data field of the analysis with a callback time (default callback_at;
    /// `off` for none).
    #[arg(long, value_name = "FIELD")]
    pub callback_field: Option<String>,
    /// A tool the assistant calls to book a callback; its argument `at` (or the callback
    /// field) holds the time (`off` for none).
    #[arg(long, value_name = "TOOL")]
    pub callback_tool: Option<String>,
    /// Outcome rules: follow up until `success` (Vapi's success evaluation) or FIELD=VALUE
    /// of the structured data (`off` turns outcome rules off).
    #[arg(long, value_name = "success|FIELD=VALUE")]
    pub done_when: Option<String>,
    /// The delay after each outcome: `not-interested=never,call-back-later=1d,*=2d`.
    #[arg(long, value_name = "OUTCOME=DELAY,…")]
    pub follow_up: Option<String>,
    /// Structured-data field naming the outcome (default outcome).
    #[arg(long, value_name = "FIELD")]
    pub outcome_field: Option<String>,
    /// The voicemail ladder: the message the assistant leaves on a voicemail, on the last
    /// attempt only (earlier ones hang up); `off` for none.
    #[arg(long, value_name = "TEXT")]
    pub voicemail_message: Option<String>,
    /// Leave the message on this attempt instead of the last (0 = the last).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..=100))]
    pub voicemail_on_attempt: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum CallAction {
    /// The assistant says TEXT now.
    Say {
        call_id: i64,
        text: String,
        /// End the call once it is said.
        #[arg(long)]
        end: bool,
        #[command(flatten)]
        then: ThenArgs,
    },
    /// TEXT joins the assistant's context without a spoken reply.
    Whisper { call_id: i64, text: String },
    /// The assistant stops speaking.
    Mute { call_id: i64 },
    /// The assistant speaks again.
    Unmute { call_id: i64 },
    /// The call goes to a person: a number in E.164 form or a SIP URI.
    Transfer {
        call_id: i64,
        #[arg(value_name = "NUMBER|SIP-URI")]
        to: String,
    },
    /// End the call now.
    End {
        call_id: i64,
        #[command(flatten)]
        then: ThenArgs,
    },
}

/// What becomes of the contact of a call switchboard ends.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ThenArgs {
    /// Put the contact back in the queue for a later attempt (default: the contact is done).
    #[arg(long)]
    pub requeue: bool,
}

#[derive(Debug, Subcommand)]
pub enum FilterAction {
    /// Every saved filter, by name.
    List,
    /// Save EXPR (checked first) as NAME, replacing a filter of that name.
    Save { name: String, expression: String },
    /// Remove a saved filter.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DncAction {
    /// Add numbers from a CSV with a `phone` column (and an optional `reason`).
    Import { file: PathBuf },
    /// Add one number.
    Add {
        number: String,
        #[arg(long, default_value = "added by operator (CLI)")]
        reason: String,
    },
    /// Remove one number.
    Remove { number: String },
    /// List the numbers.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ContactsAction {
    /// Import a CSV with a header row: `phone` required, `name` and `extension` optional,
    /// other columns kept as variables.
    Import { campaign: String, file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum DispatchAction {
    /// Pause all dispatch.
    Pause {
        #[arg(long, default_value = "paused by operator (CLI)")]
        reason: String,
    },
    /// Resume all dispatch.
    Resume,
    /// Set the create rate (calls per second) at once, overriding the config's
    /// dispatch.rate_per_second until `dispatch rate --reset`.
    Rate {
        #[arg(
            value_parser = crate::config::parse_rate,
            required_unless_present = "reset",
            conflicts_with = "reset"
        )]
        per_second: Option<f64>,
        /// Drop the override: the config's rate is in force again.
        #[arg(long)]
        reset: bool,
    },
    /// The kill switch: pause dispatch and, with --end-calls, end every live call.
    Stop {
        /// End every live call too (of --campaign only, when given).
        #[arg(long)]
        end_calls: bool,
        /// Only this campaign: it is paused, the others go on.
        #[arg(long)]
        campaign: Option<String>,
        #[command(flatten)]
        then: ThenArgs,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Whether dispatch is paused and why, and the rate in force.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What the launch check is told besides the campaign.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The expected length of a call for the estimate (e.g. 90s, 3m). Default: the mean of
    /// the campaign's answered calls, else 2m.
    #[arg(long, value_name = "DURATION", value_parser = call_length)]
    pub call_length: Option<std::time::Duration>,
}

fn call_length(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime_serde::re::humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as 90s or 3m: {e}"))?;
    if d.is_zero() || d > std::time::Duration::from_secs(12 * 3600) {
        return Err(format!("{text:?} must be between 1s and 12h"));
    }
    Ok(d)
}
