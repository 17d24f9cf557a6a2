//! clap definitions. `switchboard --help` and `--help` on every subcommand come from here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    pub command: Option<Commands>,
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
        action: CampaignAction,
    },
    /// Import contacts into a campaign.
    Contacts {
        #[command(subcommand)]
        action: ContactsAction,
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
        /// Log as JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List calls.
    Calls {
        #[arg(long)]
        campaign: Option<String>,
        /// QUEUED, RINGING, IN_PROGRESS, FORWARDING, ENDED, FAILED, SCHEDULED.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
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
    /// Engine-wide controls, picked up by a running engine within a tick.
    Dispatch {
        #[command(subcommand)]
        action: DispatchAction,
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
        #[arg(long)]
        assistant_id: String,
        #[arg(long)]
        phone_number_id: String,
        /// Share of the concurrency beside other campaigns dialling at once (1-1000).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=1000))]
        weight: i64,
    },
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
    /// Start dialling (DRAFT or PAUSED → DIALING).
    Start { name: String },
    /// Stop new calls for this campaign (active calls are still tracked).
    Pause { name: String },
    /// PAUSED → DIALING.
    Resume { name: String },
    /// Cancel: pending contacts are never dialled.
    Cancel { name: String },
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
    /// Whether dispatch is paused and why, and the rate in force.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}
