//! Live calls as stored: what operators asked of them (`live_requests`, carried out by the
//! engine that holds the call), why switchboard ended one itself (`calls.end_cause`, read by
//! the end's transition in calls.rs), which calls a console watches, and what was said
//! (`call_transcripts`). No monitor URL is ever written here.

use super::policy::DecisionRow;
use super::{Result, Store, StoreError, Tx, q};
use crate::model::live::{
    AfterEnd, EndCause, LiveAction, MAX_TRANSCRIPT_LINES, RequestStatus, Speaker, TranscriptLine,
};
use crate::model::{CallStatus, sql_in};

/// A request for a live call, with what the engine needs to carry it out and to name the
/// call to the operator.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LiveRequest {
    pub id: i64,
    pub call_id: i64,
    pub campaign_id: i64,
    pub contact_id: i64,
    pub action: String,
    pub actor: String,
    pub status: RequestStatus,
    pub answer: Option<String>,
    pub call_status: CallStatus,
    pub provider_call_id: Option<String>,
    pub ended_reason: Option<String>,
    pub phone: String,
    pub name: Option<String>,
}

impl LiveRequest {
    /// The stored action (a row written by another build reads as an error, not a guess).
    pub fn action(&self) -> std::result::Result<LiveAction, String> {
        self.action
            .parse()
            .map_err(|e| format!("request #{} has an unreadable action: {e}", self.id))
    }

    /// `call 12 (Ada Lovelace, +14155550100)`: how dialogs and answers name the call.
    pub fn who(&self) -> String {
        match &self.name {
            Some(name) if !name.is_empty() => {
                format!("call {} ({name}, {})", self.call_id, self.phone)
            }
            _ => format!("call {} ({})", self.call_id, self.phone),
        }
    }
}

const REQUEST_COLUMNS: &str = "r.id, r.call_id, c.campaign_id, c.contact_id, r.action, r.actor, r.status, \
     r.answer, c.status AS call_status, c.provider_call_id, c.ended_reason, k.phone, k.name";

/// An answered request as `why` reads it.
#[derive(sqlx::FromRow)]
struct AnsweredRequest {
    done_at: String,
    phone: String,
    campaign: Option<String>,
    call_id: i64,
    action: String,
    actor: String,
    answer: Option<String>,
}

/// What the kill switch marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KillReport {
    /// Calls at Vapi: an end request each.
    pub live: u64,
    /// Calls still being created: ended as soon as Vapi shows them.
    pub creating: u64,
}

/// A live call the runaway guard looks at.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct GuardedCall {
    pub call_id: i64,
    pub campaign_id: i64,
    pub provider_call_id: Option<String>,
    pub started_at: Option<String>,
    pub created_at: String,
}

