//! What follows a conversation, applied: a campaign's follow-up settings, the decision once
//! both a call's end and its analysis are known (`model::policy::follow_up` decides), the
//! contact re-queued in its lane (a finished campaign re-opened), and callbacks booked by
//! hand.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use switchboard_model::policy::follow_up::{
    self, DoneWhen, FollowUp, FollowUpError, FollowUpRules, FollowUps, LaneOrder,
};

use super::{Result, Store, StoreError, Tx, format_time, parse_time};
use crate::model::{CallStatus, CampaignStatus, ContactStatus, EndedClass, Lane};

/// A campaign's settings for what follows its calls, as stored (`campaign create|edit`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FollowUpSettings {
    /// The claim's lane order ([`LaneOrder`] as text).
    pub lane_order: String,
    /// Dials of one contact in all, shared by every rule; 0: none.
    pub max_attempts: i64,
    /// Structured-data field with a requested callback time; None: off.
    pub callback_field: Option<String>,
    /// A tool whose call books a callback; None: none.
    pub callback_tool: Option<String>,
    /// `success` or `FIELD=VALUE`; None: outcome rules off.
    pub done_when: Option<String>,
    pub outcome_field: String,
    /// [`FollowUps`] as text.
    pub follow_ups: String,
    /// The voicemail ladder: the message left on attempt `voicemail_on_attempt` (0: the last
    /// the cap allows); earlier attempts hang up on a voicemail.
    pub voicemail_message: Option<String>,
    pub voicemail_on_attempt: i64,
}

impl Default for FollowUpSettings {
    /// What `campaign create` writes: callbacks from `callback_at`, 3 attempts in all, no
    /// outcome rules, no voicemail message.
    fn default() -> Self {
        let rules = FollowUpRules::default();
        FollowUpSettings {
            lane_order: LaneOrder::default().to_string(),
            max_attempts: rules.max_attempts.into(),
            callback_field: rules.callback_field,
            callback_tool: None,
            done_when: None,
            outcome_field: rules.outcome_field,
            follow_ups: String::new(),
            voicemail_message: None,
            voicemail_on_attempt: 0,
        }
    }
}

/// The longest voicemail message kept (Vapi speaks it; a page of text is plenty).
pub const MAX_VOICEMAIL_MESSAGE: usize = 1_000;

impl FollowUpSettings {
    /// Checks every setting parses (one-line error naming the bad value).
    pub fn validate(&self) -> std::result::Result<(), FollowUpError> {
        LaneOrder::parse(&self.lane_order)?;
        if let Some(done) = &self.done_when {
            DoneWhen::parse(done)?;
        }
        FollowUps::parse(&self.follow_ups)?;
        for field in [&self.callback_field, &self.callback_tool]
            .into_iter()
            .flatten()
            .chain([&self.outcome_field])
        {
            follow_up::field_name(field)?;
        }
        if let Some(m) = &self.voicemail_message
            && (m.trim().is_empty() || m.chars().count() > MAX_VOICEMAIL_MESSAGE)
        {
            return Err(FollowUpError::Voicemail(m.chars().count()));
        }
        if !(0..=100).contains(&self.max_attempts)
            || !(0..=100).contains(&self.voicemail_on_attempt)
        {
            return Err(FollowUpError::Attempts(
                self.max_attempts.max(self.voicemail_on_attempt),
            ));
        }
        Ok(())
    }

    pub fn lanes(&self) -> LaneOrder {
        LaneOrder::parse(&self.lane_order).unwrap_or_default()
    }

    /// The rules in force (a value that no longer parses counts as unset: it is refused when
    /// written).
    pub fn rules(&self) -> FollowUpRules {
        FollowUpRules {
            callback_field: self.callback_field.clone(),
            callback_tool: self.callback_tool.clone(),
            done_when: self
                .done_when
                .as_deref()
                .and_then(|d| DoneWhen::parse(d).ok()),
            outcome_field: self.outcome_field.clone(),
            follow_ups: FollowUps::parse(&self.follow_ups).unwrap_or_default(),
            max_attempts: u32::try_from(self.max_attempts).unwrap_or(0),
        }
    }

    /// The last attempt the rules allow a contact: the shared cap, else the first call and
    /// its status redials.
    pub fn last_attempt(&self, redial_count: i64) -> u32 {
        match u32::try_from(self.max_attempts) {
            Ok(n) if n > 0 => n,
            _ => u32::try_from(redial_count.max(0) + 1).unwrap_or(1),
        }
    }

