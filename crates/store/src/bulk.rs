//! The rows an operator's filter matches, walked by key, and one batch of a bulk action
//! applied in one write transaction. Each row is read again inside that transaction (locked
//! on PostgreSQL, where a claim skips a locked contact) and decided again
//! ([`crate::model::bulk::decide`]), so a contact the engine claimed since the walk read it is
//! left alone, and an UNKNOWN call is only marked to be retried once settled.

use std::collections::BTreeMap;

use super::filter::ResolvedFilter;
use super::sql::Sql;
use super::stats::{CallQuery, CallTab};
use super::{Result, Store, StoreError, Tx};
use crate::model::bulk::{BulkAction, Effect, Ineligible, Target, decide};
use crate::model::filter::Scope;
use crate::model::{CallStatus, ContactStatus};

/// One matched row: a call with its contact (over calls), or a contact with its latest call.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Match {
    /// The walk's key: the call's id over calls, the contact's over contacts.
    pub key: i64,
    pub call_id: Option<i64>,
    pub call_status: Option<CallStatus>,
    /// 1 when the call is the contact's latest attempt sequence.
    pub latest: i64,
    pub contact_id: i64,
    pub contact_status: ContactStatus,
    pub campaign_id: i64,
    pub phone: String,
    pub name: Option<String>,
    pub ended_reason: Option<String>,
    pub timezone: Option<String>,
}

impl Match {
    pub fn target(&self) -> Target {
        Target {
            contact: self.contact_status,
            call: self.call_status,
            latest: self.latest == 1,
        }
    }
}

/// What a bulk action matches: a call list (as the console shows it, without its window), or
/// contacts (the query's campaign, text and filter; its tab only as "waiting only" when it is
/// the Pending tab).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub scope: Scope,
    pub query: CallQuery,
}

/// How many rows of a batch had each result.
pub type Tally = BTreeMap<std::result::Result<Effect, Ineligible>, u64>;

/// Where an action that needs a destination sends the rows (resolved once, before the walk).
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    None,
    Campaign { id: i64 },
}

const MATCH_COLUMNS: &str = "c.id AS call_id, c.status AS call_status, \
     CAST(CASE WHEN c.id IS NULL OR c.sequence = k.sequence THEN 1 ELSE 0 END AS BIGINT) AS latest, k.id AS contact_id, \
     k.status AS contact_status, k.campaign_id, k.phone, k.name, c.ended_reason, k.timezone";

impl Store {
    /// The highest key a walk over `scope` can meet now: rows made after the walk starts
    /// (a retried contact's new call) are never acted on by it.
    pub async fn bulk_bound(&self, scope: Scope) -> Result<i64> {
        let sql = match scope {
            Scope::Calls => "SELECT coalesce(max(id), 0) FROM calls",
            Scope::Contacts => "SELECT coalesce(max(id), 0) FROM contacts",
        };
        Ok(sqlx::query_scalar(sql).fetch_one(self.reader()).await?)
    }

    /// Up to `limit` matches with keys in (`after`, `upto`], by key.
    pub async fn bulk_matches(
        &self,
        selection: &Selection,
        resolved: Option<&ResolvedFilter>,
        (after, upto): (i64, i64),
        limit: i64,
    ) -> Result<Vec<Match>> {
        let mut sql = Sql::new(self.backend());
        let key = key_of(selection.scope);
        sql.push("SELECT ")
            .push(key)
            .push(" AS key, ")
            .push(MATCH_COLUMNS);
        push_selection(&mut sql, selection, resolved);
        sql.push(" AND ").push(key).push(" > ").bind(after);
        sql.push(" AND ").push(key).push(" <= ").bind(upto);
        sql.push(" ORDER BY ").push(key).push(" LIMIT ").bind(limit);
        Ok(sql.query_as().fetch_all(self.reader()).await?)
    }

    /// How many rows `selection` matches, exactly.
    pub async fn bulk_count(
        &self,
        selection: &Selection,
        resolved: Option<&ResolvedFilter>,
    ) -> Result<i64> {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT count(*)");
        push_selection(&mut sql, selection, resolved);
        Ok(sql.query_scalar().fetch_one(self.reader()).await?)
    }

