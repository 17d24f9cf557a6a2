//! `switchboard export CAMPAIGN`: one row per contact with its outcome, streamed from the
//! database (memory does not grow with the campaign). CSV flattens the structured data of the
//! call analysis into `data.<field>` columns (a first pass collects the field names); JSON
//! lines keep it as an object.

use std::collections::BTreeSet;
use std::io::Write;

use futures::TryStreamExt;

use crate::model::filter::Scope;
use crate::store::bulk::Selection;
use crate::store::filter::ResolvedFilter;
use crate::store::stats::{CallQuery, CallSort, CallTab};
use crate::store::{Backend, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot write the export: {0}")]
    Csv(#[from] csv::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

/// One contact's row as read.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct ExportRow {
    pub contact_id: i64,
    pub name: Option<String>,
    pub phone: String,
    pub extension: Option<String>,
    /// PENDING, DIALING, DONE or SKIPPED.
    pub status: String,
    pub skip_reason: Option<String>,
    /// Attempt sequences started (the first call and its redials or retries).
    pub attempts: i64,
    /// The last call's status and ended reason.
    pub call_status: Option<String>,
    pub ended_reason: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// Every call of the contact.
    pub cost_usd: Option<f64>,
    pub summary: Option<String>,
    pub success_evaluation: Option<String>,
    pub structured_data: Option<String>,
    pub recording_url: Option<String>,
    /// What was said on the last call, one `speaker: text` line each.
    pub transcript: Option<String>,
}

impl ExportRow {
    /// Seconds between start and end, when both are known.
    pub fn duration_s(&self) -> Option<f64> {
        let t = |s: &Option<String>| {
            s.as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        };
        let (a, b) = (t(&self.started_at)?, t(&self.ended_at)?);
        Some((b - a).num_milliseconds() as f64 / 1000.0)
    }
}

const FIXED: &[&str] = &[
    "contact_id",
    "name",
    "phone",
    "extension",
    "status",
    "skip_reason",
    "attempts",
    "call_status",
    "ended_reason",
    "started_at",
    "ended_at",
    "duration_s",
    "cost_usd",
    "summary",
    "success_evaluation",
    "recording_url",
    "transcript",
];

/// The contacts' rows (`WHERE {which}`); the transcript is aggregated in the query (one
/// query streams the whole campaign), with each backend's spelling of a newline.
fn rows_sql(backend: Backend, which: &str) -> String {
    let newline = match backend {
        Backend::Sqlite => "char(10)",
        Backend::Postgres => "chr(10)",
    };
    format!(
        "SELECT k.id AS contact_id, k.name, k.phone, k.extension, k.status, \
         k.skip_reason, k.sequence AS attempts, c.status AS call_status, c.ended_reason, \
         c.started_at, c.ended_at, \
         (SELECT sum(x.cost_usd) FROM calls x WHERE x.contact_id = k.id) AS cost_usd, \
         a.summary, a.success_evaluation, a.structured_data, a.recording_url, \
         (SELECT string_agg(t.speaker || ': ' || t.text, {newline} ORDER BY t.line) \
            FROM call_transcripts t WHERE t.call_id = c.id) AS transcript \
         FROM contacts k \
         LEFT JOIN calls c ON c.contact_id = k.id AND c.sequence = k.sequence \
         LEFT JOIN call_analysis a ON a.call_id = c.id \
         WHERE {which} ORDER BY k.id"
    )
}

/// Where the rows go, in the export's format.
enum Sink<W: Write> {
    Csv(Box<csv::Writer<W>>, Vec<String>),
    Jsonl(W),
}

impl<W: Write> Sink<W> {
    async fn open(
        store: &Store,
        campaign_id: i64,
        format: Format,
        out: W,
    ) -> Result<Sink<W>, ExportError> {
        Ok(match format {
            Format::Csv => {
                let fields = structured_fields(store, campaign_id).await?;
                let mut w = csv::Writer::from_writer(out);
                let header: Vec<String> = FIXED
                    .iter()
                    .map(|s| s.to_string())
                    .chain(fields.iter().map(|f| format!("data.{f}")))
                    .collect();
                w.write_record(&header)?;
                Sink::Csv(Box::new(w), fields)
            }
            Format::Jsonl => Sink::Jsonl(out),
        })
    }

    fn write(&mut self, row: &ExportRow) -> Result<(), ExportError> {
        match self {
            Sink::Csv(w, fields) => w.write_record(csv_record(row, fields))?,
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &json_value(row))
                    .map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), ExportError> {
        match self {
            Sink::Csv(mut w, _) => w.flush()?,
            Sink::Jsonl(mut out) => out.flush()?,
        }
        Ok(())
    }
}

/// Writes every contact of the campaign (or only those `only` matches, over contacts and
/// their latest call); `progress` gets the rows written so far every 10,000 rows. Returns
/// the rows written.
pub async fn export(
    store: &Store,
    campaign_id: i64,
    format: Format,
    out: impl Write,
    only: Option<&ResolvedFilter>,
    mut progress: impl FnMut(u64),
) -> Result<u64, ExportError> {
    let out = std::io::BufWriter::with_capacity(1 << 16, out);
    let mut sink = Sink::open(store, campaign_id, format, out).await?;
    let mut n = 0u64;
    let mut written = |sink: &mut Sink<_>, row: &ExportRow| -> Result<(), ExportError> {
        sink.write(row)?;
        n += 1;
        if n.is_multiple_of(10_000) {
            progress(n);
        }
        Ok(())
    };
    match only {
        None => {
            let sql = rows_sql(store.backend(), "k.campaign_id = $1");
            let mut rows = sqlx::query_as::<_, ExportRow>(sqlx::AssertSqlSafe(sql))
                .bind(campaign_id)
                .fetch(store.reader());
            while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
                written(&mut sink, &row)?;
            }
        }
        Some(filter) => {
            // The matches by key, a page at a time; each page's rows in one query.
            let selection = Selection {
                scope: Scope::Contacts,
                query: CallQuery {
                    campaign_id: Some(campaign_id),
                    tab: CallTab::All,
                    status: None,
                    text: None,
                    filter: Some(filter.filter().clone()),
                    sort: CallSort::Newest,
                    offset: 0,
                    limit: 1,
                    anchor: None,
                },
            };
            let mut after = 0;
            loop {
                let page = store
                    .bulk_matches(&selection, Some(filter), (after, i64::MAX), 1_000)
                    .await?;
                let Some(last) = page.last() else { break };
                after = last.key;
                let marks: Vec<String> = (1..=page.len()).map(|i| format!("${i}")).collect();
                let sql = rows_sql(store.backend(), &format!("k.id IN ({})", marks.join(", ")));
                let mut query = sqlx::query_as::<_, ExportRow>(sqlx::AssertSqlSafe(sql));
                for m in &page {
                    query = query.bind(m.contact_id);
                }
                for row in query
                    .fetch_all(store.reader())
                    .await
                    .map_err(StoreError::from)?
                {
                    written(&mut sink, &row)?;
                }
            }
        }
    }
    sink.finish()?;
    Ok(n)
}

