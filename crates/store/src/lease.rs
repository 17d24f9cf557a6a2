//! The engine lease: only one engine dispatches from a database at a time. The holder renews
//! a heartbeat; a second engine is refused with the holder's name; a lease whose heartbeat is
//! older than the timeout, or whose process is gone from this host, is taken over. A holder
//! that finds its lease taken (it stalled past the timeout) must stop dispatching at once.

use super::{Result, Store};

/// The lease row's name for the SQLite dispatcher.
const DISPATCH: &str = "dispatch";

/// On PostgreSQL each engine's lease row is named `engine:<id>`.
const ENGINE_ROW_PREFIX: &str = "engine:";

/// Who holds (or held) the lease.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct LeaseHolder {
    pub holder: String,
    pub host: String,
    pub pid: i64,
    pub acquired_at: String,
    pub heartbeat_ms: i64,
}

impl LeaseHolder {
    /// `host:pid`, as operators name an engine.
    pub fn name(&self) -> String {
        format!("{}:{}", self.host, self.pid)
    }
}

/// Who this engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineIdentity {
    pub id: String,
    pub host: String,
    pub pid: i64,
}

impl EngineIdentity {
    pub fn of_this_process() -> EngineIdentity {
        EngineIdentity {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            host: host_name(),
            pid: i64::from(std::process::id()),
        }
    }
}

/// The answer to an attempt to take the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Ours now. `previous` is the engine whose lease was taken over (crashed or gone), whose
    /// requests in flight must be settled.
    Taken { previous: Option<LeaseHolder> },
    /// A live engine holds it.
    HeldBy(LeaseHolder),
}

impl Store {
    /// The lease row of this engine: on SQLite the one `dispatch` row all engines contend
    /// for; on PostgreSQL a row of its own (several engines share the work).
    fn lease_row(&self, me: &EngineIdentity) -> String {
        match self.backend() {
            super::Backend::Sqlite => DISPATCH.to_string(),
            super::Backend::Postgres => format!("{ENGINE_ROW_PREFIX}{}", me.id),
        }
    }

