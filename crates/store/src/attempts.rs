//! The `call_attempts` table: one row per HTTP attempt to create a call, written IN_FLIGHT
//! before the request and closed with its outcome after. This is the persisted retry log.

use super::{Result, Store, Tx};
use crate::model::AttemptOutcome;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct Attempt {
    pub id: i64,
    pub call_id: i64,
    pub attempt: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub http_status: Option<i64>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
    pub retry_delay_ms: Option<i64>,
}

/// How an attempt ended, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub outcome: AttemptOutcome,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub retry_delay_ms: Option<u64>,
}

impl Store {
    /// Closes an attempt with its outcome.
    pub async fn finish_attempt(&self, attempt_id: i64, result: &AttemptResult) -> Result<()> {
        let mut tx = self.write().await?;
        close_attempt(&mut tx, attempt_id, result).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The attempt history of one call, oldest first.
    pub async fn attempts(&self, call_id: i64) -> Result<Vec<Attempt>> {
        Ok(sqlx::query_as(crate::q(
            "SELECT id, call_id, attempt, started_at, finished_at, http_status, outcome, error, \
             retry_delay_ms FROM call_attempts WHERE call_id = ? ORDER BY attempt",
        ))
        .bind(call_id)
        .fetch_all(self.reader())
        .await?)
    }

    /// Attempts still IN_FLIGHT: after a clean stop there are none.
    pub async fn in_flight_attempts(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(crate::q(
            "SELECT count(*) FROM call_attempts WHERE outcome = ?",
        ))
        .bind(AttemptOutcome::InFlight)
        .fetch_one(self.reader())
        .await?)
    }
}

pub(crate) async fn insert_attempt(tx: &mut Tx, call_id: i64, attempt: i64) -> Result<i64> {
    let at = tx.now();
    let id: i64 = sqlx::query_scalar(crate::q(
        "INSERT INTO call_attempts (call_id, attempt, started_at, outcome) VALUES (?, ?, ?, ?) \
         RETURNING id",
    ))
    .bind(call_id)
    .bind(attempt)
    .bind(&at)
    .bind(AttemptOutcome::InFlight)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(crate::q(
        "UPDATE calls SET attempt_count = ?, updated_at = ? WHERE id = ?",
    ))
    .bind(attempt)
    .bind(&at)
    .bind(call_id)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

pub(crate) async fn close_attempt(
    tx: &mut Tx,
    attempt_id: i64,
    result: &AttemptResult,
) -> Result<()> {
    sqlx::query(crate::q(
        "UPDATE call_attempts SET finished_at = ?, outcome = ?, http_status = ?, error = ?, \
         retry_delay_ms = ? WHERE id = ?",
    ))
    .bind(tx.now())
    .bind(result.outcome)
    .bind(result.http_status.map(i64::from))
    .bind(result.error.as_deref())
    .bind(result.retry_delay_ms.map(|d| d as i64))
    .bind(attempt_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