fn structured(row: &ExportRow) -> Option<serde_json::Map<String, serde_json::Value>> {
    row.structured_data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
}

/// A CSV record: the fixed columns, then one per structured-data field.
pub fn csv_record(row: &ExportRow, fields: &[String]) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let data = structured(row);
    let mut record = vec![
        row.contact_id.to_string(),
        opt(&row.name),
        row.phone.clone(),
        opt(&row.extension),
        row.status.clone(),
        opt(&row.skip_reason),
        row.attempts.to_string(),
        opt(&row.call_status),
        opt(&row.ended_reason),
        opt(&row.started_at),
        opt(&row.ended_at),
        row.duration_s()
            .map(|d| format!("{d:.3}"))
            .unwrap_or_default(),
        row.cost_usd.map(|c| format!("{c:.6}")).unwrap_or_default(),
        opt(&row.summary),
        opt(&row.success_evaluation),
        opt(&row.recording_url),
        opt(&row.transcript),
    ];
    for f in fields {
        record.push(match data.as_ref().and_then(|d| d.get(f)) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        });
    }
    record
}

/// A JSON line: the row with its duration, structured data as an object.
pub fn json_value(row: &ExportRow) -> serde_json::Value {
    let mut value = serde_json::to_value(row).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "duration_s".into(),
            row.duration_s()
                .map(serde_json::Value::from)
                .unwrap_or_default(),
        );
        map.insert(
            "structured_data".into(),
            structured(row)
                .map(serde_json::Value::Object)
                .unwrap_or_default(),
        );
    }
    value
}

/// The field names of every structured-data object of the campaign, sorted.
async fn structured_fields(store: &Store, campaign_id: i64) -> Result<Vec<String>, ExportError> {
    let mut fields = BTreeSet::new();
    let mut rows = sqlx::query_scalar::<_, String>(
        "SELECT a.structured_data FROM call_analysis a JOIN calls c ON c.id = a.call_id \
         WHERE c.campaign_id = $1 AND a.structured_data IS NOT NULL",
    )
    .bind(campaign_id)
    .fetch(store.reader());
    while let Some(text) = rows.try_next().await.map_err(StoreError::from)? {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) {
            fields.extend(map.keys().cloned());
        }
    }
    Ok(fields.into_iter().collect())
}