    /// Applies `action` to `rows` in one write transaction, each row as it is then; `source`
    /// names who asked (the do-not-call list's source). Returns how many had each result.
    pub async fn bulk_apply(
        &self,
        action: &BulkAction,
        destination: &Destination,
        rows: &[Match],
        source: &str,
    ) -> Result<Tally> {
        let mut tx = self.write().await?;
        let mut tally = Tally::new();
        for row in rows {
            let Some(now) = fresh_in(&mut tx, row).await? else {
                continue;
            };
            let result = match decide(action, now.target()) {
                Ok(effect) => apply_in(&mut tx, action, destination, effect, &now, source).await?,
                Err(why) => Err(why),
            };
            *tally.entry(result).or_default() += 1;
        }
        tx.commit().await?;
        Ok(tally)
    }
}

fn key_of(scope: Scope) -> &'static str {
    match scope {
        Scope::Calls => "c.id",
        Scope::Contacts => "k.id",
    }
}

/// ` FROM … WHERE …` of a selection.
fn push_selection(sql: &mut Sql, selection: &Selection, resolved: Option<&ResolvedFilter>) {
    match selection.scope {
        Scope::Calls => {
            sql.push(" FROM calls c JOIN contacts k ON k.id = c.contact_id WHERE ");
            selection.query.push_filter(sql, resolved);
        }
        Scope::Contacts => {
            sql.push(
                " FROM contacts k LEFT JOIN calls c ON c.contact_id = k.id \
                 AND c.sequence = k.sequence WHERE ",
            );
            push_contacts_filter(sql, &selection.query, resolved);
        }
    }
}

/// The Selection's filter over `contacts k` (with its latest call `c`, if any).
fn push_contacts_filter(sql: &mut Sql, query: &CallQuery, resolved: Option<&ResolvedFilter>) {
    sql.push(super::contacts::CLAIMABLE_IMPORT_SQL);
    if let Some(id) = query.campaign_id {
        sql.push(" AND k.campaign_id = ").bind(id);
    }
    if query.tab == CallTab::Pending {
        sql.push(" AND k.status = ")
            .bind(ContactStatus::Pending.as_str());
    }
    if let Some(text) = &query.text {
        sql.push(" AND (").contains("k.phone", text).push(" OR ");
        sql.contains("k.name", text).push(")");
    }
    if let Some(filter) = resolved {
        super::filter::push_and(sql, &filter.clone().over_contacts());
    }
}

/// The row as it is inside `tx` (the contact locked on PostgreSQL); None if it is gone.
async fn fresh_in(tx: &mut Tx, row: &Match) -> Result<Option<Match>> {
    let mut sql = Sql::new(super::backend_of(tx));
    sql.push("SELECT k.id AS key, ").push(MATCH_COLUMNS);
    sql.push(" FROM contacts k LEFT JOIN calls c ON c.id = ");
    match row.call_id {
        Some(id) => sql.bind(id),
        None => {
            sql.push("(SELECT id FROM calls WHERE contact_id = k.id AND sequence = k.sequence)")
        }
    };
    sql.push(" WHERE k.id = ").bind(row.contact_id);
    if super::backend_of(tx) == super::Backend::Postgres {
        sql.push(" FOR UPDATE OF k");
    }
    let fresh: Option<Match> = sql.query_as().fetch_optional(&mut **tx).await?;
    Ok(fresh.map(|m| Match { key: row.key, ..m }))
}

