//! A campaign's phone-number pool: the `campaign_numbers` table.
//!
//! Every call is created from one number of its campaign's pool, picked at claim time (the
//! one place every call passes) by weight: the usable number with the fewest picks per unit
//! of weight. A number is *benched* (skipped by the pick) until a given instant: until the
//! next day after Vapi's `call.start.error-vapi-number-outbound-daily-limit`, or for a
//! cool-down after it failed several calls in a row (never-rang ends, refusals naming it).
//! A campaign whose every number is benched cannot claim; the engine pauses it with the
//! reason.

use chrono::{DateTime, Utc};

use super::{Result, Store, StoreError, Tx, format_time};

/// One number of a campaign's pool, as the quota pane and `campaign show` list it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct PoolNumber {
    pub campaign_id: i64,
    pub phone_number_id: String,
    pub weight: i64,
    /// Calls created from it on `day` (UTC).
    pub calls_today: i64,
    pub day: Option<String>,
    pub benched_until: Option<String>,
    pub bench_reason: Option<String>,
}

impl PoolNumber {
    /// Benched at `at` (a bench whose time has passed no longer counts).
    pub fn benched_at(&self, at: DateTime<Utc>) -> bool {
        self.benched_until
            .as_deref()
            .is_some_and(|until| until > format_time(at).as_str())
    }

    /// Calls created from it on the UTC day of `at`.
    pub fn calls_on(&self, at: DateTime<Utc>) -> i64 {
        match &self.day {
            Some(day) if *day == utc_day(at) => self.calls_today,
            _ => 0,
        }
    }
}

/// What a pool's parse found wrong: one line for the operator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PoolSpecError(pub String);

/// Parses `pn-1,pn-2:3` (a weight after a colon, 1 by default) into the pool's numbers, in
/// order. Ids are Vapi's phoneNumberId values; duplicates and empty ids are refused.
pub fn parse_pool(spec: &str) -> std::result::Result<Vec<(String, i64)>, PoolSpecError> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for item in spec.split(',') {
        let item = item.trim();
        let (id, weight) = match item.rsplit_once(':') {
            Some((id, w)) => {
                let weight = w
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|w| (1..=1000).contains(w));
                match weight {
                    Some(weight) => (id.trim(), weight),
                    None => {
                        return Err(PoolSpecError(format!(
                            "phone number weight '{w}' in '{item}' is not a whole number from 1 to 1000"
                        )));
                    }
                }
            }
            None => (item, 1),
        };
        if id.is_empty() {
            return Err(PoolSpecError(format!(
                "empty phone number id in '{spec}' (expected ids separated by commas, e.g. pn-1,pn-2:3)"
            )));
        }
        if id.len() > 200 || id.chars().any(char::is_whitespace) {
            return Err(PoolSpecError(format!(
                "'{}' is not a phoneNumberId (no spaces, at most 200 characters)",
                id.chars().take(60).collect::<String>()
            )));
        }
        if out.iter().any(|(seen, _)| seen == id) {
            return Err(PoolSpecError(format!(
                "phone number '{id}' is listed twice"
            )));
        }
        out.push((id.to_string(), weight));
    }
    Ok(out)
}

/// The UTC day of an instant, as the pool counts calls per day.
fn utc_day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

const COLUMNS: &str =
    "campaign_id, phone_number_id, weight, calls_today, day, benched_until, bench_reason";

impl Store {
    /// The numbers of a campaign's pool, in pick order of ties (by id).
    pub async fn campaign_numbers(&self, campaign_id: i64) -> Result<Vec<PoolNumber>> {
        let sql = super::q(format!(
            "SELECT {COLUMNS} FROM campaign_numbers WHERE campaign_id = ? ORDER BY phone_number_id"
        ));
        Ok(sqlx::query_as(sql)
            .bind(campaign_id)
            .fetch_all(self.reader())
            .await?)
    }

    /// Every pool of the database (the quota pane).
    pub async fn all_numbers(&self) -> Result<Vec<PoolNumber>> {
        let sql = super::q(format!(
            "SELECT {COLUMNS} FROM campaign_numbers ORDER BY campaign_id, phone_number_id"
        ));
        Ok(sqlx::query_as(sql).fetch_all(self.reader()).await?)
    }

