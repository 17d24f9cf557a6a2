//! Subcommands that act on the store: campaigns, contacts, calls, retries and engine-wide
//! controls. They work while an engine runs on the same database: the engine re-reads the
//! store every tick.

use std::collections::HashMap;
use std::io::Write;

use super::args::{
    ArmAction, CampaignAction, CheckArgs, ContactsAction, DispatchAction, DncAction, FilterAction,
    FollowUpArgs, RuleArgs,
};
use super::status::DispatchStatus;
use super::{MAX_PRINTED, UserError, bounded};
use crate::config::Config;
use crate::dispatch::Command;
use crate::import::import_contacts_until;
use crate::model::CallStatus;
use crate::policy::schedule::Schedule;
use crate::store::follow_up::FollowUpSettings;
use crate::store::policy::CampaignRules;
use crate::store::stats::{CallQuery, CallSort, CallTab};
use crate::store::{Store, StoreError};

type Result<T> = color_eyre::Result<T>;

pub(crate) fn user(e: StoreError) -> color_eyre::Report {
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
    let command = |name: String, make: fn(i64) -> Command| async move {
        let campaign_id = store.campaign_by_name(&name).await.map_err(user)?.id;
        op(store, config, make(campaign_id)).await
    };
    let done = match action {
        CampaignAction::Create {
            name,
            assistant_id,
            phone_number_id,
            weight,
            rules,
            follow_up,
        } => {
            create(
                store,
                &name,
                &assistant_id,
                &phone_number_id,
                weight,
                (&rules, &follow_up),
            )
            .await?
        }
        CampaignAction::Edit {
            name,
            phone_number_id,
            assistant_id,
            rules,
            follow_up,
        } => {
            return edit(
                &mut out,
                store,
                &name,
                (phone_number_id, assistant_id),
                (&rules, &follow_up),
            )
            .await;
        }
        CampaignAction::Report { name, json } => return report(&mut out, store, &name, json).await,
        CampaignAction::Arm {
            name,
            assistant_id,
            action,
        } => {
            let c = store.campaign_by_name(&name).await.map_err(user)?;
            let status = match action {
                ArmAction::Pause => crate::model::ArmStatus::Paused,
                ArmAction::Resume => crate::model::ArmStatus::Active,
                ArmAction::Stop => crate::model::ArmStatus::Stopped,
            };
            crate::ops::set_arm(store, c.id, &assistant_id, status)
                .await
                .map_err(user)?
        }
        CampaignAction::Show { name } => return show(&mut out, store, config, &name).await,
        CampaignAction::Weight { name, weight } => {
            let c = store.campaign_by_name(&name).await.map_err(user)?;
            let c = store
                .set_campaign_weight(c.id, weight)
                .await
                .map_err(user)?;
            format!("campaign {} has weight {}", c.name, c.weight)
        }
        CampaignAction::List { json: true } => {
            for c in store.campaigns().await.map_err(user)? {
                let line = json_line(&c, c.status.as_str(), None)?;
                writeln!(out, "{line}")?;
            }
            return Ok(());
        }
        CampaignAction::List { json: false } => return list(&mut out, store).await,
        CampaignAction::Start {
            name,
            at,
            end_by,
            no_check,
            check,
        } => {
            let schedule = (at.as_deref(), end_by.as_deref());
            return start(
                &mut out,
                store,
                config,
                &name,
                schedule,
                (!no_check).then_some(check),
            )
            .await;
        }
        CampaignAction::Pause { name } => {
            command(name, |campaign_id| Command::PauseCampaign { campaign_id }).await?
        }
        CampaignAction::Resume { name } => {
            command(name, |campaign_id| Command::ResumeCampaign { campaign_id }).await?
        }
        CampaignAction::Cancel { name } => {
            command(name, |campaign_id| Command::CancelCampaign { campaign_id }).await?
        }
    };
    writeln!(out, "{done}")?;
    Ok(())
}

