//! A parsed filter ([`crate::model::filter`]) as SQL over `calls c JOIN contacts k`. What the
//! database does not store as such is resolved first, from small tables: an ended reason's
//! class from the reasons the campaigns have seen (`campaign_reasons`), a success from the
//! evaluations Vapi has written; both through the model's one definition of each. Negations
//! are pushed down to the comparisons, so that `not` is two-valued (a call with no ended
//! reason is one whose reason is not `customer-busy`) and a comparison on a column that is
//! never NULL stays a plain one that the indexes serve.

use chrono::{DateTime, Utc};

use super::sql::Sql;
use super::{Result, Store, format_time};
use crate::model::filter::{ClassName, Field, Filter, Op, Scope, Value};

/// A filter with what it needs from the store, ready to be SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedFilter {
    filter: Filter,
    /// Every ended reason seen, with its class for a call that started and one that did not.
    reasons: Vec<(String, ClassName, ClassName)>,
    /// Reasons whose conversation counts as a success (no evaluation read).
    successful_reasons: Vec<String>,
    /// Vapi's evaluations seen, by their verdict.
    evaluations: (Vec<String>, Vec<String>),
    /// The instant relative times (`created > 2h`) are counted from.
    now: DateTime<Utc>,
    /// Over calls, or over contacts and their latest call (whose columns may then be NULL).
    scope: Scope,
}

impl ResolvedFilter {
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The same filter over contacts and their latest call.
    pub fn over_contacts(mut self) -> Self {
        self.scope = Scope::Contacts;
        self
    }
}

/// The distinct success evaluations in `call_analysis` and when they were read: a filter on
/// `success` needs them at every page and count, and reading them is a scan of the table.
pub(crate) type EvaluationCache =
    std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>>;

/// How long the evaluations read serve (the console re-reads a count every 2 s).
const EVALUATIONS_FOR: std::time::Duration = std::time::Duration::from_secs(2);

impl Store {
    /// The distinct success evaluations, read again when older than [`EVALUATIONS_FOR`].
    async fn evaluations(&self) -> Result<Vec<String>> {
        let cached = self.evaluations.lock().ok().and_then(|held| {
            held.as_ref()
                .filter(|(at, _)| at.elapsed() < EVALUATIONS_FOR)
                .map(|(_, values)| values.clone())
        });
        if let Some(values) = cached {
            return Ok(values);
        }
        let values: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT success_evaluation FROM call_analysis \
             WHERE success_evaluation IS NOT NULL",
        )
        .fetch_all(self.reader())
        .await?;
        if let Ok(mut held) = self.evaluations.lock() {
            *held = Some((std::time::Instant::now(), values.clone()));
        }
        Ok(values)
    }

    /// Reads what `filter` needs (only what it names) and the clock's now.
    pub async fn resolve_filter(&self, filter: &Filter) -> Result<ResolvedFilter> {
        let names = |field: Field| filter.any(&|f| *f == field);
        let reasons: Vec<String> = if names(Field::Class) || names(Field::Success) {
            sqlx::query_scalar("SELECT DISTINCT ended_reason FROM campaign_reasons")
                .fetch_all(self.reader())
                .await?
        } else {
            Vec::new()
        };
        let evaluations: Vec<String> = if names(Field::Success) {
            self.evaluations().await?
        } else {
            Vec::new()
        };
        let classes = reasons
            .iter()
            .map(|r| {
                let class =
                    |started| ClassName::of(crate::model::classify_ended_reason(r, started));
                (r.clone(), class(true), class(false))
            })
            .collect();
        let successful_reasons = reasons
            .iter()
            .filter(|r| crate::model::success_of(Some(r), None) == Some(true))
            .cloned()
            .collect();
        let (passed, failed): (Vec<String>, Vec<String>) = evaluations
            .into_iter()
            .filter_map(|e| crate::model::success_of(None, Some(&e)).map(|v| (e, v)))
            .partition_map_bool();
        Ok(ResolvedFilter {
            filter: filter.clone(),
            reasons: classes,
            successful_reasons,
            evaluations: (passed, failed),
            now: self.clock().now(),
            scope: Scope::Calls,
        })
    }
}

