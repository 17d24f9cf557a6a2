//! The `engine_control` row: engine-wide pause and rate override. The console and the CLI
//! write it (the CLI may run beside a headless engine on the same database); the engine reads
//! it every tick, so both paths take effect the same way.

use super::{Result, Store};
use crate::model::{Pause, StopCause};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EngineControl {
    #[sqlx(try_from = "super::Flag")]
    pub dispatch_paused: bool,
    pub pause_reason: Option<String>,
    pub pause_cause: Option<StopCause>,
    pub rate_per_second: Option<f64>,
}

impl EngineControl {
    /// The stored pause, when dispatch is paused.
    pub fn pause(&self) -> Option<Pause> {
        self.dispatch_paused
            .then(|| Pause::stored(self.pause_cause, self.pause_reason.as_deref()))
    }
}

impl Store {
    pub async fn engine_control(&self) -> Result<EngineControl> {
        Ok(sqlx::query_as(
            crate::q("SELECT dispatch_paused, pause_reason, pause_cause, rate_per_second FROM engine_control WHERE id = 1"),
        )
        .fetch_one(self.reader())
        .await?)
    }

    /// Pauses (`Some`, with its cause and reason) or resumes (`None`) all dispatch.
    pub async fn set_dispatch_paused(&self, pause: Option<&Pause>) -> Result<()> {
        let mut tx = self.write().await?;
        super::calls::hold_claims(&mut tx).await?;
        sqlx::query(crate::q(
            "UPDATE engine_control SET dispatch_paused = ?, pause_reason = ?, pause_cause = ?, \
             updated_at = ? WHERE id = 1",
        ))
        .bind(i64::from(pause.is_some()))
        .bind(pause.map(|p| p.reason.as_str()))
        .bind(pause.map(|p| p.cause))
        .bind(tx.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the dispatch rate (calls created per second) for every engine on this database.
    pub async fn set_rate(&self, rate_per_second: f64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(crate::q(
            "UPDATE engine_control SET rate_per_second = ?, updated_at = ? WHERE id = 1",
        ))
        .bind(rate_per_second)
        .bind(tx.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drops the rate override: every engine on this database goes back to its config's rate.
    pub async fn reset_rate(&self) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(crate::q(
            "UPDATE engine_control SET rate_per_second = NULL, updated_at = ? WHERE id = 1",
        ))
        .bind(tx.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
