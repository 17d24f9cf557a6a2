//! The last ten minutes as the console saw them: one sample of the snapshot's counters a
//! second, kept in a ring. The sparklines (creates/s, 429s/min, active calls), the outcome
//! chart's companion numbers and the ETA's observed rate are read from it. Kept in the
//! console, so the engine carries no UI history.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::eta::Observed;
use crate::dispatch::snapshot::Snapshot;

/// Ten minutes of one-second samples.
pub const WINDOW_SECS: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: DateTime<Utc>,
    /// Calls created at Vapi, all campaigns (a counter).
    created: i64,
    /// 429s answered (a counter).
    rate_limited: u64,
    /// Calls at Vapi now.
    active: i64,
    /// The shown campaign, its finished contacts (a counter) and its calls at Vapi.
    campaign: Option<(i64, i64, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    samples: VecDeque<Sample>,
}

impl History {
    /// Takes a sample of `snap` at `now`, at most one a second; drops what is older than
    /// the window, and everything if the clock went back.
    pub fn record(&mut self, now: DateTime<Utc>, snap: &Snapshot, campaign_id: Option<i64>) {
        if let Some(last) = self.samples.back() {
            let gap = (now - last.at).num_milliseconds();
            if gap < 0 {
                self.samples.clear();
            } else if gap < 1_000 {
                return;
            }
        }
        let campaign = campaign_id.and_then(|id| {
            let c = snap.campaigns.iter().find(|c| c.id == id)?;
            Some((c.id, c.contacts_done, c.active))
        });
        self.samples.push_back(Sample {
            at: now,
            created: snap.campaigns.iter().map(|c| c.created).sum(),
            rate_limited: snap.quota.rate_limited_total,
            active: snap.active,
            campaign,
        });
        while self.samples.len() > WINDOW_SECS + 1 {
            self.samples.pop_front();
        }
    }

    /// Creates per second, one value per sample interval, oldest first.
    pub fn creates_per_sec(&self) -> Vec<u64> {
        self.deltas(|s| s.created)
    }

    /// 429s in the minute up to each sample, oldest first.
    pub fn rate_limited_per_min(&self) -> Vec<u64> {
        let samples: Vec<&Sample> = self.samples.iter().collect();
        samples
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, s)| {
                let from = samples[..i]
                    .iter()
                    .find(|p| (s.at - p.at).num_seconds() <= 60)
                    .unwrap_or(&samples[i - 1]);
                s.rate_limited.saturating_sub(from.rate_limited)
            })
            .collect()
    }

    /// Calls at Vapi at each sample, oldest first.
    pub fn active(&self) -> Vec<u64> {
        self.samples
            .iter()
            .map(|s| u64::try_from(s.active).unwrap_or(0))
            .collect()
    }

    /// The shown campaign's pace over the window: finished contacts per second and its mean
    /// calls at Vapi. `None` until two samples of the same campaign a minute apart exist.
    pub fn observed(&self, campaign_id: i64) -> Option<Observed> {
        let of_campaign: Vec<(DateTime<Utc>, i64, i64)> = self
            .samples
            .iter()
            .filter_map(|s| {
                let (id, done, active) = s.campaign?;
                (id == campaign_id).then_some((s.at, done, active))
            })
            .collect();
        let (first, last) = (of_campaign.first()?, of_campaign.last()?);
        let secs = (last.0 - first.0).num_milliseconds() as f64 / 1_000.0;
        if secs < 60.0 {
            return None;
        }
        let mean_active =
            of_campaign.iter().map(|s| s.2 as f64).sum::<f64>() / of_campaign.len() as f64;
        Some(Observed {
            done_per_sec: (last.1 - first.1).max(0) as f64 / secs,
            mean_active,
        })
    }

    /// Increase of a counter between consecutive samples, per second.
    fn deltas(&self, value: impl Fn(&Sample) -> i64) -> Vec<u64> {
        self.samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .map(|(a, b)| {
                let secs = (b.at - a.at).num_seconds().max(1);
                u64::try_from((value(b) - value(a)).max(0) / secs).unwrap_or(0)
            })
            .collect()
    }
}

/// `values` squeezed into at most `width` points (each the largest of its bucket, so a
/// spike never disappears), newest at the right.
pub fn squeeze(values: &[u64], width: usize) -> Vec<u64> {
    if width == 0 || values.len() <= width {
        return values.to_vec();
    }
    let per = values.len().div_ceil(width);
    values
        .rchunks(per)
        .rev()
        .map(|chunk| chunk.iter().copied().max().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::snapshot::CampaignView;

    fn snap(created: i64, rate_limited: u64, active: i64, done: i64) -> Snapshot {
        let mut s = Snapshot {
            active,
            ..Snapshot::default()
        };
        s.quota.rate_limited_total = rate_limited;
        s.campaigns.push(CampaignView {
            id: 1,
            name: "c".into(),
            status: crate::model::CampaignStatus::Dialing,
            pause_reason: None,
            pause_cause: None,
            started_at: None,
            completed_at: None,
            contacts_total: 1_000,
            contacts_done: done,
            pending: 0,
            creating: 0,
            active,
            created,
            ended: 0,
            failed: 0,
            cost_usd: 0.0,
            success_rate: None,
            estimated_remaining_usd: None,
            reasons: Vec::new(),
            waiting: None,
            rules: None,
            reach: None,
        });
        s
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    #[test]
    fn samples_give_rates_and_keep_ten_minutes() {
        let mut h = History::default();
        for i in 0..700 {
            // 2 creates a second, a 429 every 10 s, 6 active, a contact done every 10 s.
            h.record(t(i), &snap(2 * i, (i / 10) as u64, 6, i / 10), Some(1));
            // A second snapshot within the same second is not a sample.
            h.record(t(i), &snap(2 * i + 1, 0, 0, 0), Some(1));
        }
        let creates = h.creates_per_sec();
        assert_eq!(creates.len(), WINDOW_SECS);
        assert!(creates.iter().all(|c| *c == 2), "{creates:?}");
        assert_eq!(h.rate_limited_per_min().last(), Some(&6));
        assert_eq!(h.active().last(), Some(&6));
        let seen = h.observed(1).unwrap();
        assert!((seen.done_per_sec - 0.1).abs() < 0.01, "{seen:?}");
        assert!((seen.mean_call_secs().unwrap() - 60.0).abs() < 6.0);
        assert_eq!(h.observed(2), None, "another campaign: nothing observed");
    }

    #[test]
    fn a_minute_is_needed_before_a_pace_is_claimed() {
        let mut h = History::default();
        for i in 0..30 {
            h.record(t(i), &snap(i, 0, 1, i), Some(1));
        }
        assert_eq!(h.observed(1), None);
        // The clock going back starts afresh.
        h.record(t(0), &snap(0, 0, 0, 0), Some(1));
        assert_eq!(h.active(), vec![0]);
    }

    #[test]
    fn squeezing_keeps_spikes() {
        let mut values = vec![0; 600];
        values[301] = 9;
        let squeezed = squeeze(&values, 50);
        assert_eq!(squeezed.len(), 50);
        assert_eq!(squeezed.iter().max(), Some(&9));
        assert_eq!(squeeze(&[1, 2, 3], 10), vec![1, 2, 3]);
    }
}
