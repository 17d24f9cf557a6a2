//! A campaign's arms (assistants tested side by side), kept in `campaign_arms`, and the
//! campaign report that compares them (`model::arms` holds the statistics).

use serde::Serialize;
use switchboard_model::arms::{self, Arm};

use super::{Result, Store, StoreError, Tx};
use crate::model::{ArmStatus, CallStatus};

impl Store {
    /// The campaign's arms in position order (empty: one assistant, no test).
    pub async fn campaign_arms(&self, campaign_id: i64) -> Result<Vec<Arm>> {
        read_arms(self.reader(), campaign_id).await
    }

    /// Sets the campaign's arms from `asst-a,asst-b:2`: an assistant already an arm keeps
    /// its place (and its contacts), a new one is added, one left out is stopped (its
    /// waiting contacts move to the others). One assistant with weight 1 and no arms before:
    /// no test, the campaign's assistant only.
    pub async fn set_campaign_arms(&self, campaign_id: i64, spec: &[(String, i64)]) -> Result<()> {
        let mut tx = self.write().await?;
        let current = read_arms(&mut *tx, campaign_id).await?;
        let Some((first, _)) = spec.first() else {
            return Err(StoreError::Conflict("no assistant given".into()));
        };
        sqlx::query(crate::q(
            "UPDATE campaigns SET assistant_id = ? WHERE id = ?",
        ))
        .bind(first)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        if current.is_empty() && spec.len() == 1 {
            tx.commit().await?;
            return Ok(());
        }
        let mut next = current.iter().map(|a| a.position).max().unwrap_or(0) + 1;
        for (assistant, weight) in spec {
            match current.iter().find(|a| &a.assistant_id == assistant) {
                Some(arm) => {
                    // A stopped arm named again takes contacts again: the operator asked.
                    sqlx::query(crate::q(
                        "UPDATE campaign_arms SET weight = ?, status = ? WHERE campaign_id = ? \
                         AND position = ?",
                    ))
                    .bind(weight)
                    .bind(ArmStatus::Active)
                    .bind(campaign_id)
                    .bind(arm.position)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query(crate::q(
                        "INSERT INTO campaign_arms (campaign_id, position, assistant_id, weight, \
                         status) VALUES (?, ?, ?, ?, ?)",
                    ))
                    .bind(campaign_id)
                    .bind(next)
                    .bind(assistant)
                    .bind(weight)
                    .bind(ArmStatus::Active)
                    .execute(&mut *tx)
                    .await?;
                    next += 1;
                }
            }
        }
        for gone in current
            .iter()
            .filter(|a| !spec.iter().any(|(s, _)| *s == a.assistant_id))
        {
            set_status_in(&mut tx, campaign_id, gone.position, ArmStatus::Stopped).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Pauses, resumes or stops one arm (named by its assistant id). Its waiting contacts
    /// move to the other arms at their next claim; the last arm taking contacts cannot be
    /// paused or stopped (pause the campaign instead), and a stopped one stays stopped.
    pub async fn set_arm_status(
        &self,
        campaign_id: i64,
        assistant_id: &str,
        status: ArmStatus,
    ) -> Result<Arm> {
        let mut tx = self.write().await?;
        let arms = read_arms(&mut *tx, campaign_id).await?;
        let Some(arm) = arms.iter().find(|a| a.assistant_id == assistant_id) else {
            let names: Vec<&str> = arms.iter().map(|a| a.assistant_id.as_str()).collect();
            return Err(StoreError::Conflict(if names.is_empty() {
                "the campaign has no arms (give several with --assistant-id a,b)".to_string()
            } else {
                format!("no arm {assistant_id} (arms: {})", names.join(", "))
            }));
        };
        if arm.status == ArmStatus::Stopped && status != ArmStatus::Stopped {
            return Err(StoreError::Conflict(format!(
                "arm {assistant_id} is stopped: name it again with campaign edit --assistant-id to bring it back"
            )));
        }
        let others_open = arms
            .iter()
            .any(|a| a.position != arm.position && a.status == ArmStatus::Active);
        if status != ArmStatus::Active && !others_open {
            return Err(StoreError::Conflict(format!(
                "arm {assistant_id} is the last taking contacts: pause the campaign instead"
            )));
        }
        set_status_in(&mut tx, campaign_id, arm.position, status).await?;
        tx.commit().await?;
        Ok(Arm {
            status,
            ..arm.clone()
        })
    }

    /// The campaign's report: its calls, answered calls, conversations, successes (with a
    /// 95 % Wilson interval), cost per success and voicemail messages left, in all and per
    /// arm, each arm against the best one.
    pub async fn arm_report(&self, campaign_id: i64) -> Result<ArmReport> {
        let arms = self.campaign_arms(campaign_id).await?;
        let campaign = self.campaign(campaign_id).await?;
        type Group = (
            Option<i64>,
            CallStatus,
            Option<String>,
            i64,
            Option<String>,
            i64,
            i64,
            f64,
        );
        let groups: Vec<Group> = sqlx::query_as(crate::q(
            "SELECT c.arm, c.status, c.ended_reason, \
             CASE WHEN c.started_at IS NULL THEN 0 ELSE 1 END AS answered, a.success_evaluation, \
             c.voicemail_message, count(*), coalesce(sum(c.cost_usd), 0) \
             FROM calls c LEFT JOIN call_analysis a ON a.call_id = c.id WHERE c.campaign_id = ? \
             GROUP BY c.arm, c.status, c.ended_reason, CASE WHEN c.started_at IS NULL THEN 0 ELSE 1 END, \
             a.success_evaluation, c.voicemail_message",
        ))
        .bind(campaign_id)
        .fetch_all(self.reader())
        .await?;
        let mut total = ArmLine::named(None, &campaign.assistant_id, None);
        let mut lines: Vec<ArmLine> = arms
            .iter()
            .map(|a| ArmLine::named(Some(a.position), &a.assistant_id, Some(a.status)))
            .collect();
        for (arm, status, reason, answered, evaluation, voicemail, count, cost) in groups {
            let tally = Tally::of(
                status,
                reason.as_deref(),
                answered == 1,
                evaluation.as_deref(),
                voicemail == 1,
                count,
                cost,
            );
            total.add(&tally);
            if let Some(line) = lines
                .iter_mut()
                .find(|l| l.position.is_some() && l.position == arm)
            {
                line.add(&tally);
            }
        }
        total.finish();
        for line in &mut lines {
            line.finish();
        }
        // Each arm against the best by success rate (among arms with conversations).
        let best = lines
            .iter()
            .filter(|l| l.conversations > 0)
            .max_by(|a, b| {
                let rate = |l: &ArmLine| l.successes as f64 / l.conversations as f64;
                rate(a).total_cmp(&rate(b))
            })
            .map(|l| (l.position, l.successes, l.conversations));
        if let Some((best_position, s, n)) = best {
            for line in &mut lines {
                line.differs_from_best = (line.position != best_position && line.conversations > 0)
                    .then(|| arms::significant(s, n, line.successes, line.conversations));
            }
        }
        Ok(ArmReport {
            campaign: campaign.name,
            total,
            arms: lines,
        })
    }
}

/// One group of calls, as the report counts it.
struct Tally {
    calls: u64,
    answered: u64,
    conversations: u64,
    successes: u64,
    voicemail_messages_left: u64,
    cost_usd: f64,
}

impl Tally {
    fn of(
        status: CallStatus,
        reason: Option<&str>,
        answered: bool,
        evaluation: Option<&str>,
        voicemail: bool,
        count: i64,
        cost: f64,
    ) -> Tally {
        let n = u64::try_from(count).unwrap_or(0);
        let ended = status == CallStatus::Ended;
        let reason = reason.unwrap_or("");
        let conversation =
            ended && (crate::model::is_conversation(reason) || (answered && reason != "voicemail"));
        let success =
            conversation && crate::model::success_of(Some(reason), evaluation).unwrap_or(false);
        let counted = |yes: bool| if yes { n } else { 0 };
        Tally {
            calls: n,
            answered: counted(ended && answered),
            conversations: counted(conversation),
            successes: counted(success),
            voicemail_messages_left: counted(ended && voicemail && reason == "voicemail"),
            cost_usd: cost,
        }
    }
}

/// The report's line for one arm (or the whole campaign).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmLine {
    /// The arm's position; None for the campaign's total.
    pub position: Option<i64>,
    pub assistant_id: String,
    pub status: Option<ArmStatus>,
    pub calls: u64,
    pub answered: u64,
    pub conversations: u64,
    pub successes: u64,
    /// Successes among conversations, with its 95 % Wilson interval.
    pub success_rate: Option<f64>,
    pub interval: Option<(f64, f64)>,
    pub cost_usd: f64,
    pub cost_per_success: Option<f64>,
    pub voicemail_messages_left: u64,
    /// Against the best arm: whether the difference is significant at 95 % (None for the
    /// best arm itself and arms without conversations).
    pub differs_from_best: Option<bool>,
}

impl ArmLine {
    fn named(position: Option<i64>, assistant: &str, status: Option<ArmStatus>) -> ArmLine {
        ArmLine {
            position,
            assistant_id: assistant.to_string(),
            status,
            calls: 0,
            answered: 0,
            conversations: 0,
            successes: 0,
            success_rate: None,
            interval: None,
            cost_usd: 0.0,
            cost_per_success: None,
            voicemail_messages_left: 0,
            differs_from_best: None,
        }
    }