    /// Replaces a campaign's pool. Numbers that stay keep their counters and bench; the
    /// first number becomes the campaign's `phone_number_id` (its default for old calls).
    pub async fn set_campaign_numbers(
        &self,
        campaign_id: i64,
        numbers: &[(String, i64)],
    ) -> Result<()> {
        let Some((first, _)) = numbers.first() else {
            return Err(StoreError::Conflict(
                "a campaign needs at least one phone number".into(),
            ));
        };
        let mut tx = self.write().await?;
        let existing: Vec<String> = sqlx::query_scalar(super::q(
            "SELECT phone_number_id FROM campaign_numbers WHERE campaign_id = ?",
        ))
        .bind(campaign_id)
        .fetch_all(&mut *tx)
        .await?;
        for old in existing
            .iter()
            .filter(|old| !numbers.iter().any(|(n, _)| n == *old))
        {
            sqlx::query(super::q(
                "DELETE FROM campaign_numbers WHERE campaign_id = ? AND phone_number_id = ?",
            ))
            .bind(campaign_id)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        }
        for (number, weight) in numbers {
            if existing.contains(number) {
                sqlx::query(super::q(
                    "UPDATE campaign_numbers SET weight = ? WHERE campaign_id = ? AND phone_number_id = ?",
                ))
                .bind(weight)
                .bind(campaign_id)
                .bind(number)
                .execute(&mut *tx)
                .await?;
            } else {
                insert_number_in(&mut tx, campaign_id, number, *weight).await?;
            }
        }
        // Calls made before pools name no number: they were made from the campaign's, which
        // is about to change. Pin them to it, so look-ups and reads keep finding them.
        sqlx::query(super::q(
            "UPDATE calls SET phone_number_id = \
             (SELECT phone_number_id FROM campaigns WHERE id = ?) \
             WHERE campaign_id = ? AND phone_number_id IS NULL",
        ))
        .bind(campaign_id)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(super::q(
            "UPDATE campaigns SET phone_number_id = ? WHERE id = ?",
        ))
        .bind(first)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Benches a number of a campaign's pool until `until`, with the reason. Returns how many
    /// of the campaign's numbers are still usable at `at`.
    pub async fn bench_number(
        &self,
        campaign_id: i64,
        number: &str,
        until: DateTime<Utc>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.write().await?;
        sqlx::query(super::q(
            "UPDATE campaign_numbers SET benched_until = ?, bench_reason = ? \
             WHERE campaign_id = ? AND phone_number_id = ?",
        ))
        .bind(format_time(until))
        .bind(reason)
        .bind(campaign_id)
        .bind(number)
        .execute(&mut *tx)
        .await?;
        let usable = usable_in(&mut tx, campaign_id, at).await?;
        tx.commit().await?;
        Ok(usable)
    }

    /// Puts every benched number of a campaign back in use (the operator's resume).
    pub async fn unbench_numbers(&self, campaign_id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(super::q(
            "UPDATE campaign_numbers SET benched_until = NULL, bench_reason = NULL \
             WHERE campaign_id = ? AND benched_until IS NOT NULL",
        ))
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(super) async fn insert_number_in(
    tx: &mut Tx,
    campaign_id: i64,
    number: &str,
    weight: i64,
) -> Result<()> {
    sqlx::query(super::q(
        "INSERT INTO campaign_numbers (campaign_id, phone_number_id, weight) VALUES (?, ?, ?)",
    ))
    .bind(campaign_id)
    .bind(number)
    .bind(weight)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn usable_in(tx: &mut Tx, campaign_id: i64, at: DateTime<Utc>) -> Result<i64> {
    Ok(sqlx::query_scalar(super::q(
        "SELECT count(*) FROM campaign_numbers WHERE campaign_id = ? \
         AND (benched_until IS NULL OR benched_until <= ?)",
    ))
    .bind(campaign_id)
    .bind(format_time(at))
    .fetch_one(&mut **tx)
    .await?)
}

/// The claim's pick: the campaign's usable number with the fewest picks per unit of weight
/// (ties by id), counted as used today. `Err` carries why none is usable (every number
/// benched, with until when), for the campaign's pause reason.
pub(super) async fn pick_number_in(
    tx: &mut Tx,
    campaign_id: i64,
    at: DateTime<Utc>,
) -> Result<std::result::Result<String, String>> {
    let at_text = format_time(at);
    let picked: Option<String> = sqlx::query_scalar(super::q(
        "SELECT phone_number_id FROM campaign_numbers WHERE campaign_id = ? \
         AND (benched_until IS NULL OR benched_until <= ?) \
         ORDER BY (picks + 1.0) / weight, phone_number_id LIMIT 1",
    ))
    .bind(campaign_id)
    .bind(&at_text)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(number) = picked else {
        let benched: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(super::q(
            "SELECT phone_number_id, benched_until, bench_reason FROM campaign_numbers \
             WHERE campaign_id = ? ORDER BY benched_until",
        ))
        .bind(campaign_id)
        .fetch_all(&mut **tx)
        .await?;
        if benched.is_empty() {
            return Ok(Err("the campaign has no phone number".into()));
        }
        let list: Vec<String> = benched
            .iter()
            .map(|(number, until, reason)| {
                format!(
                    "{number} until {} ({})",
                    until.as_deref().unwrap_or("?"),
                    reason.as_deref().unwrap_or("benched")
                )
            })
            .collect();
        return Ok(Err(format!(
            "every phone number of the campaign is benched: {}; resume once one is back, or add numbers with `campaign edit --phone-number-id`",
            list.join("; ")
        )));
    };
    let day = utc_day(at);
    sqlx::query(super::q(
        "UPDATE campaign_numbers SET picks = picks + 1, \
         calls_today = CASE WHEN day = ? THEN calls_today + 1 ELSE 1 END, day = ?, \
         benched_until = NULL, bench_reason = NULL \
         WHERE campaign_id = ? AND phone_number_id = ?",
    ))
    .bind(&day)
    .bind(&day)
    .bind(campaign_id)
    .bind(&number)
    .execute(&mut **tx)
    .await?;
    Ok(Ok(number))
}

/// The instant a number benched for Vapi's daily limit comes back: the next midnight in
/// `zone` (the zone of the account's daily limits).
pub fn next_day(at: DateTime<Utc>, zone: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = at.with_timezone(&zone).date_naive();
    let mut day = local;
    for _ in 0..3 {
        day = day.succ_opt().unwrap_or(day);
        if let Some(midnight) = day.and_hms_opt(0, 0, 0)
            && let Some(instant) = zone.from_local_datetime(&midnight).earliest()
        {
            return instant.with_timezone(&Utc);
        }
    }
    at + chrono::Duration::hours(24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_parses_with_weights_and_refuses_what_is_not_one() {
        assert_eq!(
            parse_pool("pn-1, pn-2:3").unwrap(),
            vec![("pn-1".to_string(), 1), ("pn-2".to_string(), 3)]
        );
        for bad in [
            "",
            "pn-1,",
            "pn-1,pn-1",
            "pn-1:0",
            "pn-1:x",
            "pn 1",
            "pn-1:1001",
        ] {
            assert!(parse_pool(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_next_day_is_the_next_local_midnight() {
        let at: DateTime<Utc> = "2026-11-28T23:30:00Z".parse().unwrap();
        assert_eq!(
            next_day(at, chrono_tz::UTC).to_rfc3339(),
            "2026-11-29T00:00:00+00:00"
        );
        // 18:30 in Chicago: its midnight is 06:00 UTC the next morning.
        assert_eq!(
            next_day(at, chrono_tz::America::Chicago).to_rfc3339(),
            "2026-11-29T06:00:00+00:00"
        );
    }
}

/// A campaign's ended calls since a day ago, counted by what number health needs: the pool
/// number and the area code called, the ended reason, whether answered, whether a quick
/// hang-up, whether in the last hour, and whether it counts for the number's verdict (ended
/// after the number's last bench: a number back from its cool-down is judged afresh).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HealthRow {
    pub phone_number_id: String,
    pub area: String,
    pub ended_reason: Option<String>,
    pub answered: i64,
    pub quick: i64,
    pub last_hour: i64,
    pub judged: i64,
    pub calls: i64,
}

impl Store {
    /// [`HealthRow`]s of `campaign_id` as of `now`; `quick_ms`: an answered call shorter is a
    /// quick hang-up.
    pub async fn number_health_rows(
        &self,
        campaign_id: i64,
        quick_ms: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<HealthRow>> {
        let day = format_time(now - chrono::Duration::days(1));
        let hour = format_time(now - chrono::Duration::hours(1));
        let mut sql = super::sql::Sql::new(self.backend());
        sql.push(
            "SELECT coalesce(c.phone_number_id, g.phone_number_id) AS phone_number_id, \
             substr(k.phone, 1, 5) AS area, c.ended_reason, \
             CAST(CASE WHEN c.started_at IS NOT NULL THEN 1 ELSE 0 END AS BIGINT) AS answered, \
             CAST(CASE WHEN c.started_at IS NOT NULL AND ",
        );
        sql.seconds_between("c.started_at", "c.ended_at");
        sql.push(" * 1000 < ").bind(quick_ms as f64);
        sql.push(" THEN 1 ELSE 0 END AS BIGINT) AS quick, ");
        sql.push("CAST(CASE WHEN c.ended_at >= ")
            .bind(hour.as_str());
        sql.push(" THEN 1 ELSE 0 END AS BIGINT) AS last_hour, ");
        sql.push("CAST(CASE WHEN n.benched_until IS NULL OR c.ended_at >= n.benched_until ");
        sql.push("THEN 1 ELSE 0 END AS BIGINT) AS judged, count(*) AS calls ");
        sql.push(
            "FROM calls c JOIN contacts k ON k.id = c.contact_id \
             JOIN campaigns g ON g.id = c.campaign_id \
             LEFT JOIN campaign_numbers n ON n.campaign_id = c.campaign_id \
             AND n.phone_number_id = coalesce(c.phone_number_id, g.phone_number_id) \
             WHERE c.campaign_id = ",
        );
        sql.bind(campaign_id);
        sql.push(" AND c.status = ")
            .bind(crate::model::CallStatus::Ended.as_str());
        sql.push(" AND c.ended_at >= ").bind(day.as_str());
        sql.push(" GROUP BY 1, 2, 3, 4, 5, 6, 7");
        Ok(sql.query_as().fetch_all(self.reader()).await?)
    }
}