    /// The voicemail message for attempt `attempt` (1-based) of a contact: only on the
    /// ladder's rung, so earlier attempts hang up on a voicemail.
    pub fn voicemail_for(&self, attempt: u32, redial_count: i64) -> Option<&str> {
        let message = self.voicemail_message.as_deref()?;
        let rung = match u32::try_from(self.voicemail_on_attempt) {
            Ok(n) if n > 0 => n,
            _ => self.last_attempt(redial_count),
        };
        (attempt == rung).then_some(message)
    }

    /// Every setting in force on one line (`campaign edit`, the campaign pane).
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("lanes {}", self.lanes())];
        parts.push(if self.max_attempts > 0 {
            format!("{} attempts at most", self.max_attempts)
        } else {
            "no shared attempt cap".into()
        });
        match (&self.callback_field, &self.callback_tool) {
            (Some(f), Some(t)) => parts.push(format!("callbacks from {f} or tool {t}")),
            (Some(f), None) => parts.push(format!("callbacks from {f}")),
            (None, _) => parts.push("callbacks from calls off".into()),
        }
        if let Some(done) = &self.done_when {
            let rules = if self.follow_ups.is_empty() {
                "no follow-ups".to_string()
            } else {
                format!("{} by {}", self.follow_ups, self.outcome_field)
            };
            parts.push(format!("done when {done}, {rules}"));
        }
        if self.voicemail_message.is_some() {
            parts.push(match self.voicemail_on_attempt {
                n if n > 0 => format!("voicemail message on attempt {n}"),
                _ => "voicemail message on the last attempt".into(),
            });
        }
        parts.join(" · ")
    }
}

const COLUMNS: &str = "lane_order, max_attempts, callback_field, callback_tool, done_when, \
     outcome_field, follow_ups, voicemail_message, voicemail_on_attempt";

/// A campaign's settings inside a transaction.
pub(crate) async fn settings_in(tx: &mut Tx, campaign_id: i64) -> Result<FollowUpSettings> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1"));
    sqlx::query_as(sql)
        .bind(campaign_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::UnknownCampaign(format!("#{campaign_id}")))
}

/// A booked callback, as `switchboard callback` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Booked {
    pub campaign: String,
    pub contact_id: i64,
    pub due: DateTime<Utc>,
    /// Said in the Pending tab and by the command: when, in the contact's zone, and whether
    /// it was moved into the window.
    pub why: String,
}

