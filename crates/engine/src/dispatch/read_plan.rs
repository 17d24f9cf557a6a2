//! When the tracker's next bulk read is worth its request. Without webhooks a slot is free
//! again only once a read shows its call ended, so a read that comes late leaves a slot idle
//! and one that comes early finds nothing and spends a request. The plan reads when ends are
//! likely: from the durations the campaign's calls had (their distribution, learnt from the
//! reads themselves) and each live call's age, the expected number of ends since the last
//! read, and reads once `ENDS_PER_READ` of them are expected.
//!
//! Decided here (pure, table-tested); the tracker carries it out.

use std::collections::VecDeque;
use std::time::Duration;

/// How many recent calls' durations the plan learns from.
const REMEMBERED: usize = 256;
/// Fewer ends than this seen so far: the durations are not known yet (read on the interval).
const KNOWN_AFTER: usize = 10;
/// A read is worth its request once this many ends are expected since the last read.
const ENDS_PER_READ: f64 = 2.0;
/// Never closer than this (a read's own time, and the requests it costs).
pub const MIN_GAP: Duration = Duration::from_millis(100);
/// Slot-bound while the durations are not known yet.
const EARLY_GAP: Duration = Duration::from_millis(400);
/// With a webhook listener reads are a fallback: this many intervals apart.
const WEBHOOK_FALLBACK_INTERVALS: u32 = 5;
/// Ends free nothing anyone waits for (the dispatcher has slots to spare, and the requests
/// a read costs are better spent on creates): this many intervals apart.
const RECORDS_ONLY_INTERVALS: u32 = 3;
/// No live call (a pair is followed for its final costs only): this many intervals apart.
const FOLLOW_ONLY_INTERVALS: u32 = 5;
/// At most this many live calls are looked at (a stride over the rest): the expectation
/// scales, and the plan stays cheap with ten thousand calls live.
const SAMPLED: usize = 512;

