//! Durable state in SQLite through sqlx: one writer connection (every write transaction is
//! `BEGIN IMMEDIATE`), a separate reader pool, WAL with `synchronous=FULL` because a lost
//! "sent" row would mean a re-dial. One module per table.

pub mod analysis;
pub mod arms;
pub mod attempts;
pub mod bulk;
pub mod calls;
pub mod campaigns;
pub mod contacts;
pub mod control;
pub mod copy;
pub mod events;
pub mod filter;
pub mod follow_up;
pub mod launch;
pub mod lease;
pub mod live;
pub mod numbers;
pub mod policy;
pub mod saved_filters;
mod sql;
pub mod stats;

use std::path::Path;
use std::time::Duration;
use switchboard_model as model;
use switchboard_model::clock::Clock;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Any, Connection, Executor, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {}", migrate_message(.0))]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("no campaign named {0:?} (see `switchboard campaign list`)")]
    UnknownCampaign(String),
    #[error("a campaign named {0:?} already exists")]
    CampaignExists(String),
    #[error("no call with id {0}")]
    UnknownCall(i64),
    #[error("{0}")]
    Conflict(String),
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect { url: String, reason: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A migration error in the operator's terms: the usual one is an older build opened on a
/// database a newer build has migrated.
fn migrate_message(e: &sqlx::migrate::MigrateError) -> String {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::VersionMissing(v) => format!(
            "the database has migration {v}, which this build does not know: a newer \
             switchboard wrote it; run that one (or restore a backup from before it)"
        ),
        MigrateError::VersionMismatch(v) => format!(
            "migration {v} in the database differs from this build's (a modified build \
             opened it?)"
        ),
        other => other.to_string(),
    }
}

/// Which database server a store runs on. The lifecycle's functions are the same on both; the
/// few SQL fragments that differ are chosen by [`Backend`] next to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub use switchboard_model::location::{Location, redact_url};

/// `sql` with its placeholders as `backend` binds them fastest: `?` stays on SQLite, where
/// sqlx looks numbered parameters up by name one by one (a 5,000-parameter import statement
/// spent 88 % of its time in `sqlite3_bind_parameter_name`: 9,823 rows/s instead of 390,000);
/// PostgreSQL needs `$n`. For statements with many parameters.
pub(crate) fn q_for(backend: Backend, sql: String) -> sqlx::AssertSqlSafe<String> {
    match backend {
        Backend::Sqlite => sqlx::AssertSqlSafe(sql),
        Backend::Postgres => q(sql),
    }
}

/// Rewrites `?` placeholders as `$1, $2, …` (outside quoted literals), which both SQLite and
/// PostgreSQL accept: the store's SQL is written once with `?` and runs on either backend.
pub fn q(sql: impl AsRef<str>) -> sqlx::AssertSqlSafe<String> {
    let sql = sql.as_ref();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quoted = false;
    for ch in sql.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                out.push(ch);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(ch),
        }
    }
    sqlx::AssertSqlSafe(out)
}

/// A write transaction with the store's clock, so that every timestamp one operation writes
/// is read from the clock the store was given. Derefs to the connection, as sqlx's
/// `Transaction` does.
pub(crate) struct Tx {
    inner: Transaction<'static, Any>,
    backend: Backend,
    clock: Clock,
    /// When the write was asked for (before the writer's lock was held), for the latency
    /// histograms.
    asked: std::time::Instant,
}

impl Tx {
    /// Now, as stored (see [`format_time`]).
    pub fn now(&self) -> String {
        format_time(self.clock.now())
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        // The engine's Prometheus recorder, when one is installed; a no-op otherwise.
        metrics::histogram!("switchboard_store_write_seconds")
            .record(self.asked.elapsed().as_secs_f64());
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        Ok(self.inner.rollback().await?)
    }
}

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.inner
    }
}

/// Which backend a transaction runs on (for the fragments that differ).
pub(crate) fn backend_of(tx: &Tx) -> Backend {
    tx.backend
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    writer: AnyPool,
    reader: AnyPool,
    backend: Backend,
    clock: Clock,
    /// The SQLite file (None on PostgreSQL): its size and times tell a commit from anyone.
    file: Option<std::sync::Arc<std::path::PathBuf>>,
    /// The success evaluations Vapi has written, read at most every few seconds (a scan).
    evaluations: filter::EvaluationCache,
}

/// What the database files looked like (see [`Store::change_mark`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMark(Vec<(u64, Option<std::time::SystemTime>)>);

fn install_drivers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

