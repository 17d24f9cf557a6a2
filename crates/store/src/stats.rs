//! Read-side queries: counter verification, histograms and the paged call lists the console
//! and CLI show. All of them go to the reader pool.

use super::sql::{Arg, Sql};
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

/// Which rows a list shows (the console's tabs), named for what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallTab {
    /// Contacts waiting for a call: rows of `contacts`, not `calls` (see
    /// [`CallListRow::pending_contact`]).
    Pending,
    /// Claimed and being created at Vapi: CREATING or UNKNOWN (first attempt or a retry).
    Dialing,
    /// Created at Vapi and not yet ended.
    Active,
    /// Unresolved failures only: a retried call is RETRIED and leaves this tab.
    Failed,
    /// Ended at Vapi.
    Done,
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
    /// A filter expression (`status = FAILED and attempts >= 2`), resolved against the store
    /// at each read ([`Store::resolve_filter`]); on the Pending tab, over each waiting
    /// contact and its latest call.
    pub filter: Option<switchboard_model::filter::Filter>,
    pub sort: CallSort,
    /// The window: `limit` rows from the list's `offset`-th.
    pub offset: i64,
    pub limit: i64,
    /// A row known to sit at an index of the list (the console's selected call): the window
    /// is then read by its sort key on either side (keyset paging), never by skipping
    /// `offset` rows, so a window in the middle of a million calls costs what the first does.
    pub anchor: Option<Anchor>,
}

/// A row of the list and its index, by the values it sorts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub index: i64,
    pub id: i64,
    pub status: CallStatus,
    pub attempt_count: i64,
}

impl Anchor {
    pub fn of(index: i64, row: &CallListRow) -> Anchor {
        Anchor {
            index,
            id: row.id,
            status: row.status,
            attempt_count: row.attempt_count,
        }
    }
}

/// One direction of a keyset read: "comes after the anchor" in this direction (rows after
/// it in the list's order when `forward`, else before it, nearest first; `inclusive` takes
/// the anchor's own row too, one read instead of two), appended to `sql`, and the order that
/// goes with it. Plain comparisons joined by OR, portable to any SQL database (no row values,
/// whose directions could not differ).
fn push_keyset(
    sql: &mut Sql,
    sort: CallSort,
    anchor: &Anchor,
    forward: bool,
    inclusive: bool,
) -> &'static str {
    // (the sort key and its value, whether the key runs upwards, whether the id runs
    // downwards, the ORDER BY)
    let status = || ("c.status", Arg::from(anchor.status.as_str()));
    let attempts = || ("c.attempt_count", Arg::from(anchor.attempt_count));
    let (key, key_up, id_down, order) = match (sort, forward) {
        (CallSort::Newest, true) | (CallSort::Oldest, false) => (None, true, true, "c.id DESC"),
        (CallSort::Newest, false) | (CallSort::Oldest, true) => (None, true, false, "c.id ASC"),
        (CallSort::Status, true) => (Some(status()), true, true, "c.status, c.id DESC"),
        (CallSort::Status, false) => (Some(status()), false, false, "c.status DESC, c.id ASC"),
        (CallSort::Attempts, true) => (
            Some(attempts()),
            false,
            true,
            "c.attempt_count DESC, c.id DESC",
        ),
        (CallSort::Attempts, false) => (
            Some(attempts()),
            true,
            false,
            "c.attempt_count ASC, c.id ASC",
        ),
    };
    let id_op = match (id_down, inclusive) {
        (true, false) => "c.id < ",
        (true, true) => "c.id <= ",
        (false, false) => "c.id > ",
        (false, true) => "c.id >= ",
    };
    match key {
        None => {
            sql.push(id_op).bind(anchor.id);
        }
        Some((column, value)) => {
            sql.push("(").push(column);
            sql.push(if key_up { " > " } else { " < " });
            sql.bind(value.clone())
                .push(" OR (")
                .push(column)
                .push(" = ");
            sql.bind(value)
                .push(" AND ")
                .push(id_op)
                .bind(anchor.id)
                .push("))");
        }
    }
    order
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
    /// A row of the Pending tab: a contact waiting for its next call, not a call. Its `id`
    /// is the contact's, its `status` REQUEUED (waiting for a new call) and its
    /// `attempt_count` the sequences already used.
    #[sqlx(default, try_from = "super::Flag")]
    #[serde(skip)]
    pub pending_contact: bool,
    /// Which call of its contact this is (the contact's attempt sequence: 2 is the second
    /// time the contact was dialled); for a Pending row, the sequences used so far.
    #[sqlx(default)]
    #[serde(skip)]
    pub sequence: i64,
    /// Redials made for the contact so far (the campaign's redial rules).
    #[sqlx(default)]
    #[serde(skip)]
    pub redials: i64,
    /// A Pending row: the lane it waits in (callback, fresh, redial).
    #[sqlx(default)]
    #[serde(skip)]
    pub lane: Option<crate::model::Lane>,
    /// A Pending row: when the contact will be dialled and why not sooner; `None`: now.
    #[sqlx(skip)]
    #[serde(skip)]
    pub waiting: Option<switchboard_model::policy::Waiting>,
}

