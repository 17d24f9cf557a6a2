//! The `contacts` table: who to call, and where each contact is in its dial sequence.

use super::{Result, Store, now};
use crate::model::{CampaignStatus, ContactStatus};

/// A contact ready to insert (the importer has already normalised the phone to E.164).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewContact {
    pub name: Option<String>,
    pub phone: String,
    pub extension: Option<String>,
    /// JSON object of the CSV's other columns.
    pub variables: String,
    /// IANA zone (from the CSV, else from the number); `None`: the campaign's zone.
    pub timezone: Option<String>,
    pub consent_source: Option<String>,
    pub consent_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct Contact {
    pub id: i64,
    pub campaign_id: i64,
    pub name: Option<String>,
    pub phone: String,
    pub extension: Option<String>,
    pub variables: String,
    pub status: ContactStatus,
    pub sequence: i64,
}

/// Rows per INSERT statement: 6 bound values each, well under SQLite's variable limit, and
/// large enough that per-statement overhead disappears in a million-row import.
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Inserts contacts in one transaction; rows already present (same campaign, phone and
    /// extension) are skipped. Returns how many were inserted.
    pub async fn insert_contacts(&self, campaign_id: i64, contacts: &[NewContact]) -> Result<u64> {
        let mut session = self.import_session(campaign_id).await?;
        let inserted = session.add(contacts).await?;
        session.commit().await?;
        Ok(inserted)
    }

    /// Starts an import. Its batches are committed in short transactions of their own (a
    /// long import never holds the write lock for long) and stay invisible to the claim until
    /// [`ImportSession::commit`]; an import that fails or dies leaves nothing visible, and its
    /// rows are removed (here, at the next import, or when the store opens).
    pub async fn import_session(&self, campaign_id: i64) -> Result<ImportSession> {
        self.remove_dead_imports().await?;
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query_scalar(crate::store::q(
            "INSERT INTO imports (campaign_id, status, host, pid, started_at, heartbeat_ms) \
             VALUES (?, 'IMPORTING', ?, ?, ?, ?) RETURNING id",
        ))
        .bind(campaign_id)
        .bind(super::lease::host_name())
        .bind(i64::from(std::process::id()))
        .bind(now())
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ImportSession {
            store: self.clone(),
            import_id: id,
            campaign_id,
            created_at: now(),
            inserted: 0,
        })
    }

    /// Removes the rows of imports that will never complete: their process is gone from this
    /// host, or their heartbeat stopped a minute ago. In chunks, so no lock is held long.
    pub async fn remove_dead_imports(&self) -> Result<u64> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(crate::store::q(
            "SELECT id, host, pid, heartbeat_ms FROM imports WHERE status = 'IMPORTING'",
        ))
        .fetch_all(self.reader())
        .await?;
        let here = super::lease::host_name();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut removed = 0;
        for (id, host, pid, heartbeat) in rows {
            let gone = (host == here && !super::lease::process_alive(pid))
                || now_ms - heartbeat > DEAD_IMPORT_MS;
            if gone {
                removed += self.delete_import(id).await?;
            }
        }
        Ok(removed)
    }

    async fn delete_import(&self, import_id: i64) -> Result<u64> {
        let mut removed = 0;
        loop {
            let mut tx = self.write().await?;
            let n = sqlx::query(crate::store::q(
                "DELETE FROM contacts WHERE id IN \
                 (SELECT id FROM contacts WHERE import_id = ? LIMIT 10000)",
            ))
            .bind(import_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                sqlx::query(crate::store::q("DELETE FROM imports WHERE id = ?"))
                    .bind(import_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            removed += n;
            if n == 0 {
                return Ok(removed);
            }
        }
    }

    pub async fn contact_count(&self, campaign_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(crate::store::q(
            "SELECT count(*) FROM contacts WHERE campaign_id = ?",
        ))
        .bind(campaign_id)
        .fetch_one(self.reader())
        .await?)
    }

    /// Contacts of a campaign in one status.
    pub async fn count_contacts(&self, campaign_id: i64, status: ContactStatus) -> Result<i64> {
        Ok(sqlx::query_scalar(crate::store::q(
            "SELECT count(*) FROM contacts WHERE campaign_id = ? AND status = ?",
        ))
        .bind(campaign_id)
        .bind(status)
        .fetch_one(self.reader())
        .await?)
    }

    pub async fn contact(&self, id: i64) -> Result<Contact> {
        Ok(sqlx::query_as(crate::store::q(
            "SELECT id, campaign_id, name, phone, extension, variables, status, sequence \
             FROM contacts WHERE id = ?",
        ))
        .bind(id)
        .fetch_one(self.reader())
        .await?)
    }

    /// Whether the campaign still has a PENDING contact.
    pub async fn has_pending(&self, campaign_id: i64) -> Result<bool> {
        let pending: i64 = sqlx::query_scalar(
            crate::store::q("SELECT CASE WHEN EXISTS (SELECT 1 FROM contacts WHERE campaign_id = ? AND status = 'PENDING') \
             THEN 1 ELSE 0 END"),
        )
        .bind(campaign_id)
        .fetch_one(self.reader())
        .await?;
        Ok(pending == 1)
    }
}

