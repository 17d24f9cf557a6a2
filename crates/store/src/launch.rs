//! What `switchboard check` reads about a campaign's waiting contacts before it dials: one
//! counting query per question (with an example row), so a million contacts are checked by
//! the database's indexes and scans, not streamed through the client.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::sql::Sql;
use super::{Result, Store, format_time};
use crate::model::forecast::ZoneLoad;
use crate::model::{CallStatus, ContactStatus};

/// How many waiting contacts something is true of, and one of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Count {
    pub count: i64,
    /// The first such contact: its id and number.
    pub example: Option<(i64, String)>,
}

/// What a waiting contact is tested for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lacking<'a> {
    /// A `variableValues` key (a CSV column), absent or blank.
    Variable(&'a str),
    /// A name (`customer.name`).
    Name,
    /// A zone of its own (it is called in the campaign's zone).
    Zone,
    /// Consent (`consent_source` and `consent_at`).
    Consent,
    /// A number inside its country's known ranges (it was imported unverified).
    VerifiedNumber,
}

impl Store {
    /// The campaign's waiting contacts by zone, for the forecast: contacts without a zone
    /// (or with one that no longer reads) are called in `campaign_zone`.
    pub async fn waiting_by_zone(
        &self,
        campaign_id: i64,
        campaign_zone: Tz,
    ) -> Result<Vec<ZoneLoad>> {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT k.timezone, count(*) FROM contacts k WHERE ");
        waiting(&mut sql, campaign_id);
        sql.push(" GROUP BY k.timezone ORDER BY count(*) DESC");
        let rows: Vec<(Option<String>, i64)> = sql.query_as().fetch_all(self.reader()).await?;
        let mut zones: Vec<ZoneLoad> = Vec::new();
        for (zone, count) in rows {
            let zone = zone
                .and_then(|z| z.parse::<Tz>().ok())
                .unwrap_or(campaign_zone);
            let count = u64::try_from(count).unwrap_or(0);
            match zones.iter_mut().find(|z| z.zone == zone) {
                Some(z) => z.contacts += count,
                None => zones.push(ZoneLoad {
                    zone,
                    contacts: count,
                }),
            }
        }
        Ok(zones)
    }

    /// Waiting contacts that lack `what`.
    pub async fn waiting_lacking(&self, campaign_id: i64, what: Lacking<'_>) -> Result<Count> {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT count(*), min(k.id) FROM contacts k WHERE ");
        waiting(&mut sql, campaign_id);
        sql.push(" AND ");
        match what {
            Lacking::Variable(key) => {
                sql.push("coalesce(trim(CAST(")
                    .json_text("k.variables", key)
                    .push(" AS TEXT)), '') = ''");
            }
            Lacking::Name => {
                sql.push("coalesce(trim(k.name), '') = ''");
            }
            Lacking::Zone => {
                sql.push("k.timezone IS NULL");
            }
            Lacking::Consent => {
                sql.push("(k.consent_source IS NULL OR k.consent_at IS NULL)");
            }
            Lacking::VerifiedNumber => {
                sql.push("k.number_check = ")
                    .bind(super::contacts::UNVERIFIED);
            }
        }
        self.count_of(&sql).await
    }

    /// Waiting contacts whose number is on the do-not-call list.
    pub async fn waiting_on_dnc(&self, campaign_id: i64) -> Result<Count> {
        let mut sql = Sql::new(self.backend());
        sql.push(
            "SELECT count(*), min(k.id) FROM contacts k JOIN dnc d ON d.phone = k.phone WHERE ",
        );
        waiting(&mut sql, campaign_id);
        self.count_of(&sql).await
    }

    /// Waiting contacts whose number already had `per_day` calls in the last 24 hours or
    /// `per_week` in 7 days, across campaigns (0: that cap is off): deferred at their claim.
    pub async fn waiting_at_cap(
        &self,
        campaign_id: i64,
        (per_day, per_week): (u32, u32),
        at: DateTime<Utc>,
    ) -> Result<Count> {
        if per_day == 0 && per_week == 0 {
            return Ok(Count::default());
        }
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT count(*), min(k.id) FROM contacts k JOIN (SELECT r.phone, sum(CASE WHEN c.created_at > ");
        sql.bind(format_time(at - chrono::Duration::hours(24)));
        sql.push(
            " THEN 1 ELSE 0 END) AS day_calls, count(*) AS week_calls FROM calls c \
                  JOIN contacts r ON r.id = c.contact_id WHERE c.created_at > ",
        );
        sql.bind(format_time(at - chrono::Duration::days(7)));
        sql.push(" AND (c.provider_call_id IS NOT NULL OR c.status IN ")
            .bind_list(CallStatus::IN_CREATION.iter().map(|s| s.as_str()))
            .push(") GROUP BY r.phone) recent ON recent.phone = k.phone WHERE ");
        waiting(&mut sql, campaign_id);
        sql.push(" AND (");
        if per_day > 0 {
            sql.push("recent.day_calls >= ").bind(i64::from(per_day));
        } else {
            sql.push("1 = 0");
        }
        sql.push(" OR ");
        if per_week > 0 {
            sql.push("recent.week_calls >= ").bind(i64::from(per_week));
        } else {
            sql.push("1 = 0");
        }
        sql.push(")");
        self.count_of(&sql).await
    }

    /// The mean length in seconds of the campaign's last answered calls (up to 500), if any.
    pub async fn mean_call_secs(&self, campaign_id: i64) -> Result<Option<f64>> {
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT started_at, ended_at FROM calls WHERE campaign_id = $1 \
             AND started_at IS NOT NULL AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 500",
        )
        .bind(campaign_id)
        .fetch_all(self.reader())
        .await?;
        let lengths: Vec<f64> = rows
            .iter()
            .filter_map(|(start, end)| {
                let start = super::parse_time(start.as_deref()?)?;
                let end = super::parse_time(end.as_deref()?)?;
                let secs = (end - start).num_milliseconds() as f64 / 1000.0;
                (secs >= 0.0).then_some(secs)
            })
            .collect();
        Ok((!lengths.is_empty()).then(|| lengths.iter().sum::<f64>() / lengths.len() as f64))
    }

    async fn count_of(&self, sql: &Sql) -> Result<Count> {
        let (count, first): (i64, Option<i64>) = sql.query_as().fetch_one(self.reader()).await?;
        let example = match first {
            Some(id) => {
                let phone: String = sqlx::query_scalar("SELECT phone FROM contacts WHERE id = $1")
                    .bind(id)
                    .fetch_one(self.reader())
                    .await?;
                Some((id, phone))
            }
            None => None,
        };
        Ok(Count { count, example })
    }
}

/// `k` is a waiting contact of the campaign (PENDING, its import finished).
fn waiting(sql: &mut Sql, campaign_id: i64) {
    sql.push("k.campaign_id = ")
        .bind(campaign_id)
        .push(" AND k.status = ")
        .bind(ContactStatus::Pending.as_str())
        .push(" AND ")
        .push(super::contacts::CLAIMABLE_IMPORT_SQL);
}