    fn add(&mut self, t: &Tally) {
        self.calls += t.calls;
        self.answered += t.answered;
        self.conversations += t.conversations;
        self.successes += t.successes;
        self.voicemail_messages_left += t.voicemail_messages_left;
        self.cost_usd += t.cost_usd;
    }

    fn finish(&mut self) {
        self.success_rate =
            (self.conversations > 0).then(|| self.successes as f64 / self.conversations as f64);
        self.interval = arms::wilson(self.successes, self.conversations);
        self.cost_per_success = (self.successes > 0).then(|| self.cost_usd / self.successes as f64);
    }
}

/// The columns of [`ArmLine::row`].
pub const REPORT_HEADER: &str = "arm                      status   calls answered  talked success  rate (95 % interval)      $/success  voicemails  vs best";

impl ArmLine {
    /// One line of the report's table (`campaign report`, the console's report).
    pub fn row(&self) -> String {
        let name = match self.position {
            Some(p) => format!("{p}. {}", self.assistant_id),
            None => "all".to_string(),
        };
        let rate = match (self.success_rate, self.interval) {
            (Some(r), Some((lo, hi))) => {
                format!("{:.1} % ({:.1}-{:.1} %)", r * 100.0, lo * 100.0, hi * 100.0)
            }
            _ => "—".into(),
        };
        let per = self
            .cost_per_success
            .map_or("—".to_string(), |c| format!("${c:.2}"));
        let best = match (self.position, self.differs_from_best) {
            (None, _) => "",
            (Some(_), None) => "best",
            (Some(_), Some(true)) => "significant",
            (Some(_), Some(false)) => "not significant",
        };
        format!(
            "{:<24} {:<8} {:>5} {:>8} {:>7} {:>7}  {:<24}  {:>9}  {:>10}  {best}",
            name.chars().take(24).collect::<String>(),
            self.status.map_or("", |s| s.as_str()),
            self.calls,
            self.answered,
            self.conversations,
            self.successes,
            rate,
            per,
            self.voicemail_messages_left,
        )
    }
}

/// `campaign report` and the console's report: the campaign in all and each arm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmReport {
    pub campaign: String,
    pub total: ArmLine,
    pub arms: Vec<ArmLine>,
}