/// One row's effect, in `tx`: Ok(effect) done, or why it turned out not to apply.
async fn apply_in(
    tx: &mut Tx,
    action: &BulkAction,
    destination: &Destination,
    effect: Effect,
    row: &Match,
    source: &str,
) -> Result<std::result::Result<Effect, Ineligible>> {
    let reason = format!("{} by an operator ({source})", action.verb());
    match effect {
        Effect::Retry | Effect::RetryOnceSettled => {
            let Some(call_id) = row.call_id else {
                return Ok(Err(Ineligible::NotFailed));
            };
            match super::calls::retry_in(tx, call_id).await {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => return Ok(Err(Ineligible::Superseded)),
                Err(e) => return Err(e),
            }
        }
        Effect::Requeue => {
            let why = "put back in the queue by an operator";
            let now = tx.clock().now();
            super::follow_up::requeue_in(
                tx,
                row.campaign_id,
                row.contact_id,
                crate::model::Lane::Redial,
                now,
                why,
                false,
            )
            .await?;
        }
        Effect::Skip => skip_in(tx, row, &reason).await?,
        Effect::DoNotCall => {
            if !super::policy::dnc_add_in(tx, &row.phone, &reason, source).await? {
                return Ok(Err(Ineligible::AlreadyListed));
            }
        }
        Effect::Callback => {
            let BulkAction::Reschedule { at } = action else {
                return Ok(Err(Ineligible::NotWaiting));
            };
            let now = tx.clock().now();
            let key = (row.campaign_id, row.contact_id, row.phone.as_str());
            super::follow_up::callback_in(tx, key, row.timezone.as_deref(), at, now).await?;
        }
        Effect::Move => match (action, destination) {
            (BulkAction::MoveArm { to }, _) => {
                if !move_arm_in(tx, row, to).await? {
                    return Ok(Err(Ineligible::NoSuchArm));
                }
            }
            (_, Destination::Campaign { id }) => {
                if !move_campaign_in(tx, row, *id).await? {
                    return Ok(Err(Ineligible::InTarget));
                }
            }
            (_, Destination::None) => return Ok(Err(Ineligible::InTarget)),
        },
    }
    Ok(Ok(effect))
}

/// A waiting contact is SKIPPED (counted done), the decision logged.
async fn skip_in(tx: &mut Tx, row: &Match, reason: &str) -> Result<()> {
    sqlx::query(crate::q(
        "UPDATE contacts SET status = ?, skip_reason = ? WHERE id = ? AND status = ?",
    ))
    .bind(ContactStatus::Skipped)
    .bind(reason)
    .bind(row.contact_id)
    .bind(ContactStatus::Pending)
    .execute(&mut **tx)
    .await?;
    sqlx::query(crate::q(
        "UPDATE campaigns SET contacts_done = contacts_done + 1 WHERE id = ?",
    ))
    .bind(row.campaign_id)
    .execute(&mut **tx)
    .await?;
    super::policy::record_in(
        tx,
        &row.phone,
        Some(row.campaign_id),
        Some(row.contact_id),
        None,
        "SKIP",
        reason,
    )
    .await
}

/// A waiting contact is called with the campaign's ACTIVE arm `assistant_id`; false if the
/// campaign has no such arm.
async fn move_arm_in(tx: &mut Tx, row: &Match, assistant_id: &str) -> Result<bool> {
    let position: Option<i64> = sqlx::query_scalar(crate::q(
        "SELECT position FROM campaign_arms WHERE campaign_id = ? AND assistant_id = ? \
         AND status = ?",
    ))
    .bind(row.campaign_id)
    .bind(assistant_id)
    .bind(crate::model::ArmStatus::Active)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(position) = position else {
        return Ok(false);
    };
    sqlx::query(crate::q("UPDATE contacts SET arm = ? WHERE id = ?"))
        .bind(position)
        .bind(row.contact_id)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

/// A waiting contact moves to campaign `to` (its counters follow; a finished one re-opens);
/// false if `to` already has that number.
async fn move_campaign_in(tx: &mut Tx, row: &Match, to: i64) -> Result<bool> {
    if to == row.campaign_id {
        return Ok(false);
    }
    let there: Option<i64> = sqlx::query_scalar(crate::q(
        "SELECT id FROM contacts WHERE campaign_id = ? AND phone = ? AND \
         coalesce(extension, '') = (SELECT coalesce(extension, '') FROM contacts WHERE id = ?)",
    ))
    .bind(to)
    .bind(&row.phone)
    .bind(row.contact_id)
    .fetch_optional(&mut **tx)
    .await?;
    if there.is_some() {
        return Ok(false);
    }
    sqlx::query(crate::q(
        "UPDATE contacts SET campaign_id = ?, arm = NULL WHERE id = ?",
    ))
    .bind(to)
    .bind(row.contact_id)
    .execute(&mut **tx)
    .await?;
    for (campaign, step) in [(row.campaign_id, -1_i64), (to, 1)] {
        sqlx::query(crate::q(
            "UPDATE campaigns SET contacts_total = contacts_total + ? WHERE id = ?",
        ))
        .bind(step)
        .bind(campaign)
        .execute(&mut **tx)
        .await?;
    }
    super::campaigns::reopen_in(tx, to).await?;
    Ok(true)
}