impl Store {
    pub async fn follow_up_settings(&self, campaign_id: i64) -> Result<FollowUpSettings> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1"));
        sqlx::query_as(sql)
            .bind(campaign_id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::UnknownCampaign(format!("#{campaign_id}")))
    }

    pub async fn set_follow_up_settings(
        &self,
        campaign_id: i64,
        s: &FollowUpSettings,
    ) -> Result<()> {
        s.validate()
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE campaigns SET lane_order = $1, max_attempts = $2, callback_field = $3, \
             callback_tool = $4, done_when = $5, outcome_field = $6, follow_ups = $7, \
             voicemail_message = $8, voicemail_on_attempt = $9 WHERE id = $10",
        )
        .bind(&s.lane_order)
        .bind(s.max_attempts)
        .bind(s.callback_field.as_deref())
        .bind(s.callback_tool.as_deref())
        .bind(s.done_when.as_deref())
        .bind(&s.outcome_field)
        .bind(&s.follow_ups)
        .bind(s.voicemail_message.as_deref())
        .bind(s.voicemail_on_attempt)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Books a callback to `phone` at `at` (RFC 3339, a local date and time, or `HH:MM` in
    /// the contact's zone), by hand: the contact waits in the callback lane until then (or
    /// the window's next opening), a finished campaign re-opens, and the claim checks window,
    /// do-not-call, caps and consent then as for any call. An operator's callback is not held
    /// to the campaign's attempt cap. `campaign`: its name, needed when several campaigns
    /// have the number.
    pub async fn book_callback(
        &self,
        phone: &str,
        campaign: Option<&str>,
        at: &str,
    ) -> Result<Booked> {
        self.book_callback_at(phone, campaign, at, self.clock().now())
            .await
    }

    /// [`Store::book_callback`] as of `now` (tests inject the clock).
    pub async fn book_callback_at(
        &self,
        phone: &str,
        campaign: Option<&str>,
        at: &str,
        now: DateTime<Utc>,
    ) -> Result<Booked> {
        let mut tx = self.write().await?;
        let rows: Vec<(i64, i64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT k.id, g.id, g.name, g.status, k.status, k.timezone FROM contacts k \
             JOIN campaigns g ON g.id = k.campaign_id WHERE k.phone = $1 ORDER BY g.id",
        )
        .bind(phone)
        .fetch_all(&mut *tx)
        .await?;
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| campaign.is_none_or(|name| r.2 == name))
            .collect();
        let (contact_id, campaign_id, name, campaign_status, contact_status, zone) =
            match rows.as_slice() {
                [] => {
                    return Err(StoreError::Conflict(match campaign {
                        Some(c) => format!("campaign {c} has no contact {phone}"),
                        None => format!("no campaign has a contact {phone}"),
                    }));
                }
                [one] => one.clone(),
                several => {
                    let names: Vec<&str> = several.iter().map(|r| r.2.as_str()).collect();
                    return Err(StoreError::Conflict(format!(
                        "{phone} is a contact of {}: say which with --campaign",
                        names.join(", ")
                    )));
                }
            };
        if campaign_status.parse::<CampaignStatus>() == Ok(CampaignStatus::Cancelled) {
            return Err(StoreError::Conflict(format!(
                "campaign {name} is cancelled: no callback can be booked on it"
            )));
        }
        let listed: Option<String> =
            sqlx::query_scalar(crate::q("SELECT reason FROM dnc WHERE phone = ?"))
                .bind(phone)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(reason) = listed {
            return Err(StoreError::Conflict(format!(
                "{phone} is on the do-not-call list ({reason}): no callback booked"
            )));
        }
        if contact_status == ContactStatus::Dialing.as_str() {
            return Err(StoreError::Conflict(format!(
                "{phone} is being called now in {name}: book the callback once the call ends"
            )));
        }
        let (due, why) = callback_in(
            &mut tx,
            (campaign_id, contact_id, phone),
            zone.as_deref(),
            at,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Booked {
            campaign: name,
            contact_id,
            due,
            why,
        })
    }
}

/// An operator's callback for one contact (`campaign_id`, `contact_id`, `phone`) at `at` (in
/// its zone, or the campaign's), in `tx`: it waits in the callback lane, due then (or at the
/// window's next opening), and the decision is logged. Returns when it is due, and why.
pub(crate) async fn callback_in(
    tx: &mut Tx,
    (campaign_id, contact_id, phone): (i64, i64, &str),
    zone: Option<&str>,
    at: &str,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, String)> {
    let (rules, _) = super::policy::rules_in(tx, campaign_id).await?;
    let zone: Tz = zone
        .and_then(|z| z.parse().ok())
        .unwrap_or_else(|| rules.zone());
    let asked = follow_up::parse_callback_time(at, zone, now)
        .ok_or_else(|| StoreError::Conflict(FollowUpError::Time(at.to_string()).to_string()))?;
    let (due, why) =
        follow_up::callback_due(asked, zone, &rules.window(), now, "booked by an operator");
    requeue_in(tx, campaign_id, contact_id, Lane::Callback, due, &why, true).await?;
    super::policy::record_in(
        tx,
        phone,
        Some(campaign_id),
        Some(contact_id),
        None,
        "DEFER",
        &why,
    )
    .await?;
    Ok((due, why))
}

/// Puts a contact back in `lane`, due at `due`, with `why` for the Pending tab; a done
/// contact counts as waiting again and a completed campaign re-opens. `any_state`: also
/// moves a contact already waiting (an operator's booking); otherwise only a done one.
pub(crate) async fn requeue_in(
    tx: &mut Tx,
    campaign_id: i64,
    contact_id: i64,
    lane: Lane,
    due: DateTime<Utc>,
    why: &str,
    any_state: bool,
) -> Result<bool> {
    let was: Option<String> =
        sqlx::query_scalar(crate::q("SELECT status FROM contacts WHERE id = ?"))
            .bind(contact_id)
            .fetch_optional(&mut **tx)
            .await?;
    let was = was.and_then(|s| s.parse::<ContactStatus>().ok());
    let finished = matches!(was, Some(ContactStatus::Done | ContactStatus::Skipped));
    let movable = finished || (any_state && was == Some(ContactStatus::Pending));
    if !movable {
        return Ok(false);
    }
    sqlx::query(crate::q(
        "UPDATE contacts SET status = ?, lane = ?, eligible_at = ?, eligible_reason = ?, \
         skip_reason = NULL, redials = redials + ? WHERE id = ?",
    ))
    .bind(ContactStatus::Pending)
    .bind(lane)
    .bind(format_time(due))
    .bind(why)
    .bind(i64::from(finished))
    .bind(contact_id)
    .execute(&mut **tx)
    .await?;
    if finished {
        sqlx::query(crate::q(
            "UPDATE campaigns SET contacts_done = contacts_done - 1 WHERE id = ?",
        ))
        .bind(campaign_id)
        .execute(&mut **tx)
        .await?;
        super::campaigns::reopen_in(tx, campaign_id).await?;
    }
    Ok(true)
}

