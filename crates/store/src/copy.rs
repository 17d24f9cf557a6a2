//! `switchboard migrate-db`: copies a campaign history from one store to another (SQLite to
//! PostgreSQL, or back), table by table in id order, keeping ids and the database's instance
//! id (call references carry it: the copy still recognises its calls at Vapi). The target
//! must hold no campaign yet; no engine may run on either side meanwhile.

use sqlx::Row;

use super::{Backend, Result, Store, StoreError, q};

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Real,
    Text,
}

use Kind::{Int, Real, Text};

/// Tables in dependency order, with their columns as both schemas have them.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "campaigns",
        &[
            ("id", Int),
            ("name", Text),
            ("assistant_id", Text),
            ("phone_number_id", Text),
            ("status", Text),
            ("pause_reason", Text),
            ("pause_cause", Text),
            ("created_at", Text),
            ("started_at", Text),
            ("completed_at", Text),
            ("active_calls", Int),
            ("total_calls_created", Int),
            ("ended_calls", Int),
            ("failed_calls", Int),
            ("cost_usd", Real),
            ("contacts_total", Int),
            ("contacts_done", Int),
            ("weight", Int),
            ("call_window", Text),
            ("call_days", Text),
            ("timezone", Text),
            ("cap_per_day", Int),
            ("cap_per_week", Int),
            ("require_consent", Int),
            ("dnc_field", Text),
            ("redial_reasons", Text),
            ("redial_delay_s", Int),
            ("redial_count", Int),
            ("rule_pack", Text),
            ("suppress_days", Int),
            ("max_call_s", Int),
            ("max_call_cost", Real),
            ("end_on_repeats", Int),
            ("rest_numbers_below", Real),
            ("lane_order", Text),
            ("max_attempts", Int),
            ("callback_field", Text),
            ("callback_tool", Text),
            ("done_when", Text),
            ("outcome_field", Text),
            ("follow_ups", Text),
            ("voicemail_message", Text),
            ("voicemail_on_attempt", Int),
            ("starts_at", Text),
            ("ends_by", Text),
        ],
    ),
    (
        "imports",
        &[
            ("id", Int),
            ("campaign_id", Int),
            ("status", Text),
            ("host", Text),
            ("pid", Int),
            ("started_at", Text),
            ("heartbeat_ms", Int),
        ],
    ),
    (
        "contacts",
        &[
            ("id", Int),
            ("campaign_id", Int),
            ("name", Text),
            ("phone", Text),
            ("extension", Text),
            ("variables", Text),
            ("status", Text),
            ("sequence", Int),
            ("never_rang", Int),
            ("created_at", Text),
            ("import_id", Int),
            ("redials", Int),
            ("timezone", Text),
            ("consent_source", Text),
            ("consent_at", Text),
            ("skip_reason", Text),
            ("eligible_at", Text),
            ("eligible_reason", Text),
            ("lane", Text),
            ("arm", Int),
            ("number_check", Text),
        ],
    ),
    (
        "calls",
        &[
            ("id", Int),
            ("campaign_id", Int),
            ("contact_id", Int),
            ("sequence", Int),
            ("reference", Text),
            ("status", Text),
            ("provider_call_id", Text),
            ("attempt_count", Int),
            ("ended_reason", Text),
            ("retry_requested", Int),
            ("engine_id", Text),
            ("cost_usd", Real),
            ("started_at", Text),
            ("ended_at", Text),
            ("created_at", Text),
            ("updated_at", Text),
            ("redial_of", Int),
            ("phone_number_id", Text),
            ("predial_at", Text),
            ("end_cause", Text),
            ("end_then", Text),
            ("watch_until", Text),
            ("follow_up", Text),
            ("voicemail_message", Int),
            ("assistant_id", Text),
            ("arm", Int),
        ],
    ),
    (
        "call_attempts",
        &[
            ("id", Int),
            ("call_id", Int),
            ("attempt", Int),
            ("started_at", Text),
            ("finished_at", Text),
            ("http_status", Int),
            ("outcome", Text),
            ("error", Text),
            ("retry_delay_ms", Int),
        ],
    ),
    (
        "campaign_reasons",
        &[("campaign_id", Int), ("ended_reason", Text), ("count", Int)],
    ),
    (
        "call_analysis",
        &[
            ("call_id", Int),
            ("summary", Text),
            ("success_evaluation", Text),
            ("structured_data", Text),
            ("recording_url", Text),
            ("tool_calls", Text),
            ("updated_at", Text),
        ],
    ),
    (
        "campaign_arms",
        &[
            ("campaign_id", Int),
            ("position", Int),
            ("assistant_id", Text),
            ("weight", Int),
            ("status", Text),
        ],
    ),
    (
        "campaign_zones",
        &[("campaign_id", Int), ("timezone", Text)],
    ),
    (
        "dnc",
        &[
            ("phone", Text),
            ("reason", Text),
            ("source", Text),
            ("added_at", Text),
        ],
    ),
    (
        "campaign_numbers",
        &[
            ("campaign_id", Int),
            ("phone_number_id", Text),
            ("weight", Int),
            ("picks", Int),
            ("calls_today", Int),
            ("day", Text),
            ("benched_until", Text),
            ("bench_reason", Text),
        ],
    ),
    (
        "policy_decisions",
        &[
            ("id", Int),
            ("at", Text),
            ("phone", Text),
            ("campaign_id", Int),
            ("contact_id", Int),
            ("call_id", Int),
            ("decision", Text),
            ("reason", Text),
        ],
    ),
    (
        "engine_events",
        &[
            ("id", Int),
            ("at", Text),
            ("kind", Text),
            ("call_id", Int),
            ("attempt", Int),
            ("message", Text),
            ("next_delay_ms", Int),
        ],
    ),
    (
        "live_requests",
        &[
            ("id", Int),
            ("call_id", Int),
            ("action", Text),
            ("actor", Text),
            ("status", Text),
            ("taken_by", Text),
            ("answer", Text),
            ("created_at", Text),
            ("done_at", Text),
        ],
    ),
    (
        "call_transcripts",
        &[
            ("call_id", Int),
            ("line", Int),
            ("speaker", Text),
            ("at_s", Real),
            ("text", Text),
        ],
    ),
    (
        "saved_filters",
        &[
            ("name", Text),
            ("expression", Text),
            ("saved_by", Text),
            ("saved_at", Text),
        ],
    ),
];

