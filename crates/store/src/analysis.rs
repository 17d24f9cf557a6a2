//! What an end-of-call report says about a call beyond its status: Vapi's analysis
//! (summary, success evaluation, structured data) and the recording, kept in the
//! `call_analysis` table; and the pure success rule.

use serde::Serialize;

use super::{Result, Store};

/// Longest stored summary and structured data (bytes); longer ones are cut.
const MAX_SUMMARY: usize = 4_096;
const MAX_STRUCTURED: usize = 65_536;
const MAX_URL: usize = 2_048;

/// A call's analysis, as `calls --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default, sqlx::FromRow)]
pub struct CallAnalysis {
    pub summary: Option<String>,
    /// `analysis.successEvaluation` as text, whatever its JSON type (bool, string, number).
    pub success_evaluation: Option<String>,
    /// `analysis.structuredData` as JSON text.
    pub structured_data: Option<String>,
    pub recording_url: Option<String>,
    /// The assistant's tool calls in the report (`[{name, arguments}]` as JSON text): a
    /// campaign's callback tool is read from them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<String>,
}

impl CallAnalysis {
    /// Reads `analysis {summary, successEvaluation, structuredData}` and
    /// `artifact.recordingUrl` (or a top-level `recordingUrl`) from an end-of-call report.
    pub fn from_report(message: &serde_json::Value) -> Option<CallAnalysis> {
        let analysis = &message["analysis"];
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) if s.is_empty() => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        let found = CallAnalysis {
            summary: text(&analysis["summary"]).map(|s| cut(&s, MAX_SUMMARY)),
            success_evaluation: text(&analysis["successEvaluation"]).map(|s| cut(&s, 200)),
            structured_data: text(&analysis["structuredData"]).map(|s| cut(&s, MAX_STRUCTURED)),
            recording_url: text(&message["artifact"]["recordingUrl"])
                .or_else(|| text(&message["recordingUrl"]))
                .map(|s| cut(&s, MAX_URL)),
            tool_calls: tool_calls(message),
        };
        (found != CallAnalysis::default()).then_some(found)
    }
}