/// Decides and applies what follows a call's conversation, once: when the call has ended
/// with a conversation, its analysis has arrived and nothing was decided yet. Called when
/// the end is recorded and when the analysis is, whichever comes second decides.
pub(crate) async fn follow_up_in(tx: &mut Tx, call_id: i64) -> Result<Option<FollowUp>> {
    type CallRow = (
        i64,
        i64,
        CallStatus,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let call: Option<CallRow> = sqlx::query_as(crate::q(
        "SELECT campaign_id, contact_id, status, ended_reason, started_at, ended_at, follow_up, \
         end_cause FROM calls WHERE id = ?",
    ))
    .bind(call_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((campaign_id, contact_id, status, reason, started, ended, decided, ours)) = call
    else {
        return Ok(None);
    };
    let Some(reason) = reason else {
        return Ok(None);
    };
    let answered = started.is_some();
    let conversation =
        crate::model::is_conversation(&reason) || (answered && reason != "voicemail");
    let outcome = crate::model::classify_ended_reason(&reason, answered) == EndedClass::Outcome;
    if status != CallStatus::Ended
        || decided.is_some()
        || ours.is_some()
        || !conversation
        || !outcome
    {
        return Ok(None);
    }
    let analysis: Option<(Option<String>, Option<String>, Option<String>)> =
        sqlx::query_as(crate::q(
            "SELECT success_evaluation, structured_data, tool_calls FROM call_analysis \
             WHERE call_id = ?",
        ))
        .bind(call_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some((evaluation, structured, tools)) = analysis else {
        return Ok(None);
    };
    let structured = structured.and_then(|s| serde_json::from_str(&s).ok());
    let tools = tools.and_then(|s| serde_json::from_str(&s).ok());
    let report = follow_up::Report {
        success_evaluation: evaluation.as_deref(),
        structured: structured.as_ref(),
        tool_calls: tools.as_ref(),
    };
    let (redials, zone, phone): (i64, Option<String>, String) = sqlx::query_as(crate::q(
        "SELECT redials, timezone, phone FROM contacts WHERE id = ?",
    ))
    .bind(contact_id)
    .fetch_one(&mut **tx)
    .await?;
    let settings = settings_in(tx, campaign_id).await?;
    let (rules, _) = super::policy::rules_in(tx, campaign_id).await?;
    let zone: Tz = zone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or_else(|| rules.zone());
    let ended_at = ended
        .as_deref()
        .and_then(parse_time)
        .unwrap_or_else(|| tx.clock().now());
    let attempts = u32::try_from(redials.max(0) + 1).unwrap_or(u32::MAX);
    let decision = follow_up::follow_up(
        &settings.rules(),
        &report,
        attempts,
        ended_at,
        zone,
        &rules.window(),
    );
    let written = sqlx::query(crate::q(
        "UPDATE calls SET follow_up = ? WHERE id = ? AND follow_up IS NULL",
    ))
    .bind(decision.why())
    .bind(call_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if written == 0 {
        return Ok(None);
    }
    let (lane, due, why) = match &decision {
        FollowUp::Done(_) => return Ok(Some(decision)),
        FollowUp::Callback { at, why } => (Lane::Callback, *at, why),
        FollowUp::Again { at, why } => (Lane::Redial, *at, why),
    };
    if requeue_in(tx, campaign_id, contact_id, lane, due, why, false).await? {
        super::policy::record_in(
            tx,
            &phone,
            Some(campaign_id),
            Some(contact_id),
            Some(call_id),
            "DEFER",
            why,
        )
        .await?;
    }
    Ok(Some(decision))
}
