//! Records for the compliance rules (`crate::policy` decides): campaign rules, the
//! do-not-call list, the decisions log, and the facts the claim gathers about a contact.
//! Statements use `$n` placeholders and standard SQL (shared with a PostgreSQL backend).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Result, Store, StoreError, Tx, format_time};
use switchboard_model::policy::schedule::Schedule;
use switchboard_model::policy::{Caps, Facts, Rules, Window, WindowState};

/// A campaign's rules as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct CampaignRules {
    pub call_window: String,
    pub call_days: String,
    pub timezone: String,
    pub cap_per_day: i64,
    pub cap_per_week: i64,
    #[sqlx(try_from = "super::Flag")]
    pub require_consent: bool,
    /// Structured-data field of the call analysis that puts the number on the do-not-call
    /// list when true; `None`: no such rule.
    pub dnc_field: Option<String>,
    /// Ended reasons redialled, comma-separated.
    pub redial_reasons: String,
    pub redial_delay_s: i64,
    /// Redials per contact (0: never).
    pub redial_count: i64,
    /// A state rule pack narrowing the window and caps (`policy::packs`); None: none.
    pub rule_pack: Option<String>,
    /// A number another campaign called in the last this-many days is skipped (0: off).
    pub suppress_days: i64,
    /// The runaway guard: a live call longer than this many seconds is ended (0: off).
    pub max_call_s: i64,
    /// … or one whose cost so far passes this many dollars (0: off).
    pub max_call_cost: f64,
    /// … or whose assistant says the same line this many times in a row (0: off).
    pub end_on_repeats: i64,
    /// Number health: bench a pool number whose answer rate is below this share of its
    /// peers' (0: off, only flagged).
    pub rest_numbers_below: f64,
    /// The scheduled start and end (stored times); written by `campaign start --at
    /// --end-by` ([`Store::set_campaign_schedule`]), never by the rule edits.
    pub starts_at: Option<String>,
    pub ends_by: Option<String>,
}

impl CampaignRules {
    /// The compliance defaults `campaign create` writes: 08:00-21:00, Monday to Saturday,
    /// at most 3 calls a number in 24 h and 7 in 7 days.
    pub fn compliance_default(timezone: &str) -> CampaignRules {
        let w = Window::default();
        let caps = Caps::default();
        CampaignRules {
            call_window: w.hours(),
            call_days: w.days.to_string(),
            timezone: timezone.to_string(),
            cap_per_day: caps.per_day.into(),
            cap_per_week: caps.per_week.into(),
            require_consent: false,
            dnc_field: Some("do_not_call".into()),
            redial_reasons: switchboard_model::policy::Redial::default()
                .reasons
                .join(","),
            redial_delay_s: switchboard_model::policy::Redial::default()
                .delay
                .num_seconds(),
            redial_count: switchboard_model::policy::Redial::default().count.into(),
            rule_pack: None,
            suppress_days: 0,
            max_call_s: 0,
            max_call_cost: 0.0,
            end_on_repeats: 0,
            rest_numbers_below: 0.0,
            starts_at: None,
            ends_by: None,
        }
    }

