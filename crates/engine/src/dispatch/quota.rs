//! The engine's view of its quotas: concurrency (ours and what Vapi reports), calls per day,
//! spend against the budget, 429s seen. It decides when dispatch must stop gracefully.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::model::{Pause, StopCause};
use crate::vapi::SubscriptionLimits;

/// How a daily-limit pause reason starts.
const DAILY_LIMIT_REASON: &str = "daily call limit";

#[derive(Debug, Clone)]
pub struct Quota {
    max_concurrent: u32,
    /// Vapi's concurrent slots left free for inbound and other calls of the account.
    reserved_slots: u32,
    vapi_limit: Option<u32>,
    vapi_remaining: Option<u32>,
    /// Lowered after Vapi blocked a call for concurrency (other calls share the account);
    /// raised again one step per unblocked create.
    lowered_cap: Option<u32>,
    pub rate_limited_total: u64,
    pub calls_today: u64,
    /// The day (in `zone`) that `calls_today` counts.
    today: NaiveDate,
    zone: Tz,
    daily_limit: Option<u64>,
    pub spend_usd: f64,
    pub ended_with_cost: u64,
    budget_usd: Option<f64>,
    estimated_cost_per_call: Option<f64>,
}

impl Quota {
    pub fn new(config: &Config) -> Quota {
        let d = &config.dispatch;
        Quota {
            max_concurrent: d.max_concurrent_calls,
            reserved_slots: d.reserved_slots,
            vapi_limit: None,
            vapi_remaining: None,
            lowered_cap: None,
            rate_limited_total: 0,
            calls_today: 0,
            today: NaiveDate::MIN,
            zone: d.daily_limit_time_zone.parse().unwrap_or(Tz::UTC),
            daily_limit: d.daily_call_limit,
            spend_usd: 0.0,
            ended_with_cost: 0,
            budget_usd: d.budget_usd,
            estimated_cost_per_call: d.estimated_cost_per_call,
        }
    }

    /// The most calls that may be active or being created at once.
    pub fn concurrency_cap(&self) -> u32 {
        let mut cap = self.max_concurrent;
        if let Some(limit) = self.vapi_limit {
            cap = cap.min(limit.saturating_sub(self.reserved_slots));
        }
        if let Some(lowered) = self.lowered_cap {
            cap = cap.min(lowered);
        }
        cap.max(1)
    }

    pub fn vapi_limit(&self) -> Option<u32> {
        self.vapi_limit
    }

    pub fn vapi_remaining(&self) -> Option<u32> {
        self.vapi_remaining
    }

    pub fn daily_limit(&self) -> Option<u64> {
        self.daily_limit
    }

    pub fn budget_usd(&self) -> Option<f64> {
        self.budget_usd
    }

    /// Reads `subscriptionLimits` from a create response.
    pub fn on_limits(&mut self, limits: &SubscriptionLimits, active_now: i64) {
        self.vapi_limit = limits.concurrency_limit.map(|l| l.max(0.0) as u32);
        self.vapi_remaining = limits.remaining_concurrent_calls.map(|r| r.max(0.0) as u32);
        if limits.concurrency_blocked {
            self.lowered_cap = Some(active_now.max(1) as u32);
        } else if let Some(lowered) = self.lowered_cap {
            let raised = lowered + 1;
            self.lowered_cap = (raised < self.max_concurrent).then_some(raised);
        }
    }

    /// A call was created at `now`.
    pub fn on_created(&mut self, now: DateTime<Utc>) {
        self.roll(now);
        self.calls_today += 1;
    }

    /// Sets the count of the day that contains `now`.
    pub fn set_calls_today(&mut self, n: u64, now: DateTime<Utc>) {
        self.today = now.with_timezone(&self.zone).date_naive();
        self.calls_today = n;
    }

    /// Starts a new day when `now` is past midnight in the daily limit's time zone. True when
    /// it did: the caller re-counts the day and resumes what the old day's limit paused.
    pub fn roll(&mut self, now: DateTime<Utc>) -> bool {
        let today = now.with_timezone(&self.zone).date_naive();
        if today == self.today {
            return false;
        }
        self.today = today;
        self.calls_today = 0;
        true
    }

    /// The start of the current day, in UTC (for counting the day's creates).
    pub fn day_start(&self) -> DateTime<Utc> {
        let midnight = self.today.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.zone
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
    }

    /// Total spend and how many ended calls it covers (for the average).
    pub fn set_spend(&mut self, spend_usd: f64, ended_calls: u64) {
        self.spend_usd = spend_usd;
        self.ended_with_cost = ended_calls;
    }

    /// Average cost per ended call so far, else the configured estimate.
    pub fn cost_per_call(&self) -> Option<f64> {
        if self.ended_with_cost > 0 && self.spend_usd > 0.0 {
            Some(self.spend_usd / self.ended_with_cost as f64)
        } else {
            self.estimated_cost_per_call
        }
    }