/// An import in progress (see [`Store::import_session`]).
pub struct ImportSession {
    store: Store,
    import_id: i64,
    campaign_id: i64,
    created_at: String,
    inserted: u64,
}

impl ImportSession {
    /// Adds a batch in a short transaction of its own; duplicates are skipped. Returns how
    /// many rows were new. The rows stay invisible to the claim until `commit`.
    pub async fn add(&mut self, contacts: &[NewContact]) -> Result<u64> {
        let mut tx = self.store.write().await?;
        let mut inserted = 0;
        for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
            // One multi-row INSERT per chunk; a duplicate (same campaign, phone, extension)
            // is skipped.
            let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
            let sql = format!(
                "INSERT INTO contacts (campaign_id, name, phone, extension, variables, created_at, import_id, timezone, consent_source, consent_at) \
                 VALUES {} ON CONFLICT DO NOTHING",
                vec![row; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(crate::store::q_for(crate::store::backend_of(&tx), sql));
            for c in chunk {
                query = query
                    .bind(self.campaign_id)
                    .bind(c.name.as_deref())
                    .bind(c.phone.as_str())
                    .bind(c.extension.as_deref())
                    .bind(c.variables.as_str())
                    .bind(self.created_at.as_str())
                    .bind(self.import_id)
                    .bind(c.timezone.as_deref())
                    .bind(c.consent_source.as_deref())
                    .bind(c.consent_at.as_deref());
            }
            inserted += query.execute(&mut *tx).await?.rows_affected();
        }
        // The campaign's zones, for the claim's window check.
        // '' stands for contacts without a zone of their own (the campaign's zone).
        let mut zones: Vec<&str> = contacts
            .iter()
            .map(|c| c.timezone.as_deref().unwrap_or(""))
            .collect();
        zones.sort_unstable();
        zones.dedup();
        for zone in zones {
            sqlx::query(crate::store::q(
                "INSERT INTO campaign_zones (campaign_id, timezone) VALUES (?, ?) \
                 ON CONFLICT (campaign_id, timezone) DO NOTHING",
            ))
            .bind(self.campaign_id)
            .bind(zone)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(crate::store::q(
            "UPDATE imports SET heartbeat_ms = ? WHERE id = ?",
        ))
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(self.import_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.inserted += inserted;
        Ok(inserted)
    }

    /// Makes every batch visible at once, with the campaign's contact count. A COMPLETED
    /// campaign that gained contacts is DIALING again (returned as true).
    pub async fn commit(self) -> Result<(u64, bool)> {
        let mut tx = self.store.write().await?;
        sqlx::query(crate::store::q(
            "UPDATE imports SET status = 'COMPLETE' WHERE id = ?",
        ))
        .bind(self.import_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(crate::store::q(
            "UPDATE campaigns SET contacts_total = contacts_total + ? WHERE id = ?",
        ))
        .bind(self.inserted as i64)
        .bind(self.campaign_id)
        .execute(&mut *tx)
        .await?;
        let reopened = self.inserted > 0
            && sqlx::query(crate::store::q(
                "UPDATE campaigns SET status = ?, completed_at = NULL WHERE id = ? AND status = ?",
            ))
            .bind(CampaignStatus::Dialing)
            .bind(self.campaign_id)
            .bind(CampaignStatus::Completed)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
        tx.commit().await?;
        Ok((self.inserted, reopened))
    }

    /// Gives the import up: its rows are removed (in chunks).
    pub async fn abort(self) -> Result<()> {
        self.store.delete_import(self.import_id).await?;
        Ok(())
    }
}

/// An import whose heartbeat stopped this long ago is dead (its batches come every few ms).
const DEAD_IMPORT_MS: i64 = 60_000;

/// Contacts the claim may take: not rows of an import still in progress (alias `k`).
pub const CLAIMABLE_IMPORT_SQL: &str = "(k.import_id IS NULL OR k.import_id NOT IN (SELECT id FROM imports WHERE status = 'IMPORTING'))";
