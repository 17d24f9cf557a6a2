//! Subcommands that act on the store: campaigns, contacts, calls, retries and engine-wide
//! controls. They work while an engine runs on the same database: the engine re-reads the
//! store every tick.

use std::collections::HashMap;
use std::io::Write;

use super::args::{CampaignAction, ContactsAction, DispatchAction};
use super::status::DispatchStatus;
use super::{MAX_PRINTED, UserError, bounded};
use crate::config::Config;
use crate::dispatch::Command;
use crate::import::import_contacts;
use crate::model::CallStatus;
use crate::store::stats::{CallQuery, CallSort, CallTab};
use crate::store::{Store, StoreError};

type Result<T> = color_eyre::Result<T>;

fn user(e: StoreError) -> color_eyre::Report {
    match e {
        StoreError::Db(_) | StoreError::Migrate(_) => color_eyre::Report::new(e),
        other => UserError(other.to_string()).into(),
    }
}

/// An operation through the one operations layer (the same as the console's keys): its line,
/// or why it was refused, as a one-line user error.
async fn op(store: &Store, config: &Config, command: Command) -> Result<String> {
    crate::ops::apply(store, config, &command, crate::ops::Actor::Cli)
        .await
        .map_err(|e| UserError(e).into())
}

pub async fn campaign(store: &Store, config: &Config, action: CampaignAction) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match action {
        CampaignAction::Create {
            name,
            assistant_id,
            phone_number_id,
            weight,
        } => {
            for (what, value) in [
                ("name", &name),
                ("--assistant-id", &assistant_id),
                ("--phone-number-id", &phone_number_id),
            ] {
                if value.trim().is_empty() {
                    return Err(UserError(format!("{what} must not be empty")).into());
                }
            }
            let c = store
                .create_campaign(name.trim(), assistant_id.trim(), phone_number_id.trim())
                .await
                .map_err(user)?;
            let c = if weight != 1 {
                store
                    .set_campaign_weight(c.id, weight)
                    .await
                    .map_err(user)?
            } else {
                c
            };
            writeln!(out, "created campaign {} (#{}, {})", c.name, c.id, c.status)?;
        }
        CampaignAction::Weight { name, weight } => {
            let c = store.campaign_by_name(&name).await.map_err(user)?;
            let c = store
                .set_campaign_weight(c.id, weight)
                .await
                .map_err(user)?;
            writeln!(out, "campaign {} has weight {}", c.name, c.weight)?;
        }
        CampaignAction::List { json: true } => {
            for c in store.campaigns().await.map_err(user)? {
                let line = json_line(&c, c.status.as_str(), None)?;
                writeln!(out, "{line}")?;
            }
        }
        CampaignAction::List { json: false } => {
            let campaigns = store.campaigns().await.map_err(user)?;
            if campaigns.is_empty() {
                writeln!(
                    out,
                    "no campaigns yet: switchboard campaign create NAME --assistant-id ID --phone-number-id ID"
                )?;
            }
            writeln!(
                out,
                "{:<4} {:<20} {:<10} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>9}  pause reason",
                "id",
                "name",
                "status",
                "contacts",
                "done",
                "created",
                "active",
                "ended",
                "failed",
                "cost"
            )?;
            for c in campaigns {
                writeln!(
                    out,
                    "{:<4} {:<20} {:<10} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>9.4}  {}",
                    c.id,
                    c.name,
                    c.status.as_str(),
                    c.contacts_total,
                    c.contacts_done,
                    c.total_calls_created,
                    c.active_calls,
                    c.ended_calls,
                    c.failed_calls,
                    c.cost_usd,
                    c.pause_reason.unwrap_or_default()
                )?;
            }
        }
        CampaignAction::Start { name } => {
            let campaign_id = store.campaign_by_name(&name).await.map_err(user)?.id;
            writeln!(
                out,
                "{}",
                op(store, config, Command::StartCampaign { campaign_id }).await?
            )?;
        }
        CampaignAction::Pause { name } => {
            let campaign_id = store.campaign_by_name(&name).await.map_err(user)?.id;
            writeln!(
                out,
                "{}",
                op(store, config, Command::PauseCampaign { campaign_id }).await?
            )?;
        }
        CampaignAction::Resume { name } => {
            let campaign_id = store.campaign_by_name(&name).await.map_err(user)?.id;
            writeln!(
                out,
                "{}",
                op(store, config, Command::ResumeCampaign { campaign_id }).await?
            )?;
        }
        CampaignAction::Cancel { name } => {
            let campaign_id = store.campaign_by_name(&name).await.map_err(user)?.id;
            writeln!(
                out,
                "{}",
                op(store, config, Command::CancelCampaign { campaign_id }).await?
            )?;
        }
    }
    Ok(())
}

