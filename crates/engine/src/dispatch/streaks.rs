//! A campaign's runs of bad outcomes that pause it: identical rejections in a row (its
//! settings are the likely cause), and the assistant failing too many of the last answered
//! calls.

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

/// Per campaign: the last answered calls, true where the assistant failed the person.
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
}