impl Store {
    /// Opens (creating if missing) the database file and applies the embedded migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        Store::open_with_busy_timeout(path, Duration::from_secs(10)).await
    }

    /// Opens a SQLite path or a PostgreSQL URL.
    pub async fn open_location(location: &Location) -> Result<Store> {
        match location {
            Location::Sqlite(path) => Store::open(path).await,
            Location::Postgres(url) => Store::open_postgres(url).await,
        }
    }

    /// Opens with a chosen wait for another writer's lock (tests inject lock contention).
    pub async fn open_with_busy_timeout(path: &Path, busy_timeout: Duration) -> Result<Store> {
        install_drivers();
        // Migrations run on a native connection (0004 turns foreign keys off around a rebuild),
        // which also sets WAL, persistent in the file.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let mut native = sqlx::SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations").run(&mut native).await?;
        native.close().await?;
        let url = sqlite_url(path);
        let busy_ms = busy_timeout.as_millis();
        let writer = sqlite_pool(1, &url, busy_ms, false).await?;
        let reader = sqlite_pool(4, &url, busy_ms, true).await?;
        let mut store = Store::finish_open(writer, reader, Backend::Sqlite).await?;
        store.file = Some(std::sync::Arc::new(path.to_path_buf()));
        Ok(store)
    }

    /// Opens a PostgreSQL database (`postgres://user:password@host:port/db`), applying the
    /// migrations of migrations/postgres. Errors name the server without the password.
    pub async fn open_postgres(url: &str) -> Result<Store> {
        install_drivers();
        let connect_error = |e: sqlx::Error| StoreError::Connect {
            url: redact_url(url),
            reason: one_line(&e.to_string()),
        };
        let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(connect_error)?;
        let mut native = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(connect_error)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut native)
            .await?;
        native.close().await?;
        // One writer connection per engine, as on SQLite: an engine's transitions are
        // serialised; engines among themselves by row locks (FOR UPDATE, SKIP LOCKED).
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(connect_error)?;
        let reader = AnyPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await
            .map_err(connect_error)?;
        Store::finish_open(writer, reader, Backend::Postgres).await
    }

    async fn finish_open(writer: AnyPool, reader: AnyPool, backend: Backend) -> Result<Store> {
        let store = Store {
            clock: Clock::system(),
            writer,
            reader,
            backend,
            file: None,
            evaluations: Default::default(),
        };
        store.ensure_rows().await?;
        // Rows of an import that died (crash, kill) never become visible: remove them.
        store.remove_dead_imports().await?;
        Ok(store)
    }

    /// Opens a database in a fresh temporary file; for tests and the benchmark.
    pub async fn open_in(dir: &Path) -> Result<Store> {
        Store::open(&dir.join("switchboard.db")).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A mark that differs after any process committed to the SQLite file (the write-ahead
    /// log grows or is checkpointed into the file): one `stat` each, far cheaper than the
    /// queries it saves a watcher. None on PostgreSQL (no file to look at).
    pub fn change_mark(&self) -> Option<ChangeMark> {
        let file = self.file.as_deref()?;
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        let look = |path: &Path| {
            std::fs::metadata(path).map_or((0, None), |m| (m.len(), m.modified().ok()))
        };
        Some(ChangeMark(vec![look(file), look(Path::new(&wal))]))
    }

    /// The reader pool, for read-only queries: the store's own and the export's streaming
    /// read (which writes rows as they come rather than collecting them here).
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so two writers never deadlock upgrading read locks; on PostgreSQL rows are
    /// locked as they are read for update.
    pub(crate) async fn write(&self) -> Result<Tx> {
        let asked = std::time::Instant::now();
        let inner = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        // SQLite has one writer: the wait for it is what contention costs.
        metrics::histogram!("switchboard_store_wait_seconds").record(asked.elapsed().as_secs_f64());
        Ok(Tx {
            inner,
            backend: self.backend,
            clock: self.clock.clone(),
            asked,
        })
    }

    /// The same store reading wall time from `clock` (a test's; the system's by default).
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// The clock the store reads wall time from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now by the store's clock, as stored.
    pub fn now(&self) -> String {
        format_time(self.clock.now())
    }

    async fn ensure_rows(&self) -> Result<()> {
        let mut tx = self.write().await?;
        let instance = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query(q(
            "INSERT INTO meta (key, value) VALUES ('instance_id', ?) ON CONFLICT DO NOTHING",
        ))
        .bind(&instance[..8])
        .execute(&mut *tx)
        .await?;
        sqlx::query(q(
            "INSERT INTO engine_control (id, dispatch_paused, updated_at) VALUES (1, 0, ?) \
             ON CONFLICT DO NOTHING",
        ))
        .bind(tx.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Short random id of this database, part of every call reference so that two
    /// databases sharing one Vapi account never mistake each other's calls.
    pub async fn instance_id(&self) -> Result<String> {
        Ok(
            sqlx::query_scalar(q("SELECT value FROM meta WHERE key = 'instance_id'"))
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

/// The file as a `sqlite://` URL for the pools (absolute, with `%`, `?`, `#` and spaces
/// escaped: the driver decodes them).
fn sqlite_url(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::from("sqlite://");
    for ch in path.to_string_lossy().chars() {
        match ch {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            ' ' => out.push_str("%20"),
            _ => out.push(ch),
        }
    }
    out
}

/// A pool on the SQLite file whose connections get the per-connection pragmas (WAL is
/// persistent in the file, set by the migration connection).
async fn sqlite_pool(max: u32, url: &str, busy_ms: u128, read_only: bool) -> Result<AnyPool> {
    let sql = format!(
        "PRAGMA synchronous = FULL; PRAGMA busy_timeout = {busy_ms}; PRAGMA foreign_keys = ON;{}",
        if read_only {
            " PRAGMA query_only = ON;"
        } else {
            // A 32 MB page cache for the writer (SQLite's default is 2 MB): a long import's
            // index inserts stay in memory; measured 1.2x the import speed, within its
            // 150 MB memory goal.
            " PRAGMA cache_size = -32768;"
        }
    );
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .after_connect(move |conn, _meta| {
            let sql = sql.clone();
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A 0/1 INTEGER column read as a bool (the Any driver decodes booleans only from a boolean
/// type; both schemas store flags as integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flag(pub bool);

impl sqlx::Type<Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }
    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(
        value: sqlx::any::AnyValueRef<'r>,
    ) -> std::result::Result<Self, sqlx::error::BoxDynError> {
        Ok(Flag(<i64 as sqlx::Decode<'r, Any>>::decode(value)? != 0))
    }
}

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

pub use switchboard_model::text::{format_time, parse_time};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_a_newer_build_says_so_on_one_line() {
        let e = StoreError::from(sqlx::migrate::MigrateError::VersionMissing(12));
        let text = e.to_string();
        assert!(text.contains("migration 12"), "{text}");
        assert!(text.contains("newer switchboard"), "{text}");
        assert_eq!(text.lines().count(), 1);
    }

    #[tokio::test]
    async fn open_applies_migrations_and_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let mode: String = sqlx::query_scalar(q("PRAGMA journal_mode"))
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar(q("PRAGMA synchronous"))
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

    /// Migration 0012 gave every pause stored before it a cause, by the words the engine
    /// used for its stops until then. Its UPDATE statements run again here on rows with no
    /// cause.
    #[tokio::test]
    async fn the_pause_cause_migration_classifies_the_old_reasons() {
        use crate::model::StopCause;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let cases = [
            ("paused by operator", StopCause::Operator),
            ("paused by operator (CLI)", StopCause::Operator),
            ("lunch", StopCause::Operator),
            (
                "daily call limit of 5 reached (resumes after midnight UTC)",
                StopCause::DailyLimit,
            ),
            (
                "budget of $1.00 reached (spent $1.02, $0.00 committed)",
                StopCause::Budget,
            ),
            (
                "call.start.error-subscription-insufficient-credits",
                StopCause::Credits,
            ),
            ("Vapi: insufficient credits", StopCause::Credits),
            ("Vapi: phoneNumberId not found", StopCause::Engine),
            (
                "Vapi rejected the API key (HTTP 401): every call would fail",
                StopCause::Credentials,
            ),
            (
                "3 calls in a row refused with the same message (HTTP 400: x): fix the campaign's settings, then resume it",
                StopCause::Engine,
            ),
            (
                "the assistant failed 5 of the last 20 answered calls (pipeline errors or hang-ups within 3 s; latest: x): fix the assistant, then resume",
                StopCause::Engine,
            ),
            (
                "Vapi refused the campaign's settings (HTTP 400: Couldn't Get Phone Number.): fix the campaign, then resume it",
                StopCause::Engine,
            ),
            (
                "your server returned no assistant; fix the server, then resume",
                StopCause::Engine,
            ),
            (
                "every phone number of the campaign is benched (latest: pn until 10:00)",
                StopCause::Engine,
            ),
        ];
        for (i, (reason, _)) in cases.iter().enumerate() {
            let c = store
                .create_campaign(&format!("c{i}"), "a", "p")
                .await
                .unwrap();
            sqlx::query(q(
                "UPDATE campaigns SET status = 'PAUSED', pause_reason = ? WHERE id = ?",
            ))
            .bind(*reason)
            .bind(c.id)
            .execute(&store.writer)
            .await
            .unwrap();
        }
        let migration = include_str!("../migrations/0012_pause_cause.sql");
        let updates = &migration[migration.find("UPDATE").unwrap()..];
        for statement in updates.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(statement).execute(&store.writer).await.unwrap();
        }
        let postgres = include_str!("../migrations/postgres/0012_pause_cause.sql");
        assert_eq!(migration, postgres, "both backends classify alike");
        let campaigns = store.campaigns().await.unwrap();
        for ((reason, cause), c) in cases.iter().zip(&campaigns) {
            assert_eq!(c.pause_cause, Some(*cause), "{reason}");
            assert_eq!(c.pause().map(|p| p.cause), Some(*cause));
        }
    }
}
