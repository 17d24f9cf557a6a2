//! Number health, applied: every minute each unfinished campaign's calls of the last day are
//! counted by pool number and by area code called ([`Store::number_health_rows`]), judged
//! ([`crate::model::number_health::judge`]) and shown in the quota pane and `campaign show`;
//! a number judged to rest (the campaign set `rest_numbers_below`) is benched for the
//! cool-down, with the figures in the event log.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Ctx;
use crate::model::number_health::{Sample, Verdict, area_code, judge};
use crate::model::{EndedClass, classify_ended_reason};
use crate::store::numbers::HealthRow;
use crate::store::{Store, StoreError};

/// One pool number's (or area code's) figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// The phone-number id, or the area code (`+1415`).
    pub key: String,
    pub hour: Sample,
    pub day: Sample,
    /// Why it is flagged ("answered 10 % against 40 % for its peers"); None: healthy, or
    /// too few calls to say.
    pub flag: Option<String>,
    /// Flagged below the campaign's `rest_numbers_below`: benched for the cool-down.
    pub rest: bool,
}

/// A campaign's numbers and area codes, with the campaign's own figures beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct CampaignHealth {
    pub numbers: Vec<Health>,
    /// The area codes called, most calls first.
    pub areas: Vec<Health>,
    pub hour: Sample,
    pub day: Sample,
}

/// How the rows add up, judged (pure; `rest_below` is the campaign's share, 0: off).
pub fn summarise(rows: &[HealthRow], rest_below: f64) -> CampaignHealth {
    use std::collections::BTreeMap;
    // key -> (hour, day, judged)
    type Sums = BTreeMap<String, (Sample, Sample, Sample)>;
    let mut numbers: Sums = BTreeMap::new();
    let mut areas: Sums = BTreeMap::new();
    let mut campaign = CampaignHealth::default();
    for row in rows {
        let answered = row.answered == 1;
        let carrier = row
            .ended_reason
            .as_deref()
            .is_some_and(|r| classify_ended_reason(r, answered) == EndedClass::NeverRang);
        let n = u64::try_from(row.calls).unwrap_or(0);
        let sample = Sample {
            calls: n,
            answered: if answered { n } else { 0 },
            quick_hangups: if answered && row.quick == 1 { n } else { 0 },
            carrier_failures: if carrier { n } else { 0 },
        };
        let hour = row.last_hour == 1;
        let area = area_code(&row.area);
        for (sums, key, judged) in [
            (&mut numbers, &row.phone_number_id, row.judged == 1),
            (&mut areas, &area, true),
        ] {
            let entry = sums.entry(key.clone()).or_default();
            entry.1.add(&sample);
            if hour {
                entry.0.add(&sample);
            }
            if judged {
                entry.2.add(&sample);
            }
        }
        campaign.day.add(&sample);
        if hour {
            campaign.hour.add(&sample);
        }
    }
    let judged = |sums: &Sums, rest_below: f64| -> Vec<Health> {
        let samples: Vec<(String, Sample)> =
            sums.iter().map(|(k, (_, _, j))| (k.clone(), *j)).collect();
        judge(&samples, rest_below)
            .into_iter()
            .map(|(key, _, verdict)| {
                let (hour, day, _) = sums.get(&key).copied().unwrap_or_default();
                Health {
                    flag: verdict.describe(),
                    rest: matches!(verdict, Verdict::Rest { .. }),
                    key,
                    hour,
                    day,
                }
            })
            .collect()
    };
    campaign.numbers = judged(&numbers, rest_below);
    // Area codes are shown and flagged, never benched: they are the people called.
    campaign.areas = judged(&areas, 0.0);
    campaign
        .areas
        .sort_by(|a, b| b.day.calls.cmp(&a.day.calls).then(a.key.cmp(&b.key)));
    campaign
}

/// Reads and judges a campaign's numbers as of `now`.
pub async fn review(
    store: &Store,
    campaign_id: i64,
    quick_ms: u64,
    rest_below: f64,
    now: DateTime<Utc>,
) -> Result<CampaignHealth, StoreError> {
    let rows = store.number_health_rows(campaign_id, quick_ms, now).await?;
    Ok(summarise(&rows, rest_below))
}

/// Benches each number `health` says should rest and is not benched yet (its cool-down:
/// `dispatch.number_cooldown_s`). Returns the numbers benched.
pub(crate) async fn rest(
    ctx: &Ctx,
    campaign_id: i64,
    health: &CampaignHealth,
    rest_below: f64,
) -> Result<Vec<String>, StoreError> {
    let now = ctx.now();
    let pool = ctx.store.campaign_numbers(campaign_id).await?;
    let mut benched = Vec::new();
    for number in health.numbers.iter().filter(|n| n.rest) {
        let in_pool = pool
            .iter()
            .find(|p| p.phone_number_id == number.key)
            .is_some_and(|p| !p.benched_at(now));
        if !in_pool {
            continue;
        }
        let until = now + chrono::Duration::seconds(ctx.config.dispatch.number_cooldown_s as i64);
        let why = format!(
            "{} over the last day (the campaign rests numbers below {:.0} % of their peers)",
            number.flag.as_deref().unwrap_or("answered too little"),
            rest_below * 100.0
        );
        super::reactions::bench(ctx, campaign_id, None, &number.key, until, &why).await?;
        benched.push(number.key.clone());
    }
    Ok(benched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: &str, area: &str, answered: bool, calls: i64) -> HealthRow {
        HealthRow {
            phone_number_id: number.into(),
            area: area.into(),
            ended_reason: Some(
                if answered {
                    "customer-ended-call"
                } else {
                    "customer-did-not-answer"
                }
                .into(),
            ),
            answered: i64::from(answered),
            quick: 0,
            last_hour: 1,
            judged: 1,
            calls,
        }
    }

    #[test]
    fn rows_add_up_by_number_and_area_and_the_weak_number_rests() {
        let rows = vec![
            row("pn-bad", "+1415", true, 10),
            row("pn-bad", "+1415", false, 90),
            row("pn-a", "+1312", true, 40),
            row("pn-a", "+1312", false, 60),
            row("pn-b", "+1415", true, 40),
            row("pn-b", "+1415", false, 60),
            HealthRow {
                ended_reason: Some("twilio-failed-to-connect-call".into()),
                last_hour: 0,
                ..row("pn-a", "+1312", false, 5)
            },
        ];
        let health = summarise(&rows, 0.5);
        assert_eq!(health.day.calls, 305);
        assert_eq!(health.hour.calls, 300);
        let bad = &health
            .numbers
            .iter()
            .find(|n| n.key == "pn-bad")
            .expect("pn-bad");
        assert!(bad.rest, "{bad:?}");
        assert_eq!(bad.day.answered, 10);
        let a = health
            .numbers
            .iter()
            .find(|n| n.key == "pn-a")
            .expect("pn-a");
        assert!(!a.rest && a.flag.is_none(), "{a:?}");
        assert_eq!(
            a.day.carrier_failures, 5,
            "a never-rang end is a carrier failure"
        );
        assert_eq!(health.areas[0].key, "+1415", "most calls first");
        assert_eq!(health.areas[0].day.calls, 200);
    }
}