async fn read_arms<'e, E>(executor: E, campaign_id: i64) -> Result<Vec<Arm>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows: Vec<(i64, String, i64, ArmStatus)> = sqlx::query_as(crate::q(
        "SELECT position, assistant_id, weight, status FROM campaign_arms WHERE campaign_id = ? \
         ORDER BY position",
    ))
    .bind(campaign_id)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(position, assistant_id, weight, status)| Arm {
            position,
            assistant_id,
            weight,
            status,
        })
        .collect())
}

/// The arms of a campaign inside a claim's transaction.
pub(crate) async fn arms_in(tx: &mut Tx, campaign_id: i64) -> Result<Vec<Arm>> {
    read_arms(&mut **tx, campaign_id).await
}

async fn set_status_in(
    tx: &mut Tx,
    campaign_id: i64,
    position: i64,
    status: ArmStatus,
) -> Result<()> {
    sqlx::query(crate::q(
        "UPDATE campaign_arms SET status = ? WHERE campaign_id = ? AND position = ?",
    ))
    .bind(status)
    .bind(campaign_id)
    .bind(position)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The arm a claimed contact is called with: the one it has while that arm takes contacts
/// (so follow-ups keep it), else a new deterministic assignment among the open arms, kept
/// on the contact. None: the campaign has no arms.
pub(crate) async fn arm_for_in(
    tx: &mut Tx,
    campaign_id: i64,
    contact_id: i64,
    has: Option<i64>,
) -> Result<Option<(i64, String)>> {
    let arms = arms_in(tx, campaign_id).await?;
    if arms.is_empty() {
        return Ok(None);
    }
    let kept = has.and_then(|p| {
        arms.iter()
            .find(|a| a.position == p && a.status == ArmStatus::Active)
    });
    let arm = match kept {
        Some(arm) => arm,
        None => {
            let Some(position) = arms::assign(campaign_id, contact_id, &arms) else {
                return Ok(None);
            };
            sqlx::query(crate::q("UPDATE contacts SET arm = ? WHERE id = ?"))
                .bind(position)
                .bind(contact_id)
                .execute(&mut **tx)
                .await?;
            match arms.iter().find(|a| a.position == position) {
                Some(arm) => arm,
                None => return Ok(None),
            }
        }
    };
    Ok(Some((arm.position, arm.assistant_id.clone())))
}