/// `campaign start [--at] [--end-by]`: the check first (unless skipped), then the schedule,
/// then the start. A refused start puts the schedule back as it was.
async fn start(
    out: &mut impl Write,
    store: &Store,
    config: &Config,
    name: &str,
    (at, end_by): (Option<&str>, Option<&str>),
    check: Option<CheckArgs>,
) -> Result<()> {
    let c = store.campaign_by_name(name).await.map_err(user)?;
    let rules = store.campaign_rules(c.id).await.map_err(user)?;
    let now = chrono::Utc::now();
    let schedule = match (at, end_by) {
        (None, None) => None,
        _ => Some(
            Schedule::parse(at, end_by, rules.zone(), now).map_err(|e| UserError(e.to_string()))?,
        ),
    };
    // No contacts: the start refuses with its own reason, nothing to check.
    if let Some(args) = check.filter(|_| c.contacts_total > 0) {
        let report = launch_check(store, config, name, &args, schedule).await?;
        for finding in &report.findings {
            writeln!(out, "{}", finding.line())?;
        }
        if !report.ok {
            let blockers = report
                .findings
                .iter()
                .filter(|f| f.severity == crate::check::Severity::Blocker)
                .count();
            return Err(UserError(format!(
                "campaign {} not started: {blockers} blocker(s) above (--no-check starts it anyway)",
                c.name
            ))
            .into());
        }
    }
    let previous = rules.schedule();
    if let Some(schedule) = &schedule {
        store
            .set_campaign_schedule(c.id, schedule)
            .await
            .map_err(user)?;
    }
    match op(store, config, Command::StartCampaign { campaign_id: c.id }).await {
        Ok(line) => {
            writeln!(out, "{line}")?;
            if let Some(text) = schedule.and_then(|s| s.describe(rules.zone(), now)) {
                writeln!(out, "campaign {}: {text}", c.name)?;
            }
            Ok(())
        }
        Err(refused) => {
            if schedule.is_some() {
                store
                    .set_campaign_schedule(c.id, &previous)
                    .await
                    .map_err(user)?;
            }
            Err(refused)
        }
    }
}

/// The launch check against Vapi (the key from the environment) and the store; Ctrl-C
/// stops it (it changes nothing).
async fn launch_check(
    store: &Store,
    config: &Config,
    name: &str,
    args: &CheckArgs,
    schedule: Option<Schedule>,
) -> Result<crate::check::Report> {
    let vapi = config.api_key().map_err(|e| e.to_string()).and_then(|key| {
        crate::vapi::VapiClient::new(&config.vapi.base_url, key, config.request_timeout())
            .map_err(|e| e.to_string())
    });
    let options = crate::check::CheckOptions {
        call_secs: args.call_length.map(|d| d.as_secs_f64()),
        schedule,
    };
    let now = chrono::Utc::now();
    let checked = crate::check::check_campaign(
        store,
        vapi.as_ref().map_err(Clone::clone),
        config,
        name,
        &options,
        now,
    );
    tokio::select! {
        report = checked => report.map_err(user),
        signal = crate::shutdown::requested() => {
            Err(UserError(format!("check stopped by {signal}: nothing was changed")).into())
        }
    }
}

/// `check CAMPAIGN [--json]`: the findings; `Ok(false)` when one is a blocker.
pub async fn check(
    store: &Store,
    config: &Config,
    name: &str,
    json: bool,
    args: &CheckArgs,
) -> Result<bool> {
    let report = launch_check(store, config, name, args, None).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        for finding in &report.findings {
            writeln!(out, "{}", finding.line())?;
        }
        writeln!(
            out,
            "campaign {}: {}",
            report.campaign,
            if report.ok {
                "ready to start"
            } else {
                "not ready: fix the blockers above"
            }
        )?;
    }
    Ok(report.ok)
}

/// `campaign create`: the campaign, its number pool, weight and rules.
async fn create(
    store: &Store,
    name: &str,
    assistant_id: &str,
    phone_number_id: &str,
    weight: i64,
    (rules, follow_up): (&RuleArgs, &FollowUpArgs),
) -> Result<String> {
    let arms = crate::model::arms::parse_arms(assistant_id)
        .map_err(|e| UserError(format!("--assistant-id: {e}")))?;
    let rules = apply_rules(CampaignRules::compliance_default("UTC"), rules)?;
    let follow_up = apply_follow_up(FollowUpSettings::default(), follow_up)?;
    for (what, value) in [
        ("name", name),
        ("--assistant-id", assistant_id),
        ("--phone-number-id", phone_number_id),
    ] {
        if value.trim().is_empty() {
            return Err(UserError(format!("{what} must not be empty")).into());
        }
    }
    let pool = crate::store::numbers::parse_pool(phone_number_id)
        .map_err(|e| UserError(format!("--phone-number-id: {e}")))?;
    let first = pool.first().map(|(n, _)| n.clone()).unwrap_or_default();
    let c = store
        .create_campaign(name.trim(), &arms[0].0, &first)
        .await
        .map_err(user)?;
    store.set_campaign_arms(c.id, &arms).await.map_err(user)?;
    if pool.len() > 1 || pool.iter().any(|(_, w)| *w != 1) {
        store
            .set_campaign_numbers(c.id, &pool)
            .await
            .map_err(user)?;
    }
    let c = if weight != 1 {
        store
            .set_campaign_weight(c.id, weight)
            .await
            .map_err(user)?
    } else {
        c
    };
    store.set_campaign_rules(c.id, &rules).await.map_err(user)?;
    store
        .set_follow_up_settings(c.id, &follow_up)
        .await
        .map_err(user)?;
    Ok(format!(
        "created campaign {} (#{}, {})",
        c.name, c.id, c.status
    ))
}

