//! The phone-number pool's failure streaks. The pick itself is the claim's
//! (crates/store/src/numbers.rs); benching a number is in reactions.rs: one Vapi says
//! reached its daily limit until the next day, one whose calls keep failing before they ring
//! (start errors, refusals naming it) for `dispatch.number_cooldown_s`. The campaign goes on
//! with its other numbers and pauses, with the reason, when none is left.

use std::collections::HashMap;
use std::sync::Mutex;

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
