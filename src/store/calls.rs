//! The `calls` table: one row per attempt sequence of a contact. The row is committed
//! (with its first attempt IN_FLIGHT) before any request; the provider id, status and the
//! campaign counters change together in one transaction afterwards.

use sqlx::{Sqlite, Transaction};

use super::attempts::{AttemptResult, close_attempt, insert_attempt};
use super::campaigns::complete_if_done;
use super::{Result, Store, StoreError, now};
use crate::model::{AttemptOutcome, CallStatus, QuotaStop, quota_reason};

/// Histogram bucket for calls that were never created at Vapi.
pub const FAILED_BUCKET: &str = "failed-to-create";

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
    pub requeued: bool,
    pub retried: bool,
    pub cost_usd: Option<f64>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const CALL_COLUMNS: &str = "id, campaign_id, contact_id, sequence, reference, status, provider_call_id, \
     attempt_count, ended_reason, requeued, retried, cost_usd, started_at, ended_at, created_at, updated_at";

/// Everything a worker needs to (re)send the create request of a call.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DialJob {
    pub call_id: i64,
    pub campaign_id: i64,
    pub contact_id: i64,
    pub reference: String,
    pub attempt_count: i64,
    pub assistant_id: String,
    pub phone_number_id: String,
    pub phone: String,
    pub contact_name: Option<String>,
    pub extension: Option<String>,
    pub variables: String,
    /// The last attempt's outcome and start, when resuming a sequence after a restart.
    pub last_attempt_id: Option<i64>,
    pub last_outcome: Option<AttemptOutcome>,
    pub last_started_at: Option<String>,
}

const JOB_SELECT: &str = "SELECT c.id AS call_id, c.campaign_id, c.contact_id, c.reference, c.attempt_count, \
     g.assistant_id, g.phone_number_id, k.phone, k.name AS contact_name, k.extension, k.variables, \
     a.id AS last_attempt_id, a.outcome AS last_outcome, a.started_at AS last_started_at \
     FROM calls c JOIN campaigns g ON g.id = c.campaign_id JOIN contacts k ON k.id = c.contact_id \
     LEFT JOIN call_attempts a ON a.call_id = c.id AND a.attempt = c.attempt_count";

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
    /// The call ended for a quota reason: its contact was re-queued.
    pub quota: Option<QuotaStop>,
    pub ended_reason: Option<String>,
}