impl Store {
    /// Asks the engine holding `call_id` to carry out `action`. A request that ends the call
    /// marks it first (`end_cause`), so its end is counted as switchboard's and its contact
    /// follows `then`. Refused for a call that is over.
    pub async fn request_live(
        &self,
        call_id: i64,
        action: &LiveAction,
        actor: &str,
        then: AfterEnd,
    ) -> Result<LiveRequest> {
        let mut tx = self.write().await?;
        let status: Option<CallStatus> =
            sqlx::query_scalar("SELECT status FROM calls WHERE id = $1")
                .bind(call_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(status) = status else {
            return Err(StoreError::Conflict(format!("no call {call_id}")));
        };
        if status.is_terminal() {
            return Err(StoreError::Conflict(format!(
                "call {call_id} is {status}: it is not live"
            )));
        }
        if action.ends_call() {
            mark_end_in(&mut tx, call_id, EndCause::Operator, then).await?;
        }
        let id = insert_request_in(&mut tx, call_id, action, actor).await?;
        let request = request_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(request)
    }

    /// One request, as it is now (the CLI waits on its answer).
    pub async fn live_request(&self, id: i64) -> Result<LiveRequest> {
        let sql = q(format!(
            "SELECT {REQUEST_COLUMNS} FROM live_requests r JOIN calls c ON c.id = r.call_id \
             JOIN contacts k ON k.id = c.contact_id WHERE r.id = ?"
        ));
        sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("no live request {id}")))
    }

    /// Takes up to `limit` pending requests for calls this engine holds (or nobody holds)
    /// whose fate is known: a call still being created waits until Vapi shows it.
    pub async fn take_live_requests(
        &self,
        engine_id: &str,
        limit: i64,
    ) -> Result<Vec<LiveRequest>> {
        let mut tx = self.write().await?;
        let sql = q(format!(
            "SELECT {REQUEST_COLUMNS} FROM live_requests r JOIN calls c ON c.id = r.call_id \
             JOIN contacts k ON k.id = c.contact_id \
             WHERE r.status = ? AND (c.engine_id = ? OR c.engine_id IS NULL) \
             AND c.status NOT IN {} ORDER BY r.id LIMIT ?",
            sql_in(CallStatus::IN_CREATION)
        ));
        let mut rows: Vec<LiveRequest> = sqlx::query_as(sql)
            .bind(RequestStatus::Pending)
            .bind(engine_id)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        for r in &mut rows {
            sqlx::query("UPDATE live_requests SET status = $1, taken_by = $2 WHERE id = $3")
                .bind(RequestStatus::Taken)
                .bind(engine_id)
                .bind(r.id)
                .execute(&mut *tx)
                .await?;
            r.status = RequestStatus::Taken;
        }
        tx.commit().await?;
        Ok(rows)
    }

    /// Takes one request if it is still pending (the CLI carrying out its own when no engine
    /// runs): None when someone else took it.
    pub async fn take_live_request(&self, id: i64, by: &str) -> Result<Option<LiveRequest>> {
        let mut tx = self.write().await?;
        let taken = sqlx::query(
            "UPDATE live_requests SET status = $1, taken_by = $2 WHERE id = $3 AND status = $4",
        )
        .bind(RequestStatus::Taken)
        .bind(by)
        .bind(id)
        .bind(RequestStatus::Pending)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let request = if taken {
            Some(request_in(&mut tx, id).await?)
        } else {
            None
        };
        tx.commit().await?;
        Ok(request)
    }

    /// The pending requests (the kill switch's, when the CLI carries them out itself).
    pub async fn pending_live_requests(&self) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM live_requests WHERE status = $1 ORDER BY id")
                .bind(RequestStatus::Pending)
                .fetch_all(self.reader())
                .await?,
        )
    }

    /// Records the answer to a request; `why` shows it in the number's history.
    pub async fn finish_live_request(
        &self,
        request: &LiveRequest,
        ok: bool,
        answer: &str,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let status = if ok {
            RequestStatus::Done
        } else {
            RequestStatus::Failed
        };
        sqlx::query(
            "UPDATE live_requests SET status = $1, answer = $2, done_at = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(answer)
        .bind(tx.now())
        .bind(request.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The answered requests about calls to `phone`, as lines of its history (`why`).
    pub(crate) async fn live_history(&self, phone: &str) -> Result<Vec<DecisionRow>> {
        let rows: Vec<AnsweredRequest> = sqlx::query_as(
            "SELECT r.done_at, k.phone, g.name AS campaign, r.call_id, r.action, r.actor, r.answer \
             FROM live_requests r JOIN calls c ON c.id = r.call_id \
             JOIN contacts k ON k.id = c.contact_id LEFT JOIN campaigns g ON g.id = c.campaign_id \
             WHERE k.phone = $1 AND r.done_at IS NOT NULL ORDER BY r.id",
        )
        .bind(phone)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let what = r
                    .action
                    .parse::<LiveAction>()
                    .map(|a| a.describe())
                    .unwrap_or_else(|e| format!("unreadable action: {e}"));
                DecisionRow {
                    at: r.done_at,
                    phone: r.phone,
                    campaign: r.campaign,
                    call_id: Some(r.call_id),
                    decision: "LIVE".into(),
                    reason: format!("{what} ({}): {}", r.actor, r.answer.unwrap_or_default()),
                }
            })
            .collect())
    }

    /// Requests taken by an engine that stopped before answering (none of `live_engines`):
    /// an end is asked again (ending twice is harmless); anything else is answered as not
    /// carried out, since saying a line twice to a person is not.
    pub async fn recover_live_requests(&self, live_engines: &[String]) -> Result<u64> {
        let mut tx = self.write().await?;
        let taken: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, action, taken_by FROM live_requests WHERE status = $1")
                .bind(RequestStatus::Taken)
                .fetch_all(&mut *tx)
                .await?;
        let mut n = 0;
        for (id, action, by) in taken {
            if by.as_ref().is_some_and(|b| live_engines.contains(b)) {
                continue;
            }
            let end = action
                .parse::<LiveAction>()
                .is_ok_and(|a| a == LiveAction::End);
            let (status, answer) = if end {
                (RequestStatus::Pending, None)
            } else {
                (
                    RequestStatus::Failed,
                    Some("the engine stopped before carrying it out; ask again if still wanted"),
                )
            };
            sqlx::query(
                "UPDATE live_requests SET status = $1, taken_by = NULL, answer = $2 WHERE id = $3",
            )
            .bind(status)
            .bind(answer)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// The kill switch: every call of `campaign_id` (all campaigns when None) that is live or
    /// being created is marked to end with `cause`, and each at Vapi gets an end request.
    pub async fn end_live_calls(
        &self,
        campaign_id: Option<i64>,
        cause: EndCause,
        then: AfterEnd,
        actor: &str,
    ) -> Result<KillReport> {
        let mut tx = self.write().await?;
        let mut statuses = CallStatus::AT_VAPI.to_vec();
        statuses.extend_from_slice(CallStatus::IN_CREATION);
        let sql = q(format!(
            "SELECT id, status FROM calls WHERE status IN {} AND (? IS NULL OR campaign_id = ?) ORDER BY id",
            sql_in(&statuses)
        ));
        let calls: Vec<(i64, CallStatus)> = sqlx::query_as(sql)
            .bind(campaign_id)
            .bind(campaign_id)
            .fetch_all(&mut *tx)
            .await?;
        let mut report = KillReport::default();
        for (id, status) in calls {
            mark_end_in(&mut tx, id, cause, then).await?;
            insert_request_in(&mut tx, id, &LiveAction::End, actor).await?;
            if status.is_at_vapi() {
                report.live += 1;
            } else {
                report.creating += 1;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    /// How many calls the kill switch would end now (the dialog's count).
    pub async fn live_call_count(&self, campaign_id: Option<i64>) -> Result<i64> {
        let mut statuses = CallStatus::AT_VAPI.to_vec();
        statuses.extend_from_slice(CallStatus::IN_CREATION);
        let sql = q(format!(
            "SELECT count(*) FROM calls WHERE status IN {} AND (? IS NULL OR campaign_id = ?)",
            sql_in(&statuses)
        ));
        Ok(sqlx::query_scalar(sql)
            .bind(campaign_id)
            .bind(campaign_id)
            .fetch_one(self.reader())
            .await?)
    }

    /// The runaway guard ends a call: marked, and an end request for the engine.
    pub async fn guard_end(&self, call_id: i64, cause: EndCause) -> Result<bool> {
        let mut tx = self.write().await?;
        let marked = mark_end_in(&mut tx, call_id, cause, AfterEnd::Done).await?;
        if marked {
            insert_request_in(&mut tx, call_id, &LiveAction::End, "engine").await?;
        }
        tx.commit().await?;
        Ok(marked)
    }

    /// The live calls of a campaign this engine holds, for the runaway guard.
    pub async fn guarded_calls(
        &self,
        campaign_id: i64,
        engine_id: &str,
    ) -> Result<Vec<GuardedCall>> {
        let sql = q(format!(
            "SELECT id AS call_id, campaign_id, provider_call_id, started_at, created_at FROM calls \
             WHERE campaign_id = ? AND status IN {} AND end_cause IS NULL \
             AND (engine_id = ? OR engine_id IS NULL)",
            sql_in(CallStatus::AT_VAPI)
        ));
        Ok(sqlx::query_as(sql)
            .bind(campaign_id)
            .bind(engine_id)
            .fetch_all(self.reader())
            .await?)
    }

    /// A console shows this call's transcript until `until` (renewed while it is selected).
    pub async fn watch_call(&self, call_id: i64, until: &str) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE calls SET watch_until = $1 WHERE id = $2")
            .bind(until)
            .bind(call_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Live calls a console watches now: (call id, Vapi's id).
    pub async fn watched_calls(&self, now: &str) -> Result<Vec<(i64, String)>> {
        let sql = q(format!(
            "SELECT id, provider_call_id FROM calls WHERE watch_until > ? \
             AND provider_call_id IS NOT NULL AND status IN {} ORDER BY id LIMIT 8",
            sql_in(CallStatus::AT_VAPI)
        ));
        Ok(sqlx::query_as(sql)
            .bind(now)
            .fetch_all(self.reader())
            .await?)
    }

    /// Replaces a call's transcript with `lines` (the newest kept): a `conversation-update`
    /// or a read of the call carries the whole conversation so far.
    pub async fn set_transcript(
        &self,
        provider_call_id: &str,
        lines: &[TranscriptLine],
    ) -> Result<Option<i64>> {
        let mut tx = self.write().await?;
        let Some(call_id) = call_of(&mut tx, provider_call_id).await? else {
            return Ok(None);
        };
        let kept = &lines[lines.len().saturating_sub(MAX_TRANSCRIPT_LINES)..];
        sqlx::query("DELETE FROM call_transcripts WHERE call_id = $1")
            .bind(call_id)
            .execute(&mut *tx)
            .await?;
        for (n, line) in kept.iter().enumerate() {
            insert_line_in(&mut tx, call_id, n as i64, line).await?;
        }
        tx.commit().await?;
        Ok(Some(call_id))
    }

    /// Appends one final line (a `transcript` message) unless it is already the last of its
    /// speaker's; the oldest lines go past the bound.
    pub async fn append_transcript(
        &self,
        provider_call_id: &str,
        line: &TranscriptLine,
    ) -> Result<Option<i64>> {
        let mut tx = self.write().await?;
        let Some(call_id) = call_of(&mut tx, provider_call_id).await? else {
            return Ok(None);
        };
        let last: Option<(i64, Speaker, String)> = sqlx::query_as(
            "SELECT line, speaker, text FROM call_transcripts WHERE call_id = $1 ORDER BY line DESC LIMIT 1",
        )
        .bind(call_id)
        .fetch_optional(&mut *tx)
        .await?;
        if last
            .as_ref()
            .is_some_and(|(_, s, t)| *s == line.speaker && *t == line.text)
        {
            return Ok(Some(call_id));
        }
        let next = last.as_ref().map_or(0, |(n, _, _)| n + 1);
        // A transcript message has no time of its own: it comes after the last line.
        let at_s: Option<f64> =
            sqlx::query_scalar("SELECT max(at_s) FROM call_transcripts WHERE call_id = $1")
                .bind(call_id)
                .fetch_one(&mut *tx)
                .await?;
        let line = TranscriptLine {
            at_s: line.at_s.max(at_s.unwrap_or(0.0)),
            ..line.clone()
        };
        insert_line_in(&mut tx, call_id, next, &line).await?;
        sqlx::query("DELETE FROM call_transcripts WHERE call_id = $1 AND line <= $2")
            .bind(call_id)
            .bind(next - MAX_TRANSCRIPT_LINES as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(call_id))
    }

    /// What was said on a call, oldest line first.
    pub async fn transcript(&self, call_id: i64) -> Result<Vec<TranscriptLine>> {
        let rows: Vec<(Speaker, f64, String)> = sqlx::query_as(
            "SELECT speaker, at_s, text FROM call_transcripts WHERE call_id = $1 ORDER BY line",
        )
        .bind(call_id)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(speaker, at_s, text)| TranscriptLine {
                speaker,
                at_s,
                text,
            })
            .collect())
    }
}

/// Sets a call's end cause unless one is set (the first cause wins: a kill switch after the
/// guard does not rename the guard's end). Returns whether this call was marked now.
async fn mark_end_in(tx: &mut Tx, call_id: i64, cause: EndCause, then: AfterEnd) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE calls SET end_cause = $1, end_then = $2 WHERE id = $3 AND end_cause IS NULL",
    )
    .bind(cause)
    .bind(then)
    .bind(call_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

async fn insert_request_in(
    tx: &mut Tx,
    call_id: i64,
    action: &LiveAction,
    actor: &str,
) -> Result<i64> {
    let action = serde_json::to_string(action)
        .map_err(|e| StoreError::Conflict(format!("cannot store the action: {e}")))?;
    Ok(sqlx::query_scalar(
        "INSERT INTO live_requests (call_id, action, actor, status, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(call_id)
    .bind(action)
    .bind(actor)
    .bind(RequestStatus::Pending)
    .bind(tx.now())
    .fetch_one(&mut **tx)
    .await?)
}

async fn request_in(tx: &mut Tx, id: i64) -> Result<LiveRequest> {
    let sql = q(format!(
        "SELECT {REQUEST_COLUMNS} FROM live_requests r JOIN calls c ON c.id = r.call_id \
         JOIN contacts k ON k.id = c.contact_id WHERE r.id = ?"
    ));
    Ok(sqlx::query_as(sql).bind(id).fetch_one(&mut **tx).await?)
}

async fn call_of(tx: &mut Tx, provider_call_id: &str) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM calls WHERE provider_call_id = $1")
            .bind(provider_call_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

async fn insert_line_in(tx: &mut Tx, call_id: i64, n: i64, line: &TranscriptLine) -> Result<()> {
    sqlx::query(
        "INSERT INTO call_transcripts (call_id, line, speaker, at_s, text) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(call_id)
    .bind(n)
    .bind(line.speaker)
    .bind(line.at_s)
    .bind(&line.text)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Why the call was ended by switchboard, when it was (read by the end's transition).
pub(crate) fn end_cause_of(
    cause: Option<&str>,
    then: Option<&str>,
) -> Option<(EndCause, AfterEnd)> {
    let cause: EndCause = cause?.parse().ok()?;
    let then = then.and_then(|t| t.parse().ok()).unwrap_or(AfterEnd::Done);
    Some((cause, then))
}
