//! The `contacts` table: who to call, and where each contact is in its dial sequence.

use super::{Result, Store};
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
    /// Possible, but outside the known ranges of its country's numbering plan.
    pub unverified: bool,
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

/// Rows per INSERT statement (one JSON array of about 1 MB): large enough that the
/// per-statement overhead disappears in a million-row import.
const ROWS_PER_STATEMENT: usize = 10_000;

/// The columns of a contact that come from the CSV, in INSERT order, with how each is read.
type Field = fn(&NewContact) -> Option<&str>;
const CONTACT_FIELDS: [(&str, Field); 8] = [
    ("name", |c| c.name.as_deref()),
    ("phone", |c| Some(c.phone.as_str())),
    ("extension", |c| c.extension.as_deref()),
    ("variables", |c| Some(c.variables.as_str())),
    ("timezone", |c| c.timezone.as_deref()),
    ("consent_source", |c| c.consent_source.as_deref()),
    ("consent_at", |c| c.consent_at.as_deref()),
    ("number_check", |c| c.unverified.then_some(UNVERIFIED)),
];

/// `contacts.number_check` of an unverified number.
pub(crate) const UNVERIFIED: &str = "unverified";

/// One INSERT of up to [`ROWS_PER_STATEMENT`] contacts. The rows travel as one JSON array
/// bound to one parameter and unpacked by the database (`jsonb_each` on SQLite,
/// `json_array_elements` on PostgreSQL): binding ten values a row cost the database's thread
/// more than the inserts themselves (sqlx copies each value, SQLite copies it again). A field
/// with one value in the whole chunk (no extension, no consent, the same zone) is bound once
/// instead of being unpacked from every row.
struct ChunkInsert<'a> {
    /// Binds, in order: campaign id, created_at, import id, `constants`, `rows`.
    sql: String,
    constants: Vec<Option<&'a str>>,
    rows: String,
}

