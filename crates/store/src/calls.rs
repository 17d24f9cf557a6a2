//! The call lifecycle as stored: the `calls` table, one row per attempt sequence of a contact.
//! Its states are [`CallStatus`] (drawn in src/model.rs); every transition is one named
//! function below, owning its SQL and the counters it moves, in one transaction:
//!
//! | transition              | from                 | to                    | contact          |
//! |-------------------------|----------------------|-----------------------|------------------|
//! | [`Store::claim_call`]   | —                    | CREATING (+attempt 1) | PENDING → DIALING|
//! | [`Store::begin_attempt`]| CREATING             | CREATING (+attempt n) |                  |
//! | [`Store::record_refused`]| CREATING            | CREATING              |                  |
//! | [`Store::record_ambiguous`]| CREATING          | UNKNOWN               |                  |
//! | [`Store::settle_not_created`]| UNKNOWN         | CREATING              |                  |
//! | [`Store::record_created`]| CREATING, UNKNOWN   | at Vapi (QUEUED…)     |                  |
//! | [`Store::apply_call_update`]| at Vapi          | at Vapi, ENDED        | → DONE / PENDING |
//! | [`Store::close_at_vapi`]| at Vapi              | ENDED (vanished…)     | → DONE           |
//! | [`Store::fail_call`]    | CREATING             | FAILED                | → DONE           |
//! | [`Store::requeue_call`] | CREATING             | REQUEUED              | → PENDING        |
//! | [`Store::withhold_call`]| CREATING (not sent)  | REQUEUED              | → SKIPPED        |
//! | [`Store::retry_call`]   | FAILED / UNKNOWN     | RETRIED / (flag)      | → PENDING        |
//! | [`Store::mark_interrupted`]| CREATING (IN_FLIGHT attempt) | UNKNOWN      |                  |
//!
//! The request is never sent inside a transaction: the intent (CREATING + attempt IN_FLIGHT)
//! is committed before it, the outcome after it.

use super::attempts::{AttemptResult, close_attempt, insert_attempt};
use super::campaigns::complete_if_done;
use super::sql::Sql;
use super::{Result, Store, StoreError, Tx};
use crate::model::{
    AttemptOutcome, CallStatus, ContactStatus, EndedClass, Lane, classify_ended_reason, sql_in,
};
use chrono::{DateTime, Utc};
use switchboard_model::policy::follow_up::LaneOrder;
use switchboard_model::text::format_time;

/// Histogram bucket for calls that were never created at Vapi.
pub const FAILED_BUCKET: &str = "failed-to-create";

/// How often a contact whose phone never rang goes back to the queue before its call FAILS.
pub const MAX_NEVER_RANG: i64 = 3;

/// Contacts skipped or deferred by one claim before it gives the write lock back.
const MAX_DECISIONS_PER_CLAIM: usize = 100;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct Call {
    pub id: i64,
    pub campaign_id: i64,
    pub contact_id: i64,
    pub sequence: i64,
    pub reference: String,
    pub status: CallStatus,
    pub provider_call_id: Option<String>,
    pub attempt_count: i64,
    pub ended_reason: Option<String>,
    #[sqlx(try_from = "super::Flag")]
    pub retry_requested: bool,
    pub engine_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The pool number it was made from (NULL for calls made before pools: the campaign's).
    pub phone_number_id: Option<String>,
    /// Why switchboard is ending it (model::live::EndCause), and what becomes of its contact.
    pub end_cause: Option<String>,
    pub end_then: Option<String>,
    /// Its arm's assistant (None: the campaign's).
    pub assistant_id: Option<String>,
}

const CALL_COLUMNS: &str = "id, campaign_id, contact_id, sequence, reference, status, provider_call_id, \
     attempt_count, ended_reason, retry_requested, engine_id, cost_usd, started_at, ended_at, created_at, updated_at, \
     phone_number_id, end_cause, end_then, assistant_id";

/// A call at Vapi as the tracker follows it: what it reads it by and plans its reads from.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LiveCall {
    pub id: i64,
    pub campaign_id: i64,
    pub provider_call_id: Option<String>,
    /// Its arm's assistant and its pool number (None: the campaign's).
    pub assistant_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub created_at: String,
}

const LIVE_CALL_COLUMNS: &str =
    "id, campaign_id, provider_call_id, assistant_id, phone_number_id, created_at";

/// Everything a worker needs to (re)send the create request of a call.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DialJob {
    pub call_id: i64,
    pub campaign_id: i64,
    pub contact_id: i64,
    pub status: CallStatus,
    pub reference: String,
    pub attempt_count: i64,
    /// Attempts that used up one of the call's retries, the one in flight included (429s do
    /// not count).
    pub retries_used: i64,
    pub assistant_id: String,
    pub phone_number_id: String,
    pub phone: String,
    pub contact_name: Option<String>,
    pub extension: Option<String>,
    pub variables: String,
    /// When the pre-dial hook allowed the call (None: not asked yet).
    pub predial_at: Option<String>,
    /// The campaign's voicemail message, on the ladder's rung only (`assistantOverrides.
    /// voicemailMessage`); earlier attempts hang up on a voicemail.
    pub voicemail_message: Option<String>,
    /// The last attempt's row, outcome and start, when resuming a sequence after a restart.
    pub last_attempt_id: Option<i64>,
    pub last_outcome: Option<AttemptOutcome>,
    pub last_started_at: Option<String>,
    pub last_error: Option<String>,
}

fn job_select() -> String {
    format!(
        "SELECT c.id AS call_id, c.campaign_id, c.contact_id, c.status, c.reference, c.attempt_count, \
         (SELECT count(*) FROM call_attempts r WHERE r.call_id = c.id AND r.outcome NOT IN {}) AS retries_used, \
         coalesce(c.assistant_id, g.assistant_id) AS assistant_id, coalesce(c.phone_number_id, g.phone_number_id) AS phone_number_id, k.phone, k.name AS contact_name, k.extension, k.variables, c.predial_at, \
         CASE WHEN c.voicemail_message = 1 THEN g.voicemail_message END AS voicemail_message, \
         a.id AS last_attempt_id, a.outcome AS last_outcome, a.started_at AS last_started_at, a.error AS last_error \
         FROM calls c JOIN campaigns g ON g.id = c.campaign_id JOIN contacts k ON k.id = c.contact_id \
         LEFT JOIN call_attempts a ON a.call_id = c.id AND a.attempt = c.attempt_count",
        sql_in(&[AttemptOutcome::RateLimited])
    )
}

impl DialJob {
    /// The assistant id Vapi lists the call under (an arm's version cut off).
    pub fn assistant_id(&self) -> &str {
        switchboard_model::arms::assistant_and_version(&self.assistant_id).0
    }

    /// The arm's assistant version, when it names one.
    pub fn assistant_version(&self) -> Option<&str> {
        switchboard_model::arms::assistant_and_version(&self.assistant_id).1
    }
}

/// What Vapi said about a call (from the create response, a poll or a webhook).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallUpdate {
    pub status: Option<CallStatus>,
    pub ended_reason: Option<String>,
    pub cost_usd: Option<f64>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

