//! The `contacts` table: who to call, and where each contact is in its dial sequence.

use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::{Result, Store, now};
use crate::model::ContactStatus;

/// A contact ready to insert (the importer has already normalised the phone to E.164).
#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub name: Option<String>,
    pub phone: String,
    pub extension: Option<String>,
    /// JSON object of the CSV's other columns.
    pub variables: String,
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

    /// Starts an import: batches added to it are committed together, or not at all.
    pub async fn import_session(&self, campaign_id: i64) -> Result<ImportSession> {
        Ok(ImportSession {
            tx: self.write().await?,
            campaign_id,
            created_at: now(),
            inserted: 0,
        })
    }

    pub async fn contact_count(&self, campaign_id: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM contacts WHERE campaign_id = ?")
                .bind(campaign_id)
                .fetch_one(self.reader())
                .await?,
        )
    }

    /// Contacts of a campaign in one status.
    pub async fn count_contacts(&self, campaign_id: i64, status: ContactStatus) -> Result<i64> {
        Ok(
            sqlx::query_scalar(
                "SELECT count(*) FROM contacts WHERE campaign_id = ? AND status = ?",
            )
            .bind(campaign_id)
            .bind(status)
            .fetch_one(self.reader())
            .await?,
        )
    }

    pub async fn contact(&self, id: i64) -> Result<Contact> {
        Ok(sqlx::query_as(
            "SELECT id, campaign_id, name, phone, extension, variables, status, sequence \
             FROM contacts WHERE id = ?",
        )
        .bind(id)
        .fetch_one(self.reader())
        .await?)
    }

    /// Whether the campaign still has a PENDING contact.
    pub async fn has_pending(&self, campaign_id: i64) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = ? AND status = 'PENDING')",
        )
        .bind(campaign_id)
        .fetch_one(self.reader())
        .await?)
    }
}

/// An open import transaction (see [`Store::import_session`]).
pub struct ImportSession {
    tx: Transaction<'static, Sqlite>,
    campaign_id: i64,
    created_at: String,
    inserted: u64,
}

impl ImportSession {
    /// Adds a batch; duplicates are skipped. Returns how many rows were new.
    pub async fn add(&mut self, contacts: &[NewContact]) -> Result<u64> {
        let mut inserted = 0;
        for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
            let mut builder = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO contacts (campaign_id, name, phone, extension, variables, created_at) ",
            );
            builder.push_values(chunk, |mut row, c| {
                row.push_bind(self.campaign_id)
                    .push_bind(c.name.as_deref())
                    .push_bind(c.phone.as_str())
                    .push_bind(c.extension.as_deref())
                    .push_bind(c.variables.as_str())
                    .push_bind(self.created_at.as_str());
            });
            inserted += builder
                .build()
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
        }
        self.inserted += inserted;
        Ok(inserted)
    }

    /// Commits every batch and the campaign's contact count together.
    pub async fn commit(mut self) -> Result<u64> {
        sqlx::query("UPDATE campaigns SET contacts_total = contacts_total + ? WHERE id = ?")
            .bind(self.inserted as i64)
            .bind(self.campaign_id)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(self.inserted)
    }
}
