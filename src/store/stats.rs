//! Read-side queries: counter verification, histograms and the paged call lists the console
//! and CLI show. All of them go to the reader pool.

use super::{Result, Store};
use crate::model::{AttemptOutcome, CallStatus, ContactStatus, sql_in};

/// A campaign whose stored counters differ from the counts recomputed from its rows.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CounterMismatch {
    pub campaign_id: i64,
    pub stored: String,
    pub recomputed: String,
}

/// The counters as recomputed from `calls` and `contacts` (the source of truth), with the
/// status sets of the lifecycle (src/model.rs): active = at Vapi, created = has a provider id,
/// ended = ENDED, failed = FAILED (unresolved), done = DONE or SKIPPED.
fn recomputed_counters(backend: super::Backend) -> String {
    // Money compared to 6 places; PostgreSQL rounds only numerics.
    let round6 = |e: &str| match backend {
        super::Backend::Sqlite => format!("round({e}, 6)"),
        super::Backend::Postgres => format!("round(CAST({e} AS numeric), 6)"),
    };
    let stored_cost = round6("g.cost_usd");
    let rows_cost =
        round6("(SELECT coalesce(sum(cost_usd), 0) FROM calls c WHERE c.campaign_id = g.id)");
    let at_vapi = sql_in(CallStatus::AT_VAPI);
    let ended = sql_in(&[CallStatus::Ended]);
    let failed = sql_in(&[CallStatus::Failed]);
    let done = sql_in(&[ContactStatus::Done, ContactStatus::Skipped]);
    let visible = super::contacts::CLAIMABLE_IMPORT_SQL;
    format!(
        "SELECT g.id AS campaign_id, \
    g.active_calls || '/' || g.total_calls_created || '/' || g.ended_calls || '/' || g.failed_calls \
      || '/' || {stored_cost} || '/' || g.contacts_total || '/' || g.contacts_done AS stored, \
    (SELECT count(*) FROM calls c WHERE c.campaign_id = g.id AND c.status IN {at_vapi}) || '/' || \
    (SELECT count(*) FROM calls c WHERE c.campaign_id = g.id AND c.provider_call_id IS NOT NULL) || '/' || \
    (SELECT count(*) FROM calls c WHERE c.campaign_id = g.id AND c.status IN {ended}) || '/' || \
    (SELECT count(*) FROM calls c WHERE c.campaign_id = g.id AND c.status IN {failed}) || '/' || \
    {rows_cost} || '/' || \
    (SELECT count(*) FROM contacts k WHERE k.campaign_id = g.id AND {visible}) || '/' || \
    (SELECT count(*) FROM contacts k WHERE k.campaign_id = g.id AND k.status IN {done} AND {visible}) AS recomputed \
    FROM campaigns g"
    )
}

/// Which calls a list shows (the console's tabs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallTab {
    /// Claimed and not yet created at Vapi (first attempt or waiting for a retry).
    Queued,
    /// Created at Vapi and not yet ended.
    Active,
    Failed,
    #[default]
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallSort {
    #[default]
    Newest,
    Oldest,
    Status,
    Attempts,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallQuery {
    pub campaign_id: Option<i64>,
    pub tab: CallTab,
    pub status: Option<CallStatus>,
    /// Case-insensitive substring of phone, contact name, provider id or ended reason.
    pub text: Option<String>,
    pub sort: CallSort,
    pub offset: i64,
    pub limit: i64,
}

/// One row of a call list, with its contact.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct CallListRow {
    pub id: i64,
    pub campaign_id: i64,
    pub contact_id: i64,
    pub contact_name: Option<String>,
    pub phone: String,
    pub status: CallStatus,
    pub attempt_count: i64,
    pub provider_call_id: Option<String>,
    pub ended_reason: Option<String>,
    pub created_at: String,
    pub cost_usd: Option<f64>,
}

impl CallQuery {
    fn where_clause(&self) -> String {
        let mut parts = vec!["1 = 1".to_string()];
        if self.campaign_id.is_some() {
            parts.push("c.campaign_id = ?".into());
        }
        parts.push(match self.tab {
            CallTab::Queued => format!("c.status IN {}", sql_in(CallStatus::IN_CREATION)),
            CallTab::Active => format!("c.status IN {}", sql_in(CallStatus::AT_VAPI)),
            CallTab::Failed => format!("c.status IN {}", sql_in(&[CallStatus::Failed])),
            CallTab::All => "1 = 1".to_string(),
        });
        if self.status.is_some() {
            parts.push("c.status = ?".into());
        }
        if self.text.is_some() {
            parts.push(
                "(k.phone LIKE ? OR k.name LIKE ? OR c.provider_call_id LIKE ? OR c.ended_reason LIKE ?)"
                    .into(),
            );
        }
        parts.join(" AND ")
    }

