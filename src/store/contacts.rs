//! The `contacts` table: who to call, and where each contact is in its dial sequence.

use sqlx::QueryBuilder;

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
        if contacts.is_empty() {
            return Ok(0);
        }
        let created_at = now();
        let mut tx = self.write().await?;
        let mut inserted = 0;
        for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
            let mut builder = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT OR IGNORE INTO contacts (campaign_id, name, phone, extension, variables, created_at) ",
            );
            builder.push_values(chunk, |mut row, c| {
                row.push_bind(campaign_id)
                    .push_bind(c.name.as_deref())
                    .push_bind(c.phone.as_str())
                    .push_bind(c.extension.as_deref())
                    .push_bind(c.variables.as_str())
                    .push_bind(created_at.as_str());
            });
            inserted += builder.build().execute(&mut *tx).await?.rows_affected();
        }
        sqlx::query("UPDATE campaigns SET contacts_total = contacts_total + ? WHERE id = ?")
            .bind(inserted as i64)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(inserted)
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
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM contacts WHERE campaign_id = ? AND status = ?",
        )
        .bind(campaign_id)
        .bind(status)
        .fetch_one(self.reader())
        .await?)
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