/// A Pending row as read, with what decides when it may be dialled.
#[derive(sqlx::FromRow)]
struct PendingRow {
    #[sqlx(flatten)]
    row: CallListRow,
    eligible_at: Option<String>,
    eligible_reason: Option<String>,
    timezone: Option<String>,
}

impl CallQuery {
    /// Whether the filter reads the contact (`contacts k` joined).
    fn needs_contact(&self) -> bool {
        self.text.is_some() || self.filter.is_some()
    }

    /// The list's filter over `calls c` (with `contacts k` joined when it needs it).
    pub(crate) fn push_filter(
        &self,
        sql: &mut Sql,
        resolved: Option<&super::filter::ResolvedFilter>,
    ) {
        sql.push("1 = 1");
        if let Some(id) = self.campaign_id {
            sql.push(" AND c.campaign_id = ").bind(id);
        }
        let tab = match self.tab {
            CallTab::Dialing => Some(sql_in(CallStatus::IN_CREATION)),
            CallTab::Active => Some(sql_in(CallStatus::AT_VAPI)),
            CallTab::Failed => Some(sql_in(&[CallStatus::Failed])),
            CallTab::Done => Some(sql_in(&[CallStatus::Ended])),
            // Pending lists contacts (`push_pending_filter`); never reaches here.
            CallTab::Pending | CallTab::All => None,
        };
        if let Some(statuses) = tab {
            sql.push(" AND c.status IN ").push(&statuses);
        }
        if let Some(status) = self.status {
            sql.push(" AND c.status = ").bind(status.as_str());
        }
        if let Some(text) = &self.text {
            sql.push(" AND (").contains("k.phone", text).push(" OR ");
            sql.contains("k.name", text).push(" OR ");
            sql.contains("c.provider_call_id", text).push(" OR ");
            sql.contains("c.ended_reason", text).push(")");
        }
        if let Some(filter) = resolved {
            super::filter::push_and(sql, filter);
        }
    }

    /// The Pending tab's source: `contacts k`, with its latest call `c` when a filter
    /// expression may name the call's columns (a requeued contact's last call).
    fn push_pending_from(&self, sql: &mut Sql) {
        sql.push(" FROM contacts k");
        if self.filter.is_some() {
            sql.push(" LEFT JOIN calls c ON c.contact_id = k.id AND c.sequence = k.sequence");
        }
        sql.push(" WHERE ");
    }

    /// The Pending tab's filter over `contacts k`: waiting contacts whose import is done,
    /// and the expression over each contact and its latest call, as `contacts --where`.
    fn push_pending_filter(&self, sql: &mut Sql, resolved: Option<&super::filter::ResolvedFilter>) {
        sql.push("k.status IN ")
            .push(&sql_in(&[ContactStatus::Pending]))
            .push(" AND ")
            .push(super::contacts::CLAIMABLE_IMPORT_SQL);
        if let Some(id) = self.campaign_id {
            sql.push(" AND k.campaign_id = ").bind(id);
        }
        if let Some(text) = &self.text {
            sql.push(" AND (").contains("k.phone", text).push(" OR ");
            sql.contains("k.name", text).push(")");
        }
        if let Some(filter) = resolved {
            super::filter::push_and(sql, &filter.clone().over_contacts());
        }
    }
}