impl Store {
    /// Claims the next PENDING contact of a campaign: in one transaction the contact becomes
    /// DIALING with a new attempt sequence, a QUEUED call row is written and its first attempt
    /// is committed IN_FLIGHT. Returns the job and the attempt id, or `None` when the campaign
    /// has no pending contact (or is no longer DIALING).
    pub async fn claim_call(
        &self,
        campaign_id: i64,
        instance: &str,
    ) -> Result<Option<(DialJob, i64)>> {
        let mut tx = self.write().await?;
        let next: Option<(i64, i64)> = sqlx::query_as(
            "SELECT k.id, k.sequence FROM contacts k JOIN campaigns g ON g.id = k.campaign_id \
             WHERE k.campaign_id = ? AND k.status = 'PENDING' AND g.status = 'DIALING' \
             ORDER BY k.id LIMIT 1",
        )
        .bind(campaign_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((contact_id, sequence)) = next else {
            return Ok(None);
        };
        let sequence = sequence + 1;
        let at = now();
        sqlx::query("UPDATE contacts SET status = 'DIALING', sequence = ? WHERE id = ?")
            .bind(sequence)
            .bind(contact_id)
            .execute(&mut *tx)
            .await?;
        let call_id = sqlx::query(
            "INSERT INTO calls (campaign_id, contact_id, sequence, reference, status, attempt_count, \
             created_at, updated_at) VALUES (?, ?, ?, ?, 'QUEUED', 0, ?, ?)",
        )
        .bind(campaign_id)
        .bind(contact_id)
        .bind(sequence)
        .bind(call_reference(instance, contact_id, sequence))
        .bind(&at)
        .bind(&at)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        let attempt_id = insert_attempt(&mut tx, call_id, 1).await?;
        let job = job_in(&mut tx, call_id).await?;
        tx.commit().await?;
        Ok(Some((job, attempt_id)))
    }

    /// Calls whose sequence is unfinished (no provider id yet, not FAILED): resumed at start.
    pub async fn unfinished_jobs(&self) -> Result<Vec<DialJob>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{JOB_SELECT} WHERE c.provider_call_id IS NULL AND c.status = 'QUEUED' ORDER BY c.id"
        ));
        Ok(sqlx::query_as(sql).fetch_all(self.reader()).await?)
    }

    pub async fn call(&self, id: i64) -> Result<Call> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?"));
        sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::UnknownCall(id))
    }

    /// Calls created at Vapi and not yet ended, least recently updated first (polling order).
    pub async fn active_calls(&self, limit: i64) -> Result<Vec<Call>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CALL_COLUMNS} FROM calls INDEXED BY calls_active WHERE provider_call_id IS NOT NULL \
             AND status IN ('QUEUED','SCHEDULED','RINGING','IN_PROGRESS','FORWARDING') \
             ORDER BY updated_at LIMIT ?"
        ));
        Ok(sqlx::query_as(sql)
            .bind(limit)
            .fetch_all(self.reader())
            .await?)
    }

    /// Records a call created at Vapi (by this attempt, or found by look-up and adopted):
    /// provider id, mapped status, closed attempt and campaign counters in one transaction.
    pub async fn record_created(
        &self,
        call_id: i64,
        attempt_id: i64,
        outcome: AttemptOutcome,
        provider_call_id: &str,
        update: &CallUpdate,
    ) -> Result<UpdateEffect> {
        let mut tx = self.write().await?;
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
        let at = now();
        let call = call_in(&mut tx, call_id).await?;
        if call.provider_call_id.is_some() {
            return Err(StoreError::Conflict(format!(
                "call {call_id} already has a provider id"
            )));
        }
        sqlx::query(
            "UPDATE calls SET provider_call_id = ?, status = 'QUEUED', updated_at = ? WHERE id = ?",
        )
        .bind(provider_call_id)
        .bind(&at)
        .bind(call_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE campaigns SET total_calls_created = total_calls_created + 1, \
             active_calls = active_calls + 1, started_at = coalesce(started_at, ?), \
             status = CASE WHEN status = 'DRAFT' THEN 'DIALING' ELSE status END WHERE id = ?",
        )
        .bind(&at)
        .bind(call.campaign_id)
        .execute(&mut *tx)
        .await?;
        // The created call now counts as active; the update moves it on (possibly to ENDED).
        let effect = apply_update_in(&mut tx, call_id, update).await?;
        tx.commit().await?;
        Ok(effect)
    }

    /// Applies what Vapi said about a call known by its provider id. Never moves a call
    /// backwards; duplicated or late messages change nothing. `None` for unknown ids.
    pub async fn apply_call_update(
        &self,
        provider_call_id: &str,
        update: &CallUpdate,
    ) -> Result<Option<UpdateEffect>> {
        let mut tx = self.write().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM calls WHERE provider_call_id = ?")
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

    /// The sequence ends without a call at Vapi: FAILED with a reason, contact DONE.
    pub async fn fail_call(
        &self,
        call_id: i64,
        attempt: Option<(i64, &AttemptResult)>,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let call = end_unfinished(&mut tx, call_id, attempt, reason, false).await?;
        sqlx::query("UPDATE contacts SET status = 'DONE' WHERE id = ?")
            .bind(call.contact_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE campaigns SET failed_calls = failed_calls + 1, contacts_done = contacts_done + 1 WHERE id = ?",
        )
        .bind(call.campaign_id)
        .execute(&mut *tx)
        .await?;
        bump_reason(&mut tx, call.campaign_id, FAILED_BUCKET).await?;
        complete_if_done(&mut tx, call.campaign_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives an unfinished sequence back to the queue without a failure (its campaign was
    /// cancelled before the call was created): the call row is FAILED with the reason and
    /// marked requeued, and the contact is PENDING again.
    pub async fn requeue_call(
        &self,
        call_id: i64,
        attempt: Option<(i64, &AttemptResult)>,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let call = end_unfinished(&mut tx, call_id, attempt, reason, true).await?;
        // Not counted in failed_calls: nothing failed, the contact simply waits again.
        sqlx::query("UPDATE contacts SET status = 'PENDING' WHERE id = ?")
            .bind(call.contact_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An operator's retry of one FAILED call: its contact goes back to PENDING and will be
    /// dialled as a new attempt sequence; the failed call and its attempts stay as history.
    pub async fn retry_failed_call(&self, call_id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        let call = call_in(&mut tx, call_id).await?;
        let latest: i64 = sqlx::query_scalar("SELECT sequence FROM contacts WHERE id = ?")
            .bind(call.contact_id)
            .fetch_one(&mut *tx)
            .await?;
        if call.status != CallStatus::Failed
            || call.retried
            || call.requeued
            || latest != call.sequence
        {
            return Err(StoreError::Conflict(format!(
                "call {call_id} is not a failed call awaiting retry (status {}{})",
                call.status,
                if call.retried || call.requeued || latest != call.sequence {
                    ", already retried"
                } else {
                    ""
                }
            )));
        }
        reopen_for_retry(&mut tx, &call).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Retries every FAILED call of a campaign that has not been retried yet. Returns how many.
    pub async fn retry_failed_calls(&self, campaign_id: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CALL_COLUMNS} FROM calls c WHERE campaign_id = ? AND status = 'FAILED' \
             AND retried = 0 AND requeued = 0 \
             AND sequence = (SELECT sequence FROM contacts WHERE id = c.contact_id)"
        ));
        let calls: Vec<Call> = sqlx::query_as(sql)
            .bind(campaign_id)
            .fetch_all(&mut *tx)
            .await?;
        for call in &calls {
            reopen_for_retry(&mut tx, call).await?;
        }
        tx.commit().await?;
        Ok(calls.len() as u64)
    }
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

/// Ends a sequence that never got a call at Vapi: closes its last attempt and marks the row
/// FAILED with `reason` (and `requeued` when the contact goes back to the queue).
async fn end_unfinished(
    tx: &mut Transaction<'static, Sqlite>,
    call_id: i64,
    attempt: Option<(i64, &AttemptResult)>,
    reason: &str,
    requeued: bool,
) -> Result<Call> {
    if let Some((attempt_id, result)) = attempt {
        close_attempt(tx, attempt_id, result).await?;
    }
    let call = call_in(tx, call_id).await?;
    if call.status.is_terminal() || call.provider_call_id.is_some() {
        return Err(StoreError::Conflict(format!(
            "call {call_id} is {} and its sequence cannot end now",
            call.status
        )));
    }
    sqlx::query(
        "UPDATE calls SET status = 'FAILED', ended_reason = ?, requeued = ?, updated_at = ? WHERE id = ?",
    )
    .bind(reason)
    .bind(requeued)
    .bind(now())
    .bind(call_id)
    .execute(&mut **tx)
    .await?;
    Ok(call)
}

async fn call_in(tx: &mut Transaction<'static, Sqlite>, call_id: i64) -> Result<Call> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?"));
    sqlx::query_as(sql)
        .bind(call_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::UnknownCall(call_id))
}

async fn job_in(tx: &mut Transaction<'static, Sqlite>, call_id: i64) -> Result<DialJob> {
    let sql = sqlx::AssertSqlSafe(format!("{JOB_SELECT} WHERE c.id = ?"));
    Ok(sqlx::query_as(sql)
        .bind(call_id)
        .fetch_one(&mut **tx)
        .await?)
}

async fn reopen_for_retry(tx: &mut Transaction<'static, Sqlite>, call: &Call) -> Result<()> {
    sqlx::query("UPDATE calls SET retried = 1, updated_at = ? WHERE id = ?")
        .bind(now())
        .bind(call.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE contacts SET status = 'PENDING' WHERE id = ?")
        .bind(call.contact_id)
        .execute(&mut **tx)
        .await?;
    // A completed campaign has work again.
    sqlx::query(
        "UPDATE campaigns SET contacts_done = contacts_done - 1, \
         completed_at = CASE WHEN status = 'COMPLETED' THEN NULL ELSE completed_at END, \
         status = CASE WHEN status = 'COMPLETED' THEN 'DIALING' ELSE status END WHERE id = ?",
    )
    .bind(call.campaign_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn bump_reason(
    tx: &mut Transaction<'static, Sqlite>,
    campaign_id: i64,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO campaign_reasons (campaign_id, ended_reason, count) VALUES (?, ?, 1) \
         ON CONFLICT (campaign_id, ended_reason) DO UPDATE SET count = count + 1",
    )
    .bind(campaign_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The shared heart of create responses, polls and webhooks: monotonic status, and on the
/// move to ENDED the counters, cost, histogram and the contact's fate, all in `tx`.
async fn apply_update_in(
    tx: &mut Transaction<'static, Sqlite>,
    call_id: i64,
    update: &CallUpdate,
) -> Result<UpdateEffect> {
    let call = call_in(tx, call_id).await?;
    let mut effect = UpdateEffect {
        call_id,
        campaign_id: call.campaign_id,
        ended: false,
        quota: None,
        ended_reason: call.ended_reason.clone(),
    };
    let at = now();
    if call.status.is_terminal() {
        // A late end-of-call report may bring the cost after a status update ended the call.
        if call.status == CallStatus::Ended
            && call.cost_usd.is_none()
            && let Some(cost) = update.cost_usd
        {
            sqlx::query("UPDATE calls SET cost_usd = ?, updated_at = ? WHERE id = ?")
                .bind(cost)
                .bind(&at)
                .bind(call_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE campaigns SET cost_usd = cost_usd + ? WHERE id = ?")
                .bind(cost)
                .bind(call.campaign_id)
                .execute(&mut **tx)
                .await?;
        }
        return Ok(effect);
    }
    let new_status = match update.status {
        Some(s) if s.rank() > call.status.rank() => s,
        _ => call.status,
    };
    match new_status {
        CallStatus::Ended | CallStatus::Failed => {
            let reason = update
                .ended_reason
                .clone()
                .unwrap_or_else(|| "unknown".to_string());
            let quota = quota_reason(&reason);
            let cost = update.cost_usd;
            sqlx::query(
                "UPDATE calls SET status = 'ENDED', ended_reason = ?, cost_usd = ?, \
                 started_at = coalesce(?, started_at), ended_at = coalesce(?, ?), \
                 requeued = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&reason)
            .bind(cost)
            .bind(update.started_at.as_deref())
            .bind(update.ended_at.as_deref())
            .bind(&at)
            .bind(quota.is_some())
            .bind(&at)
            .bind(call_id)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "UPDATE campaigns SET active_calls = active_calls - 1, ended_calls = ended_calls + 1, \
                 cost_usd = cost_usd + ? WHERE id = ?",
            )
            .bind(cost.unwrap_or(0.0))
            .bind(call.campaign_id)
            .execute(&mut **tx)
            .await?;
            bump_reason(tx, call.campaign_id, &reason).await?;
            // A quota end is not the contact's outcome: it goes back to the queue.
            let done = quota.is_none();
            sqlx::query("UPDATE contacts SET status = ? WHERE id = ?")
                .bind(if done { "DONE" } else { "PENDING" })
                .bind(call.contact_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE campaigns SET contacts_done = contacts_done + ? WHERE id = ?")
                .bind(i64::from(done))
                .bind(call.campaign_id)
                .execute(&mut **tx)
                .await?;
            complete_if_done(tx, call.campaign_id).await?;
            effect.ended = true;
            effect.quota = quota;
            effect.ended_reason = Some(reason);
        }
        CallStatus::Queued
        | CallStatus::Scheduled
        | CallStatus::Ringing
        | CallStatus::InProgress
        | CallStatus::Forwarding => {
            if new_status != call.status || update.started_at.is_some() {
                sqlx::query(
                    "UPDATE calls SET status = ?, started_at = coalesce(?, started_at), updated_at = ? WHERE id = ?",
                )
                .bind(new_status)
                .bind(update.started_at.as_deref())
                .bind(&at)
                .bind(call_id)
                .execute(&mut **tx)
                .await?;
            } else {
                // Touch so the poller moves on to calls it has not seen for longer.
                sqlx::query("UPDATE calls SET updated_at = ? WHERE id = ?")
                    .bind(&at)
                    .bind(call_id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(effect)
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