pub async fn contacts(store: &Store, config: &Config, action: ContactsAction) -> Result<()> {
    match action {
        ContactsAction::Import { campaign, file } => {
            let c = store.campaign_by_name(&campaign).await.map_err(user)?;
            let reader = std::fs::File::open(&file)
                .map_err(|e| UserError(format!("cannot read {}: {e}", file.display())))?;
            let reader = std::io::BufReader::with_capacity(1 << 20, reader);
            let started = std::time::Instant::now();
            let report = import_contacts(store, c.id, reader, &config.import, |rows| {
                eprint!("\rread {rows} rows…")
            })
            .await
            .map_err(|e| match e {
                crate::import::ImportError::Store(s) => user(s),
                crate::import::ImportError::Cancelled(_) => UserError(e.to_string()).into(),
                other => UserError(format!(
                    "{}: {}",
                    file.display(),
                    bounded(&other.to_string(), MAX_PRINTED)
                ))
                .into(),
            })?;
            if report.rows >= 10_000 {
                eprintln!();
            }
            let mut out = std::io::stdout().lock();
            for r in report.rejected.iter().take(50) {
                writeln!(out, "line {}: {}", r.line, bounded(&r.reason, MAX_PRINTED))?;
            }
            if report.rejected.len() > 50 {
                writeln!(
                    out,
                    "… and {} more rejected rows",
                    report.rejected.len() - 50
                )?;
            }
            writeln!(
                out,
                "imported {} contacts into {} ({} rejected, {} duplicates, {} unverified, {} in E.164 checked for length only) in {:.1}s",
                report.imported,
                c.name,
                report.rejected.len(),
                report.duplicates,
                report.unverified,
                report.length_checked_only,
                started.elapsed().as_secs_f64()
            )?;
            if report.reopened {
                writeln!(
                    out,
                    "campaign {} was COMPLETED: it is DIALING again for the new contacts",
                    c.name
                )?;
            }
        }
    }
    Ok(())
}

/// One `--json` line: the row's fields, its status as the same literal the CLI takes
/// (`--status ENDED`) and, for a call, its campaign's name.
fn json_line(
    row: &impl serde::Serialize,
    status: &str,
    campaign: Option<&str>,
) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(row)?;
    if let Some(fields) = value.as_object_mut() {
        fields.insert("status".into(), status.into());
        if let Some(name) = campaign {
            fields.insert("campaign".into(), name.into());
        }
    }
    Ok(value)
}

pub async fn calls(
    store: &Store,
    campaign: Option<String>,
    status: Option<String>,
    limit: i64,
    json: bool,
) -> Result<()> {
    let campaign_id = match campaign {
        Some(name) => Some(store.campaign_by_name(&name).await.map_err(user)?.id),
        None => None,
    };
    let status = match status {
        Some(s) => Some(
            s.parse::<CallStatus>()
                .map_err(|e| UserError(e.to_string()))?,
        ),
        None => None,
    };
    let query = CallQuery {
        campaign_id,
        tab: CallTab::All,
        status,
        text: None,
        sort: CallSort::Newest,
        offset: 0,
        limit: limit.max(1),
        anchor: None,
    };
    let rows = store.call_page(&query).await.map_err(user)?;
    let names: HashMap<i64, String> = store
        .campaigns()
        .await
        .map_err(user)?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let name_of = |id: i64| names.get(&id).map(String::as_str).unwrap_or("?");
    let mut out = std::io::stdout().lock();
    if json {
        for r in &rows {
            let mut line = json_line(r, r.status.as_str(), Some(name_of(r.campaign_id)))?;
            if let Some(analysis) = store.call_analysis(r.id).await.map_err(user)?
                && let Some(fields) = line.as_object_mut()
            {
                fields.insert("analysis".into(), serde_json::to_value(analysis)?);
            }
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let total = store.call_count(&query).await.map_err(user)?;
    writeln!(
        out,
        "{:<7} {:<20} {:<20} {:<16} {:<11} {:>3}  {:<36}  ended reason",
        "call", "campaign", "contact", "phone", "status", "att", "provider id"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<7} {:<20} {:<20} {:<16} {:<11} {:>3}  {:<36}  {}",
            r.id,
            clip(name_of(r.campaign_id), 20),
            clip(r.contact_name.as_deref().unwrap_or(""), 20),
            r.phone,
            r.status.as_str(),
            r.attempt_count,
            r.provider_call_id.as_deref().unwrap_or("-"),
            r.ended_reason.as_deref().unwrap_or("")
        )?;
    }
    writeln!(out, "{} of {} calls", rows.len(), total)?;
    Ok(())
}

/// At most `n` characters, for a table column.
fn clip(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

pub async fn retry(
    store: &Store,
    config: &Config,
    call_id: Option<i64>,
    campaign: Option<String>,
) -> Result<()> {
    match (call_id, campaign) {
        (Some(call_id), _) => println!(
            "{}",
            op(store, config, Command::RetryCall { call_id }).await?
        ),
        (None, Some(name)) => {
            let campaign_id = store.campaign_by_name(&name).await.map_err(user)?.id;
            println!(
                "{}",
                op(store, config, Command::RetryFailed { campaign_id }).await?
            );
        }
        (None, None) => return Err(UserError("name a call id or --campaign NAME".into()).into()),
    }
    Ok(())
}

pub async fn dispatch(store: &Store, config: &Config, action: DispatchAction) -> Result<()> {
    match action {
        DispatchAction::Pause { reason } => {
            println!("{}", op(store, config, Command::PauseAll { reason }).await?);
        }
        DispatchAction::Resume => println!("{}", op(store, config, Command::ResumeAll).await?),
        DispatchAction::Rate {
            per_second: Some(per_second),
            reset: _,
        } => {
            let line = op(store, config, Command::SetRate { per_second }).await?;
            println!("{line} (overrides the config's rate until `dispatch rate --reset`)");
        }
        DispatchAction::Rate {
            per_second: None, ..
        } => println!("{}", op(store, config, Command::ResetRate).await?),
        DispatchAction::Status { json } => {
            let control = store.engine_control().await.map_err(user)?;
            let live = store
                .lease_status(config.vapi.lease_timeout_ms as i64)
                .await
                .map_err(user)?;
            let status = DispatchStatus::new(&control, config).with_engine(live);
            if json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                print!("{status}");
            }
        }
    }
    Ok(())
}
