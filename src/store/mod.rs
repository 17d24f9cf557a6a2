//! Durable state in SQLite through sqlx: one writer connection (every write transaction is
//! `BEGIN IMMEDIATE`), a separate reader pool, WAL with `synchronous=FULL` because a lost
//! "sent" row would mean a re-dial. One module per table.

pub mod analysis;
pub mod attempts;
pub mod calls;
pub mod campaigns;
pub mod contacts;
pub mod control;
pub mod events;
pub mod lease;
pub mod policy;
pub mod stats;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("no campaign named {0:?} (see `switchboard campaign list`)")]
    UnknownCampaign(String),
    #[error("a campaign named {0:?} already exists")]
    CampaignExists(String),
    #[error("no call with id {0}")]
    UnknownCall(i64),
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) the database file and applies the embedded migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        Store::open_with_busy_timeout(path, Duration::from_secs(10)).await
    }

    /// Opens with a chosen wait for another writer's lock (tests inject lock contention).
    pub async fn open_with_busy_timeout(path: &Path, busy_timeout: Duration) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        let store = Store { writer, reader };
        store.ensure_rows().await?;
        // Rows of an import that died (crash, kill) never become visible: remove them.
        store.remove_dead_imports().await?;
        Ok(store)
    }

    /// Opens a database in a fresh temporary file; for tests and the benchmark.
    pub async fn open_in(dir: &Path) -> Result<Store> {
        Store::open(&dir.join("switchboard.db")).await
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Starts a write transaction that takes the write lock at once, so two writers never
    /// deadlock upgrading read locks.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn ensure_rows(&self) -> Result<()> {
        let mut tx = self.write().await?;
        let instance = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance_id', ?)")
            .bind(&instance[..8])
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO engine_control (id, dispatch_paused, updated_at) VALUES (1, 0, ?)",
        )
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Short random id of this database, part of every call reference so that two
    /// databases sharing one Vapi account never mistake each other's calls.
    pub async fn instance_id(&self) -> Result<String> {
        Ok(
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'instance_id'")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Now, as stored: ISO-8601 UTC with milliseconds (sorts as text).
pub fn now() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses a stored or Vapi timestamp.
pub fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_applies_migrations_and_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let id = store.instance_id().await.unwrap();
        assert_eq!(id.len(), 8);
        // Re-opening keeps the instance id.
        store.close().await;
        let again = Store::open_in(dir.path()).await.unwrap();
        assert_eq!(again.instance_id().await.unwrap(), id);
    }
}