    /// Why no new call may start, if a quota says so. `creating` are creates already
    /// admitted: the daily limit counts them, so concurrent admissions cannot overshoot it.
    /// `in_flight` are calls created or being created whose cost is not known yet: the budget
    /// counts them at the average cost.
    pub fn stop_reason_with(&self, creating: i64, in_flight: i64) -> Option<Pause> {
        if let Some(limit) = self.daily_limit
            && self.calls_today + creating.max(0) as u64 >= limit
        {
            let reason = format!(
                "{DAILY_LIMIT_REASON} of {limit} reached (resumes after midnight {})",
                self.zone
            );
            return Some(Pause::new(StopCause::DailyLimit, reason));
        }
        if let Some(budget) = self.budget_usd {
            let committed =
                self.spend_usd + in_flight.max(0) as f64 * self.cost_per_call().unwrap_or(0.0);
            // One more call at the average must still fit.
            let next = self.cost_per_call().unwrap_or(0.0);
            if committed + next > budget || self.spend_usd >= budget {
                let reason = format!(
                    "budget of ${budget:.2} reached (spent ${:.2}, ${committed:.2} committed)",
                    self.spend_usd
                );
                return Some(Pause::new(StopCause::Budget, reason));
            }
        }
        None
    }

    pub fn stop_reason(&self) -> Option<Pause> {
        self.stop_reason_with(0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(f: impl FnOnce(&mut Config)) -> Config {
        let mut c = Config::default();
        f(&mut c);
        c
    }

    #[test]
    fn cap_follows_vapi_and_blocks() {
        let mut q = Quota::new(&config(|c| c.dispatch.max_concurrent_calls = 10));
        assert_eq!(q.concurrency_cap(), 10);
        q.on_limits(
            &SubscriptionLimits {
                concurrency_blocked: false,
                concurrency_limit: Some(5.0),
                remaining_concurrent_calls: Some(4.0),
            },
            1,
        );
        assert_eq!(q.concurrency_cap(), 5, "never plan past Vapi's limit");
        q.on_limits(
            &SubscriptionLimits {
                concurrency_blocked: true,
                concurrency_limit: Some(5.0),
                remaining_concurrent_calls: Some(0.0),
            },
            3,
        );
        assert_eq!(
            q.concurrency_cap(),
            3,
            "blocked lowers the cap to what is active"
        );
        q.on_limits(&SubscriptionLimits::default(), 3);
        assert_eq!(q.concurrency_cap(), 4, "then it creeps back up");
    }

    #[test]
    fn reserved_slots_stay_free_for_the_rest_of_the_account() {
        let mut q = Quota::new(&config(|c| {
            c.dispatch.max_concurrent_calls = 100;
            c.dispatch.reserved_slots = 3;
        }));
        q.on_limits(
            &SubscriptionLimits {
                concurrency_blocked: false,
                concurrency_limit: Some(10.0),
                remaining_concurrent_calls: Some(10.0),
            },
            0,
        );
        assert_eq!(q.concurrency_cap(), 7);
    }

    #[test]
    fn daily_limit_and_budget_stop_dispatch() {
        let mut q = Quota::new(&config(|c| c.dispatch.daily_call_limit = Some(2)));
        assert_eq!(q.stop_reason(), None);
        q.on_created(Utc::now());
        assert_eq!(q.stop_reason(), None);
        assert!(
            q.stop_reason_with(1, 1).is_some(),
            "one created and one being created reach a limit of 2"
        );
        q.on_created(Utc::now());
        let stop = q.stop_reason().unwrap();
        assert!(stop.reason.contains("daily call limit of 2"), "{stop}");
        assert_eq!(stop.cause, StopCause::DailyLimit);

        let mut q = Quota::new(&config(|c| {
            c.dispatch.budget_usd = Some(1.0);
            c.dispatch.estimated_cost_per_call = Some(0.3);
        }));
        assert_eq!(
            q.stop_reason_with(0, 2),
            None,
            "0.6 committed + 0.3 next fits in 1.0"
        );
        assert!(q.stop_reason_with(0, 3).is_some(), "0.9 + 0.3 does not");
        q.set_spend(1.0, 2);
        let stop = q.stop_reason().unwrap();
        assert!(stop.reason.contains("budget of $1.00"), "{stop}");
        assert_eq!(stop.cause, StopCause::Budget);
    }

    /// The day ends at midnight in the configured zone, not UTC's: injected clock around
    /// New York's midnight (05:00 UTC in winter).
    #[test]
    fn the_daily_limit_rolls_over_at_midnight_in_its_time_zone() {
        let mut q = Quota::new(&config(|c| {
            c.dispatch.daily_call_limit = Some(2);
            c.dispatch.daily_limit_time_zone = "America/New_York".into();
        }));
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        q.set_calls_today(2, at("2026-11-24T23:00:00Z"));
        assert!(
            q.stop_reason().is_some(),
            "limit reached on the 24th (New York)"
        );
        // 04:59 UTC on the 25th is still the 24th in New York.
        assert!(!q.roll(at("2026-11-25T04:59:59Z")));
        assert!(q.stop_reason().is_some());
        // 05:00 UTC is New York's midnight: a new day, the limit lifts.
        assert!(q.roll(at("2026-11-25T05:00:00Z")));
        assert_eq!(q.stop_reason(), None);
        assert_eq!(q.day_start(), at("2026-11-25T05:00:00Z"));
        assert!(!q.roll(at("2026-11-25T12:00:00Z")), "once a day");
    }
}