/// A call list row's columns (`calls c` joined with `contacts k`).
const CALL_COLUMNS: &str = "c.id, c.campaign_id, c.contact_id, k.name AS contact_name, k.phone, \
     c.status, c.attempt_count, c.provider_call_id, c.ended_reason, c.created_at, c.cost_usd, \
     c.sequence, k.redials";

impl Store {
    /// Campaigns whose counters disagree with their rows; empty when all is consistent.
    pub async fn verify_counters(&self) -> Result<Vec<CounterMismatch>> {
        let sql = crate::q(format!(
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
        let sql = crate::q(format!(
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

    /// A campaign's first `limit` calls that were answered and have ended, oldest first: their
    /// ended reason and how long they lasted once answered (ms). The engine learns the
    /// campaign's baseline of quick hang-ups from them, the same on every engine and after a
    /// restart.
    pub async fn first_answered_calls(
        &self,
        campaign_id: i64,
        limit: u32,
    ) -> Result<Vec<(String, Option<i64>)>> {
        let ended = sql_in(&[CallStatus::Ended]);
        let rows: Vec<(String, String, String)> = sqlx::query_as(crate::q(format!(
            "SELECT ended_reason, started_at, ended_at FROM calls \
             WHERE campaign_id = ? AND status IN {ended} AND started_at IS NOT NULL \
             AND ended_at IS NOT NULL AND ended_reason IS NOT NULL ORDER BY id LIMIT ?"
        )))
        .bind(campaign_id)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(reason, started, ended)| {
                let talk = super::parse_time(&started)
                    .zip(super::parse_time(&ended))
                    .map(|(s, e)| (e - s).num_milliseconds());
                (reason, talk)
            })
            .collect())
    }

    /// Ended-reason histogram of a campaign, most frequent first.
    pub async fn reason_histogram(&self, campaign_id: i64) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(crate::q(
            "SELECT ended_reason, count FROM campaign_reasons WHERE campaign_id = ? \
             ORDER BY count DESC, ended_reason",
        ))
        .bind(campaign_id)
        .fetch_all(self.reader())
        .await?)
    }

    /// Calls claimed but not yet created at Vapi, per campaign (in flight or waiting to retry).
    pub async fn creating_counts(&self) -> Result<Vec<(i64, i64)>> {
        let sql = crate::q(format!(
            "SELECT campaign_id, count(*) FROM calls WHERE status IN {} GROUP BY campaign_id",
            sql_in(CallStatus::IN_CREATION)
        ));
        Ok(sqlx::query_as(sql).fetch_all(self.reader()).await?)
    }

    /// Calls created at Vapi since `since` (ISO-8601), for the daily limit.
    pub async fn created_since(&self, since: &str) -> Result<i64> {
        let sql = crate::q(format!(
            "SELECT count(*) FROM call_attempts WHERE outcome IN {} AND finished_at >= ?",
            sql_in(&[AttemptOutcome::Created, AttemptOutcome::Adopted])
        ));
        Ok(sqlx::query_scalar(sql)
            .bind(since)
            .fetch_one(self.reader())
            .await?)
    }

    /// The query's filter with what it needs from the store, if it has one.
    async fn resolve_query_filter(
        &self,
        query: &CallQuery,
    ) -> Result<Option<super::filter::ResolvedFilter>> {
        match &query.filter {
            Some(filter) => Ok(Some(self.resolve_filter(filter).await?)),
            None => Ok(None),
        }
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
        if query.tab == CallTab::Pending {
            return self.pending_page_at(query, self.clock().now()).await;
        }
        if let Some(anchor) = &query.anchor {
            return self.call_page_keyset(query, anchor).await;
        }
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
        let resolved = self.resolve_query_filter(query).await?;
        let resolved = resolved.as_ref();
        let mut sql = Sql::new(self.backend());
        if query.needs_contact() {
            // The filter needs the contact, so rows are joined before they are skipped.
            sql.push("SELECT ").push(CALL_COLUMNS);
            sql.push(" FROM calls c JOIN contacts k ON k.id = c.contact_id WHERE ");
            query.push_filter(&mut sql, resolved);
            sql.push(" ORDER BY ")
                .push(order)
                .push(" LIMIT ")
                .bind(limit);
            sql.push(" OFFSET ").bind(offset);
        } else {
            // Skip over calls alone (an index walk), then join only the window's rows.
            sql.push("SELECT ").push(CALL_COLUMNS);
            sql.push(" FROM (SELECT * FROM calls c WHERE ");
            query.push_filter(&mut sql, resolved);
            sql.push(" ORDER BY ")
                .push(order)
                .push(" LIMIT ")
                .bind(limit);
            sql.push(" OFFSET ").bind(offset);
            sql.push(") c JOIN contacts k ON k.id = c.contact_id ORDER BY ")
                .push(order);
        }
        let mut rows: Vec<CallListRow> = sql.query_as().fetch_all(self.reader()).await?;
        if reversed {
            rows.reverse();
        }
        Ok(rows)
    }

    /// The window `[offset, offset + limit)` read around `anchor` by sort key: the rows
    /// before it (nearest first, then turned round) and the rows from it on. An anchor
    /// outside the window skips at most the gap between them.
    async fn call_page_keyset(
        &self,
        query: &CallQuery,
        anchor: &Anchor,
    ) -> Result<Vec<CallListRow>> {
        let start = query.offset.max(0);
        let end = start + query.limit.max(0);
        let mut rows = Vec::new();
        if start < anchor.index {
            // Before the anchor: nearest first, skipping what lies between window and anchor.
            let skip = (anchor.index - end).max(0);
            let take = anchor.index.min(end) - start;
            let mut before = self
                .keyset_read(query, anchor, false, false, skip, take)
                .await?;
            before.reverse();
            rows.extend(before);
        }
        if end > anchor.index {
            // From the anchor's own row (if it is still in the list) when it is in the window.
            let inclusive = anchor.index >= start;
            let skip = (start - anchor.index - 1).max(0);
            let take = end - if inclusive { anchor.index } else { start };
            rows.extend(
                self.keyset_read(query, anchor, true, inclusive, skip, take)
                    .await?,
            );
        }
        Ok(rows)
    }

    async fn keyset_read(
        &self,
        query: &CallQuery,
        anchor: &Anchor,
        forward: bool,
        inclusive: bool,
        skip: i64,
        take: i64,
    ) -> Result<Vec<CallListRow>> {
        if take <= 0 {
            return Ok(Vec::new());
        }
        let resolved = self.resolve_query_filter(query).await?;
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT ").push(CALL_COLUMNS);
        sql.push(" FROM calls c JOIN contacts k ON k.id = c.contact_id WHERE ");
        query.push_filter(&mut sql, resolved.as_ref());
        sql.push(" AND ");
        let order = push_keyset(&mut sql, query.sort, anchor, forward, inclusive);
        sql.push(" ORDER BY ")
            .push(order)
            .push(" LIMIT ")
            .bind(take);
        sql.push(" OFFSET ").bind(skip);
        Ok(sql.query_as().fetch_all(self.reader()).await?)
    }

    /// The Pending tab's window: waiting contacts in the order they are claimed (by lane in
    /// the campaign's lane order, then oldest first, whatever the sort), each with its lane,
    /// its sequences used and, as of `now`, when it will be dialled (its deferral and its
    /// calling window, `policy::next_eligible`).
    pub async fn pending_page_at(
        &self,
        query: &CallQuery,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CallListRow>> {
        let mut sql = Sql::new(self.backend());
        sql.push(
            "SELECT k.id AS id, k.campaign_id, k.id AS contact_id, k.name AS contact_name, \
             k.phone, ",
        );
        sql.bind(CallStatus::Requeued.as_str()).push(
            " AS status, k.sequence AS attempt_count, \
             NULL AS provider_call_id, NULL AS ended_reason, k.created_at, NULL AS cost_usd, \
             1 AS pending_contact, k.sequence, k.redials, k.lane, \
             k.eligible_at, k.eligible_reason, k.timezone",
        );
        let resolved = self.resolve_query_filter(query).await?;
        query.push_pending_from(&mut sql);
        query.push_pending_filter(&mut sql, resolved.as_ref());
        let lanes = match query.campaign_id {
            Some(id) => self.follow_up_settings(id).await?.lanes(),
            None => Default::default(),
        };
        sql.push(" ORDER BY CASE k.lane WHEN ")
            .bind(lanes.0[0].as_str());
        sql.push(" THEN 0 WHEN ").bind(lanes.0[1].as_str());
        sql.push(" THEN 1 ELSE 2 END, k.id LIMIT ")
            .bind(query.limit.max(0));
        sql.push(" OFFSET ").bind(query.offset.max(0));
        let read: Vec<PendingRow> = sql.query_as().fetch_all(self.reader()).await?;
        // The rules of the window's campaigns (one, from the console), read once each.
        let mut rules: Vec<(i64, super::policy::CampaignRules)> = Vec::new();
        let mut rows = Vec::with_capacity(read.len());
        for pending in read {
            let mut row = pending.row;
            let campaign = match rules.iter().position(|(id, _)| *id == row.campaign_id) {
                Some(at) => &rules[at].1,
                None => {
                    let read = self.campaign_rules(row.campaign_id).await?;
                    rules.push((row.campaign_id, read));
                    &rules[rules.len() - 1].1
                }
            };
            let zone = pending
                .timezone
                .as_deref()
                .and_then(|z| z.parse().ok())
                .unwrap_or_else(|| campaign.zone());
            let eligible_at = pending.eligible_at.as_deref().and_then(super::parse_time);
            row.waiting = switchboard_model::policy::next_eligible(
                &campaign.window(),
                zone,
                eligible_at,
                pending.eligible_reason.as_deref(),
                now,
            );
            rows.push(row);
        }
        Ok(rows)
    }

    /// How many calls a list has in all (for the tab counts and the scroll bar).
    pub async fn call_count(&self, query: &CallQuery) -> Result<i64> {
        let resolved = self.resolve_query_filter(query).await?;
        let mut sql = Sql::new(self.backend());
        if query.tab == CallTab::Pending {
            sql.push("SELECT count(*)");
            query.push_pending_from(&mut sql);
            query.push_pending_filter(&mut sql, resolved.as_ref());
        } else {
            sql.push("SELECT count(*) FROM calls c");
            // The contact is only needed to filter on its name or phone.
            if query.needs_contact() {
                sql.push(" JOIN contacts k ON k.id = c.contact_id");
            }
            sql.push(" WHERE ");
            query.push_filter(&mut sql, resolved.as_ref());
        }
        Ok(sql.query_scalar().fetch_one(self.reader()).await?)
    }
}

/// One line of a campaign report: the ended calls of one group (a reason, an hour, a dial).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLine<K> {
    pub key: K,
    pub calls: i64,
    /// Calls with a conversation (`model::is_conversation` of their ended reason).
    pub talked: i64,
    pub cost_usd: f64,
}

/// A campaign's ended calls counted three ways: by ended reason (most first), by the hour of
/// day they were placed in the campaign's zone (hours with calls only), and by which call of
/// its contact each was (1 = the first dial, 2 and up redials or retries).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CampaignReport {
    /// The campaign's zone: the hours are said in it.
    pub zone: String,
    pub by_reason: Vec<ReportLine<String>>,
    pub by_hour: Vec<ReportLine<u32>>,
    pub by_dial: Vec<ReportLine<i64>>,
    /// The calls judged a success, by the same rule as the campaign pane's rate.
    pub success: super::analysis::SuccessTally,
    /// Assistants side by side: one line per arm (empty: one assistant).
    pub arms: Vec<super::arms::ArmLine>,
    /// Voicemails on which the campaign's message was left (the ladder's last rung).
    pub voicemail_messages_left: u64,
}