/// Rows read and written per statement.
const PAGE: i64 = 1_000;

/// Each table's primary key: pages follow it (keyset paging), so that they neither skip nor
/// repeat rows and a million rows cost a million, not a scan per page.
fn primary_key(table: &str) -> &'static [&'static str] {
    match table {
        "campaign_reasons" => &["campaign_id", "ended_reason"],
        "campaign_zones" => &["campaign_id", "timezone"],
        "campaign_numbers" => &["campaign_id", "phone_number_id"],
        "campaign_arms" => &["campaign_id", "position"],
        "call_transcripts" => &["call_id", "line"],
        "call_analysis" => &["call_id"],
        "dnc" => &["phone"],
        "saved_filters" => &["name"],
        _ => &["id"],
    }
}

/// One key column's value in the last row of a page.
enum KeyValue {
    Int(i64),
    Text(String),
}

/// The page of `table` after the key `after` (the first page when `None`).
async fn page(
    source: &Store,
    table: &str,
    names: &[&str],
    keys: &[&str],
    after: Option<&[KeyValue]>,
) -> Result<Vec<sqlx::any::AnyRow>> {
    let keys_sql = keys.join(", ");
    let mut select = format!("SELECT {} FROM {table}", names.join(", "));
    if after.is_some() {
        // A row value comparison: the order of the key columns, in one condition.
        let marks = vec!["?"; keys.len()].join(", ");
        select.push_str(&format!(" WHERE ({keys_sql}) > ({marks})"));
    }
    select.push_str(&format!(" ORDER BY {keys_sql} LIMIT ?"));
    let mut query = sqlx::query(super::q_for(source.backend(), select));
    for value in after.unwrap_or_default() {
        query = match value {
            KeyValue::Int(v) => query.bind(*v),
            KeyValue::Text(v) => query.bind(v.clone()),
        };
    }
    Ok(query.bind(PAGE).fetch_all(source.reader()).await?)
}