/// What a recorded update changed, for the engine to react to.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateEffect {
    pub call_id: i64,
    pub campaign_id: i64,
    /// The call reached ENDED with this update.
    pub ended: bool,
    /// How its ended reason is classified (when it ended).
    pub class: Option<EndedClass>,
    pub ended_reason: Option<String>,
    /// The call was answered (Vapi gave a start), and how long it lasted once answered.
    pub answered: bool,
    pub talk_ms: Option<i64>,
    /// The pool number the call was made from (None: the campaign's).
    pub phone_number_id: Option<String>,
}

/// The account's limits, shared by every engine on one PostgreSQL database: checked and
/// taken in the claim's own transaction, under one row lock, so that engines together never
/// exceed what one would.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedLimits {
    /// Calls created per second, all engines together.
    pub rate_per_second: f64,
    /// Calls being created or live at Vapi, all engines together.
    pub concurrency_cap: i64,
}

/// What a claim under shared limits found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    Claimed(Box<DialJob>, i64),
    /// The campaign has no contact to claim.
    Empty,
    /// The shared rate or concurrency cap says wait (about this long).
    Throttled(std::time::Duration),
    /// Every number of the campaign's pool is benched (why): the campaign must pause.
    NumbersBenched(String),
}

/// The `meta` row holding the shared pacer's next free instant (unix ms).
const PACER_ROW: &str = "pacer_next_at_ms";

/// Creates are spaced this much wider than 1/rate on the shared pacer, so that the jitter
/// between a claim and its request reaching Vapi never puts rate + 1 creates in one second.
const SHARED_SPACING: f64 = 1.05;

impl Store {
    /// claim: as [`Store::claim_call`], and on PostgreSQL under the account's shared limits
    /// (`limits`): the claim takes the shared pacer's row lock, counts the calls in flight
    /// of every engine, and claims only when both allow.
    pub async fn claim_call_within(
        &self,
        campaign_id: i64,
        instance: &str,
        engine_id: &str,
        limits: Option<SharedLimits>,
    ) -> Result<Claim> {
        let mut tx = self.write().await?;
        if let Some(limits) = limits
            && super::backend_of(&tx) == super::Backend::Postgres
        {
            // The row stays locked to the commit: the count and the claim below are one
            // engine's at a time. Each statement under it is a round trip every engine waits
            // for, so there are as few as can be.
            let pacer = lock_pacer(&mut tx).await?;
            if let Some(wait) = pacer.wait(tx.clock().now_ms()) {
                return Ok(Claim::Throttled(wait));
            }
            let in_flight: i64 = sqlx::query_scalar(crate::q(format!(
                "SELECT count(*) FROM calls WHERE status IN {} OR status IN {}",
                sql_in(CallStatus::IN_CREATION),
                sql_in(CallStatus::AT_VAPI)
            )))
            .fetch_one(&mut *tx)
            .await?;
            if in_flight >= limits.concurrency_cap {
                return Ok(Claim::Throttled(std::time::Duration::from_millis(50)));
            }
            pacer.take(&mut tx, limits.rate_per_second).await?;
        }
        let claimed = claim_in(
            &mut tx,
            campaign_id,
            instance,
            engine_id,
            self.clock().now(),
        )
        .await?;
        // Nothing claimed and nothing decided: the pacer's slot is not used (rolled back).
        // Skips and deferrals are kept even then.
        if claimed.changed() {
            tx.commit().await?;
        }
        Ok(match (claimed.job, claimed.benched) {
            (Some((job, attempt_id)), _) => Claim::Claimed(Box::new(job), attempt_id),
            (None, Some(why)) => Claim::NumbersBenched(why),
            (None, None) => Claim::Empty,
        })
    }