    /// The pack in force (None when unset or no longer known).
    pub fn pack(&self) -> Option<&'static switchboard_model::policy::packs::RulePack> {
        self.rule_pack
            .as_deref()
            .and_then(switchboard_model::policy::packs::find)
    }

    pub fn redial(&self) -> switchboard_model::policy::Redial {
        switchboard_model::policy::Redial {
            reasons: self
                .redial_reasons
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(String::from)
                .collect(),
            delay: chrono::Duration::seconds(self.redial_delay_s.max(0)),
            count: u32::try_from(self.redial_count).unwrap_or(0),
        }
    }

    /// The parsed window (a stored rule that no longer parses is treated as closed-all-week
    /// would be unsafe to guess at: it is refused when written, so this falls back to the
    /// compliance default).
    pub fn window(&self) -> Window {
        let own = Window::parse(&self.call_window, &self.call_days).unwrap_or_default();
        match self.pack() {
            Some(pack) => own.intersect(&pack.window),
            None => own,
        }
    }

    pub fn zone(&self) -> Tz {
        self.timezone.parse().unwrap_or(Tz::UTC)
    }

    /// The scheduled start and end (a stored time that no longer reads is no bound).
    pub fn schedule(&self) -> Schedule {
        let read = |t: &Option<String>| t.as_deref().and_then(super::parse_time);
        Schedule {
            starts_at: read(&self.starts_at),
            ends_by: read(&self.ends_by),
        }
    }

    /// The rules in force for one contact (the pack's caps applied).
    pub fn rules(&self) -> Rules {
        let own = Caps {
            per_day: u32::try_from(self.cap_per_day).unwrap_or(0),
            per_week: u32::try_from(self.cap_per_week).unwrap_or(0),
        };
        Rules {
            require_consent: self.require_consent,
            caps: match self.pack() {
                Some(pack) => own.strictest(pack.caps),
                None => own,
            },
            suppress_days: u32::try_from(self.suppress_days).unwrap_or(0),
        }
    }

    /// Every rule in force on one line (`campaign edit`, the console's campaign pane).
    pub fn summary(&self) -> String {
        let w = self.window();
        let redial = self.redial();
        format!(
            "{} {}{} (default zone {}) · caps {} · consent {} · redial {}{}",
            w.hours(),
            w.days,
            match self.pack() {
                Some(p) => format!(" (pack {})", p.name),
                None => String::new(),
            },
            self.timezone,
            self.rules().caps,
            if self.require_consent {
                "required"
            } else {
                "not required"
            },
            if redial.count == 0 || redial.reasons.is_empty() {
                "off".to_string()
            } else {
                format!("{}x after {} min", redial.count, redial.delay.num_minutes())
            },
            if self.suppress_days > 0 {
                format!(" · duplicates skipped {} days", self.suppress_days)
            } else {
                String::new()
            }
        ) + &self.guard_summary()
            + &self
                .schedule_line()
                .map(|line| format!(" · {line}"))
                .unwrap_or_default()
    }

    /// "starts Mon 07 Dec 09:00, ends by Mon 07 Dec 17:00 America/Chicago" (None: no
    /// schedule), in the campaign's zone.
    pub fn schedule_line(&self) -> Option<String> {
        let schedule = self.schedule();
        let zone = self.zone();
        let at = |t: DateTime<Utc>| t.with_timezone(&zone).format("%a %d %b %H:%M").to_string();
        let parts: Vec<String> = [
            schedule.starts_at.map(|t| format!("starts {}", at(t))),
            schedule.ends_by.map(|t| format!("ends by {}", at(t))),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| format!("{} {zone}", parts.join(", ")))
    }

    /// The runaway guard's limits in force (empty when off).
    fn guard_summary(&self) -> String {
        let mut parts = Vec::new();
        if self.max_call_s > 0 {
            parts.push(format!("longer than {} s", self.max_call_s));
        }
        if self.max_call_cost > 0.0 {
            parts.push(format!("costing over ${:.2}", self.max_call_cost));
        }
        if self.end_on_repeats > 0 {
            parts.push(format!("a line repeated {}x", self.end_on_repeats));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" · ends calls {}", parts.join(", "))
        }
    }

    /// The runaway guard in force, for the engine.
    pub fn guard(&self) -> switchboard_model::live::Guard {
        switchboard_model::live::Guard {
            max_call_s: u64::try_from(self.max_call_s).unwrap_or(0),
            max_call_cost: if self.max_call_cost.is_finite() {
                self.max_call_cost.max(0.0)
            } else {
                0.0
            },
            end_on_repeats: u32::try_from(self.end_on_repeats).unwrap_or(0),
        }
    }

    /// Checks every rule parses (one-line error naming the bad value).
    pub fn validate(&self) -> std::result::Result<(), switchboard_model::policy::PolicyError> {
        let own = Window::parse(&self.call_window, &self.call_days)?;
        switchboard_model::policy::parse_zone(&self.timezone)?;
        if let Some(name) = &self.rule_pack {
            let pack = switchboard_model::policy::packs::find(name)
                .ok_or_else(|| switchboard_model::policy::PolicyError::Pack(name.clone()))?;
            let w = own.intersect(&pack.window);
            if w.start >= w.end || w.days.is_empty() {
                return Err(switchboard_model::policy::PolicyError::PackLeavesNothing(
                    pack.name.to_string(),
                    self.call_window.clone(),
                    self.call_days.clone(),
                ));
            }
        }
        if switchboard_model::policy::limits::SUPPRESS_DAYS
            .check(self.suppress_days as f64)
            .is_err()
        {
            return Err(switchboard_model::policy::PolicyError::SuppressDays(
                self.suppress_days,
            ));
        }
        Ok(())
    }
}

/// One entry of the do-not-call list.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct DncEntry {
    pub phone: String,
    pub reason: String,
    pub source: String,
    pub added_at: String,
}

/// One recorded decision about a number.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct DecisionRow {
    pub at: String,
    pub phone: String,
    pub campaign: Option<String>,
    pub call_id: Option<i64>,
    pub decision: String,
    pub reason: String,
}