impl<'a> ChunkInsert<'a> {
    fn new(chunk: &'a [NewContact], backend: crate::Backend) -> Result<Self> {
        let first = chunk.first();
        let mut varying: Vec<Field> = Vec::new();
        let mut constants = Vec::new();
        let select: Vec<String> = CONTACT_FIELDS
            .iter()
            .map(|&(_, field)| {
                let value = first.and_then(field);
                if chunk.iter().any(|c| field(c) != value) {
                    varying.push(field);
                    format!("value->>{}", varying.len() - 1)
                } else {
                    constants.push(value);
                    "CAST(? AS TEXT)".to_string()
                }
            })
            .collect();
        let names: Vec<&str> = CONTACT_FIELDS.iter().map(|(name, _)| *name).collect();
        let table = match backend {
            crate::Backend::Sqlite => "jsonb_each(?)",
            crate::Backend::Postgres => "json_array_elements(CAST(? AS json))",
        };
        // Placeholders in bind order: the three fixed values, the constants, the rows.
        let sql = format!(
            "INSERT INTO contacts (campaign_id, created_at, import_id, {}) \
             SELECT ?, ?, ?, {} FROM {table} WHERE true ON CONFLICT DO NOTHING",
            names.join(", "),
            select.join(", ")
        );
        let mut rows = Vec::with_capacity(chunk.len() * 16 * (varying.len() + 1));
        rows.push(b'[');
        for (i, c) in chunk.iter().enumerate() {
            if i > 0 {
                rows.push(b',');
            }
            // One array per row, written in place (no per-row vector).
            rows.push(b'[');
            for (j, field) in varying.iter().enumerate() {
                if j > 0 {
                    rows.push(b',');
                }
                serde_json::to_writer(&mut rows, &field(c))
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            }
            rows.push(b']');
        }
        rows.push(b']');
        Ok(ChunkInsert {
            sql: crate::q(sql).0,
            constants,
            rows: String::from_utf8(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
        })
    }
}

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
        let id: i64 = sqlx::query_scalar(crate::q(
            "INSERT INTO imports (campaign_id, status, host, pid, started_at, heartbeat_ms) \
             VALUES (?, 'IMPORTING', ?, ?, ?, ?) RETURNING id",
        ))
        .bind(campaign_id)
        .bind(super::lease::host_name())
        .bind(i64::from(std::process::id()))
        .bind(tx.now())
        .bind(tx.clock().now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ImportSession {
            store: self.clone(),
            import_id: id,
            campaign_id,
            created_at: self.now(),
            inserted: 0,
            first_contact_id: None,
            open: None,
            rows_in_open: 0,
            opened_at: None,
            rows_per_commit: 1,
        })
    }

    /// Removes the rows of imports that will never complete: their process is gone from this
    /// host, or their heartbeat stopped a minute ago. In chunks, so no lock is held long.
    pub async fn remove_dead_imports(&self) -> Result<u64> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(crate::q(
            "SELECT id, host, pid, heartbeat_ms FROM imports WHERE status = 'IMPORTING'",
        ))
        .fetch_all(self.reader())
        .await?;
        let here = super::lease::host_name();
        let now_ms = self.clock().now_ms();
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

    /// Deletes an import's rows in chunks, walking the ids up from the first it wrote (there
    /// is no index on import_id: an import's rows are all above that id).
    async fn delete_import(&self, import_id: i64) -> Result<u64> {
        let first: Option<Option<i64>> = sqlx::query_scalar(crate::q(
            "SELECT first_contact_id FROM imports WHERE id = ?",
        ))
        .bind(import_id)
        .fetch_optional(self.reader())
        .await?;
        let mut from = first.flatten().unwrap_or(0);
        let mut removed = 0;
        loop {
            let mut tx = self.write().await?;
            let last: Option<i64> = sqlx::query_scalar(crate::q(
                "SELECT max(id) FROM (SELECT id FROM contacts WHERE id >= ? AND import_id = ? \
                 ORDER BY id LIMIT 10000) AS chunk",
            ))
            .bind(from)
            .bind(import_id)
            .fetch_one(&mut *tx)
            .await?;
            let n = match last {
                Some(last) => {
                    let n = sqlx::query(crate::q(
                        "DELETE FROM contacts WHERE id >= ? AND id <= ? AND import_id = ?",
                    ))
                    .bind(from)
                    .bind(last)
                    .bind(import_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    from = last + 1;
                    n
                }
                None => 0,
            };
            if n == 0 {
                sqlx::query(crate::q("DELETE FROM imports WHERE id = ?"))
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
        Ok(sqlx::query_scalar(crate::q(
            "SELECT count(*) FROM contacts WHERE campaign_id = ?",
        ))
        .bind(campaign_id)
        .fetch_one(self.reader())
        .await?)
    }

    /// Contacts of a campaign in one status.
    pub async fn count_contacts(&self, campaign_id: i64, status: ContactStatus) -> Result<i64> {
        Ok(sqlx::query_scalar(crate::q(
            "SELECT count(*) FROM contacts WHERE campaign_id = ? AND status = ?",
        ))
        .bind(campaign_id)
        .bind(status)
        .fetch_one(self.reader())
        .await?)
    }

    pub async fn contact(&self, id: i64) -> Result<Contact> {
        Ok(sqlx::query_as(crate::q(
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
            crate::q("SELECT CASE WHEN EXISTS (SELECT 1 FROM contacts WHERE campaign_id = ? AND status = 'PENDING') \
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
    /// The smallest id any of its rows can have, known once a batch wrote a row.
    first_contact_id: Option<i64>,
    /// The transaction batches are added in until it holds `rows_per_commit` rows: rows in
    /// no particular order land all over the phone index, and each commit writes every page
    /// it touched, so fewer, larger commits write each page fewer times.
    open: Option<crate::Tx>,
    rows_in_open: usize,
    opened_at: Option<std::time::Instant>,
    rows_per_commit: usize,
}

/// An import's open transaction is committed at least this soon after it began, however few
/// rows it holds: it holds the write lock (dispatch waits on it) and the input may be slow.
const MAX_OPEN: std::time::Duration = std::time::Duration::from_millis(500);

impl ImportSession {
    /// Commits once a transaction holds this many rows (batches are added to the open one
    /// until then; 1, the default, commits every batch).
    pub fn commit_every(&mut self, rows: usize) {
        self.rows_per_commit = rows.max(1);
    }

    /// Adds a batch (to the open transaction, committed once it holds `rows_per_commit`
    /// rows); duplicates are skipped. Returns how many rows were new. The rows stay invisible
    /// to the claim until `commit`.
    pub async fn add(&mut self, contacts: &[NewContact]) -> Result<u64> {
        let mut tx = match self.open.take() {
            Some(tx) => tx,
            None => {
                let tx = self.store.write().await?;
                self.opened_at = Some(std::time::Instant::now());
                tx
            }
        };
        // Every row written from here on gets a larger id (SQLite takes the largest plus one,
        // PostgreSQL's sequence only grows): the import's rows are found from here.
        let floor = match self.first_contact_id {
            Some(_) => None,
            None => Some(
                sqlx::query_scalar::<_, i64>(crate::q(
                    "SELECT coalesce(max(id), 0) + 1 FROM contacts",
                ))
                .fetch_one(&mut *tx)
                .await?,
            ),
        };
        let backend = crate::backend_of(&tx);
        let mut inserted = 0;
        for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
            // A duplicate (same campaign, phone, extension) is skipped.
            let insert = ChunkInsert::new(chunk, backend)?;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.sql.as_str()))
                .bind(self.campaign_id)
                .bind(self.created_at.as_str())
                .bind(self.import_id);
            for value in &insert.constants {
                query = query.bind(*value);
            }
            inserted += query
                .bind(insert.rows)
                .execute(&mut *tx)
                .await?
                .rows_affected();
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
            sqlx::query(crate::q(
                "INSERT INTO campaign_zones (campaign_id, timezone) VALUES (?, ?) \
                 ON CONFLICT (campaign_id, timezone) DO NOTHING",
            ))
            .bind(self.campaign_id)
            .bind(zone)
            .execute(&mut *tx)
            .await?;
        }
        let first = floor.filter(|_| inserted > 0);
        sqlx::query(crate::q(
            "UPDATE imports SET heartbeat_ms = ?, first_contact_id = coalesce(first_contact_id, ?) \
             WHERE id = ?",
        ))
        .bind(self.store.clock().now_ms())
        .bind(first)
        .bind(self.import_id)
        .execute(&mut *tx)
        .await?;
        self.rows_in_open += contacts.len();
        let long_open = self.opened_at.is_none_or(|at| at.elapsed() >= MAX_OPEN);
        if self.rows_in_open >= self.rows_per_commit || self.rows_per_commit <= 1 || long_open {
            tx.commit().await?;
            self.rows_in_open = 0;
        } else {
            self.open = Some(tx);
        }
        self.first_contact_id = self.first_contact_id.or(first);
        self.inserted += inserted;
        Ok(inserted)
    }

    /// Commits the open transaction, if any (the writer waits for input: the write lock is
    /// not held meanwhile). The rows stay invisible until `commit`.
    pub async fn flush(&mut self) -> Result<()> {
        if let Some(tx) = self.open.take() {
            tx.commit().await?;
            self.rows_in_open = 0;
        }
        Ok(())
    }

    /// Makes every batch visible at once, with the campaign's contact count. A COMPLETED
    /// campaign that gained contacts is DIALING again (returned as true).
    pub async fn commit(mut self) -> Result<(u64, bool)> {
        let mut tx = match self.open.take() {
            Some(tx) => tx,
            None => self.store.write().await?,
        };
        sqlx::query(crate::q(
            "UPDATE imports SET status = 'COMPLETE' WHERE id = ?",
        ))
        .bind(self.import_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(crate::q(
            "UPDATE campaigns SET contacts_total = contacts_total + ? WHERE id = ?",
        ))
        .bind(self.inserted as i64)
        .bind(self.campaign_id)
        .execute(&mut *tx)
        .await?;
        let reopened = self.inserted > 0
            && sqlx::query(crate::q(
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
    pub async fn abort(mut self) -> Result<()> {
        if let Some(tx) = self.open.take() {
            // What the open transaction added goes with it.
            let _ = tx.rollback().await;
        }
        self.store.delete_import(self.import_id).await?;
        Ok(())
    }
}

/// An import whose heartbeat stopped this long ago is dead (its batches come every few ms).
const DEAD_IMPORT_MS: i64 = 60_000;

/// Contacts the claim may take: not rows of an import still in progress (alias `k`).
pub const CLAIMABLE_IMPORT_SQL: &str = "(k.import_id IS NULL OR k.import_id NOT IN (SELECT id FROM imports WHERE status = 'IMPORTING'))";
