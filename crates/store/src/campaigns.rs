//! The `campaigns` table: a campaign's identity, its status machine and its counters.

use super::{Result, Store, StoreError, Tx};
use crate::model::{CampaignStatus, ContactStatus, Pause, StopCause};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub assistant_id: String,
    pub phone_number_id: String,
    pub status: CampaignStatus,
    pub pause_reason: Option<String>,
    /// Why it is paused, for whatever decides on it (the text is for the operator).
    pub pause_cause: Option<StopCause>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub active_calls: i64,
    pub total_calls_created: i64,
    pub ended_calls: i64,
    pub failed_calls: i64,
    pub cost_usd: f64,
    pub contacts_total: i64,
    pub contacts_done: i64,
    /// Share of the concurrency when several campaigns dial at once (1-1000).
    pub weight: i64,
}

impl Campaign {
    /// The stored pause, when the campaign is paused.
    pub fn pause(&self) -> Option<Pause> {
        (self.status == CampaignStatus::Paused)
            .then(|| Pause::stored(self.pause_cause, self.pause_reason.as_deref()))
    }
}

const COLUMNS: &str = "id, name, assistant_id, phone_number_id, status, pause_reason, pause_cause, created_at, \
     started_at, completed_at, active_calls, total_calls_created, ended_calls, failed_calls, cost_usd, contacts_total, contacts_done, weight";

impl Store {
    pub async fn create_campaign(
        &self,
        name: &str,
        assistant_id: &str,
        phone_number_id: &str,
    ) -> Result<Campaign> {
        let mut tx = self.write().await?;
        let result = sqlx::query(crate::q(
            "INSERT INTO campaigns (name, assistant_id, phone_number_id, status, created_at) \
             VALUES (?, ?, ?, 'DRAFT', ?)",
        ))
        .bind(name)
        .bind(assistant_id)
        .bind(phone_number_id)
        .bind(tx.now())
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::CampaignExists(name.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        // The campaign's number is the first of its pool (`campaign edit` adds more).
        let id: i64 = sqlx::query_scalar(crate::q("SELECT id FROM campaigns WHERE name = ?"))
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        super::numbers::insert_number_in(&mut tx, id, phone_number_id, 1).await?;
        tx.commit().await?;
        self.campaign_by_name(name).await
    }

    pub async fn campaigns(&self) -> Result<Vec<Campaign>> {
        let sql = crate::q(format!("SELECT {COLUMNS} FROM campaigns ORDER BY id"));
        Ok(sqlx::query_as(sql).fetch_all(self.reader()).await?)
    }

    pub async fn campaign_by_name(&self, name: &str) -> Result<Campaign> {
        let sql = crate::q(format!("SELECT {COLUMNS} FROM campaigns WHERE name = ?"));
        sqlx::query_as(sql)
            .bind(name)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::UnknownCampaign(name.to_string()))
    }