    fn bind<'q, O>(
        &'q self,
        mut query: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
        pattern: &'q Option<String>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
        if let Some(id) = self.campaign_id {
            query = query.bind(id);
        }
        if let Some(status) = self.status {
            query = query.bind(status);
        }
        if let Some(p) = pattern {
            query = query.bind(p).bind(p).bind(p).bind(p);
        }
        query
    }

    fn pattern(&self) -> Option<String> {
        self.text.as_ref().map(|t| {
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
    }
}

impl Store {
    /// A case-insensitive LIKE with `\` as its escape (SQLite's LIKE ignores ASCII case;
    /// PostgreSQL's needs ILIKE).
    fn like_escaped(&self) -> &'static str {
        match self.backend() {
            super::Backend::Sqlite => " LIKE ? ESCAPE '\\'",
            super::Backend::Postgres => " ILIKE ? ESCAPE '\\'",
        }
    }

    /// Campaigns whose counters disagree with their rows; empty when all is consistent.
    pub async fn verify_counters(&self) -> Result<Vec<CounterMismatch>> {
        let sql = crate::store::q(format!(
            "SELECT * FROM ({}) AS counters WHERE stored != recomputed",
            recomputed_counters(self.backend())
        ));
        Ok(sqlx::query_as(sql).fetch_all(self.reader()).await?)
    }

    /// Rewrites every campaign's counters from its rows (at start, after a crash). Returns
    /// the mismatches that were repaired.
    pub async fn recompute_counters(&self) -> Result<Vec<CounterMismatch>> {
        let mismatches = self.verify_counters().await?;
        if mismatches.is_empty() {
            return Ok(mismatches);
        }
        let mut tx = self.write().await?;
        let at_vapi = sql_in(CallStatus::AT_VAPI);
        let ended = sql_in(&[CallStatus::Ended]);
        let failed = sql_in(&[CallStatus::Failed]);
        let done = sql_in(&[ContactStatus::Done, ContactStatus::Skipped]);
        let visible = super::contacts::CLAIMABLE_IMPORT_SQL;
        let sql = crate::store::q(format!(
            "UPDATE campaigns SET \
             active_calls = (SELECT count(*) FROM calls c WHERE c.campaign_id = campaigns.id \
                AND c.status IN {at_vapi}), \
             total_calls_created = (SELECT count(*) FROM calls c WHERE c.campaign_id = campaigns.id \
                AND c.provider_call_id IS NOT NULL), \
             ended_calls = (SELECT count(*) FROM calls c WHERE c.campaign_id = campaigns.id AND c.status IN {ended}), \
             failed_calls = (SELECT count(*) FROM calls c WHERE c.campaign_id = campaigns.id AND c.status IN {failed}), \
             cost_usd = (SELECT coalesce(sum(cost_usd), 0) FROM calls c WHERE c.campaign_id = campaigns.id), \
             contacts_total = (SELECT count(*) FROM contacts k WHERE k.campaign_id = campaigns.id AND {visible}), \
             contacts_done = (SELECT count(*) FROM contacts k WHERE k.campaign_id = campaigns.id AND k.status IN {done} AND {visible})"
        ));
        sqlx::query(sql).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(mismatches)
    }

    /// Ended-reason histogram of a campaign, most frequent first.
    pub async fn reason_histogram(&self, campaign_id: i64) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(crate::store::q(
            "SELECT ended_reason, count FROM campaign_reasons WHERE campaign_id = ? \
             ORDER BY count DESC, ended_reason",
        ))
        .bind(campaign_id)
        .fetch_all(self.reader())
        .await?)
    }

    /// Calls claimed but not yet created at Vapi, per campaign (in flight or waiting to retry).
    pub async fn creating_counts(&self) -> Result<Vec<(i64, i64)>> {
        let sql = crate::store::q(format!(
            "SELECT campaign_id, count(*) FROM calls WHERE status IN {} GROUP BY campaign_id",
            sql_in(CallStatus::IN_CREATION)
        ));
        Ok(sqlx::query_as(sql).fetch_all(self.reader()).await?)
    }

    /// Calls created at Vapi since `since` (ISO-8601), for the daily limit.
    pub async fn created_since(&self, since: &str) -> Result<i64> {
        let sql = crate::store::q(format!(
            "SELECT count(*) FROM call_attempts WHERE outcome IN {} AND finished_at >= ?",
            sql_in(&[AttemptOutcome::Created, AttemptOutcome::Adopted])
        ));
        Ok(sqlx::query_scalar(sql)
            .bind(since)
            .fetch_one(self.reader())
            .await?)
    }

    /// One page of a call list, only the rows asked for (the console's visible window).
    pub async fn call_page(&self, query: &CallQuery) -> Result<Vec<CallListRow>> {
        self.call_page_near(query, None).await
    }

    /// Like [`Store::call_page`], but with the list's total known a window in the far half is
    /// read from the other end, so SQLite never steps over more than half the list: the last
    /// page of a million calls costs what the first does.
    pub async fn call_page_near(
        &self,
        query: &CallQuery,
        total: Option<i64>,
    ) -> Result<Vec<CallListRow>> {
        let limit = query.limit.max(0);
        let offset = query.offset.max(0);
        let (reversed, offset, limit) = match total {
            Some(total) if offset > total / 2 && offset < total => {
                let end = (offset + limit).min(total);
                (true, total - end, end - offset)
            }
            _ => (false, offset, limit),
        };
        let order = match (query.sort, reversed) {
            (CallSort::Newest, false) | (CallSort::Oldest, true) => "c.id DESC",
            (CallSort::Oldest, false) | (CallSort::Newest, true) => "c.id ASC",
            (CallSort::Status, false) => "c.status, c.id DESC",
            (CallSort::Status, true) => "c.status DESC, c.id ASC",
            (CallSort::Attempts, false) => "c.attempt_count DESC, c.id DESC",
            (CallSort::Attempts, true) => "c.attempt_count ASC, c.id ASC",
        };
        let columns = "c.id, c.campaign_id, c.contact_id, k.name AS contact_name, k.phone, c.status, \
             c.attempt_count, c.provider_call_id, c.ended_reason, c.created_at, c.cost_usd";
        let filter = query.where_clause().replace(" LIKE ?", self.like_escaped());
        let sql = crate::store::q(if query.text.is_some() {
            // The filter needs the contact, so rows are joined before they are skipped.
            format!(
                "SELECT {columns} FROM calls c JOIN contacts k ON k.id = c.contact_id \
                 WHERE {filter} ORDER BY {order} LIMIT ? OFFSET ?"
            )
        } else {
            // Skip over calls alone (an index walk), then join only the window's rows.
            format!(
                "SELECT {columns} FROM (SELECT * FROM calls c WHERE {filter} ORDER BY {order} \
                 LIMIT ? OFFSET ?) c JOIN contacts k ON k.id = c.contact_id ORDER BY {order}"
            )
        });
        let pattern = query.pattern();
        let q = query.bind(sqlx::query_as(sql), &pattern);
        let mut rows: Vec<CallListRow> =
            q.bind(limit).bind(offset).fetch_all(self.reader()).await?;
        if reversed {
            rows.reverse();
        }
        Ok(rows)
    }

    /// How many calls a list has in all (for the tab counts and the scroll bar).
    pub async fn call_count(&self, query: &CallQuery) -> Result<i64> {
        // The contact is only needed to filter on its name or phone.
        let join = if query.text.is_some() {
            "JOIN contacts k ON k.id = c.contact_id"
        } else {
            ""
        };
        let sql = crate::store::q(format!(
            "SELECT count(*) FROM calls c {join} WHERE {}",
            query.where_clause().replace(" LIKE ?", self.like_escaped())
        ));
        let pattern = query.pattern();
        let q: sqlx::query::QueryAs<'_, sqlx::Any, (i64,), _> =
            query.bind(sqlx::query_as(sql), &pattern);
        Ok(q.fetch_one(self.reader()).await?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::calls::CallUpdate;
    use crate::store::contacts::NewContact;

    #[tokio::test]
    async fn far_windows_read_from_the_other_end_give_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let c = store.create_campaign("c", "a", "p").await.unwrap();
        let contacts: Vec<NewContact> = (0..25)
            .map(|i| NewContact {
                name: None,
                phone: format!("+1415555{i:04}"),
                extension: None,
                variables: "{}".into(),
            })
            .collect();
        store.insert_contacts(c.id, &contacts).await.unwrap();
        store.start_campaign(c.id).await.unwrap();
        let instance = store.instance_id().await.unwrap();
        while let Some((job, attempt)) = store.claim_call(c.id, &instance, "test").await.unwrap() {
            let provider = format!("p{}", job.call_id);
            store
                .record_created(
                    job.call_id,
                    attempt,
                    crate::model::AttemptOutcome::Created,
                    &provider,
                    &CallUpdate::default(),
                )
                .await
                .unwrap();
        }
        for sort in [
            CallSort::Newest,
            CallSort::Oldest,
            CallSort::Status,
            CallSort::Attempts,
        ] {
            for offset in [0, 5, 12, 13, 20, 22, 24] {
                let query = CallQuery {
                    campaign_id: Some(c.id),
                    sort,
                    offset,
                    limit: 5,
                    ..Default::default()
                };
                let plain = store.call_page(&query).await.unwrap();
                let near = store.call_page_near(&query, Some(25)).await.unwrap();
                let ids = |rows: &[CallListRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
                assert_eq!(ids(&plain), ids(&near), "{sort:?} at {offset}");
            }
        }
    }
}