/// The key of `row`, read by each key column's kind.
fn key_of(
    row: &sqlx::any::AnyRow,
    columns: &[(&str, Kind)],
    keys: &[&str],
) -> Result<Vec<KeyValue>> {
    keys.iter()
        .map(|key| {
            let Some(i) = columns.iter().position(|(n, _)| n == key) else {
                return Err(StoreError::Conflict(format!(
                    "{key} is not a copied column"
                )));
            };
            Ok(match columns[i].1 {
                Int => KeyValue::Int(row.try_get(i)?),
                Real | Text => KeyValue::Text(row.try_get(i)?),
            })
        })
        .collect()
}

/// What a copy moved: rows per table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyReport {
    pub rows: Vec<(String, u64)>,
}

impl Store {
    /// Copies this store's history into `target` (see the module's doc), telling `progress`
    /// each table's rows copied so far after every page.
    pub async fn copy_into(
        &self,
        target: &Store,
        progress: impl Fn(&str, u64),
    ) -> Result<CopyReport> {
        let existing: i64 = sqlx::query_scalar(q("SELECT count(*) FROM campaigns"))
            .fetch_one(target.reader())
            .await?;
        if existing > 0 {
            return Err(StoreError::Conflict(format!(
                "the target database already has {existing} campaign(s): migrate-db copies into an empty database only"
            )));
        }
        let mut report = CopyReport::default();
        let mut tx = target.write().await?;
        // The instance id and the operators' controls travel with the history.
        let instance = self.instance_id().await?;
        sqlx::query(q("UPDATE meta SET value = ? WHERE key = 'instance_id'"))
            .bind(&instance)
            .execute(&mut *tx)
            .await?;
        let control: (i64, Option<String>, Option<String>, Option<f64>) = sqlx::query_as(q(
            "SELECT dispatch_paused, pause_reason, pause_cause, rate_per_second \
             FROM engine_control WHERE id = 1",
        ))
        .fetch_one(self.reader())
        .await?;
        sqlx::query(q(
            "UPDATE engine_control SET dispatch_paused = ?, pause_reason = ?, pause_cause = ?, \
             rate_per_second = ? WHERE id = 1",
        ))
        .bind(control.0)
        .bind(control.1)
        .bind(control.2)
        .bind(control.3)
        .execute(&mut *tx)
        .await?;
        for (table, columns) in TABLES {
            let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
            let key = names[0];
            let keys = primary_key(table);
            let row_sql = format!("({})", vec!["?"; names.len()].join(", "));
            let mut after: Option<Vec<KeyValue>> = None;
            let mut copied = 0u64;
            loop {
                let rows = page(self, table, &names, keys, after.as_deref()).await?;
                let Some(last) = rows.last() else {
                    break;
                };
                after = Some(key_of(last, columns, keys)?);
                let insert = format!(
                    "INSERT INTO {table} ({}) VALUES {}",
                    names.join(", "),
                    vec![row_sql.as_str(); rows.len()].join(", ")
                );
                let mut query = sqlx::query(super::q_for(target.backend(), insert));
                for row in &rows {
                    for (i, (_, kind)) in columns.iter().enumerate() {
                        query = match kind {
                            Int => query.bind(row.try_get::<Option<i64>, _>(i)?),
                            Real => query.bind(row.try_get::<Option<f64>, _>(i)?),
                            Text => query.bind(row.try_get::<Option<String>, _>(i)?),
                        };
                    }
                }
                query.execute(&mut *tx).await?;
                copied += rows.len() as u64;
                progress(table, copied);
            }
            // Identity columns continue after the copied ids.
            if target.backend() == Backend::Postgres && key == "id" {
                sqlx::query(q(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                )))
                .execute(&mut *tx)
                .await?;
            }
            report.rows.push((table.to_string(), copied));
        }
        tx.commit().await?;
        Ok(report)
    }
}