/// The durations (seconds, from Vapi's own `createdAt` to `endedAt`) of the last calls seen
/// to end.
#[derive(Debug, Default)]
pub struct Durations {
    recent: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl Durations {
    pub fn observe(&mut self, secs: f64) {
        if !secs.is_finite() || secs < 0.0 {
            return;
        }
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back(secs);
        self.sorted = self.recent.iter().copied().collect();
        self.sorted.sort_by(f64::total_cmp);
    }

    fn known(&self) -> bool {
        self.sorted.len() >= KNOWN_AFTER
    }

    /// Durations at most `secs`.
    fn at_most(&self, secs: f64) -> usize {
        self.sorted.partition_point(|d| *d <= secs)
    }

    /// Ends expected within `horizon` among calls alive at these ages (seconds): for each,
    /// the chance that a call of the remembered durations that lasted its age ends within the
    /// horizon. A call older than every remembered duration ends "any moment": it counts in
    /// proportion to the horizon over the last interval of the durations.
    fn expected_ends(&self, ages: &[f64], horizon: f64) -> f64 {
        let n = self.sorted.len();
        let stride = ages.len().div_ceil(SAMPLED).max(1);
        let mut expected = 0.0;
        for age in ages.iter().step_by(stride) {
            let done = self.at_most(*age);
            let alive = n - done;
            expected += if alive == 0 {
                // As if it ends within the next second.
                horizon.min(1.0)
            } else {
                (self.at_most(age + horizon) - done) as f64 / alive as f64
            };
        }
        expected * stride as f64
    }
}

/// What the plan looks at.
#[derive(Debug, Clone, Copy)]
pub struct Situation {
    /// The configured bulk-read interval.
    pub interval: Duration,
    /// Live calls (the engine's own).
    pub live: usize,
    /// An end frees a slot a contact waits for, or completes a campaign (otherwise the
    /// dispatcher has slots to spare).
    pub ends_matter: bool,
    pub webhooks: bool,
}

/// How long after the last read the next one is due, given the ages (seconds) of the live
/// calls.
pub fn next_read_after(situation: &Situation, durations: &Durations, ages: &[f64]) -> Duration {
    let interval = situation.interval;
    if situation.live == 0 {
        return interval * FOLLOW_ONLY_INTERVALS;
    }
    if situation.webhooks {
        return interval * WEBHOOK_FALLBACK_INTERVALS;
    }
    if !situation.ends_matter {
        return interval * RECORDS_ONLY_INTERVALS;
    }
    if !durations.known() {
        return interval.min(EARLY_GAP);
    }
    let min = MIN_GAP.min(interval).as_secs_f64();
    let max = interval.as_secs_f64().max(min);
    if durations.expected_ends(ages, max) < ENDS_PER_READ {
        return Duration::from_secs_f64(max);
    }
    // The expectation grows with the horizon: bisect for where it reaches ENDS_PER_READ.
    let (mut lo, mut hi) = (0.0, max);
    for _ in 0..12 {
        let mid = (lo + hi) / 2.0;
        if durations.expected_ends(ages, mid) >= ENDS_PER_READ {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Duration::from_secs_f64(hi.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn durations(secs: &[f64]) -> Durations {
        let mut d = Durations::default();
        for s in secs {
            d.observe(*s);
        }
        d
    }

    fn bound(interval_ms: u64, live: usize) -> Situation {
        Situation {
            interval: Duration::from_millis(interval_ms),
            live,
            ends_matter: true,
            webhooks: false,
        }
    }

    /// 80 % of calls last 5 s, 20 % end unanswered after 0.1 s (the benchmark's mix).
    fn mix() -> Durations {
        let mut d = Durations::default();
        for i in 0..100 {
            d.observe(if i % 5 == 0 { 0.1 } else { 5.0 });
        }
        d
    }

    #[test]
    fn the_gap_follows_the_situation() {
        let known = mix();
        let unknown = durations(&[5.0, 5.0]);
        let ages = [1.0, 2.0];
        let cases = [
            // (situation, durations, expected gap ms)
            (
                Situation {
                    live: 0,
                    ..bound(1000, 0)
                },
                &known,
                5000,
            ),
            (
                Situation {
                    webhooks: true,
                    ..bound(1000, 2)
                },
                &known,
                5000,
            ),
            (
                Situation {
                    ends_matter: false,
                    ..bound(1000, 2)
                },
                &known,
                3000,
            ),
            (bound(1000, 2), &unknown, 400),
            (bound(200, 2), &unknown, 200),
            (bound(50, 2), &unknown, 50),
        ];
        for (situation, durations, ms) in cases {
            assert_eq!(
                next_read_after(&situation, durations, &ages),
                Duration::from_millis(ms),
                "{situation:?}"
            );
        }
    }

    #[test]
    fn a_wave_about_to_end_is_read_as_it_ends() {
        // 50 calls created 10 ms apart, the oldest 4.9 s ago: they end from 0.1 s on.
        let ages: Vec<f64> = (0..50).map(|i| 4.9 - f64::from(i) * 0.01).collect();
        let gap = next_read_after(&bound(1000, 50), &mix(), &ages);
        assert!(
            (Duration::from_millis(100)..=Duration::from_millis(130)).contains(&gap),
            "{gap:?}"
        );
    }

    #[test]
    fn calls_in_the_middle_of_their_talk_are_not_read_before_the_interval() {
        // Answered 2 s ago: nothing ends for 3 s (short ones are over).
        let ages = vec![2.0; 40];
        let gap = next_read_after(&bound(1000, 40), &mix(), &ages);
        assert_eq!(gap, Duration::from_secs(1));
    }

    #[test]
    fn calls_just_created_are_read_when_the_unanswered_ones_end() {
        // 20 new calls: a fifth of them end after 0.1 s, two of those are worth a read.
        let ages = vec![0.0; 20];
        let gap = next_read_after(&bound(1000, 20), &mix(), &ages);
        assert!(
            (Duration::from_millis(100)..=Duration::from_millis(110)).contains(&gap),
            "{gap:?}"
        );
    }

    #[test]
    fn calls_older_than_any_seen_are_expected_to_end_any_moment() {
        let ages = vec![9.0; 4];
        let gap = next_read_after(&bound(1000, 4), &mix(), &ages);
        assert!(
            (Duration::from_millis(490)..=Duration::from_millis(510)).contains(&gap),
            "{gap:?}"
        );
    }

    #[test]
    fn ten_thousand_live_calls_are_sampled_and_the_expectation_scales() {
        let d = mix();
        let ages: Vec<f64> = (0..10_000).map(|i| f64::from(i % 500) * 0.01).collect();
        let all = d.expected_ends(&ages, 0.2);
        let direct: f64 = ages
            .iter()
            .map(|a| {
                let done = d.at_most(*a);
                (d.at_most(a + 0.2) - done) as f64 / (d.sorted.len() - done) as f64
            })
            .sum();
        assert!((all - direct).abs() / direct < 0.1, "{all} vs {direct}");
    }

    #[test]
    fn only_the_last_durations_are_remembered_and_bad_ones_ignored() {
        let mut d = Durations::default();
        d.observe(f64::NAN);
        d.observe(-1.0);
        assert!(d.sorted.is_empty());
        for _ in 0..REMEMBERED {
            d.observe(1.0);
        }
        for _ in 0..REMEMBERED {
            d.observe(3.0);
        }
        assert_eq!(d.at_most(2.0), 0);
        assert_eq!(d.sorted.len(), REMEMBERED);
    }
}