/// `campaign edit`: its number pool and rules.
async fn edit(
    out: &mut impl Write,
    store: &Store,
    name: &str,
    (phone_number_id, assistant_id): (Option<String>, Option<String>),
    (rules, follow_up): (&RuleArgs, &FollowUpArgs),
) -> Result<()> {
    let c = store.campaign_by_name(name).await.map_err(user)?;
    let arms = assistant_id
        .map(|spec| {
            crate::model::arms::parse_arms(&spec)
                .map_err(|e| UserError(format!("--assistant-id: {e}")))
        })
        .transpose()?;
    // Both parsed before anything is written: a bad value changes nothing.
    let current = store.follow_up_settings(c.id).await.map_err(user)?;
    let follow_up = apply_follow_up(current, follow_up)?;
    if let Some(spec) = phone_number_id {
        let pool = crate::store::numbers::parse_pool(&spec)
            .map_err(|e| UserError(format!("--phone-number-id: {e}")))?;
        store
            .set_campaign_numbers(c.id, &pool)
            .await
            .map_err(user)?;
        let names: Vec<String> = pool
            .iter()
            .map(|(n, w)| {
                if *w == 1 {
                    n.clone()
                } else {
                    format!("{n}:{w}")
                }
            })
            .collect();
        writeln!(
            out,
            "campaign {}: phone numbers {}",
            c.name,
            names.join(", ")
        )?;
    }
    let current = store.campaign_rules(c.id).await.map_err(user)?;
    let new = apply_rules(current, rules)?;
    if let Some(arms) = arms {
        store.set_campaign_arms(c.id, &arms).await.map_err(user)?;
        let names: Vec<String> = store
            .campaign_arms(c.id)
            .await
            .map_err(user)?
            .iter()
            .map(|a| {
                format!(
                    "{}:{} {}",
                    a.assistant_id,
                    a.weight,
                    a.status.as_str().to_lowercase()
                )
            })
            .collect();
        if names.is_empty() {
            writeln!(
                out,
                "campaign {}: assistant {}",
                c.name,
                store.campaign(c.id).await.map_err(user)?.assistant_id
            )?;
        } else {
            writeln!(out, "campaign {}: arms {}", c.name, names.join(", "))?;
        }
    }
    store.set_campaign_rules(c.id, &new).await.map_err(user)?;
    store
        .set_follow_up_settings(c.id, &follow_up)
        .await
        .map_err(user)?;
    writeln!(out, "campaign {}: {}", c.name, new.summary())?;
    writeln!(out, "campaign {}: {}", c.name, follow_up.summary())?;
    Ok(())
}

/// `campaign show`: its state, numbers and counts, then its rules.
async fn show(out: &mut impl Write, store: &Store, config: &Config, name: &str) -> Result<()> {
    let c = store.campaign_by_name(name).await.map_err(user)?;
    let rules = store.campaign_rules(c.id).await.map_err(user)?;
    let skipped = store.skipped_count(c.id).await.map_err(user)?;
    let zones = store.campaign_zones(c.id).await.map_err(user)?;
    let state = store
        .window_state(c.id, chrono::Utc::now())
        .await
        .map_err(user)?;
    writeln!(out, "campaign {} (#{}) {}", c.name, c.id, c.status)?;
    if let Some(reason) = &c.pause_reason {
        writeln!(out, "  pause reason:   {reason}")?;
    }
    writeln!(out, "  assistant:      {}", c.assistant_id)?;
    let now = chrono::Utc::now();
    for (i, n) in store
        .campaign_numbers(c.id)
        .await
        .map_err(user)?
        .iter()
        .enumerate()
    {
        writeln!(
            out,
            "  {:<16}{} (weight {}, {} call(s) today): {}",
            if i == 0 { "phone numbers:" } else { "" },
            n.phone_number_id,
            n.weight,
            n.calls_on(now),
            match (&n.benched_until, n.benched_at(now)) {
                (Some(until), true) => format!(
                    "benched until {until} ({})",
                    n.bench_reason.as_deref().unwrap_or("no reason")
                ),
                _ => "in use".to_string(),
            }
        )?;
    }
    show_number_health(out, store, config, c.id, &rules).await?;
    writeln!(
        out,
        "  contacts:       {} ({} done or skipped, {} skipped by policy)",
        c.contacts_total, c.contacts_done, skipped
    )?;
    writeln!(
        out,
        "  calls:          {} created, {} active, {} ended, {} failed, ${:.4}",
        c.total_calls_created, c.active_calls, c.ended_calls, c.failed_calls, c.cost_usd
    )?;
    let follow_up = store.follow_up_settings(c.id).await.map_err(user)?;
    writeln!(out, "  follow-ups:     {}", follow_up.summary())?;
    if let Some(line) = rules.schedule_line() {
        writeln!(out, "  schedule:       {line}")?;
    }
    show_rules(out, store, &rules, &zones, state).await
}