/// The tool calls of a report's messages (`artifact.messages`, else `messages`), as
/// `[{name, arguments}]`; `None` when there are none or they would not fit.
fn tool_calls(message: &serde_json::Value) -> Option<String> {
    let messages = message["artifact"]["messages"]
        .as_array()
        .or_else(|| message["messages"].as_array())?;
    let calls: Vec<serde_json::Value> = messages
        .iter()
        .filter_map(|m| m["toolCalls"].as_array())
        .flatten()
        .filter_map(|call| {
            let function = &call["function"];
            Some(serde_json::json!({
                "name": function["name"].as_str()?,
                "arguments": function["arguments"],
            }))
        })
        .collect();
    let text = serde_json::Value::Array(calls).to_string();
    (text != "[]" && text.len() <= MAX_STRUCTURED).then_some(text)
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Store {
    /// Keeps a call's analysis (a later report replaces an earlier one). False when no call
    /// has that provider id.
    pub async fn record_analysis(&self, provider_call_id: &str, a: &CallAnalysis) -> Result<bool> {
        let mut tx = self.write().await?;
        // On PostgreSQL the call's row is locked first, as its end's transaction does: the
        // end and the report then never both miss each other (each deciding nothing because
        // the other was not yet committed), whichever commits second decides what follows.
        let lock = match super::backend_of(&tx) {
            super::Backend::Sqlite => "",
            super::Backend::Postgres => " FOR UPDATE",
        };
        let id: Option<i64> = sqlx::query_scalar(crate::q(format!(
            "SELECT id FROM calls WHERE provider_call_id = ?{lock}"
        )))
        .bind(provider_call_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(call_id) = id else {
            return Ok(false);
        };
        sqlx::query(
            crate::q("INSERT INTO call_analysis (call_id, summary, success_evaluation, structured_data, \
             recording_url, tool_calls, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (call_id) DO UPDATE SET summary = coalesce(excluded.summary, call_analysis.summary), \
             success_evaluation = coalesce(excluded.success_evaluation, call_analysis.success_evaluation), \
             structured_data = coalesce(excluded.structured_data, call_analysis.structured_data), \
             recording_url = coalesce(excluded.recording_url, call_analysis.recording_url), \
             tool_calls = coalesce(excluded.tool_calls, call_analysis.tool_calls), \
             updated_at = excluded.updated_at"),
        )
        .bind(call_id)
        .bind(a.summary.as_deref())
        .bind(a.success_evaluation.as_deref())
        .bind(a.structured_data.as_deref())
        .bind(a.recording_url.as_deref())
        .bind(a.tool_calls.as_deref())
        .bind(tx.now())
        .execute(&mut *tx)
        .await?;
        super::policy::dnc_from_analysis_in(&mut tx, call_id, a.structured_data.as_deref()).await?;
        // The end may have come first: what follows the conversation is decided now.
        super::follow_up::follow_up_in(&mut tx, call_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether an analysis read with the call `provider_call_id` is still to be kept: the
    /// call is ours, has ended and has none yet (bulk reads return a call many times).
    pub async fn analysis_wanted(&self, provider_call_id: &str) -> Result<bool> {
        let wanted: Option<i64> = sqlx::query_scalar(crate::q(
            "SELECT c.id FROM calls c WHERE c.provider_call_id = ? AND c.status = ? \
             AND NOT EXISTS (SELECT 1 FROM call_analysis a WHERE a.call_id = c.id)",
        ))
        .bind(provider_call_id)
        .bind(crate::model::CallStatus::Ended)
        .fetch_optional(self.reader())
        .await?;
        Ok(wanted.is_some())
    }

    /// Whether a report brought the call an analysis.
    pub async fn has_analysis(&self, call_id: i64) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(crate::q(
            "SELECT call_id FROM call_analysis WHERE call_id = ?",
        ))
        .bind(call_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(found.is_some())
    }

    /// A call's analysis, if a report brought one.
    pub async fn call_analysis(&self, call_id: i64) -> Result<Option<CallAnalysis>> {
        Ok(sqlx::query_as(crate::q(
            "SELECT summary, success_evaluation, structured_data, recording_url, tool_calls \
             FROM call_analysis WHERE call_id = ?",
        ))
        .bind(call_id)
        .fetch_optional(self.reader())
        .await?)
    }

    /// A campaign's success rate over its ended calls ([`Store::success_tally`]). `None`
    /// before any ended call.
    pub async fn success_rate(&self, campaign_id: i64) -> Result<Option<f64>> {
        let tally = self.success_tally(campaign_id).await?;
        Ok((tally.judged > 0).then(|| tally.successes as f64 / tally.judged as f64))
    }

    /// A campaign's ended calls judged by [`crate::model::success_of`]: Vapi's evaluation
    /// where a report brought one, else the ended reason. The campaign pane's rate and the
    /// report's count both come from here.
    pub async fn success_tally(&self, campaign_id: i64) -> Result<SuccessTally> {
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(crate::q(
            "SELECT c.ended_reason, a.success_evaluation FROM calls c \
             LEFT JOIN call_analysis a ON a.call_id = c.id \
             WHERE c.campaign_id = ? AND c.status = ?",
        ))
        .bind(campaign_id)
        .bind(crate::model::CallStatus::Ended)
        .fetch_all(self.reader())
        .await?;
        let mut tally = SuccessTally::default();
        for verdict in rows.iter().filter_map(|(reason, eval)| {
            crate::model::success_of(reason.as_deref(), eval.as_deref())
        }) {
            tally.judged += 1;
            tally.successes += i64::from(verdict);
        }
        Ok(tally)
    }
}

/// Ended calls that [`crate::model::success_of`] could judge, and how many of them succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SuccessTally {
    pub judged: i64,
    pub successes: i64,
}