/// Adds a group of calls to the line of `key`, making it if needed.
fn tally<K: PartialEq>(lines: &mut Vec<ReportLine<K>>, key: K, calls: i64, talked: i64, cost: f64) {
    match lines.iter_mut().find(|l| l.key == key) {
        Some(line) => {
            line.calls += calls;
            line.talked += talked;
            line.cost_usd += cost;
        }
        None => lines.push(ReportLine {
            key,
            calls,
            talked,
            cost_usd: cost,
        }),
    }
}

impl Store {
    /// The report of a campaign's ended calls (the console's `o`): one grouped read of
    /// `calls` (reason × UTC hour × dial, a few thousand groups at most however many calls),
    /// folded three ways here. Hours are placed in the campaign's zone from each UTC hour (a
    /// zone with a half-hour offset gets the local hour the UTC hour starts in).
    pub async fn campaign_report(&self, campaign_id: i64) -> Result<CampaignReport> {
        let zone = self.campaign_rules(campaign_id).await?.zone();
        let groups: Vec<(String, String, i64, i64, f64)> = sqlx::query_as(crate::q(
            "SELECT coalesce(c.ended_reason, ''), substr(c.created_at, 1, 13), c.sequence, \
             count(*), coalesce(sum(c.cost_usd), 0.0) FROM calls c \
             WHERE c.campaign_id = ? AND c.status = ? \
             GROUP BY coalesce(c.ended_reason, ''), substr(c.created_at, 1, 13), c.sequence",
        ))
        .bind(campaign_id)
        .bind(CallStatus::Ended)
        .fetch_all(self.reader())
        .await?;
        let arms = self.arm_report(campaign_id).await?;
        let mut report = CampaignReport {
            zone: zone.name().to_string(),
            success: self.success_tally(campaign_id).await?,
            voicemail_messages_left: arms.total.voicemail_messages_left,
            arms: arms.arms,
            ..CampaignReport::default()
        };
        for (reason, utc_hour, dial, calls, cost) in groups {
            let talked = if crate::model::is_conversation(&reason) {
                calls
            } else {
                0
            };
            let hour =
                chrono::NaiveDateTime::parse_from_str(&format!("{utc_hour}:00"), "%Y-%m-%dT%H:%M")
                    .map(|t| chrono::Timelike::hour(&t.and_utc().with_timezone(&zone)));
            tally(&mut report.by_reason, reason, calls, talked, cost);
            // A stored time that does not read has no hour; it still counts above.
            if let Ok(hour) = hour {
                tally(&mut report.by_hour, hour, calls, talked, cost);
            }
            tally(&mut report.by_dial, dial, calls, talked, cost);
        }
        report
            .by_reason
            .sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.key.cmp(&b.key)));
        report.by_hour.sort_by_key(|l| l.key);
        report.by_dial.sort_by_key(|l| l.key);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::CallUpdate;
    use crate::contacts::NewContact;

    /// Records a claimed call as created at Vapi (provider id `p{call_id}`).
    /// `n` contacts (`Person i`, +1415555000i) added to a campaign, which is then started.
    async fn start_with_contacts(store: &Store, campaign_id: i64, n: usize) {
        let contacts: Vec<NewContact> = (0..n)
            .map(|i| NewContact {
                name: Some(format!("Person {i}")),
                phone: format!("+1415555{i:04}"),
                variables: "{}".into(),
                ..NewContact::default()
            })
            .collect();
        store.insert_contacts(campaign_id, &contacts).await.unwrap();
        store.start_campaign(campaign_id).await.unwrap();
    }

    async fn created_at_vapi(store: &Store, call_id: i64, attempt: i64) {
        store
            .record_created(
                call_id,
                attempt,
                crate::model::AttemptOutcome::Created,
                &format!("p{call_id}"),
                &CallUpdate::default(),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn far_windows_read_from_the_other_end_give_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let c = store.create_campaign("c", "a", "p").await.unwrap();
        start_with_contacts(&store, c.id, 25).await;
        let instance = store.instance_id().await.unwrap();
        while let Some((job, attempt)) = store.claim_call(c.id, &instance, "test").await.unwrap() {
            created_at_vapi(&store, job.call_id, attempt).await;
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
                // Keyset reads around an anchor anywhere near give the same window.
                let all = store
                    .call_page(&CallQuery {
                        offset: 0,
                        limit: 100,
                        ..query.clone()
                    })
                    .await
                    .unwrap();
                for at in [0usize, 3, 5, 9, 12, 17, 24] {
                    let anchored = CallQuery {
                        anchor: Some(Anchor::of(at as i64, &all[at])),
                        ..query.clone()
                    };
                    let keyset = store.call_page(&anchored).await.unwrap();
                    assert_eq!(
                        ids(&plain),
                        ids(&keyset),
                        "{sort:?} at {offset}, anchor at {at}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn the_pending_tab_lists_waiting_contacts_and_the_dialing_tab_their_calls() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let c = store.create_campaign("c", "a", "p").await.unwrap();
        start_with_contacts(&store, c.id, 5).await;
        let instance = store.instance_id().await.unwrap();
        for _ in 0..2 {
            store
                .claim_call(c.id, &instance, "test")
                .await
                .unwrap()
                .unwrap();
        }
        let tab = |tab, text: Option<&str>| CallQuery {
            campaign_id: Some(c.id),
            tab,
            text: text.map(str::to_string),
            limit: 10,
            ..Default::default()
        };
        let pending = store.call_page(&tab(CallTab::Pending, None)).await.unwrap();
        assert_eq!(pending.len(), 3);
        assert!(
            pending
                .iter()
                .all(|r| r.pending_contact && r.provider_call_id.is_none())
        );
        let names: Vec<_> = pending
            .iter()
            .filter_map(|r| r.contact_name.clone())
            .collect();
        assert_eq!(
            names,
            ["Person 2", "Person 3", "Person 4"],
            "in claim order"
        );
        assert_eq!(
            store
                .call_count(&tab(CallTab::Pending, None))
                .await
                .unwrap(),
            3
        );
        let one = tab(CallTab::Pending, Some("son 3"));
        assert_eq!(store.call_page(&one).await.unwrap().len(), 1);
        assert_eq!(store.call_count(&one).await.unwrap(), 1);
        // The claimed two are being created: the Dialing tab, as calls.
        let dialing = store.call_page(&tab(CallTab::Dialing, None)).await.unwrap();
        assert_eq!(dialing.len(), 2);
        assert!(dialing.iter().all(|r| !r.pending_contact));
        assert_eq!(
            store.call_count(&tab(CallTab::Done, None)).await.unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn the_pending_tab_takes_an_expression_over_each_contact_and_its_latest_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let c = store.create_campaign("c", "a", "p").await.unwrap();
        start_with_contacts(&store, c.id, 5).await;
        let instance = store.instance_id().await.unwrap();
        // Person 0 called and put back in the queue; Person 1 being dialled; 2–4 never called.
        let (first, _) = store
            .claim_call(c.id, &instance, "test")
            .await
            .unwrap()
            .unwrap();
        store
            .claim_call(c.id, &instance, "test")
            .await
            .unwrap()
            .unwrap();
        store
            .requeue_call(first.call_id, None, "campaign paused")
            .await
            .unwrap();
        let names = |expression: &'static str| {
            let store = &store;
            let query = CallQuery {
                campaign_id: Some(c.id),
                tab: CallTab::Pending,
                filter: Some(switchboard_model::filter::parse(expression).unwrap()),
                limit: 10,
                ..Default::default()
            };
            async move {
                let page = store.call_page(&query).await.unwrap();
                let count = store.call_count(&query).await.unwrap();
                assert_eq!(count, page.len() as i64, "`{expression}`: count and page");
                page.into_iter()
                    .filter_map(|r| r.contact_name)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(names("status = REQUEUED").await, ["Person 0"]);
        assert_eq!(
            names("not status = REQUEUED").await,
            ["Person 2", "Person 3", "Person 4"],
            "a contact never called is one whose last call was not requeued"
        );
        assert_eq!(names("name ~ \"son 3\" or attempts >= 1").await.len(), 2);
        assert!(
            names("status = DIALING").await.is_empty(),
            "the tab lists waiting ones only"
        );
    }

    #[tokio::test]
    async fn the_campaign_report_counts_ended_calls_by_reason_local_hour_and_dial() {
        use chrono::{DateTime, Utc};
        let utc = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .expect("fixed time")
                .with_timezone(&Utc)
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let c = store.create_campaign("c", "a", "p").await.unwrap();
        // Chicago (CDT, UTC-5), always open, one redial a minute after a busy or voicemail.
        let mut rules = store.campaign_rules(c.id).await.unwrap();
        rules.timezone = "America/Chicago".into();
        rules.redial_count = 1;
        rules.redial_delay_s = 60;
        store.set_campaign_rules(c.id, &rules).await.unwrap();
        start_with_contacts(&store, c.id, 4).await;
        let instance = store.instance_id().await.unwrap();
        // Claimed at `at` (UTC), ended a minute later with `reason` and `cost`.
        let call = |at: &'static str, reason: &'static str, cost: f64| {
            let store = store.clone();
            let instance = instance.clone();
            async move {
                let at = utc(at);
                let (job, attempt) = store
                    .claim_call_at(c.id, &instance, "test", at)
                    .await
                    .unwrap()
                    .expect("a contact to dial");
                created_at_vapi(&store, job.call_id, attempt).await;
                let ended = CallUpdate {
                    status: Some(CallStatus::Ended),
                    ended_reason: Some(reason.into()),
                    cost_usd: Some(cost),
                    ended_at: Some(crate::format_time(at + chrono::Duration::minutes(1))),
                    ..Default::default()
                };
                store
                    .apply_call_update(&format!("p{}", job.call_id), &ended)
                    .await
                    .unwrap();
            }
        };
        // The claim takes fresh contacts before redials (lanes), redials by due time.
        call("2025-05-01T14:10:00Z", "customer-ended-call", 0.5).await; // 09:10 local
        call("2025-05-01T14:20:00Z", "customer-busy", 0.1).await; // redialled
        call("2025-05-01T15:05:00Z", "customer-did-not-answer", 0.0).await; // 10:05, fresh
        call("2025-05-01T15:10:00Z", "voicemail", 0.2).await; // fresh
        call("2025-05-01T16:00:00Z", "assistant-ended-call", 0.3).await; // 11:00, dial 2
        call("2025-05-01T16:01:00Z", "customer-ended-call", 0.4).await; // dial 2
        let report = store.campaign_report(c.id).await.unwrap();
        assert_eq!(report.zone, "America/Chicago");
        let lines = |l: &[ReportLine<String>]| {
            l.iter()
                .map(|l| (l.key.clone(), l.calls, l.talked))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines(&report.by_reason),
            vec![
                ("customer-ended-call".to_string(), 2, 2),
                ("assistant-ended-call".to_string(), 1, 1),
                ("customer-busy".to_string(), 1, 0),
                ("customer-did-not-answer".to_string(), 1, 0),
                ("voicemail".to_string(), 1, 0),
            ]
        );
        let hours: Vec<(u32, i64, i64)> = report
            .by_hour
            .iter()
            .map(|l| (l.key, l.calls, l.talked))
            .collect();
        assert_eq!(hours, vec![(9, 2, 1), (10, 2, 0), (11, 2, 2)]);
        let dials: Vec<(i64, i64, i64)> = report
            .by_dial
            .iter()
            .map(|l| (l.key, l.calls, l.talked))
            .collect();
        assert_eq!(dials, vec![(1, 4, 1), (2, 2, 2)]);
        let cost: f64 = report.by_dial.iter().map(|l| l.cost_usd).sum();
        assert!((cost - 1.5).abs() < 1e-9, "{cost}");
    }
}