    /// PostgreSQL: waits for a slot of the shared create pacer (a retry's create counts
    /// against the account's rate like a claim's). Nothing on SQLite (one engine paces alone).
    pub async fn take_create_slot(&self, rate_per_second: f64) -> Result<()> {
        if self.backend() != super::Backend::Postgres {
            return Ok(());
        }
        loop {
            let mut tx = self.write().await?;
            let pacer = lock_pacer(&mut tx).await?;
            let wait = pacer.wait(tx.clock().now_ms());
            if wait.is_none() {
                pacer.take(&mut tx, rate_per_second).await?;
            }
            tx.commit().await?;
            match wait {
                None => return Ok(()),
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// claim: the next PENDING contact of a DIALING campaign becomes DIALING with a new
    /// attempt sequence; a CREATING call row and its first attempt IN_FLIGHT are committed
    /// with it. `None` when the campaign has no contact to claim.
    pub async fn claim_call(
        &self,
        campaign_id: i64,
        instance: &str,
        engine_id: &str,
    ) -> Result<Option<(DialJob, i64)>> {
        self.claim_call_at(campaign_id, instance, engine_id, self.clock().now())
            .await
    }

    /// The claim at a given instant (tests inject the clock). The compliance rules are
    /// enforced here, the one place every call passes: only contacts whose zone is inside
    /// the campaign's calling window at `at`, and not deferred (`eligible_at`), are taken;
    /// each is then decided by [`switchboard_model::policy::decide`] (do-not-call → SKIPPED, no consent
    /// when required → SKIPPED, a cap reached → deferred) and the decision recorded with its
    /// reason, in the same transaction as the call row.
    pub async fn claim_call_at(
        &self,
        campaign_id: i64,
        instance: &str,
        engine_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<(DialJob, i64)>> {
        let mut tx = self.write().await?;
        let claimed = claim_in(&mut tx, campaign_id, instance, engine_id, at).await?;
        if claimed.changed() {
            tx.commit().await?;
        }
        Ok(claimed.job)
    }

    /// begin_attempt: the next attempt of a CREATING call is committed IN_FLIGHT before its
    /// request. Returns the attempt row id and its number.
    pub async fn begin_attempt(&self, call_id: i64) -> Result<(i64, i64)> {
        let mut tx = self.write().await?;
        let call = call_in(&mut tx, call_id).await?;
        expect(&call, &[CallStatus::Creating], "send another attempt")?;
        let number = call.attempt_count + 1;
        let id = insert_attempt(&mut tx, call_id, number).await?;
        tx.commit().await?;
        Ok((id, number))
    }

    /// record_refused: Vapi refused the attempt before any work (429, 503, no connection).
    /// The call stays CREATING and waits to be sent again.
    pub async fn record_refused(
        &self,
        call_id: i64,
        attempt_id: i64,
        result: &AttemptResult,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let call = call_in(&mut tx, call_id).await?;
        expect(&call, &[CallStatus::Creating], "record a refusal")?;
        close_attempt(&mut tx, attempt_id, result).await?;
        touch(&mut tx, call_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// record_ambiguous: the attempt may have created the call. CREATING → UNKNOWN until it is
    /// settled (adopted if found, re-sent only once a complete look-up after the settle time
    /// found nothing).
    pub async fn record_ambiguous(
        &self,
        call_id: i64,
        attempt_id: i64,
        result: &AttemptResult,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let call = call_in(&mut tx, call_id).await?;
        expect(
            &call,
            &[CallStatus::Creating, CallStatus::Unknown],
            "record an unknown outcome",
        )?;
        close_attempt(&mut tx, attempt_id, result).await?;
        set_status(&mut tx, call_id, CallStatus::Unknown).await?;
        tx.commit().await?;
        Ok(())
    }

    /// mark_interrupted: at start, an attempt left IN_FLIGHT by a crash (or by an engine
    /// whose lease was taken over) becomes AMBIGUOUS and its call UNKNOWN.
    pub async fn mark_interrupted(&self, call_id: i64, attempt_id: i64) -> Result<()> {
        let result = AttemptResult {
            outcome: AttemptOutcome::Ambiguous,
            http_status: None,
            error: Some("interrupted: the engine stopped while this request was in flight".into()),
            retry_delay_ms: None,
        };
        self.record_ambiguous(call_id, attempt_id, &result).await
    }

    /// settle_not_created: a complete look-up made after the settle time found no call with
    /// this reference: the ambiguous attempts become NOT_CREATED and the call CREATING again.
    /// Returns whether an operator asked for a retry meanwhile (the flag is cleared).
    pub async fn settle_not_created(&self, call_id: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        let call = call_in(&mut tx, call_id).await?;
        expect(
            &call,
            &[CallStatus::Unknown, CallStatus::Creating],
            "settle as not created",
        )?;
        sqlx::query(crate::q(
            "UPDATE call_attempts SET outcome = ? WHERE call_id = ? AND outcome = ?",
        ))
        .bind(AttemptOutcome::NotCreated)
        .bind(call_id)
        .bind(AttemptOutcome::Ambiguous)
        .execute(&mut *tx)
        .await?;
        sqlx::query(crate::q(
            "UPDATE calls SET status = ?, retry_requested = 0, updated_at = ? WHERE id = ?",
        ))
        .bind(CallStatus::Creating)
        .bind(tx.now())
        .bind(call_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(call.retry_requested)
    }

    /// record_created: the call exists at Vapi, created by this attempt (CREATED) or found by
    /// look-up (ADOPTED): provider id, mapped status, attempt and campaign counters at once.
    pub async fn record_created(
        &self,
        call_id: i64,
        attempt_id: i64,
        outcome: AttemptOutcome,
        provider_call_id: &str,
        update: &CallUpdate,
    ) -> Result<UpdateEffect> {
        let mut tx = self.write().await?;
        let call = call_in(&mut tx, call_id).await?;
        expect(
            &call,
            &[CallStatus::Creating, CallStatus::Unknown],
            "record a created call",
        )?;
        let attempt = AttemptResult {
            outcome,
            http_status: match outcome {
                AttemptOutcome::Created => Some(201),
                _ => None,
            },
            error: None,
            retry_delay_ms: None,
        };
        close_attempt(&mut tx, attempt_id, &attempt).await?;
        // Any other attempt still ambiguous did not create this call (one reference, one call).
        sqlx::query(crate::q(
            "UPDATE call_attempts SET outcome = ? WHERE call_id = ? AND outcome = ?",
        ))
        .bind(AttemptOutcome::NotCreated)
        .bind(call_id)
        .bind(AttemptOutcome::Ambiguous)
        .execute(&mut *tx)
        .await?;
        let at = tx.now();
        sqlx::query(
            crate::q("UPDATE calls SET provider_call_id = ?, status = ?, retry_requested = 0, updated_at = ? WHERE id = ?"),
        )
        .bind(provider_call_id)
        .bind(CallStatus::Queued)
        .bind(&at)
        .bind(call_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(crate::q(
            "UPDATE campaigns SET total_calls_created = total_calls_created + 1, \
             active_calls = active_calls + 1, started_at = coalesce(started_at, ?) WHERE id = ?",
        ))
        .bind(&at)
        .bind(call.campaign_id)
        .execute(&mut *tx)
        .await?;
        // The created call now counts as active; the update moves it on (possibly to ENDED).
        let effect = apply_update_in(&mut tx, call_id, update).await?;
        tx.commit().await?;
        Ok(effect)
    }

    /// apply_call_update: what Vapi said about a call known by its provider id. Never moves a
    /// call backwards; duplicated or late messages change nothing. `None` for unknown ids.
    pub async fn apply_call_update(
        &self,
        provider_call_id: &str,
        update: &CallUpdate,
    ) -> Result<Option<UpdateEffect>> {
        let mut tx = self.write().await?;
        let id: Option<i64> =
            sqlx::query_scalar(crate::q("SELECT id FROM calls WHERE provider_call_id = ?"))
                .bind(provider_call_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(call_id) = id else {
            return Ok(None);
        };
        let effect = apply_update_in(&mut tx, call_id, update).await?;
        tx.commit().await?;
        Ok(Some(effect))
    }

    /// close_at_vapi: a call that Vapi no longer knows (404, `not-found`) or that stays active
    /// far past any possible duration is closed as ENDED with `reason`, freeing its slot.
    pub async fn close_at_vapi(&self, call_id: i64, reason: &str) -> Result<UpdateEffect> {
        let mut tx = self.write().await?;
        let call = call_in(&mut tx, call_id).await?;
        let update = CallUpdate {
            status: Some(CallStatus::Ended),
            ended_reason: Some(reason.to_string()),
            ..CallUpdate::default()
        };
        if !call.status.is_at_vapi() {
            return Err(conflict(&call, "close at Vapi"));
        }
        let effect = apply_update_in(&mut tx, call_id, &update).await?;
        tx.commit().await?;
        Ok(effect)
    }

    /// fail_call: the sequence ends without a call at Vapi: FAILED with a reason, contact DONE.
    pub async fn fail_call(
        &self,
        call_id: i64,
        attempt: Option<(i64, &AttemptResult)>,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let call = end_unfinished(&mut tx, call_id, attempt, reason, CallStatus::Failed).await?;
        set_contact(&mut tx, call.contact_id, ContactStatus::Done).await?;
        sqlx::query(
            crate::q("UPDATE campaigns SET failed_calls = failed_calls + 1, contacts_done = contacts_done + 1 WHERE id = ?"),
        )
        .bind(call.campaign_id)
        .execute(&mut *tx)
        .await?;
        bump_reason(&mut tx, call.campaign_id, FAILED_BUCKET).await?;
        complete_if_done(&mut tx, call.campaign_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// requeue_call: the sequence ends without a call at Vapi and without an outcome for the
    /// contact (its campaign was cancelled or paused for a campaign-level problem): REQUEUED,
    /// and the contact is PENDING again.
    pub async fn requeue_call(
        &self,
        call_id: i64,
        attempt: Option<(i64, &AttemptResult)>,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let call = end_unfinished(&mut tx, call_id, attempt, reason, CallStatus::Requeued).await?;
        set_contact(&mut tx, call.contact_id, ContactStatus::Pending).await?;
        tx.commit().await?;
        Ok(())
    }

    /// withhold_call: the pre-dial hook refused a call before its request went out (the
    /// attempt IN_FLIGHT was never sent): REQUEUED with the reason, the contact SKIPPED like a
    /// claim's policy skip, the decision recorded for `why`.
    pub async fn withhold_call(&self, call_id: i64, attempt_id: i64, reason: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let result = AttemptResult {
            outcome: AttemptOutcome::NotCreated,
            http_status: None,
            error: Some(format!("not sent: {reason}")),
            retry_delay_ms: None,
        };
        let call = end_unfinished(
            &mut tx,
            call_id,
            Some((attempt_id, &result)),
            reason,
            CallStatus::Requeued,
        )
        .await?;
        set_contact(&mut tx, call.contact_id, ContactStatus::Skipped).await?;
        let phone: String = sqlx::query_scalar(crate::q(
            "UPDATE contacts SET skip_reason = ? WHERE id = ? RETURNING phone",
        ))
        .bind(reason)
        .bind(call.contact_id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(crate::q(
            "UPDATE campaigns SET contacts_done = contacts_done + 1 WHERE id = ?",
        ))
        .bind(call.campaign_id)
        .execute(&mut *tx)
        .await?;
        super::policy::record_in(
            &mut tx,
            &phone,
            Some(call.campaign_id),
            Some(call.contact_id),
            Some(call_id),
            "SKIP",
            reason,
        )
        .await?;
        complete_if_done(&mut tx, call.campaign_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pre-dial hook allowed this call: it is not asked again (after a restart, a
    /// settled re-send).
    pub async fn record_predial_allowed(&self, call_id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        let call = call_in(&mut tx, call_id).await?;
        expect(&call, &[CallStatus::Creating], "record the pre-dial answer")?;
        sqlx::query(crate::q("UPDATE calls SET predial_at = ? WHERE id = ?"))
            .bind(tx.now())
            .bind(call_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// retry_call: an operator's retry. A FAILED call becomes RETRIED and its contact PENDING
    /// (dialled again as a new sequence; the failed call stays as history). An UNKNOWN call is
    /// not dialled now: it may exist at Vapi. It is flagged, and once settled as not created it
    /// is sent again even if its retries were used up (if found, it is adopted instead).
    pub async fn retry_call(&self, call_id: i64) -> Result<RetryOutcome> {
        let mut tx = self.write().await?;
        let outcome = retry_in(&mut tx, call_id).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Retries every FAILED call of a campaign (not those already retried). Returns how many.
    pub async fn retry_failed_calls(&self, campaign_id: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let sql = crate::q(format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE campaign_id = ? AND status = ?"
        ));
        let calls: Vec<Call> = sqlx::query_as(sql)
            .bind(campaign_id)
            .bind(CallStatus::Failed)
            .fetch_all(&mut *tx)
            .await?;
        for call in &calls {
            reopen_for_retry(&mut tx, call).await?;
        }
        tx.commit().await?;
        Ok(calls.len() as u64)
    }

    /// Sequences still being created or settled (CREATING, UNKNOWN): resumed at start.
    /// On PostgreSQL only those `engine_id` owns (see [`Store::adopt_orphans`]); on SQLite
    /// every one (one engine owns the database).
    pub async fn unfinished_jobs(&self, engine_id: &str) -> Result<Vec<DialJob>> {
        let mut sql = Sql::new(self.backend());
        sql.push(&job_select()).push(" WHERE c.status IN ");
        sql.push(&sql_in(CallStatus::IN_CREATION)).push(" AND ");
        sql.owned_by("c.", engine_id).push(" ORDER BY c.id");
        Ok(sql.query_as().fetch_all(self.reader()).await?)
    }

    /// One sequence's job, re-read (for a rescuer, or after a store error).
    pub async fn job(&self, call_id: i64) -> Result<DialJob> {
        let sql = crate::q(format!("{} WHERE c.id = ?", job_select()));
        sqlx::query_as(sql)
            .bind(call_id)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::UnknownCall(call_id))
    }

    pub async fn call(&self, id: i64) -> Result<Call> {
        let sql = crate::q(format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?"));
        sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::UnknownCall(id))
    }

    pub async fn call_by_provider_id(&self, provider_call_id: &str) -> Result<Option<Call>> {
        let sql = crate::q(format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE provider_call_id = ?"
        ));
        Ok(sqlx::query_as(sql)
            .bind(provider_call_id)
            .fetch_optional(self.reader())
            .await?)
    }

    /// Each campaign's assistant and phone number (what bulk reads filter on).
    pub async fn campaign_pairs(&self) -> Result<std::collections::HashMap<i64, (String, String)>> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(crate::q(
            "SELECT id, assistant_id, phone_number_id FROM campaigns",
        ))
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, assistant, number)| (id, (assistant, number)))
            .collect())
    }

    /// Calls created at Vapi and not yet ended, least recently updated first; with `since`,
    /// only those updated at or after it (what the tracker adds to the calls it follows).
    /// On PostgreSQL only those `engine_id` owns: each engine follows its own calls.
    pub async fn live_calls(
        &self,
        engine_id: &str,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<LiveCall>> {
        let mut sql = self.live_calls_sql(engine_id);
        if let Some(since) = since {
            sql.push(" AND updated_at >= ").bind(format_time(since));
        }
        sql.push(" ORDER BY updated_at LIMIT ").bind(limit);
        Ok(sql.query_as().fetch_all(self.reader()).await?)
    }

    /// Calls at Vapi not updated since `before`, least recently updated first: those the
    /// tracker reads on their own (a read of one that is still live updates it).
    pub async fn unchanged_calls(
        &self,
        engine_id: &str,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LiveCall>> {
        let mut sql = self.live_calls_sql(engine_id);
        sql.push(" AND updated_at < ").bind(format_time(before));
        sql.push(" ORDER BY updated_at LIMIT ").bind(limit);
        Ok(sql.query_as().fetch_all(self.reader()).await?)
    }

    fn live_calls_sql(&self, engine_id: &str) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT ")
            .push(LIVE_CALL_COLUMNS)
            .push(" FROM calls");
        sql.indexed_by("calls_active").push(" WHERE status IN ");
        sql.push(&sql_in(CallStatus::AT_VAPI)).push(" AND ");
        sql.owned_by("", engine_id);
        sql
    }
}

/// What an operator's retry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The contact is back in the queue for a new sequence.
    Requeued,
    /// The call's outcome is unknown: it is sent again once settled as not created.
    AfterSettling,
}

/// The `name` sent to Vapi: short (≤ 40 chars: Vapi's limit), unique per attempt sequence,
/// and tied to this database so a look-up never adopts another installation's call.
pub fn call_reference(instance: &str, contact_id: i64, sequence: i64) -> String {
    format!("sb-{instance}-{}-{}", base36(contact_id), base36(sequence))
}

fn base36(n: i64) -> String {
    let mut n = n.unsigned_abs();
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// The shared pacer's row (PostgreSQL), locked by the caller's transaction: the next instant
/// (unix ms) a create may go.
struct Pacer {
    next_at: i64,
}

/// Waits for every claim in progress on PostgreSQL (each holds the pacer's row to its
/// commit) and keeps new ones out until `tx` commits: a pause written under it is seen by
/// every claim that commits after it, so a kill switch's look-up that follows finds every
/// call claimed before. SQLite's writers are one at a time already.
pub(crate) async fn hold_claims(tx: &mut Tx) -> Result<()> {
    if super::backend_of(tx) == super::Backend::Postgres {
        lock_pacer(tx).await?;
    }
    Ok(())
}

/// Locks the shared pacer's row (made the first time it is needed).
async fn lock_pacer(tx: &mut Tx) -> Result<Pacer> {
    const SELECT: &str = "SELECT value FROM meta WHERE key = ? FOR UPDATE";
    let mut next: Option<String> = sqlx::query_scalar(crate::q(SELECT))
        .bind(PACER_ROW)
        .fetch_optional(&mut **tx)
        .await?;
    if next.is_none() {
        sqlx::query(crate::q(
            "INSERT INTO meta (key, value) VALUES (?, '0') ON CONFLICT DO NOTHING",
        ))
        .bind(PACER_ROW)
        .execute(&mut **tx)
        .await?;
        next = Some(
            sqlx::query_scalar(crate::q(SELECT))
                .bind(PACER_ROW)
                .fetch_one(&mut **tx)
                .await?,
        );
    }
    let next_at = next.and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Pacer { next_at })
}

impl Pacer {
    /// How long until the next slot, if it is not due at `now_ms`.
    fn wait(&self, now_ms: i64) -> Option<std::time::Duration> {
        (now_ms < self.next_at)
            .then(|| std::time::Duration::from_millis((self.next_at - now_ms) as u64))
    }

    /// Takes the slot that is due: the next one is 1/rate (widened) later.
    async fn take(&self, tx: &mut Tx, rate_per_second: f64) -> Result<()> {
        let period_ms = if rate_per_second > 0.0 {
            (1000.0 * SHARED_SPACING / rate_per_second).ceil() as i64
        } else {
            1000
        };
        let now_ms = tx.clock().now_ms();
        sqlx::query(crate::q("UPDATE meta SET value = ? WHERE key = ?"))
            .bind((now_ms.max(self.next_at) + period_ms).to_string())
            .bind(PACER_ROW)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// The claim's reads and writes, in the caller's transaction (committed by the caller): the
/// zones whose window is open, the next candidate there, the campaign's policy on it (skip
/// and defer are recorded and the next candidate read), a number from the pool, the call.
async fn claim_in(
    tx: &mut Tx,
    campaign_id: i64,
    instance: &str,
    engine_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Claimed> {
    let mut claimed = Claimed {
        job: None,
        decided: false,
        benched: None,
    };
    // Dispatch paused in the store (the CLI's pause or kill switch beside a running engine):
    // nothing is claimed, whatever the engine last read.
    let paused: i64 = sqlx::query_scalar(crate::q(
        "SELECT dispatch_paused FROM engine_control WHERE id = 1",
    ))
    .fetch_optional(&mut **tx)
    .await?
    .unwrap_or(0);
    if paused != 0 {
        return Ok(claimed);
    }
    let (rules, zones) = super::policy::rules_in(tx, campaign_id).await?;
    // Nothing before a scheduled start nor from its end-by, whatever the engine thinks.
    if !rules.schedule().allows(at) {
        return Ok(claimed);
    }
    let Some(open) = OpenZones::of(&rules, zones, at) else {
        return Ok(claimed);
    };
    let policy_rules = rules.rules();
    let follow = super::follow_up::settings_in(tx, campaign_id).await?;
    for _ in 0..MAX_DECISIONS_PER_CLAIM {
        let Some(candidate) = next_candidate(tx, campaign_id, &open, follow.lanes(), at).await?
        else {
            break;
        };
        let Some(reason) = judge(tx, campaign_id, &candidate, &rules, &policy_rules, at).await?
        else {
            claimed.decided = true;
            continue;
        };
        // The number this call is made from: the pool's next usable one. None usable: the
        // contact is left as it is and the engine pauses the campaign with the reason.
        let number = match super::numbers::pick_number_in(tx, campaign_id, at).await? {
            Ok(number) => number,
            Err(why) => {
                claimed.benched = Some(why);
                break;
            }
        };
        let call = NewCall {
            campaign_id,
            candidate: &candidate,
            instance,
            engine_id,
            number: &number,
            reason: &reason,
            at,
            voicemail: follow
                .voicemail_for(candidate.attempt, rules.redial_count)
                .is_some(),
            arm: super::arms::arm_for_in(tx, campaign_id, candidate.contact_id, candidate.arm)
                .await?,
        };
        claimed.job = Some(insert_call(tx, call).await?);
        return Ok(claimed);
    }
    // Nothing to dial now: skips and deferrals are kept; a campaign whose every contact
    // is now settled is complete.
    if claimed.decided {
        complete_if_done(tx, campaign_id).await?;
    }
    Ok(claimed)
}

/// The zones whose calling window is open at the claim's instant: the contacts' own zones,
/// and the campaign's for contacts without one.
struct OpenZones {
    zones: Vec<String>,
    default_open: bool,
}

impl OpenZones {
    /// `None` when no contact of the campaign may be called now.
    fn of(
        rules: &super::policy::CampaignRules,
        zones: Vec<String>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<OpenZones> {
        let window = rules.window();
        let default_open = zones.iter().any(String::is_empty) && window.is_open(rules.zone(), at);
        let zones: Vec<String> = zones
            .into_iter()
            .filter(|z| {
                z.parse::<chrono_tz::Tz>()
                    .is_ok_and(|tz| window.is_open(tz, at))
            })
            .collect();
        (default_open || !zones.is_empty()).then_some(OpenZones {
            zones,
            default_open,
        })
    }
}

/// A contact the claim may dial, as read.
struct Candidate {
    contact_id: i64,
    /// The sequences the contact has used so far.
    sequence: i64,
    phone: String,
    zone: Option<String>,
    /// Which dial of the contact this is (1: the first; each follow-up adds one).
    attempt: u32,
    /// The arm it was assigned (None: not yet, or the campaign has no arms).
    arm: Option<i64>,
}

/// The campaign's next waiting contact in an open zone, taking its lanes in order: due
/// callbacks (the most overdue first), fresh contacts (oldest first), redials (the longest
/// due first), or as the campaign orders them. Several engines claim at once on PostgreSQL:
/// each takes a contact no other transaction holds.
async fn next_candidate(
    tx: &mut Tx,
    campaign_id: i64,
    open: &OpenZones,
    lanes: LaneOrder,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Candidate>> {
    for lane in lanes.0 {
        if let Some(candidate) = next_in_lane(tx, campaign_id, open, lane, at).await? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

async fn next_in_lane(
    tx: &mut Tx,
    campaign_id: i64,
    open: &OpenZones,
    lane: Lane,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Candidate>> {
    let mut sql = Sql::new(super::backend_of(tx));
    sql.push(
        "SELECT k.id, k.sequence, k.phone, k.timezone, k.redials, k.arm FROM contacts k \
         JOIN campaigns g ON g.id = k.campaign_id WHERE k.campaign_id = ",
    );
    sql.bind(campaign_id).push(" AND k.status = ");
    sql.bind(ContactStatus::Pending.as_str())
        .push(" AND g.status = ");
    sql.bind(crate::model::CampaignStatus::Dialing.as_str());
    sql.push(" AND ")
        .push(super::contacts::CLAIMABLE_IMPORT_SQL);
    sql.push(" AND k.lane = ").bind(lane.as_str());
    // Fresh contacts have no due time unless a cap deferred them; the other lanes always
    // have one (their partial index holds only contacts with a due time).
    match lane {
        Lane::Fresh => sql.push(" AND (k.eligible_at IS NULL OR k.eligible_at <= "),
        Lane::Callback | Lane::Redial => sql.push(" AND (k.eligible_at <= "),
    };
    sql.bind(super::format_time(at)).push(") AND (");
    if !open.zones.is_empty() {
        sql.push("k.timezone IN ").bind_list(&open.zones);
        if open.default_open {
            sql.push(" OR ");
        }
    }
    if open.default_open {
        sql.push("k.timezone IS NULL");
    }
    match lane {
        Lane::Fresh => sql.push(") ORDER BY k.id LIMIT 1"),
        Lane::Callback | Lane::Redial => sql.push(") ORDER BY k.eligible_at, k.id LIMIT 1"),
    };
    sql.for_update_skip_locked("k");
    type Row = (i64, i64, String, Option<String>, i64, Option<i64>);
    let row: Option<Row> = sql.query_as().fetch_optional(&mut **tx).await?;
    Ok(row.map(
        |(contact_id, sequence, phone, zone, redials, arm)| Candidate {
            contact_id,
            sequence,
            phone,
            zone,
            attempt: u32::try_from(redials.max(0) + 1).unwrap_or(u32::MAX),
            arm,
        },
    ))
}

/// The campaign's policy on a candidate: `Some(why)` to dial it, `None` when it was skipped
/// or deferred (recorded here, with the contact's new state).
async fn judge(
    tx: &mut Tx,
    campaign_id: i64,
    candidate: &Candidate,
    rules: &super::policy::CampaignRules,
    policy_rules: &switchboard_model::policy::Rules,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<String>> {
    use switchboard_model::policy::Decision;
    let Candidate {
        contact_id,
        phone,
        zone,
        ..
    } = candidate;
    let facts =
        super::policy::facts_in(tx, campaign_id, *contact_id, phone, policy_rules, at).await?;
    match switchboard_model::policy::decide(policy_rules, &facts, at) {
        Decision::Dial => Ok(Some(format!(
            "dial: {} inside the window {} {}; not on the do-not-call list; {} call(s) to this number in 7 days",
            zone.as_deref().unwrap_or(&rules.timezone),
            rules.call_window,
            rules.call_days,
            facts.recent_calls.len()
        ))),
        Decision::Skip(reason) => {
            sqlx::query(crate::q(
                "UPDATE contacts SET status = ?, skip_reason = ? WHERE id = ?",
            ))
            .bind(ContactStatus::Skipped)
            .bind(&reason)
            .bind(contact_id)
            .execute(&mut **tx)
            .await?;
            sqlx::query(crate::q(
                "UPDATE campaigns SET contacts_done = contacts_done + 1 WHERE id = ?",
            ))
            .bind(campaign_id)
            .execute(&mut **tx)
            .await?;
            let (campaign, contact) = (Some(campaign_id), Some(*contact_id));
            super::policy::record_in(tx, phone, campaign, contact, None, "SKIP", &reason).await?;
            Ok(None)
        }
        Decision::Defer { until, reason } => {
            let until = super::format_time(until);
            sqlx::query(crate::q(
                "UPDATE contacts SET eligible_at = ?, eligible_reason = ? WHERE id = ?",
            ))
            .bind(&until)
            .bind(&reason)
            .bind(contact_id)
            .execute(&mut **tx)
            .await?;
            let why = format!("{reason}: eligible again at {until}");
            let (campaign, contact) = (Some(campaign_id), Some(*contact_id));
            super::policy::record_in(tx, phone, campaign, contact, None, "DEFER", &why).await?;
            Ok(None)
        }
    }
}

/// The call a claim writes: who, from which number, why, when.
struct NewCall<'a> {
    campaign_id: i64,
    candidate: &'a Candidate,
    instance: &'a str,
    engine_id: &'a str,
    number: &'a str,
    reason: &'a str,
    at: chrono::DateTime<chrono::Utc>,
    /// The voicemail ladder's rung: this attempt leaves the campaign's message.
    voicemail: bool,
    /// The arm and its assistant (None: the campaign has no arms).
    arm: Option<(i64, String)>,
}

/// Writes the claimed call (CREATING, its first attempt, linked to the contact's previous
/// call) before any request is sent; returns its job and attempt id.
async fn insert_call(tx: &mut Tx, call: NewCall<'_>) -> Result<(DialJob, i64)> {
    let NewCall {
        campaign_id,
        candidate,
        instance,
        engine_id,
        number,
        reason,
        at,
        voicemail,
        arm,
    } = call;
    let contact_id = candidate.contact_id;
    // A redial (or any later sequence) is linked to the contact's previous call.
    let previous: Option<i64> =
        sqlx::query_scalar(crate::q("SELECT max(id) FROM calls WHERE contact_id = ?"))
            .bind(contact_id)
            .fetch_one(&mut **tx)
            .await?;
    let sequence = candidate.sequence + 1;
    // The claim's instant (the clock in production; a test's injected time).
    let created = super::format_time(at);
    set_contact(tx, contact_id, ContactStatus::Dialing).await?;
    sqlx::query(crate::q("UPDATE contacts SET sequence = ? WHERE id = ?"))
        .bind(sequence)
        .bind(contact_id)
        .execute(&mut **tx)
        .await?;
    let call_id: i64 = sqlx::query_scalar(crate::q(
        "INSERT INTO calls (campaign_id, contact_id, sequence, reference, status, attempt_count, \
         engine_id, created_at, updated_at, redial_of, phone_number_id, voicemail_message, arm, \
         assistant_id) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    ))
    .bind(campaign_id)
    .bind(contact_id)
    .bind(sequence)
    .bind(call_reference(instance, contact_id, sequence))
    .bind(CallStatus::Creating)
    .bind(engine_id)
    .bind(&created)
    .bind(&created)
    .bind(previous)
    .bind(number)
    .bind(i64::from(voicemail))
    .bind(arm.as_ref().map(|(position, _)| *position))
    .bind(arm.as_ref().map(|(_, assistant)| assistant.as_str()))
    .fetch_one(&mut **tx)
    .await?;
    let (campaign, contact) = (Some(campaign_id), Some(contact_id));
    super::policy::record_in(
        tx,
        &candidate.phone,
        campaign,
        contact,
        Some(call_id),
        "DIAL",
        reason,
    )
    .await?;
    let attempt_id = insert_attempt(tx, call_id, 1).await?;
    Ok((job_in(tx, call_id).await?, attempt_id))
}

/// What a claim did: the call it claimed, and whether it decided (skipped, deferred) other
/// contacts on the way, which must be kept even when nothing was claimed.
struct Claimed {
    job: Option<(DialJob, i64)>,
    decided: bool,
    /// Every number of the campaign's pool is benched: why (nothing was claimed).
    benched: Option<String>,
}

impl Claimed {
    fn changed(&self) -> bool {
        self.decided || self.job.is_some()
    }
}

fn conflict(call: &Call, action: &str) -> StoreError {
    StoreError::Conflict(format!(
        "call {} is {}: cannot {action}",
        call.id, call.status
    ))
}

/// Refuses a transition from a state it does not start from (a stale worker, a second
/// engine): nothing is written.
fn expect(call: &Call, from: &[CallStatus], action: &str) -> Result<()> {
    if from.contains(&call.status) {
        Ok(())
    } else {
        Err(conflict(call, action))
    }
}

async fn set_status(tx: &mut Tx, call_id: i64, status: CallStatus) -> Result<()> {
    sqlx::query(crate::q(
        "UPDATE calls SET status = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(status)
    .bind(tx.now())
    .bind(call_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_contact(tx: &mut Tx, contact_id: i64, status: ContactStatus) -> Result<()> {
    sqlx::query(crate::q("UPDATE contacts SET status = ? WHERE id = ?"))
        .bind(status)
        .bind(contact_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn touch(tx: &mut Tx, call_id: i64) -> Result<()> {
    sqlx::query(crate::q("UPDATE calls SET updated_at = ? WHERE id = ?"))
        .bind(tx.now())
        .bind(call_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ends a sequence that never got a call at Vapi (CREATING → FAILED or REQUEUED): closes its
/// last attempt and writes the reason.
async fn end_unfinished(
    tx: &mut Tx,
    call_id: i64,
    attempt: Option<(i64, &AttemptResult)>,
    reason: &str,
    to: CallStatus,
) -> Result<Call> {
    let call = call_in(tx, call_id).await?;
    // UNKNOWN never ends here: it may exist at Vapi and must be settled first.
    expect(&call, &[CallStatus::Creating], "end without a call at Vapi")?;
    if let Some((attempt_id, result)) = attempt {
        close_attempt(tx, attempt_id, result).await?;
    }
    sqlx::query(crate::q(
        "UPDATE calls SET status = ?, ended_reason = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(to)
    .bind(reason)
    .bind(tx.now())
    .bind(call_id)
    .execute(&mut **tx)
    .await?;
    Ok(call)
}

async fn call_in(tx: &mut Tx, call_id: i64) -> Result<Call> {
    let mut sql = Sql::new(super::backend_of(tx));
    sql.push("SELECT ")
        .push(CALL_COLUMNS)
        .push(" FROM calls WHERE id = ");
    sql.bind(call_id).for_update();
    sql.query_as()
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::UnknownCall(call_id))
}

async fn job_in(tx: &mut Tx, call_id: i64) -> Result<DialJob> {
    let sql = crate::q(format!("{} WHERE c.id = ?", job_select()));
    Ok(sqlx::query_as(sql)
        .bind(call_id)
        .fetch_one(&mut **tx)
        .await?)
}

/// An operator's retry of one call, in `tx`: a FAILED call's contact waits again, an UNKNOWN
/// call is marked to be sent again once settled as not created; any other is refused.
pub(crate) async fn retry_in(tx: &mut Tx, call_id: i64) -> Result<RetryOutcome> {
    let call = call_in(tx, call_id).await?;
    Ok(match call.status {
        CallStatus::Failed => {
            reopen_for_retry(tx, &call).await?;
            RetryOutcome::Requeued
        }
        CallStatus::Unknown => {
            sqlx::query(crate::q(
                "UPDATE calls SET retry_requested = 1, updated_at = ? WHERE id = ?",
            ))
            .bind(tx.now())
            .bind(call_id)
            .execute(&mut **tx)
            .await?;
            RetryOutcome::AfterSettling
        }
        CallStatus::Creating
        | CallStatus::Queued
        | CallStatus::Scheduled
        | CallStatus::Ringing
        | CallStatus::InProgress
        | CallStatus::Forwarding
        | CallStatus::Ended
        | CallStatus::Requeued
        | CallStatus::Retried => {
            return Err(StoreError::Conflict(format!(
                "call {call_id} is {}: only FAILED calls (or UNKNOWN ones, once settled) can be retried",
                call.status
            )));
        }
    })
}

/// FAILED → RETRIED; the contact is PENDING again and a finished campaign has work again.
async fn reopen_for_retry(tx: &mut Tx, call: &Call) -> Result<()> {
    let latest: i64 = sqlx::query_scalar(crate::q("SELECT sequence FROM contacts WHERE id = ?"))
        .bind(call.contact_id)
        .fetch_one(&mut **tx)
        .await?;
    if call.status != CallStatus::Failed || latest != call.sequence {
        return Err(conflict(
            call,
            "retry (a newer call carries its contact on)",
        ));
    }
    set_status(tx, call.id, CallStatus::Retried).await?;
    set_contact(tx, call.contact_id, ContactStatus::Pending).await?;
    sqlx::query(crate::q("UPDATE contacts SET never_rang = 0 WHERE id = ?"))
        .bind(call.contact_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(crate::q(
        "UPDATE campaigns SET contacts_done = contacts_done - 1, failed_calls = failed_calls - 1, \
         completed_at = CASE WHEN status = ? THEN NULL ELSE completed_at END, \
         status = CASE WHEN status = ? THEN ? ELSE status END WHERE id = ?",
    ))
    .bind(crate::model::CampaignStatus::Completed)
    .bind(crate::model::CampaignStatus::Completed)
    .bind(crate::model::CampaignStatus::Dialing)
    .bind(call.campaign_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn bump_reason(tx: &mut Tx, campaign_id: i64, reason: &str) -> Result<()> {
    sqlx::query(crate::q(
        "INSERT INTO campaign_reasons (campaign_id, ended_reason, count) VALUES (?, ?, 1) \
         ON CONFLICT (campaign_id, ended_reason) DO UPDATE SET count = campaign_reasons.count + 1",
    ))
    .bind(campaign_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The shared heart of create responses, polls and webhooks: monotonic status, and on the
/// move to ENDED the counters, cost, histogram and the contact's fate, all in `tx`. After
/// ENDED only the cost may still change (Vapi finalises it later: analysis is added).
async fn apply_update_in(tx: &mut Tx, call_id: i64, update: &CallUpdate) -> Result<UpdateEffect> {
    let call = call_in(tx, call_id).await?;
    let mut effect = UpdateEffect {
        call_id,
        campaign_id: call.campaign_id,
        ended: false,
        class: None,
        ended_reason: call.ended_reason.clone(),
        answered: false,
        talk_ms: None,
        phone_number_id: call.phone_number_id.clone(),
    };
    if call.status.is_terminal() {
        follow_final_cost(tx, &call, update).await?;
        return Ok(effect);
    }
    let new_status = match update.status {
        Some(s) if s.rank() > call.status.rank() => s,
        _ => call.status,
    };
    match new_status {
        CallStatus::Ended | CallStatus::Failed | CallStatus::Requeued | CallStatus::Retried => {
            end_in(tx, &call, update, new_status, &mut effect).await?;
        }
        CallStatus::Creating
        | CallStatus::Unknown
        | CallStatus::Queued
        | CallStatus::Scheduled
        | CallStatus::Ringing
        | CallStatus::InProgress
        | CallStatus::Forwarding => {
            sqlx::query(
                crate::q("UPDATE calls SET status = ?, started_at = coalesce(?, started_at), updated_at = ? WHERE id = ?"),
            )
            .bind(new_status)
            .bind(update.started_at.as_deref())
            .bind(tx.now())
            .bind(call_id)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(effect)
}

/// The final cost arrives after `ended`: the call and the campaign's spend follow it.
async fn follow_final_cost(tx: &mut Tx, call: &Call, update: &CallUpdate) -> Result<()> {
    let Some(cost) = update.cost_usd else {
        return Ok(());
    };
    if call.status != CallStatus::Ended
        || call.cost_usd.is_some_and(|old| (old - cost).abs() <= 1e-9)
    {
        return Ok(());
    }
    sqlx::query(crate::q(
        "UPDATE calls SET cost_usd = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(cost)
    .bind(tx.now())
    .bind(call.id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(crate::q(
        "UPDATE campaigns SET cost_usd = cost_usd + ? WHERE id = ?",
    ))
    .bind(cost - call.cost_usd.unwrap_or(0.0))
    .bind(call.campaign_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What becomes of an ended call's contact.
struct Fate {
    /// The phone never rang once too often: the call is FAILED (an operator can retry it).
    gave_up: bool,
    /// The contact goes back in the queue (never rang, or a redial of the campaign's rules).
    requeue: bool,
}

/// A contact whose phone never rang comes back a bounded number of times; the campaign's
/// redial rules dial busy, no answer… again after a delay, as a new attempt sequence (never
/// after a conversation).
async fn fate_in(
    tx: &mut Tx,
    call: &Call,
    update: &CallUpdate,
    class: EndedClass,
    reason: &str,
    answered: bool,
    new_status: CallStatus,
) -> Result<Fate> {
    let never_rang = if class == EndedClass::NeverRang {
        sqlx::query_scalar::<_, i64>(crate::q(
            "UPDATE contacts SET never_rang = never_rang + 1 WHERE id = ? RETURNING never_rang",
        ))
        .bind(call.contact_id)
        .fetch_one(&mut **tx)
        .await?
    } else {
        0
    };
    let gave_up = never_rang > MAX_NEVER_RANG;
    let mut requeue = class.requeues_contact() && !gave_up;
    if !requeue && !gave_up && new_status == CallStatus::Ended {
        let ended_at = update
            .ended_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|| tx.clock().now());
        requeue = super::policy::redial_in(
            tx,
            call.campaign_id,
            call.contact_id,
            reason,
            answered,
            ended_at,
        )
        .await?
        .is_some();
    }
    Ok(Fate { gave_up, requeue })
}

/// The move to ENDED (or FAILED after too many never-rang): the call, the campaign's
/// counters and histogram, the contact's fate, the campaign's completion; `effect` says
/// what happened.
async fn end_in(
    tx: &mut Tx,
    call: &Call,
    update: &CallUpdate,
    new_status: CallStatus,
    effect: &mut UpdateEffect,
) -> Result<()> {
    let answered = update.started_at.is_some()
        || call.started_at.is_some()
        || matches!(call.status, CallStatus::InProgress | CallStatus::Forwarding);
    let ours = super::live::end_cause_of(call.end_cause.as_deref(), call.end_then.as_deref());
    let (reason, class, Fate { gave_up, requeue }) = match ours {
        // switchboard ended it: its reason, counted apart; the contact as the operator chose.
        Some((cause, then)) => (
            cause.ended_reason().to_string(),
            EndedClass::EndedBySwitchboard,
            Fate {
                gave_up: false,
                requeue: then == crate::model::live::AfterEnd::Requeue,
            },
        ),
        None => {
            let reason = update
                .ended_reason
                .clone()
                .unwrap_or_else(|| "unknown".to_string());
            let class = classify_ended_reason(&reason, answered);
            let fate = fate_in(tx, call, update, class, &reason, answered, new_status).await?;
            (reason, class, fate)
        }
    };
    let status = if gave_up {
        CallStatus::Failed
    } else {
        CallStatus::Ended
    };
    let cost = update.cost_usd;
    let at = tx.now();
    sqlx::query(
        crate::q("UPDATE calls SET status = ?, ended_reason = ?, cost_usd = ?, \
         started_at = coalesce(?, started_at), ended_at = coalesce(?, ?), updated_at = ? WHERE id = ?"),
    )
    .bind(status)
    .bind(&reason)
    .bind(cost)
    .bind(update.started_at.as_deref())
    .bind(update.ended_at.as_deref())
    .bind(&at)
    .bind(&at)
    .bind(call.id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        crate::q("UPDATE campaigns SET active_calls = active_calls - 1, ended_calls = ended_calls + ?, \
         failed_calls = failed_calls + ?, cost_usd = cost_usd + ?, contacts_done = contacts_done + ? \
         WHERE id = ?"),
    )
    .bind(i64::from(!gave_up))
    .bind(i64::from(gave_up))
    .bind(cost.unwrap_or(0.0))
    .bind(i64::from(!requeue))
    .bind(call.campaign_id)
    .execute(&mut **tx)
    .await?;
    bump_reason(tx, call.campaign_id, &reason).await?;
    let contact = if requeue {
        ContactStatus::Pending
    } else {
        ContactStatus::Done
    };
    set_contact(tx, call.contact_id, contact).await?;
    complete_if_done(tx, call.campaign_id).await?;
    effect.ended = true;
    effect.class = Some(class);
    effect.ended_reason = Some(reason);
    effect.answered = answered;
    let started = update.started_at.as_deref().or(call.started_at.as_deref());
    effect.talk_ms = started
        .and_then(super::parse_time)
        .zip(update.ended_at.as_deref().and_then(super::parse_time))
        .map(|(s, e)| (e - s).num_milliseconds());
    // The analysis may have come first (an end-of-call report): what follows is decided now.
    if new_status == CallStatus::Ended {
        super::follow_up::follow_up_in(tx, call.id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_fit_vapis_name_limit() {
        let r = call_reference("abcdef12", i64::MAX, i64::from(u32::MAX));
        assert!(r.len() <= 40, "{r} is {} chars", r.len());
        assert_eq!(call_reference("abcdef12", 35, 1), "sb-abcdef12-z-1");
    }
}
