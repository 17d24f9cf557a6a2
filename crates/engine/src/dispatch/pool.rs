//! The phone-number pool as the engine runs it (the pick itself is the claim's, in
//! src/store/numbers.rs): a number Vapi says reached its daily limit is benched until the
//! next day; one whose calls keep failing before they ring (start errors, refusals naming
//! it) is benched for `dispatch.number_cooldown_s`. The campaign goes on with its other
//! numbers and pauses, with the reason, when none is left.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::Ctx;
use super::snapshot::EventKind;
use crate::store::StoreError;

/// Failures in a row per (campaign, number), kept by the engine: a call that rang restarts
/// the count.
#[derive(Debug, Default)]
pub(crate) struct Streaks(Mutex<HashMap<(i64, String), u32>>);

impl Streaks {
    /// Counts one call of `number`; true when this failure makes `limit` in a row (the
    /// count restarts then).
    pub(crate) fn note(&self, campaign_id: i64, number: &str, failed: bool, limit: u32) -> bool {
        let Ok(mut streaks) = self.0.lock() else {
            return false;
        };
        let key = (campaign_id, number.to_string());
        if !failed {
            streaks.remove(&key);
            return false;
        }
        let count = streaks.entry(key.clone()).or_insert(0);
        *count += 1;
        if *count >= limit.max(1) {
            streaks.remove(&key);
            return true;
        }
        false
    }
}

/// When a bench ends: the next midnight in the daily limit's zone, or after the cool-down.
pub(crate) fn bench_until(ctx: &Ctx, at: DateTime<Utc>, next_day: bool) -> DateTime<Utc> {
    if next_day {
        let zone = ctx
            .config
            .dispatch
            .daily_limit_time_zone
            .parse::<chrono_tz::Tz>()
            .unwrap_or(chrono_tz::UTC);
        crate::store::numbers::next_day(at, zone)
    } else {
        at + chrono::Duration::seconds(ctx.config.dispatch.number_cooldown_s as i64)
    }
}

/// Benches `number` of a campaign until `until`; pauses the campaign when it was the last
/// usable one.
pub(crate) async fn bench(
    ctx: &Ctx,
    campaign_id: i64,
    call_id: Option<i64>,
    number: &str,
    until: DateTime<Utc>,
    why: &str,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let usable = ctx
        .store
        .bench_number(campaign_id, number, until, why, now)
        .await?;
    let until_text = until.format("%Y-%m-%d %H:%M UTC");
    let message = format!(
        "phone number {number} of campaign #{campaign_id} benched until {until_text}: {why}; {usable} other number(s) usable"
    );
    tracing::warn!(target: "switchboard::engine", "{message}");
    ctx.gate
        .event(EventKind::Quota, call_id, None, message, None);
    if usable == 0 {
        let reason = format!(
            "every phone number of the campaign is benched (latest: {number} until {until_text}, {why}); resume once one is back, or add numbers with `campaign edit --phone-number-id`"
        );
        super::worker::pause_campaign(ctx, campaign_id, call_id, &reason).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_benches_at_its_limit_and_a_call_that_rang_restarts_it() {
        let streaks = Streaks::default();
        assert!(!streaks.note(1, "pn-1", true, 3));
        assert!(!streaks.note(1, "pn-1", true, 3));
        assert!(!streaks.note(1, "pn-1", false, 3));
        assert!(!streaks.note(1, "pn-1", true, 3));
        assert!(!streaks.note(1, "pn-1", true, 3));
        // Another number's failures are its own.
        assert!(!streaks.note(1, "pn-2", true, 3));
        assert!(streaks.note(1, "pn-1", true, 3));
        // Counting starts again after a bench.
        assert!(!streaks.note(1, "pn-1", true, 3));
    }
}