/// Splits `(value, verdict)` pairs by their verdict.
trait PartitionBool {
    fn partition_map_bool(self) -> (Vec<String>, Vec<String>);
}

impl<I: Iterator<Item = (String, bool)>> PartitionBool for I {
    fn partition_map_bool(self) -> (Vec<String>, Vec<String>) {
        let mut yes = Vec::new();
        let mut no = Vec::new();
        for (value, verdict) in self {
            if verdict {
                yes.push(value);
            } else {
                no.push(value);
            }
        }
        (yes, no)
    }
}

/// ` AND (the filter)`.
pub(crate) fn push_and(sql: &mut Sql, resolved: &ResolvedFilter) {
    sql.push(" AND ");
    push(sql, &resolved.filter, false, resolved);
}

fn push(sql: &mut Sql, filter: &Filter, negated: bool, r: &ResolvedFilter) {
    match filter {
        Filter::Not(inner) => push(sql, inner, !negated, r),
        // De Morgan: a negated `and` is an `or` of the negations.
        Filter::And(a, b) | Filter::Or(a, b) => {
            let is_and = matches!(filter, Filter::And(..)) != negated;
            sql.push("(");
            push(sql, a, negated, r);
            sql.push(if is_and { " AND " } else { " OR " });
            push(sql, b, negated, r);
            sql.push(")");
        }
        Filter::Cmp { field, op, value } => comparison(sql, field, *op, value, negated, r),
    }
}

/// A column that is never NULL (`NOT` of its comparison is the opposite comparison), or an
/// expression that may be (written as `CASE WHEN … THEN 1 ELSE 0 END`, two-valued).
fn comparison(
    sql: &mut Sql,
    field: &Field,
    op: Op,
    value: &Value,
    negated: bool,
    r: &ResolvedFilter,
) {
    let contacts = r.scope == Scope::Contacts;
    let of_contact = matches!(value, Value::ContactStatus(_)) || *field == Field::Phone;
    let never_null = matches!(field, Field::Status | Field::Attempts | Field::Created);
    match field {
        _ if of_contact || (never_null && !contacts) => {
            if negated {
                sql.push("NOT ");
            }
            sql.push("(");
            compare(sql, field, op, value, r);
            sql.push(")");
        }
        Field::Campaign => {
            sql.push(if contacts { "k" } else { "c" });
            sql.push(if negated {
                ".campaign_id NOT IN "
            } else {
                ".campaign_id IN "
            });
            sql.push("(SELECT id FROM campaigns WHERE ");
            compare(sql, field, op, value, r);
            sql.push(")");
        }
        _ => {
            sql.push("(CASE WHEN ");
            match field {
                Field::Class => class(sql, value, r),
                Field::Success => success(sql, value, r),
                _ => compare(sql, field, op, value, r),
            }
            sql.push(if negated {
                " THEN 1 ELSE 0 END) = 0"
            } else {
                " THEN 1 ELSE 0 END) = 1"
            });
        }
    }
}

/// A field's value in the row (`calls c`, `contacts k`; `name` inside the campaign's
/// subquery).
fn left_side(sql: &mut Sql, field: &Field) {
    match field {
        Field::Status => sql.push("c.status"),
        Field::Attempts => sql.push("c.attempt_count"),
        Field::Created => sql.push("c.created_at"),
        Field::Phone => sql.push("k.phone"),
        Field::Campaign => sql.push("name"),
        Field::Reason => sql.push("c.ended_reason"),
        Field::Arm => sql.push("c.assistant_id"),
        Field::Zone => sql.push("k.timezone"),
        Field::Number => sql.push("c.phone_number_id"),
        Field::Name => sql.push("k.name"),
        Field::Cost => sql.push("c.cost_usd"),
        Field::Ended => sql.push("c.ended_at"),
        Field::Summary => {
            sql.push("(SELECT a.summary FROM call_analysis a WHERE a.call_id = c.id)")
        }
        Field::Duration => sql.seconds_between("c.started_at", "c.ended_at"),
        Field::Data(key) => {
            sql.push("(SELECT CAST(");
            sql.json_text("a.structured_data", key);
            sql.push(" AS TEXT) FROM call_analysis a WHERE a.call_id = c.id)")
        }
        // Resolved apart (`class`, `success`): never compared as a column.
        Field::Class | Field::Success => sql.push("NULL"),
    };
}