/// Number health over the last day: each number's and area code's answer rate beside the
/// campaign's, quick hang-ups, carrier failures, flags (and whether weak numbers rest).
async fn show_number_health(
    out: &mut impl Write,
    store: &Store,
    config: &Config,
    campaign_id: i64,
    rules: &CampaignRules,
) -> Result<()> {
    let quick_ms = config.dispatch.quick_hangup_ms;
    let health = crate::dispatch::number_health::review(
        store,
        campaign_id,
        quick_ms,
        rules.rest_numbers_below,
        chrono::Utc::now(),
    )
    .await
    .map_err(user)?;
    if health.day.calls == 0 {
        return Ok(());
    }
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.0} %", r * 100.0));
    let rests = if rules.rest_numbers_below > 0.0 {
        format!(
            "; numbers below {:.0} % of their peers rest",
            rules.rest_numbers_below * 100.0
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "  last day:       {} calls, answered {}, quick hang-ups {}, carrier failures {}/{} (hour/day){rests}",
        health.day.calls,
        pct(health.day.answer_rate()),
        pct(health.day.quick_share()),
        health.hour.carrier_failures,
        health.day.carrier_failures
    )?;
    let lines = health.numbers.iter().map(|h| ("number", h));
    let areas = health.areas.iter().take(5).map(|h| ("area", h));
    for (what, h) in lines.chain(areas) {
        writeln!(
            out,
            "    {what} {:<14} {} calls, answered {}, quick {}, carrier {}/{}{}",
            h.key,
            h.day.calls,
            pct(h.day.answer_rate()),
            pct(h.day.quick_share()),
            h.hour.carrier_failures,
            h.day.carrier_failures,
            h.flag
                .as_deref()
                .map(|f| format!(" · flagged: {f}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

async fn show_rules(
    out: &mut impl Write,
    store: &Store,
    rules: &CampaignRules,
    zones: &[String],
    state: crate::policy::WindowState,
) -> Result<()> {
    writeln!(out, "rules")?;
    writeln!(
        out,
        "  window:         {} on {} in the contact's local time",
        rules.call_window, rules.call_days
    )?;
    if let Some(pack) = rules.pack() {
        let w = rules.window();
        writeln!(
            out,
            "  rule pack:      {} ({}); in force: {} on {}",
            pack.name,
            pack.law,
            w.hours(),
            w.days
        )?;
    }
    writeln!(
        out,
        "  duplicates:     {}",
        if rules.suppress_days > 0 {
            format!(
                "a number another campaign called in the last {} days is skipped",
                rules.suppress_days
            )
        } else {
            "not suppressed across campaigns".to_string()
        }
    )?;
    writeln!(
        out,
        "  default zone:   {} (contacts whose zone is unknown)",
        rules.timezone
    )?;
    writeln!(
        out,
        "  contact zones:  {}",
        if zones.is_empty() {
            "none from the import".to_string()
        } else {
            zones.join(", ")
        }
    )?;
    writeln!(out, "  now:            {}", state.text(chrono::Utc::now()))?;
    writeln!(
        out,
        "  caps:           {} (a number's calls in every campaign)",
        rules.rules().caps
    )?;
    writeln!(
        out,
        "  consent:        {}",
        if rules.require_consent {
            "required (consent_source and consent_at)"
        } else {
            "not required"
        }
    )?;
    writeln!(
        out,
        "  do-not-call:    checked at every claim ({} numbers listed)",
        store.dnc_list().await.map_err(user)?.len()
    )?;
    writeln!(
        out,
        "  redial:         {}",
        if rules.redial_count == 0 {
            "off".to_string()
        } else {
            format!(
                "{} after {} min, up to {} times (never after a conversation)",
                rules.redial_reasons,
                rules.redial_delay_s / 60,
                rules.redial_count
            )
        }
    )?;
    writeln!(
        out,
        "  from analysis:  {}",
        match &rules.dnc_field {
            Some(f) => format!("structured data {f} = true puts the number on the list"),
            None => "off".to_string(),
        }
    )?;
    Ok(())
}

/// `campaign list`: one line per campaign.
async fn list(out: &mut impl Write, store: &Store) -> Result<()> {
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
        "id", "name", "status", "contacts", "done", "created", "active", "ended", "failed", "cost"
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
    Ok(())
}

/// The rules with the options given applied; one-line errors for bad values.
fn apply_rules(mut rules: CampaignRules, args: &RuleArgs) -> Result<CampaignRules> {
    let bad =
        |e: crate::policy::PolicyError| -> color_eyre::Report { UserError(e.to_string()).into() };
    if let Some(w) = &args.window {
        let parsed = crate::policy::Window::parse(w, "all").map_err(bad)?;
        rules.call_window = parsed.hours();
    }
    if let Some(d) = &args.days {
        rules.call_days = crate::policy::Days::parse(d).map_err(bad)?.to_string();
    }
    if let Some(z) = &args.timezone {
        rules.timezone = crate::policy::parse_zone(z)
            .map_err(bad)?
            .name()
            .to_string();
    }
    if let Some(c) = &args.caps {
        let caps = crate::policy::Caps::parse(c).map_err(bad)?;
        rules.cap_per_day = caps.per_day.into();
        rules.cap_per_week = caps.per_week.into();
    }
    if let Some(r) = args.require_consent {
        rules.require_consent = r;
    }
    if let Some(r) = &args.redial_reasons {
        rules.redial_reasons = r
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .collect::<Vec<_>>()
            .join(",");
    }
    if let Some(m) = args.redial_delay_min {
        rules.redial_delay_s = m * 60;
    }
    if let Some(n) = args.redial_count {
        rules.redial_count = n;
    }
    if let Some(p) = &args.pack {
        let p = p.trim();
        rules.rule_pack = if p.eq_ignore_ascii_case("off") || p.is_empty() {
            None
        } else {
            let pack = crate::policy::packs::find(p).ok_or_else(|| {
                UserError(crate::policy::PolicyError::Pack(p.to_string()).to_string())
            })?;
            Some(pack.name.to_string())
        };
    }
    if let Some(d) = args.suppress_days {
        rules.suppress_days = d;
    }
    if let Some(s) = args.max_call_duration {
        rules.max_call_s = s;
    }
    if let Some(c) = args.max_call_cost {
        rules.max_call_cost = c;
    }
    if let Some(n) = args.end_on_repeats {
        rules.end_on_repeats = n;
    }
    if let Some(share) = args.rest_numbers_below {
        rules.rest_numbers_below = share;
    }
    rules.validate().map_err(bad)?;
    if let Some(f) = &args.dnc_field {
        let f = f.trim();
        rules.dnc_field = (!f.is_empty() && !f.eq_ignore_ascii_case("off")).then(|| f.to_string());
    }
    Ok(rules)
}

/// The follow-up settings with the options given applied; one-line errors for bad values.
fn apply_follow_up(mut s: FollowUpSettings, args: &FollowUpArgs) -> Result<FollowUpSettings> {
    use crate::model::policy::follow_up::{DoneWhen, FollowUps, LaneOrder};
    let bad = |flag: &str, e: &dyn std::fmt::Display| -> color_eyre::Report {
        UserError(format!("{flag}: {e}")).into()
    };
    let off = |v: &str| v.trim().is_empty() || v.trim().eq_ignore_ascii_case("off");
    if let Some(l) = &args.lane_order {
        s.lane_order = LaneOrder::parse(l)
            .map_err(|e| bad("--lane-order", &e))?
            .to_string();
    }
    if let Some(n) = args.max_attempts {
        s.max_attempts = n;
    }
    if let Some(f) = &args.callback_field {
        s.callback_field = (!off(f)).then(|| f.trim().to_string());
    }
    if let Some(t) = &args.callback_tool {
        s.callback_tool = (!off(t)).then(|| t.trim().to_string());
    }
    if let Some(d) = &args.done_when {
        s.done_when = if off(d) {
            None
        } else {
            Some(
                DoneWhen::parse(d)
                    .map_err(|e| bad("--done-when", &e))?
                    .to_string(),
            )
        };
    }
    if let Some(f) = &args.follow_up {
        s.follow_ups = FollowUps::parse(f)
            .map_err(|e| bad("--follow-up", &e))?
            .to_string();
    }
    if let Some(f) = &args.outcome_field {
        s.outcome_field = f.trim().to_string();
    }
    if let Some(m) = &args.voicemail_message {
        s.voicemail_message = (!off(m)).then(|| m.trim().to_string());
    }
    if let Some(n) = args.voicemail_on_attempt {
        s.voicemail_on_attempt = n;
    }
    s.validate().map_err(|e| UserError(e.to_string()))?;
    Ok(s)
}

/// `campaign report`: the campaign in all and per arm, as a table or one JSON object.
async fn report(out: &mut impl Write, store: &Store, name: &str, json: bool) -> Result<()> {
    let c = store.campaign_by_name(name).await.map_err(user)?;
    let report = store.arm_report(c.id).await.map_err(user)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(());
    }
    writeln!(out, "campaign {}", report.campaign)?;
    writeln!(out, "{}", crate::store::arms::REPORT_HEADER)?;
    for line in report.arms.iter().chain([&report.total]) {
        writeln!(out, "{}", line.row())?;
    }
    Ok(())
}

/// `switchboard callback NUMBER --at TIME [--campaign NAME]`.
pub async fn callback(
    store: &Store,
    config: &Config,
    raw: &str,
    at: &str,
    campaign: Option<&str>,
) -> Result<String> {
    let phone = number(raw, config)?;
    crate::ops::book_callback(store, &phone, campaign, at)
        .await
        .map_err(user)
}

/// A number as the user typed it, in E.164 (the import's rules).
fn number(raw: &str, config: &Config) -> Result<String> {
    crate::import::normalize_phone(raw, config.import.default_country_code.as_deref())
        .map(|n| n.e164)
        .map_err(|e| UserError(e).into())
}

pub async fn dnc(store: &Store, config: &Config, action: DncAction) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match action {
        DncAction::Add {
            number: raw,
            reason,
        } => {
            // The operations layer, as the console's do-not-call key.
            let phone = number(&raw, config)?;
            writeln!(
                out,
                "{}",
                op(store, config, Command::AddToDnc { phone, reason }).await?
            )?;
        }
        DncAction::Remove { number: raw } => {
            let phone = number(&raw, config)?;
            if store.dnc_remove(&phone).await.map_err(user)? {
                writeln!(out, "{phone} removed from the do-not-call list")?;
            } else {
                return Err(UserError(format!("{phone} is not on the do-not-call list")).into());
            }
        }
        DncAction::List => {
            let list = store.dnc_list().await.map_err(user)?;
            if list.is_empty() {
                writeln!(out, "the do-not-call list is empty")?;
            }
            for e in list {
                writeln!(
                    out,
                    "{}  {}  {}  {}",
                    e.phone, e.added_at, e.source, e.reason
                )?;
            }
        }
        DncAction::Import { file } => {
            let reader = std::fs::File::open(&file)
                .map_err(|e| UserError(format!("cannot read {}: {e}", file.display())))?;
            let mut csv = csv::ReaderBuilder::new()
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(std::io::BufReader::new(reader));
            let headers: Vec<String> = csv
                .headers()
                .map_err(|e| UserError(format!("{}: {e}", file.display())))?
                .iter()
                .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
                .collect();
            let phone_col = headers.iter().position(|h| h == "phone").ok_or_else(|| {
                UserError(format!(
                    "{}: no `phone` column (columns found: {})",
                    file.display(),
                    headers.join(", ")
                ))
            })?;
            let reason_col = headers.iter().position(|h| h == "reason");
            let mut entries = Vec::new();
            let mut rejected = 0u64;
            for (i, record) in csv.records().enumerate() {
                let line = i + 2;
                let record = match record {
                    Ok(r) => r,
                    Err(e) => {
                        rejected += 1;
                        writeln!(
                            out,
                            "line {line}: unreadable row: {}",
                            bounded(&e.to_string(), MAX_PRINTED)
                        )?;
                        continue;
                    }
                };
                let raw = record.get(phone_col).unwrap_or("");
                match number(raw, config) {
                    Ok(phone) => {
                        let reason = reason_col
                            .and_then(|c| record.get(c))
                            .filter(|r| !r.is_empty())
                            .unwrap_or("imported")
                            .to_string();
                        entries.push((phone, bounded(&reason, 200)));
                    }
                    Err(e) => {
                        rejected += 1;
                        writeln!(out, "line {line}: {}", bounded(&e.to_string(), MAX_PRINTED))?;
                    }
                }
            }
            let source = format!("import of {}", file.display());
            let added = store.dnc_add_many(&entries, &source).await.map_err(user)?;
            writeln!(
                out,
                "added {added} numbers to the do-not-call list ({} already there, {rejected} rejected)",
                entries.len() as u64 - added
            )?;
        }
    }
    Ok(())
}

pub async fn export(
    store: &Store,
    campaign: &str,
    format: crate::export::Format,
    out: Option<&std::path::Path>,
    filter: Option<crate::model::filter::Filter>,
) -> Result<()> {
    use std::io::IsTerminal;
    let c = store.campaign_by_name(campaign).await.map_err(user)?;
    let only = match &filter {
        Some(filter) => Some(store.resolve_filter(filter).await.map_err(user)?),
        None => None,
    };
    // A file is written under a temporary name and renamed once complete: an export that
    // fails or is stopped leaves no partial file behind.
    let partial = out.map(|path| {
        let mut name = path.as_os_str().to_owned();
        name.push(".partial");
        std::path::PathBuf::from(name)
    });
    let sink: Box<dyn Write> = match &partial {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| UserError(format!("cannot write {}: {e}", path.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let bar = std::io::stderr().is_terminal() && out.is_some();
    let total = c.contacts_total.max(1);
    let written = std::sync::atomic::AtomicU64::new(0);
    let exported = crate::export::export(store, c.id, format, sink, only.as_ref(), |n| {
        written.store(n, std::sync::atomic::Ordering::Relaxed);
        if bar {
            eprint!(
                "\rexported {n} of {total} contacts ({:.0} %)",
                n as f64 * 100.0 / total as f64
            );
        }
    });
    let result = tokio::select! {
        result = exported => result.map_err(|e| match e {
            crate::export::ExportError::Store(s) => user(s),
            other => UserError(other.to_string()).into(),
        }),
        // Ctrl-C or SIGTERM: the export stops where it is (at least this many rows written).
        signal = crate::shutdown::requested() => {
            if bar {
                eprintln!();
            }
            let n = written.load(std::sync::atomic::Ordering::Relaxed);
            Err(UserError(match out {
                Some(path) => format!(
                    "{signal}: export stopped after {n}+ rows; {} was not written",
                    path.display()
                ),
                None => format!("{signal}: export stopped after {n}+ rows; the output is incomplete"),
            })
            .into())
        }
    };
    let n = match (result, &partial) {
        (Ok(n), _) => n,
        (Err(e), Some(partial)) => {
            let _ = std::fs::remove_file(partial);
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    if let (Some(path), Some(partial)) = (out, &partial) {
        std::fs::rename(partial, path)
            .map_err(|e| UserError(format!("cannot write {}: {e}", path.display())))?;
        if bar {
            eprintln!();
        }
        eprintln!("exported {n} contacts of {} to {}", c.name, path.display());
    }
    Ok(())
}

pub async fn why(store: &Store, config: &Config, raw: &str) -> Result<()> {
    let phone = number(raw, config)?;
    let mut out = std::io::stdout().lock();
    match store
        .dnc_list()
        .await
        .map_err(user)?
        .into_iter()
        .find(|e| e.phone == phone)
    {
        Some(e) => writeln!(
            out,
            "{phone}: on the do-not-call list since {} ({}, {})",
            e.added_at, e.source, e.reason
        )?,
        None => writeln!(out, "{phone}: not on the do-not-call list")?,
    }
    let rows = store.why(&phone).await.map_err(user)?;
    if rows.is_empty() {
        writeln!(out, "no decision recorded about {phone}")?;
    }
    for r in rows {
        let call = r.call_id.map(|c| format!(" call #{c}")).unwrap_or_default();
        writeln!(
            out,
            "{}  {:<10} {:<16}{}  {}",
            r.at,
            r.decision,
            r.campaign.as_deref().unwrap_or("-"),
            call,
            r.reason
        )?;
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
            // Ctrl-C (or SIGTERM) stops it at the parser's next yield; its rows are removed.
            let report = import_contacts_until(
                store,
                c.id,
                reader,
                &config.import,
                |rows| eprint!("\rread {rows} rows…"),
                crate::shutdown::requested(),
            )
            .await
            .map_err(|e| match e {
                crate::import::ImportError::Store(s) => user(s),
                crate::import::ImportError::Cancelled(_)
                | crate::import::ImportError::Interrupted { .. } => {
                    eprintln!();
                    UserError(e.to_string()).into()
                }
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
                "imported {} contacts into {} ({} rejected, {} duplicates, {} unverified, {} in E.164 checked for length only, {} with no known zone: the campaign's) in {:.1}s",
                report.imported,
                c.name,
                report.rejected.len(),
                report.duplicates,
                report.unverified,
                report.length_checked_only,
                report.zone_ambiguous,
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

/// What a listing takes (`calls`, `contacts`): which rows, how many, how printed.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    pub campaign: Option<String>,
    /// A filter: `status = FAILED and attempts >= 2`, `reason ~ busy or zone =
    /// America/Chicago`, or `@NAME` for a saved one (README, "Filters").
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Print only how many rows match (exactly).
    #[arg(long)]
    pub count: bool,
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `calls` lists.
#[derive(Debug, clap::Args)]
pub struct CallList {
    /// QUEUED, RINGING, IN_PROGRESS, FORWARDING, ENDED, FAILED, SCHEDULED.
    #[arg(long)]
    pub status: Option<String>,
    #[command(flatten)]
    pub list: ListArgs,
}

/// A `--where` expression parsed, or one line saying where it is wrong; `@NAME` is the
/// saved filter of that name.
pub async fn where_filter(store: &Store, text: &str) -> Result<crate::model::filter::Filter> {
    let shown = bounded(text, MAX_PRINTED);
    let (expression, from) = match text.trim().strip_prefix('@') {
        Some(name) => {
            let saved = store.saved_filters().await.map_err(user)?;
            match saved.into_iter().find(|f| f.name == name) {
                Some(f) => (f.expression, format!(" (saved filter {name})")),
                None => {
                    return Err(
                        UserError(format!("--where {shown:?}: no saved filter {name}")).into(),
                    );
                }
            }
        }
        None => (text.to_string(), String::new()),
    };
    Ok(crate::model::filter::parse(&expression)
        .map_err(|e| UserError(format!("--where {shown:?}{from}: {e}")))?)
}

/// `switchboard filters`: the saved filters, shared by every console and command.
pub async fn filters(store: &Store, action: Option<FilterAction>) -> Result<()> {
    let actor = crate::ops::Actor::Cli;
    match action.unwrap_or(FilterAction::List) {
        FilterAction::List => {
            let saved = store.saved_filters().await.map_err(user)?;
            if saved.is_empty() {
                println!("no saved filters (switchboard filters save NAME EXPR)");
            }
            for f in saved {
                println!(
                    "{:<24} {}  ({} {})",
                    f.name, f.expression, f.saved_by, f.saved_at
                );
            }
        }
        FilterAction::Save { name, expression } => {
            let line = crate::ops::save_filter(store, &name, &expression, actor)
                .await
                .map_err(UserError)?;
            println!("{line}");
        }
        FilterAction::Delete { name } => {
            let line = crate::ops::delete_filter(store, &name, actor)
                .await
                .map_err(UserError)?;
            println!("{line}");
        }
    }
    Ok(())
}

pub async fn calls(store: &Store, list: CallList) -> Result<()> {
    let CallList {
        status,
        list:
            ListArgs {
                campaign,
                filter,
                count,
                limit,
                json,
            },
    } = list;
    let filter = match filter.as_deref() {
        Some(text) => Some(where_filter(store, text).await?),
        None => None,
    };
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
        filter,
        sort: CallSort::Newest,
        offset: 0,
        limit: limit.max(1),
        anchor: None,
    };
    if count {
        println!("{}", store.call_count(&query).await.map_err(user)?);
        return Ok(());
    }
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
            let transcript = store.transcript(r.id).await.map_err(user)?;
            if !transcript.is_empty()
                && let Some(fields) = line.as_object_mut()
            {
                // Speakers as stored (like `status`), seconds from the call's start.
                let lines: Vec<serde_json::Value> = transcript
                    .iter()
                    .map(|l| {
                        serde_json::json!({"speaker": l.speaker.as_str(), "at_s": l.at_s, "text": l.text})
                    })
                    .collect();
                fields.insert("transcript".into(), lines.into());
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
        DispatchAction::Stop {
            end_calls,
            campaign,
            then,
            yes,
        } => super::live::stop(store, config, end_calls, campaign, then, yes).await?,
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

/// What `switchboard status` checks, named as `/readyz` names them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceChecks {
    pub database: bool,
    pub lease: bool,
    pub vapi_key: bool,
}

/// `switchboard status`: whether an engine is ready to dispatch from this database, read
/// from it (`store` is None when it could not be opened). True when ready.
pub async fn service_status(store: Option<&Store>, config: &Config, json: bool) -> Result<bool> {
    let control = match store {
        Some(store) => store.engine_control().await.ok(),
        None => None,
    };
    let engine = match (store, &control) {
        (Some(store), Some(_)) => store
            .lease_status(config.vapi.lease_timeout_ms as i64)
            .await
            .ok()
            .flatten()
            .map(|(holder, _)| holder.name()),
        _ => None,
    };
    let checks = ServiceChecks {
        database: control.is_some(),
        lease: engine.is_some(),
        vapi_key: control
            .as_ref()
            .and_then(|c| c.pause())
            .is_none_or(|p| p.cause != crate::model::StopCause::Credentials),
    };
    let ready = checks.database && checks.lease && checks.vapi_key;
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::json!({ "ready": ready, "checks": checks, "engine": engine });
        writeln!(out, "{line}")?;
    } else {
        let yes = |ok: bool| if ok { "ok" } else { "FAILED" };
        writeln!(out, "ready: {}", if ready { "yes" } else { "no" })?;
        writeln!(out, "  database: {}", yes(checks.database))?;
        match &engine {
            Some(name) => writeln!(out, "  lease: held by {name}")?,
            None => writeln!(out, "  lease: FAILED (no live engine holds it)")?,
        }
        writeln!(
            out,
            "  vapi key: {}",
            if checks.vapi_key {
                "ok"
            } else {
                "FAILED (Vapi refused it: dispatch is paused)"
            }
        )?;
    }
    Ok(ready)
}