    /// Takes the dispatch lease. SQLite: if it is free, expired (`timeout_ms` without a
    /// heartbeat), or held by a process that no longer exists on this host. PostgreSQL: always,
    /// as a row of this engine's own; engines whose heartbeat stopped are found by
    /// [`Store::adopt_orphans`].
    pub async fn acquire_lease(&self, me: &EngineIdentity, timeout_ms: i64) -> Result<Acquired> {
        if self.backend() == super::Backend::Postgres {
            let mut tx = self.write().await?;
            sqlx::query(crate::q(
                "INSERT INTO engine_lease (name, holder, host, pid, acquired_at, heartbeat_ms) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(self.lease_row(me))
            .bind(&me.id)
            .bind(&me.host)
            .bind(me.pid)
            .bind(self.now())
            .bind(self.clock().now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Acquired::Taken { previous: None });
        }
        let mut tx = self.write().await?;
        let current: Option<LeaseHolder> = sqlx::query_as(crate::q(
            "SELECT holder, host, pid, acquired_at, heartbeat_ms FROM engine_lease \
             WHERE name = ? AND holder IS NOT NULL",
        ))
        .bind(DISPATCH)
        .fetch_optional(&mut *tx)
        .await?;
        let now = self.clock().now_ms();
        if let Some(holder) = &current
            && holder.holder != me.id
            && now - holder.heartbeat_ms < timeout_ms
            && is_live_elsewhere_or_here(holder, &me.host)
        {
            return Ok(Acquired::HeldBy(holder.clone()));
        }
        sqlx::query(crate::q(
            "UPDATE engine_lease SET holder = ?, host = ?, pid = ?, acquired_at = ?, heartbeat_ms = ? \
             WHERE name = ?",
        ))
        .bind(&me.id)
        .bind(&me.host)
        .bind(me.pid)
        .bind(self.now())
        .bind(now)
        .bind(DISPATCH)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Acquired::Taken {
            previous: current.filter(|h| h.holder != me.id),
        })
    }

    /// Renews the heartbeat, with the engine's live state for `dispatch status` (JSON). False
    /// when the lease is no longer ours (taken over): the caller must stop dispatching.
    pub async fn renew_lease(&self, me: &EngineIdentity, status: Option<&str>) -> Result<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query(crate::q(
            "UPDATE engine_lease SET heartbeat_ms = ?, status = coalesce(?, status) \
             WHERE name = ? AND holder = ?",
        ))
        .bind(self.clock().now_ms())
        .bind(status)
        .bind(self.lease_row(me))
        .bind(&me.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `me` still holds its lease (a read: the database answers, and the lease is
    /// this engine's).
    pub async fn holds_lease(&self, me: &EngineIdentity) -> Result<bool> {
        let held: Option<i64> = sqlx::query_scalar(crate::q(
            "SELECT 1 FROM engine_lease WHERE name = ? AND holder = ?",
        ))
        .bind(self.lease_row(me))
        .bind(&me.id)
        .fetch_optional(self.reader())
        .await?;
        Ok(held.is_some())
    }

    /// Gives the lease up (a clean stop), so the next engine starts at once. On PostgreSQL
    /// the engine's row goes; calls it leaves unfinished are adopted by the others.
    pub async fn release_lease(&self, me: &EngineIdentity) -> Result<()> {
        let mut tx = self.write().await?;
        let sql = match self.backend() {
            super::Backend::Sqlite => {
                "UPDATE engine_lease SET holder = NULL, heartbeat_ms = NULL WHERE name = ? AND holder = ?"
            }
            super::Backend::Postgres => "DELETE FROM engine_lease WHERE name = ? AND holder = ?",
        };
        sqlx::query(crate::q(sql))
            .bind(self.lease_row(me))
            .bind(&me.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL: removes the leases of engines whose heartbeat stopped (or whose process is
    /// gone from this host) and makes this engine the owner of every unfinished call that no
    /// live engine owns, so that it settles them (by look-up, never by re-sending blindly).
    /// Returns the engines taken over and how many calls were adopted. SQLite: nothing to do
    /// (one engine owns everything).
    pub async fn adopt_orphans(
        &self,
        me: &EngineIdentity,
        timeout_ms: i64,
    ) -> Result<(Vec<LeaseHolder>, u64)> {
        if self.backend() == super::Backend::Sqlite {
            return Ok((Vec::new(), 0));
        }
        let mut tx = self.write().await?;
        let holders: Vec<LeaseHolder> = sqlx::query_as(crate::q(
            "SELECT holder, host, pid, acquired_at, heartbeat_ms FROM engine_lease \
             WHERE holder IS NOT NULL AND holder <> ? FOR UPDATE",
        ))
        .bind(&me.id)
        .fetch_all(&mut *tx)
        .await?;
        let now = self.clock().now_ms();
        let dead: Vec<LeaseHolder> = holders
            .into_iter()
            .filter(|h| {
                now - h.heartbeat_ms >= timeout_ms || !is_live_elsewhere_or_here(h, &me.host)
            })
            .collect();
        for h in &dead {
            sqlx::query(crate::q("DELETE FROM engine_lease WHERE holder = ?"))
                .bind(&h.holder)
                .execute(&mut *tx)
                .await?;
        }
        let unfinished = crate::model::sql_in(&[
            crate::model::CallStatus::Creating,
            crate::model::CallStatus::Unknown,
            crate::model::CallStatus::Queued,
            crate::model::CallStatus::Scheduled,
            crate::model::CallStatus::Ringing,
            crate::model::CallStatus::InProgress,
            crate::model::CallStatus::Forwarding,
        ]);
        let adopted = sqlx::query(crate::q(format!(
            "UPDATE calls SET engine_id = ? WHERE status IN {unfinished} AND (engine_id IS NULL \
             OR engine_id NOT IN (SELECT holder FROM engine_lease WHERE holder IS NOT NULL))"
        )))
        .bind(&me.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((dead, adopted))
    }

    /// The live holder's published state (JSON), if an engine holds the lease.
    pub async fn lease_status(&self, timeout_ms: i64) -> Result<Option<(LeaseHolder, String)>> {
        let Some(holder) = self.lease_holder(timeout_ms).await? else {
            return Ok(None);
        };
        let status: Option<String> = sqlx::query_scalar(crate::q(
            "SELECT status FROM engine_lease WHERE holder = ? ORDER BY heartbeat_ms DESC LIMIT 1",
        ))
        .bind(&holder.holder)
        .fetch_optional(self.reader())
        .await?
        .flatten();
        Ok(Some((holder, status.unwrap_or_else(|| "{}".into()))))
    }

    /// The live holder of the lease, if any (for consoles and `dispatch status`); on
    /// PostgreSQL the live engine with the freshest heartbeat.
    pub async fn lease_holder(&self, timeout_ms: i64) -> Result<Option<LeaseHolder>> {
        Ok(self.live_engines(timeout_ms).await?.into_iter().next())
    }

    /// Every live engine on this database, freshest heartbeat first (one at most on SQLite).
    pub async fn live_engines(&self, timeout_ms: i64) -> Result<Vec<LeaseHolder>> {
        let holders: Vec<LeaseHolder> = sqlx::query_as(crate::q(
            "SELECT holder, host, pid, acquired_at, heartbeat_ms FROM engine_lease \
             WHERE holder IS NOT NULL ORDER BY heartbeat_ms DESC",
        ))
        .fetch_all(self.reader())
        .await?;
        let me = host_name();
        let now = self.clock().now_ms();
        Ok(holders
            .into_iter()
            .filter(|h| now - h.heartbeat_ms < timeout_ms && is_live_elsewhere_or_here(h, &me))
            .collect())
    }
}

/// A holder on another host is judged by its heartbeat alone; one on this host also by
/// whether its process still exists.
fn is_live_elsewhere_or_here(holder: &LeaseHolder, this_host: &str) -> bool {
    holder.host != this_host || process_alive(holder.pid)
}

/// This machine's name (for operators; the pid check only applies on the same host).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a process with this pid exists on this host. Where that cannot be told (no
/// /proc), assume it does: then only the heartbeat timeout frees the lease.
pub(crate) fn process_alive(pid: i64) -> bool {
    let proc_root = std::path::Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    let path = proc_root.join(pid.to_string());
    match std::fs::read_to_string(path.join("stat")) {
        // A zombie (state Z) has exited: its lease is free.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(id: &str, pid: i64) -> EngineIdentity {
        EngineIdentity {
            id: id.into(),
            host: host_name(),
            pid,
        }
    }

    #[tokio::test]
    async fn a_live_holder_keeps_the_lease_and_a_second_engine_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let me = EngineIdentity::of_this_process();
        assert_eq!(
            store.acquire_lease(&me, 15_000).await.unwrap(),
            Acquired::Taken { previous: None }
        );
        // Another engine in this same (live) process: refused, naming the holder.
        let other = engine("other", me.pid);
        match store.acquire_lease(&other, 15_000).await.unwrap() {
            Acquired::HeldBy(h) => assert_eq!(h.name(), format!("{}:{}", me.host, me.pid)),
            taken => panic!("second engine got the lease: {taken:?}"),
        }
        assert!(store.renew_lease(&me, None).await.unwrap());
        assert!(store.lease_holder(15_000).await.unwrap().is_some());
        store.release_lease(&me).await.unwrap();
        assert!(store.lease_holder(15_000).await.unwrap().is_none());
        assert_eq!(
            store.acquire_lease(&other, 15_000).await.unwrap(),
            Acquired::Taken { previous: None }
        );
    }

    #[tokio::test]
    async fn a_dead_process_or_a_stale_heartbeat_is_taken_over_and_the_old_holder_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        // A holder whose pid does not exist on this host (pids are below 2^22 on Linux).
        let dead = engine("dead", 999_999_999);
        store.acquire_lease(&dead, 15_000).await.unwrap();
        let me = EngineIdentity::of_this_process();
        match store.acquire_lease(&me, 15_000).await.unwrap() {
            Acquired::Taken { previous: Some(p) } => assert_eq!(p.holder, "dead"),
            other => panic!("{other:?}"),
        }
        // The old holder learns it lost the lease at its next heartbeat.
        assert!(!store.renew_lease(&dead, None).await.unwrap());
        // A live process whose heartbeat is older than the timeout is taken over too.
        let other = engine("other", me.pid);
        assert!(matches!(
            store.acquire_lease(&other, 0).await.unwrap(),
            Acquired::Taken { previous: Some(_) }
        ));
        assert!(!store.renew_lease(&me, None).await.unwrap());
    }
}