    pub async fn campaign(&self, id: i64) -> Result<Campaign> {
        let sql = crate::q(format!("SELECT {COLUMNS} FROM campaigns WHERE id = ?"));
        sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::UnknownCampaign(format!("#{id}")))
    }

    /// Ids of campaigns the dispatcher may claim contacts from, oldest first.
    pub async fn dialing_campaign_ids(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(crate::q(
            "SELECT id FROM campaigns WHERE status = 'DIALING' ORDER BY id",
        ))
        .fetch_all(self.reader())
        .await?)
    }

    /// Sets a campaign's weight (its share of the concurrency beside other campaigns).
    pub async fn set_campaign_weight(&self, id: i64, weight: i64) -> Result<Campaign> {
        if !(1..=1000).contains(&weight) {
            return Err(StoreError::Conflict(format!(
                "weight must be between 1 and 1000, got {weight}"
            )));
        }
        let mut tx = self.write().await?;
        sqlx::query(crate::q("UPDATE campaigns SET weight = ? WHERE id = ?"))
            .bind(weight)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.campaign(id).await
    }

    /// DRAFT or PAUSED → DIALING. A campaign with no contacts cannot start.
    pub async fn start_campaign(&self, id: i64) -> Result<Campaign> {
        let campaign = self.campaign(id).await?;
        match campaign.status {
            CampaignStatus::Draft | CampaignStatus::Paused => {}
            CampaignStatus::Dialing => return Ok(campaign),
            CampaignStatus::Completed | CampaignStatus::Cancelled => {
                return Err(StoreError::Conflict(format!(
                    "campaign {:?} is {} and cannot be started again",
                    campaign.name, campaign.status
                )));
            }
        }
        let contacts = self.contact_count(id).await?;
        if contacts == 0 {
            return Err(StoreError::Conflict(format!(
                "campaign {:?} has no contacts: import some first with `switchboard contacts import {} FILE.csv`",
                campaign.name, campaign.name
            )));
        }
        self.set_campaign_status(id, CampaignStatus::Dialing, None)
            .await?;
        let mut tx = self.write().await?;
        // Started again after its end-by: the operator goes on past it.
        let now = tx.now();
        sqlx::query(crate::q(
            "UPDATE campaigns SET ends_by = NULL WHERE id = ? AND ends_by <= ?",
        ))
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // A started campaign whose contacts are all done already completes now.
        complete_if_done(&mut tx, id).await?;
        tx.commit().await?;
        self.campaign(id).await
    }

    /// DIALING → PAUSED with a reason (operator, budget, quota...). Other states unchanged.
    pub async fn pause_campaign(&self, id: i64, pause: &Pause) -> Result<bool> {
        let mut tx = self.write().await?;
        super::calls::hold_claims(&mut tx).await?;
        let changed = sqlx::query(crate::q(
            "UPDATE campaigns SET status = ?, pause_reason = ?, pause_cause = ? \
             WHERE id = ? AND status = ?",
        ))
        .bind(CampaignStatus::Paused)
        .bind(&pause.reason)
        .bind(pause.cause)
        .bind(id)
        .bind(CampaignStatus::Dialing)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(changed > 0)
    }

    /// PAUSED → DIALING.
    pub async fn resume_campaign(&self, id: i64) -> Result<Campaign> {
        let campaign = self.campaign(id).await?;
        match campaign.status {
            CampaignStatus::Paused => {
                // The operator says the cause is fixed: benched numbers are tried again (one
                // still refused is benched again at its first call, its contact re-queued).
                self.unbench_numbers(id).await?;
                self.start_campaign(id).await
            }
            CampaignStatus::Dialing => Ok(campaign),
            CampaignStatus::Draft => Err(StoreError::Conflict(format!(
                "campaign {:?} was never started: use `switchboard campaign start`",
                campaign.name
            ))),
            CampaignStatus::Completed | CampaignStatus::Cancelled => {
                Err(StoreError::Conflict(format!(
                    "campaign {:?} is {} and cannot be resumed",
                    campaign.name, campaign.status
                )))
            }
        }
    }

    /// Any non-final state → CANCELLED. Pending contacts stay PENDING and are never dialled;
    /// calls already active are still tracked to their end.
    pub async fn cancel_campaign(&self, id: i64) -> Result<Campaign> {
        let campaign = self.campaign(id).await?;
        if campaign.status.is_final() {
            return Err(StoreError::Conflict(format!(
                "campaign {:?} is already {}",
                campaign.name, campaign.status
            )));
        }
        self.set_campaign_status(id, CampaignStatus::Cancelled, Some("cancelled by operator"))
            .await?;
        self.campaign(id).await
    }

    async fn set_campaign_status(
        &self,
        id: i64,
        status: CampaignStatus,
        reason: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        super::calls::hold_claims(&mut tx).await?;
        let completed_at = match status {
            CampaignStatus::Cancelled | CampaignStatus::Completed => Some(tx.now()),
            CampaignStatus::Draft | CampaignStatus::Dialing | CampaignStatus::Paused => None,
        };
        sqlx::query(crate::q(
            "UPDATE campaigns SET status = ?, pause_reason = ?, pause_cause = NULL, \
             completed_at = coalesce(?, completed_at) WHERE id = ?",
        ))
        .bind(status)
        .bind(reason)
        .bind(completed_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A DIALING campaign with no contact left PENDING or DIALING becomes COMPLETED.
pub(crate) async fn complete_if_done(tx: &mut Tx, id: i64) -> Result<()> {
    let sql = crate::q(format!(
        "UPDATE campaigns SET status = ?, completed_at = ?, pause_reason = NULL, pause_cause = NULL \
         WHERE id = ? AND status = ? AND NOT EXISTS \
         (SELECT 1 FROM contacts WHERE campaign_id = ? AND status IN {})",
        crate::model::sql_in(&[ContactStatus::Pending, ContactStatus::Dialing])
    ));
    sqlx::query(sql)
        .bind(CampaignStatus::Completed)
        .bind(tx.now())
        .bind(id)
        .bind(CampaignStatus::Dialing)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A completed campaign with a contact waiting again (a callback, a follow-up) goes back to
/// DIALING; a cancelled one stays cancelled.
pub(crate) async fn reopen_in(tx: &mut Tx, id: i64) -> Result<()> {
    sqlx::query(crate::q(
        "UPDATE campaigns SET status = ?, completed_at = NULL WHERE id = ? AND status = ?",
    ))
    .bind(CampaignStatus::Dialing)
    .bind(id)
    .bind(CampaignStatus::Completed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
