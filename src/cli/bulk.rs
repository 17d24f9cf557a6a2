//! `switchboard bulk ACTION --where EXPR` and `switchboard contacts --where EXPR`: the
//! command line's way to the rows a filter matches. A bulk action always counts first (the
//! dry run) and asks, unless `--yes`; it runs through the operations layer
//! ([`crate::bulk`]) in batches, with progress on a terminal, and Ctrl-C stops it between
//! batches (what was done stays, and the log line says it stopped).

use std::io::{IsTerminal, Write};

use super::commands::where_filter;
use super::{UserError, bounded};
use crate::bulk::{BulkError, BulkRequest};
use crate::model::bulk::BulkAction;
use crate::model::filter::Scope;
use crate::store::Store;
use crate::store::bulk::Selection;
use crate::store::stats::{CallQuery, CallSort, CallTab};

type Result<T> = color_eyre::Result<T>;

/// What `bulk` acts on and how.
#[derive(Debug, clap::Args)]
pub struct BulkArgs {
    /// retry | requeue | skip | dnc | reschedule TIME | campaign NAME | arm ASSISTANT
    #[arg(required = true, num_args = 1.., value_name = "ACTION")]
    pub action: Vec<String>,
    /// The rows to act on (README, "Filters"): calls, or contacts with --contacts.
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: String,
    /// Match contacts (each with its latest call) instead of calls: reaches contacts never
    /// dialled.
    #[arg(long)]
    pub contacts: bool,
    /// Only this campaign's rows.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Print the exact count of what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before acting.
    #[arg(long)]
    pub yes: bool,
}

/// What `contacts --where` lists: the listing's arguments, over contacts and their latest
/// call (`status = PENDING and zone = America/Chicago`).
pub type ContactList = super::commands::ListArgs;

fn user(e: impl std::fmt::Display) -> color_eyre::Report {
    UserError(e.to_string()).into()
}

fn bulk_error(e: BulkError) -> color_eyre::Report {
    match e {
        BulkError::Store(e) => super::commands::user(e),
        BulkError::Refused(why) => user(why),
    }
}

async fn selection(
    store: &Store,
    scope: Scope,
    campaign: Option<&str>,
    filter: Option<&str>,
) -> Result<Selection> {
    let filter = match filter {
        Some(text) => Some(where_filter(store, text).await?),
        None => None,
    };
    let campaign_id = match campaign {
        Some(name) => Some(
            store
                .campaign_by_name(name)
                .await
                .map_err(super::commands::user)?
                .id,
        ),
        None => None,
    };
    Ok(Selection {
        scope,
        query: CallQuery {
            campaign_id,
            tab: CallTab::All,
            status: None,
            text: None,
            filter,
            sort: CallSort::Newest,
            offset: 0,
            limit: 1,
            anchor: None,
        },
    })
}

/// `switchboard bulk`.
pub async fn bulk(store: &Store, args: BulkArgs) -> Result<()> {
    let action = BulkAction::parse(&args.action.join(" ")).map_err(user)?;
    let scope = if args.contacts {
        Scope::Contacts
    } else {
        Scope::Calls
    };
    let selection = selection(
        store,
        scope,
        args.campaign.as_deref(),
        Some(args.filter.as_str()),
    )
    .await?;
    let mut described = format!("`{}`", bounded(&args.filter, super::MAX_PRINTED));
    if let Some(name) = &args.campaign {
        described.push_str(&format!(" in campaign {name}"));
    }
    let request = BulkRequest {
        selection,
        action,
        described,
    };
    let preview = crate::bulk::preview(store, &request)
        .await
        .map_err(bulk_error)?;
    if args.dry_run {
        println!("dry run: {}", preview.describe());
        return Ok(());
    }
    if preview.changing() == 0 {
        println!("nothing to do: {}", preview.describe());
        return Ok(());
    }
    let question = crate::bulk::question(&request, &preview);
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(user(format!(
                "{question} Not asked (no terminal): add --yes to go on, --dry-run only counts"
            )));
        }
        eprint!("{question} [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing changed");
            return Ok(());
        }
    }
    let total = preview.matched.max(1);
    let bar = std::io::stderr().is_terminal();
    let mut progress = move |walked: u64| {
        if bar {
            eprint!(
                "\r{walked} of ~{total} rows ({:.0} %)",
                (walked as f64 * 100.0 / total as f64).min(100.0)
            );
        }
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked = stop.clone();
    let watcher = tokio::spawn(async move {
        crate::shutdown::requested().await;
        asked.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let stopped = move || stop.load(std::sync::atomic::Ordering::SeqCst);
    let line = crate::bulk::run(
        store,
        &request,
        crate::ops::Actor::Cli,
        &mut progress,
        &stopped,
    )
    .await;
    watcher.abort();
    if bar {
        eprintln!();
    }
    println!("{}", line.map_err(bulk_error)?);
    Ok(())
}

/// `switchboard contacts --where EXPR`: the matching contacts, by id.
pub async fn list_contacts(store: &Store, list: ContactList) -> Result<()> {
    let selection = selection(
        store,
        Scope::Contacts,
        list.campaign.as_deref(),
        list.filter.as_deref(),
    )
    .await?;
    let resolved = match &selection.query.filter {
        Some(filter) => Some(
            store
                .resolve_filter(filter)
                .await
                .map_err(super::commands::user)?,
        ),
        None => None,
    };
    let count = store
        .bulk_count(&selection, resolved.as_ref())
        .await
        .map_err(super::commands::user)?;
    if list.count {
        println!("{count}");
        return Ok(());
    }
    let rows = store
        .bulk_matches(
            &selection,
            resolved.as_ref(),
            (0, i64::MAX),
            list.limit.max(1),
        )
        .await
        .map_err(super::commands::user)?;
    let mut out = std::io::stdout().lock();
    if list.json {
        for r in &rows {
            let line = serde_json::json!({
                "contact_id": r.contact_id,
                "campaign_id": r.campaign_id,
                "phone": r.phone,
                "name": r.name,
                "status": r.contact_status.as_str(),
                "zone": r.timezone,
                "call_id": r.call_id,
                "call_status": r.call_status.map(|s| s.as_str()),
                "ended_reason": r.ended_reason,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:>8} {:<16} {:<20} {:<8} {:<12} reason",
        "id", "phone", "name", "status", "last call"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:>8} {:<16} {:<20} {:<8} {:<12} {}",
            r.contact_id,
            r.phone,
            bounded(r.name.as_deref().unwrap_or(""), 20),
            r.contact_status.as_str(),
            r.call_status.map(|s| s.as_str()).unwrap_or("-"),
            r.ended_reason.as_deref().unwrap_or("")
        )?;
    }
    writeln!(out, "{} of {count} contacts", rows.len())?;
    Ok(())
}