/// `field op value` (NULL when the field is). Text compares case-insensitively, as the
/// console's search does; `~` is a bound LIKE on the lowered text.
fn compare(sql: &mut Sql, field: &Field, op: Op, value: &Value, r: &ResolvedFilter) {
    if let Value::Text(text) = value {
        sql.push("lower(");
        left_side(sql, field);
        sql.push(")");
        let text = text.to_lowercase();
        if op == Op::Contains {
            let escaped = text
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            sql.push(" LIKE ").bind(format!("%{escaped}%"));
            sql.push(" ESCAPE '\\'");
            return;
        }
        // A structured-data flag reads `true` on PostgreSQL and `1` on SQLite.
        if matches!(field, Field::Data(_)) && (text == "true" || text == "false") {
            let number = if text == "true" { "1" } else { "0" };
            sql.push(" IN ").bind_list([text.as_str(), number]);
            return;
        }
        sql.push(operator(op)).bind(text);
        return;
    }
    if let Value::ContactStatus(status) = value {
        sql.push("k.status")
            .push(operator(op))
            .bind(status.as_str());
        return;
    }
    left_side(sql, field);
    sql.push(operator(op));
    match value {
        Value::Status(s) => sql.bind(s.as_str()),
        Value::Integer(n) => sql.bind(*n),
        Value::Number(n) => sql.bind(*n),
        Value::At(at) => sql.bind(format_time(*at)),
        Value::Ago(ago) => {
            let ago = chrono::Duration::from_std(*ago).unwrap_or(chrono::Duration::MAX);
            let at = r
                .now
                .checked_sub_signed(ago)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            sql.bind(format_time(at))
        }
        // Not reached: text above, classes and successes resolved apart.
        Value::Text(_) | Value::Class(_) | Value::Bool(_) | Value::ContactStatus(_) => {
            sql.push("NULL")
        }
    };
}

fn operator(op: Op) -> &'static str {
    match op {
        Op::Eq | Op::Contains => " = ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        Op::Gt => " > ",
        Op::Ge => " >= ",
    }
}

/// `class = X`: the reasons of that class, with whether the call started where it decides.
fn class(sql: &mut Sql, value: &Value, r: &ResolvedFilter) {
    let Value::Class(wanted) = value else {
        sql.push("1 = 0");
        return;
    };
    let reasons = |test: &dyn Fn(bool, bool) -> bool| -> Vec<&str> {
        r.reasons
            .iter()
            .filter(|(_, started, not)| test(started == wanted, not == wanted))
            .map(|(reason, _, _)| reason.as_str())
            .collect()
    };
    sql.push("(c.ended_reason IN ")
        .bind_list(reasons(&|started, not| started && not));
    sql.push(" OR (c.started_at IS NOT NULL AND c.ended_reason IN ")
        .bind_list(reasons(&|started, not| started && !not));
    sql.push(") OR (c.started_at IS NULL AND c.ended_reason IN ")
        .bind_list(reasons(&|started, not| !started && not));
    sql.push("))");
}

/// `success = true|false`: Vapi's evaluation where it reads as a verdict, else the reason.
fn success(sql: &mut Sql, value: &Value, r: &ResolvedFilter) {
    let wanted = matches!(value, Value::Bool(true));
    let (passed, failed) = &r.evaluations;
    let matching = if wanted { passed } else { failed };
    let by_reason: Vec<&str> = r
        .reasons
        .iter()
        .map(|(reason, _, _)| reason.as_str())
        .filter(|reason| r.successful_reasons.iter().any(|s| s == reason) == wanted)
        .collect();
    sql.push(
        "(EXISTS (SELECT 1 FROM call_analysis a WHERE a.call_id = c.id AND a.success_evaluation IN ",
    )
    .bind_list(matching.iter().map(String::as_str));
    sql.push(
        ") OR (NOT EXISTS (SELECT 1 FROM call_analysis a WHERE a.call_id = c.id \
         AND a.success_evaluation IN ",
    )
    .bind_list(passed.iter().chain(failed.iter()).map(String::as_str));
    sql.push(") AND c.ended_reason IN ").bind_list(by_reason);
    sql.push("))");
}
