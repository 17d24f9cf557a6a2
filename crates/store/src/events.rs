//! The `engine_events` table: the retry log and operators' actions, kept so that a console
//! attached to an engine elsewhere, or opened after a restart, shows what happened. Bounded:
//! only the newest [`KEPT_EVENTS`] rows are kept.

use super::{Result, Store};

/// How many event rows are kept.
pub const KEPT_EVENTS: i64 = 10_000;

/// One line of the log as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub at: String,
    pub kind: String,
    pub call_id: Option<i64>,
    pub attempt: Option<i64>,
    pub message: String,
    pub next_delay_ms: Option<i64>,
}

impl EventRow {
    /// An operator's action (from the CLI or a console), stamped `at` (as stored).
    pub fn action(message: String, at: String) -> EventRow {
        EventRow {
            at,
            kind: "Command".into(),
            call_id: None,
            attempt: None,
            message,
            next_delay_ms: None,
        }
    }
}

impl Store {
    /// Appends events in one transaction and trims the log to its bound.
    pub async fn append_events(&self, events: &[EventRow]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for e in events {
            sqlx::query(crate::q(
                "INSERT INTO engine_events (at, kind, call_id, attempt, message, next_delay_ms) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(&e.at)
            .bind(&e.kind)
            .bind(e.call_id)
            .bind(e.attempt)
            .bind(&e.message)
            .bind(e.next_delay_ms)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(crate::q(
            "DELETE FROM engine_events WHERE id <= (SELECT max(id) FROM engine_events) - ?",
        ))
        .bind(KEPT_EVENTS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` events, oldest first.
    pub async fn recent_events(&self, limit: i64) -> Result<Vec<EventRow>> {
        let mut rows: Vec<EventRow> = sqlx::query_as(crate::q(
            "SELECT at, kind, call_id, attempt, message, next_delay_ms FROM engine_events \
             ORDER BY id DESC LIMIT ?",
        ))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.reverse();
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_log_keeps_its_newest_rows_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let batch: Vec<EventRow> = (0..KEPT_EVENTS + 5)
            .map(|i| EventRow::action(format!("event {i}"), store.now()))
            .collect();
        store.append_events(&batch).await.unwrap();
        let count: i64 = sqlx::query_scalar(crate::q("SELECT count(*) FROM engine_events"))
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(count, KEPT_EVENTS);
        let last = store.recent_events(2).await.unwrap();
        let messages: Vec<&str> = last.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                format!("event {}", KEPT_EVENTS + 3).as_str(),
                format!("event {}", KEPT_EVENTS + 4).as_str()
            ]
        );
    }
}
