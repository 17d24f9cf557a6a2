//! A campaign's runs of bad outcomes that pause it: identical rejections in a row (its
//! settings are the likely cause), the assistant failing too many of the last answered calls,
//! and people hanging up at once far more often than they did at the campaign's start.

use std::collections::{HashMap, VecDeque};

/// Per campaign: the message of the current run of identical rejections and its calls.
#[derive(Debug, Default)]
pub struct Rejections {
    runs: HashMap<i64, (String, Vec<i64>)>,
}

impl Rejections {
    /// Notes a rejection of `call_id` with `message`. When `limit` calls of the campaign in a
    /// row were rejected with the same message, returns them (the run starts over); 0 turns
    /// it off.
    pub fn note(
        &mut self,
        campaign_id: i64,
        message: &str,
        call_id: i64,
        limit: u32,
    ) -> Option<Vec<i64>> {
        if limit == 0 {
            return None;
        }
        let run = self
            .runs
            .entry(campaign_id)
            .or_insert_with(|| (message.to_string(), Vec::new()));
        if run.0 != message {
            *run = (message.to_string(), Vec::new());
        }
        run.1.push(call_id);
        if run.1.len() < limit as usize {
            return None;
        }
        self.runs.remove(&campaign_id).map(|(_, calls)| calls)
    }

    /// A call of the campaign was created: the run is broken.
    pub fn broken(&mut self, campaign_id: i64) {
        self.runs.remove(&campaign_id);
    }
}

/// Per campaign: the last answered calls, true where the assistant failed (a pipeline or
/// provider error after the answer; never a person hanging up).
#[derive(Debug, Default)]
pub struct AnsweredHealth {
    rings: HashMap<i64, VecDeque<bool>>,
}

impl AnsweredHealth {
    /// Notes an answered call; returns `(failed, window)` when the share of failures among
    /// the last `window` answered calls is above `share` (the ring starts over then).
    pub fn note(
        &mut self,
        campaign_id: i64,
        failed: bool,
        window: u32,
        share: f64,
    ) -> Option<(usize, usize)> {
        let ring = self.rings.entry(campaign_id).or_default();
        ring.push_back(failed);
        while ring.len() > window as usize {
            ring.pop_front();
        }
        let failures = ring.iter().filter(|f| **f).count();
        if ring.len() == window as usize && failures as f64 > share * window as f64 {
            let len = ring.len();
            ring.clear();
            return Some((failures, len));
        }
        None
    }
}

/// The share of quick hang-ups in a campaign's first answered calls: what is normal for its
/// list (people hang up on cold calls), against which a rise is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub quick: usize,
    pub of: usize,
}

impl Baseline {
    pub fn share(self) -> f64 {
        if self.of == 0 {
            0.0
        } else {
            self.quick as f64 / self.of as f64
        }
    }
}

/// When quick hang-ups count as a signal (`dispatch.quick_hangup_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuickHangupRule {
    /// The last this-many answered calls are measured.
    pub window: u32,
    /// Trips above the baseline's share plus this (share points).
    pub rise: f64,
    /// Trips above this share instead, whatever the baseline.
    pub ceiling: Option<f64>,
}

impl QuickHangupRule {
    /// The share above which the window trips: the ceiling when configured, else the
    /// baseline plus the rise; none while neither is known.
    pub fn limit(self, baseline: Option<Baseline>) -> Option<f64> {
        self.ceiling.or(baseline.map(|b| b.share() + self.rise))
    }
}

/// Why quick hang-ups tripped: the figures the pause line gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuickHangupsTripped {
    pub quick: usize,
    pub window: usize,
    pub limit: f64,
    pub baseline: Option<Baseline>,
}

/// Per campaign: its baseline (once known) and the last answered calls, true where the
/// person hung up within `quick_hangup_ms` of the answer.
#[derive(Debug, Default)]
pub struct QuickHangups {
    campaigns: HashMap<i64, (Option<Baseline>, VecDeque<bool>)>,
}

impl QuickHangups {
    /// Whether the campaign's baseline is still to be learnt (from the store, which every
    /// engine and a restart read the same).
    pub fn needs_baseline(&self, campaign_id: i64) -> bool {
        self.campaigns
            .get(&campaign_id)
            .is_none_or(|(baseline, _)| baseline.is_none())
    }

    pub fn set_baseline(&mut self, campaign_id: i64, baseline: Baseline) {
        self.campaigns.entry(campaign_id).or_default().0 = Some(baseline);
    }