const RULE_COLUMNS: &str = "call_window, call_days, timezone, cap_per_day, cap_per_week, require_consent, dnc_field, \
     redial_reasons, redial_delay_s, redial_count, rule_pack, suppress_days, max_call_s, max_call_cost, \
     end_on_repeats, rest_numbers_below, starts_at, ends_by";

impl Store {
    pub async fn campaign_rules(&self, campaign_id: i64) -> Result<CampaignRules> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM campaigns WHERE id = $1"
        ));
        sqlx::query_as(sql)
            .bind(campaign_id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::UnknownCampaign(format!("#{campaign_id}")))
    }

    pub async fn set_campaign_rules(&self, campaign_id: i64, rules: &CampaignRules) -> Result<()> {
        rules
            .validate()
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE campaigns SET call_window = $1, call_days = $2, timezone = $3, \
             cap_per_day = $4, cap_per_week = $5, require_consent = $6, dnc_field = $7, \
             redial_reasons = $8, redial_delay_s = $9, redial_count = $10, rule_pack = $11, \
             suppress_days = $12, max_call_s = $13, max_call_cost = $14, end_on_repeats = $15, \
             rest_numbers_below = $16 WHERE id = $17",
        )
        .bind(&rules.call_window)
        .bind(&rules.call_days)
        .bind(&rules.timezone)
        .bind(rules.cap_per_day)
        .bind(rules.cap_per_week)
        .bind(i64::from(rules.require_consent))
        .bind(rules.dnc_field.as_deref())
        .bind(&rules.redial_reasons)
        .bind(rules.redial_delay_s)
        .bind(rules.redial_count)
        .bind(rules.rule_pack.as_deref())
        .bind(rules.suppress_days)
        .bind(rules.max_call_s)
        .bind(rules.max_call_cost)
        .bind(rules.end_on_repeats)
        .bind(rules.rest_numbers_below)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or with `None` clears) a campaign's scheduled start and end.
    pub async fn set_campaign_schedule(&self, campaign_id: i64, schedule: &Schedule) -> Result<()> {
        let mut tx = self.write().await?;
        let changed =
            sqlx::query("UPDATE campaigns SET starts_at = $1, ends_by = $2 WHERE id = $3")
                .bind(schedule.starts_at.map(format_time))
                .bind(schedule.ends_by.map(format_time))
                .bind(campaign_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 0 {
            return Err(StoreError::UnknownCampaign(format!("#{campaign_id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The zones of a campaign's contacts that have one of their own.
    pub async fn campaign_zones(&self, campaign_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT timezone FROM campaign_zones WHERE campaign_id = $1 AND timezone <> '' \
             ORDER BY timezone",
        )
        .bind(campaign_id)
        .fetch_all(self.reader())
        .await?)
    }

    /// Whether any of the campaign's zones is in its calling window at `now`, and if none,
    /// when the first opens.
    pub async fn window_state(&self, campaign_id: i64, at: DateTime<Utc>) -> Result<WindowState> {
        let rules = self.campaign_rules(campaign_id).await?;
        let zones: Vec<String> =
            sqlx::query_scalar("SELECT timezone FROM campaign_zones WHERE campaign_id = $1")
                .bind(campaign_id)
                .fetch_all(self.reader())
                .await?;
        Ok(window_of(&rules, &zones, at))
    }

    /// Adds (or updates the reason of) a number on the do-not-call list. Any contact with
    /// this number not yet claimed is skipped at its claim.
    pub async fn dnc_add(&self, phone: &str, reason: &str, source: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let added = dnc_add_in(&mut tx, phone, reason, source).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Adds many numbers in one transaction; returns how many were new.
    pub async fn dnc_add_many(&self, entries: &[(String, String)], source: &str) -> Result<u64> {
        let mut tx = self.write().await?;
        let mut added = 0;
        for (phone, reason) in entries {
            if dnc_add_in(&mut tx, phone, reason, source).await? {
                added += 1;
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    pub async fn dnc_remove(&self, phone: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let removed = sqlx::query("DELETE FROM dnc WHERE phone = $1")
            .bind(phone)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if removed {
            record_in(
                &mut tx,
                phone,
                None,
                None,
                None,
                "DNC_REMOVE",
                "removed from the do-not-call list",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    pub async fn dnc_list(&self) -> Result<Vec<DncEntry>> {
        Ok(sqlx::query_as(
            "SELECT phone, reason, source, added_at FROM dnc ORDER BY added_at, phone",
        )
        .fetch_all(self.reader())
        .await?)
    }

    /// A number's history across campaigns: every decision recorded about it, oldest first.
    pub async fn why(&self, phone: &str) -> Result<Vec<DecisionRow>> {
        let decisions: Vec<DecisionRow> = sqlx::query_as(
            "SELECT d.at, d.phone, g.name AS campaign, d.call_id, d.decision, d.reason \
             FROM policy_decisions d LEFT JOIN campaigns g ON g.id = d.campaign_id \
             WHERE d.phone = $1 ORDER BY d.id",
        )
        .bind(phone)
        .fetch_all(self.reader())
        .await?;
        // What operators did to its live calls, in time order among the claim's decisions
        // (a stable sort keeps the decisions' own order where the times are equal).
        let mut all = decisions;
        all.extend(self.live_history(phone).await?);
        all.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(all)
    }

    /// A campaign's calls with the call each follows (`redial_of`), oldest first.
    pub async fn call_links(&self, campaign_id: i64) -> Result<Vec<(i64, Option<i64>)>> {
        Ok(
            sqlx::query_as("SELECT id, redial_of FROM calls WHERE campaign_id = $1 ORDER BY id")
                .bind(campaign_id)
                .fetch_all(self.reader())
                .await?,
        )
    }

    /// Contacts a campaign skipped for a policy reason.
    pub async fn skipped_count(&self, campaign_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM contacts WHERE campaign_id = $1 AND status = $2",
        )
        .bind(campaign_id)
        .bind(crate::model::ContactStatus::Skipped)
        .fetch_one(self.reader())
        .await?)
    }
}

pub(crate) fn window_of(rules: &CampaignRules, zones: &[String], at: DateTime<Utc>) -> WindowState {
    let mut tzs: Vec<Tz> = zones.iter().filter_map(|z| z.parse().ok()).collect();
    // '' stands for contacts without a zone: they are in the campaign's.
    let default = rules.zone();
    // No contact yet: the campaign's own zone says whether it would be open.
    if (tzs.is_empty() || zones.iter().any(String::is_empty)) && !tzs.contains(&default) {
        tzs.push(default);
    }
    switchboard_model::policy::scheduled_window_state(
        &rules.window(),
        &tzs,
        &rules.schedule(),
        default,
        at,
    )
}

/// The analysis rule: when the call's campaign names a structured-data field and the
/// analysis says it is true, the number goes on the do-not-call list (same transaction as
/// the analysis). Returns whether it was added.
pub(crate) async fn dnc_from_analysis_in(
    tx: &mut Tx,
    call_id: i64,
    structured_data: Option<&str>,
) -> Result<bool> {
    let Some(data) = structured_data else {
        return Ok(false);
    };
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT k.phone, g.dnc_field FROM calls c JOIN contacts k ON k.id = c.contact_id \
         JOIN campaigns g ON g.id = c.campaign_id WHERE c.id = $1",
    )
    .bind(call_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((phone, Some(field))) = row else {
        return Ok(false);
    };
    if !switchboard_model::policy::analysis_asks_dnc(data, &field) {
        return Ok(false);
    }
    let reason = format!("the call analysis of call #{call_id} says {field} = true");
    dnc_add_in(tx, &phone, &reason, "call analysis").await
}

pub(crate) async fn dnc_add_in(
    tx: &mut Tx,
    phone: &str,
    reason: &str,
    source: &str,
) -> Result<bool> {
    let added = sqlx::query(
        "INSERT INTO dnc (phone, reason, source, added_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (phone) DO NOTHING",
    )
    .bind(phone)
    .bind(reason)
    .bind(source)
    .bind(tx.now())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if added {
        record_in(
            tx,
            phone,
            None,
            None,
            None,
            "DNC_ADD",
            &format!("added to the do-not-call list by {source}: {reason}"),
        )
        .await?;
    }
    Ok(added)
}

/// Appends one decision to the log.
pub(crate) async fn record_in(
    tx: &mut Tx,
    phone: &str,
    campaign_id: Option<i64>,
    contact_id: Option<i64>,
    call_id: Option<i64>,
    decision: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO policy_decisions (at, phone, campaign_id, contact_id, call_id, decision, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.now())
    .bind(phone)
    .bind(campaign_id)
    .bind(contact_id)
    .bind(call_id)
    .bind(decision)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The facts about one contact the decision needs, read inside the claim's transaction.
pub(crate) async fn facts_in(
    tx: &mut Tx,
    campaign_id: i64,
    contact_id: i64,
    phone: &str,
    rules: &Rules,
    at: DateTime<Utc>,
) -> Result<Facts> {
    let dnc: Option<(String, String)> =
        sqlx::query_as("SELECT added_at, reason FROM dnc WHERE phone = $1")
            .bind(phone)
            .fetch_optional(&mut **tx)
            .await?;
    let has_consent: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN consent_source IS NOT NULL AND consent_at IS NOT NULL THEN 1 ELSE 0 END \
         FROM contacts WHERE id = $1",
    )
    .bind(contact_id)
    .fetch_one(&mut **tx)
    .await?;
    let has_consent = has_consent != 0;
    // Calls that reached Vapi or may have (being created or settled), any campaign.
    let since = format_time(at - chrono::Duration::days(7));
    let times: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT c.created_at FROM calls c JOIN contacts k ON k.id = c.contact_id \
         WHERE k.phone = $1 AND c.created_at > $2 \
         AND (c.provider_call_id IS NOT NULL OR c.status IN {})",
        crate::model::sql_in(crate::model::CallStatus::IN_CREATION)
    )))
    .bind(phone)
    .bind(since)
    .fetch_all(&mut **tx)
    .await?;
    let recent_calls = times
        .iter()
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    // Duplicate suppression: the latest call another campaign made to this number inside
    // its span (only looked for when the campaign asks).
    let called_elsewhere = if rules.suppress_days > 0 {
        let since = format_time(at - chrono::Duration::days(i64::from(rules.suppress_days)));
        let row: Option<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT g.name, c.created_at FROM calls c JOIN contacts k ON k.id = c.contact_id \
             JOIN campaigns g ON g.id = c.campaign_id \
             WHERE k.phone = $1 AND c.campaign_id <> $2 AND c.created_at > $3 \
             AND (c.provider_call_id IS NOT NULL OR c.status IN {}) \
             ORDER BY c.created_at DESC LIMIT 1",
            crate::model::sql_in(crate::model::CallStatus::IN_CREATION)
        )))
        .bind(phone)
        .bind(campaign_id)
        .bind(since)
        .fetch_optional(&mut **tx)
        .await?;
        row.and_then(|(name, at)| {
            DateTime::parse_from_rfc3339(&at)
                .ok()
                .map(|t| (name, t.with_timezone(&Utc)))
        })
    } else {
        None
    };
    Ok(Facts {
        dnc,
        has_consent,
        recent_calls,
        called_elsewhere,
    })
}

/// The redial decision for a call that just ended (inside the ending transaction): when the
/// campaign redials this reason and the contact has redials left, the contact goes back to
/// PENDING, eligible at the returned time, with one more redial counted.
pub(crate) async fn redial_in(
    tx: &mut Tx,
    campaign_id: i64,
    contact_id: i64,
    reason: &str,
    talked: bool,
    ended_at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let (rules, _) = rules_in(tx, campaign_id).await?;
    let done: i64 = sqlx::query_scalar("SELECT redials FROM contacts WHERE id = $1")
        .bind(contact_id)
        .fetch_one(&mut **tx)
        .await?;
    let done = u32::try_from(done).unwrap_or(u32::MAX);
    // The status rule's own count, under the one cap every rule shares.
    let shared = super::follow_up::settings_in(tx, campaign_id)
        .await?
        .rules();
    let at = switchboard_model::policy::redial_at(&rules.redial(), reason, talked, done, ended_at)
        .filter(|_| shared.allows_another(done.saturating_add(1)));
    if let Some(at) = at {
        // Said in the Pending tab: which redial of how many, after what.
        let why = format!(
            "redial {} of {} after {reason}",
            done + 1,
            rules.redial_count
        );
        sqlx::query(
            "UPDATE contacts SET redials = redials + 1, eligible_at = $1, eligible_reason = $2, \
             lane = $3 WHERE id = $4",
        )
        .bind(format_time(at))
        .bind(why)
        .bind(crate::model::Lane::Redial)
        .bind(contact_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(at)
}

/// The rules and zones of a campaign inside a transaction.
pub(crate) async fn rules_in(
    tx: &mut Tx,
    campaign_id: i64,
) -> Result<(CampaignRules, Vec<String>)> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM campaigns WHERE id = $1"
    ));
    let rules: CampaignRules = sqlx::query_as(sql)
        .bind(campaign_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::UnknownCampaign(format!("#{campaign_id}")))?;
    let zones = sqlx::query_scalar("SELECT timezone FROM campaign_zones WHERE campaign_id = $1")
        .bind(campaign_id)
        .fetch_all(&mut **tx)
        .await?;
    Ok((rules, zones))
}