    /// Notes an answered call; trips when the last `rule.window` answered calls are full and
    /// their share of quick hang-ups is above the rule's limit (the ring starts over then).
    pub fn note(
        &mut self,
        campaign_id: i64,
        quick: bool,
        rule: QuickHangupRule,
    ) -> Option<QuickHangupsTripped> {
        let (baseline, ring) = self.campaigns.entry(campaign_id).or_default();
        ring.push_back(quick);
        while ring.len() > rule.window as usize {
            ring.pop_front();
        }
        let limit = rule.limit(*baseline)?;
        let count = ring.iter().filter(|q| **q).count();
        if ring.len() == rule.window as usize && count as f64 > limit * rule.window as f64 {
            let window = ring.len();
            ring.clear();
            return Some(QuickHangupsTripped {
                quick: count,
                window,
                limit,
                baseline: *baseline,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_rejections_in_a_row_return_their_calls_and_start_over() {
        let mut r = Rejections::default();
        assert_eq!(r.note(1, "bad", 10, 3), None);
        assert_eq!(r.note(1, "bad", 11, 3), None);
        // Another campaign's run is its own.
        assert_eq!(r.note(2, "bad", 20, 3), None);
        assert_eq!(r.note(1, "bad", 12, 3), Some(vec![10, 11, 12]));
        assert_eq!(r.note(1, "bad", 13, 3), None, "started over");
        // A different message starts a new run; a created call breaks it.
        assert_eq!(r.note(1, "other", 14, 3), None);
        r.broken(1);
        assert_eq!(r.note(1, "other", 15, 3), None);
        assert_eq!(r.note(1, "other", 16, 3), None);
        assert_eq!(r.note(1, "other", 17, 3), Some(vec![15, 16, 17]));
        assert_eq!(r.note(1, "x", 1, 0), None, "0 turns it off");
        assert_eq!(r.note(1, "x", 1, 0), None);
    }

    #[test]
    fn the_assistant_trips_only_above_the_share_of_a_full_window() {
        let mut h = AnsweredHealth::default();
        // A window of 4 at 0.5: 2 of 4 is not above; 3 of 4 is.
        assert_eq!(h.note(1, true, 4, 0.5), None);
        assert_eq!(h.note(1, true, 4, 0.5), None);
        assert_eq!(h.note(1, true, 4, 0.5), None, "window not full yet");
        assert_eq!(h.note(1, false, 4, 0.5), Some((3, 4)));
        // The ring started over; old failures slide out of the window.
        for _ in 0..2 {
            assert_eq!(h.note(1, true, 4, 0.5), None);
        }
        for _ in 0..4 {
            assert_eq!(h.note(1, false, 4, 0.5), None);
        }
        assert_eq!(h.note(2, true, 1, 0.0), Some((1, 1)), "per campaign");
    }

    #[test]
    fn quick_hang_ups_trip_only_above_the_baseline_plus_the_rise() {
        let rule = QuickHangupRule {
            window: 4,
            rise: 0.3,
            ceiling: None,
        };
        let mut q = QuickHangups::default();
        // No baseline, no ceiling: nothing to measure against, whatever the share.
        for _ in 0..8 {
            assert_eq!(q.note(9, true, rule), None);
        }
        assert!(q.needs_baseline(9));
        assert!(q.needs_baseline(1));
        // A cold list: half of the first calls hung up at once. 3 of 4 (0.75) is not above
        // 0.5 + 0.3; 4 of 4 is.
        q.set_baseline(1, Baseline { quick: 10, of: 20 });
        assert!(!q.needs_baseline(1));
        for quick in [true, true, true, false] {
            assert_eq!(q.note(1, quick, rule), None);
        }
        for _ in 0..3 {
            assert_eq!(q.note(1, true, rule), None);
        }
        let tripped = q.note(1, true, rule).expect("4 of 4 is above 0.8");
        assert_eq!((tripped.quick, tripped.window), (4, 4));
        assert!((tripped.limit - 0.8).abs() < 1e-9);
        assert_eq!(tripped.baseline, Some(Baseline { quick: 10, of: 20 }));
        assert_eq!(q.note(1, true, rule), None, "the ring started over");
        // A ceiling replaces the baseline: 2 of 4 is above 0.25.
        let capped = QuickHangupRule {
            ceiling: Some(0.25),
            ..rule
        };
        for quick in [true, false, false] {
            assert_eq!(q.note(2, quick, capped), None);
        }
        assert_eq!(q.note(2, true, capped).map(|t| t.quick), Some(2));
    }
}
