//! Weighted fair share between campaigns: the one with the fewest calls in flight for its
//! weight is claimed for first (ties in turn), so one big campaign cannot starve the others.
//! The load is counted by each claim as it lands and corrected from the store by a refresh
//! that no claim and no start or end overlapped.

use std::collections::{HashMap, HashSet};

/// A refresh under a steady stream of claims takes the store's load anyway after this many
/// skipped refreshes (one claim off at most).
const MAX_SKIPS: u32 = 3;

/// What the load was when a store read began; `None` when a claim was under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen(Option<u64>);

#[derive(Debug, Default)]
pub struct FairShare {
    /// Per dialing campaign: (calls in flight, weight).
    load: HashMap<i64, (i64, i64)>,
    /// Bumped when a claim starts and when it lands.
    epoch: u64,
    claiming: bool,
    skips: u32,
}

/// One dialing campaign as a refresh read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub campaign_id: i64,
    pub in_flight: i64,
    pub weight: i64,
}

impl FairShare {
    /// The campaigns of `claimable` in the order to claim from: lowest load for weight
    /// first, ties rotated by `turn`.
    pub fn order(&self, claimable: &HashSet<i64>, turn: usize) -> Vec<i64> {
        let mut candidates: Vec<(i64, f64)> = claimable
            .iter()
            .map(|id| {
                let (in_flight, weight) = self.load.get(id).copied().unwrap_or((0, 1));
                (*id, in_flight as f64 / weight.max(1) as f64)
            })
            .collect();
        candidates.sort_unstable_by_key(|(id, _)| *id);
        if !candidates.is_empty() {
            let start = turn % candidates.len();
            candidates.rotate_left(start);
        }
        candidates.sort_by(|a, b| a.1.total_cmp(&b.1));
        candidates.into_iter().map(|(id, _)| id).collect()
    }

    pub fn claim_started(&mut self) {
        self.claiming = true;
        self.epoch += 1;
    }

    /// The claim is over; `landed` is the campaign it claimed a call for.
    pub fn claim_finished(&mut self, landed: Option<i64>) {
        if let Some(load) = landed.and_then(|id| self.load.get_mut(&id)) {
            load.0 += 1;
        }
        self.claiming = false;
        self.epoch += 1;
    }

    /// Taken before a refresh's store read.
    pub fn seen(&self) -> Seen {
        Seen((!self.claiming).then_some(self.epoch))
    }

    /// The load a refresh read (`dialing`, read after `seen`). A claim that overlapped the
    /// read is either in what was read or not: the claim's own increment keeps the load
    /// right until a refresh that no claim overlapped (and `active_quiet`: no call started or
    /// ended meanwhile), or every few refreshes under a steady stream of claims. Otherwise
    /// campaigns that stopped dialing leave and new ones join with what was read.
    pub fn reconcile(&mut self, seen: Seen, active_quiet: bool, dialing: &[Load]) {
        let quiet = seen == Seen(Some(self.epoch)) && !self.claiming && active_quiet;
        if quiet || self.skips >= MAX_SKIPS {
            self.skips = 0;
            self.load = dialing
                .iter()
                .map(|l| (l.campaign_id, (l.in_flight, l.weight)))
                .collect();
            return;
        }
        self.skips += 1;
        self.load
            .retain(|id, _| dialing.iter().any(|l| l.campaign_id == *id));
        for l in dialing {
            self.load
                .entry(l.campaign_id)
                .or_insert((l.in_flight, l.weight))
                .1 = l.weight;
        }
    }

    /// Calls in flight and weight of a campaign (for views and tests).
    pub fn load_of(&self, campaign_id: i64) -> Option<(i64, i64)> {
        self.load.get(&campaign_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(campaign_id: i64, in_flight: i64, weight: i64) -> Load {
        Load {
            campaign_id,
            in_flight,
            weight,
        }
    }

    #[test]
    fn the_campaign_with_the_least_load_for_its_weight_goes_first_ties_in_turn() {
        let mut f = FairShare::default();
        f.reconcile(
            f.seen(),
            true,
            &[load(1, 4, 2), load(2, 1, 1), load(3, 3, 1)],
        );
        let all: HashSet<i64> = [1, 2, 3].into();
        // 1: 4/2 = 2, 2: 1, 3: 3.
        assert_eq!(f.order(&all, 0), vec![2, 1, 3]);
        let mut f = FairShare::default();
        f.reconcile(f.seen(), true, &[load(1, 0, 1), load(2, 0, 1)]);
        let both: HashSet<i64> = [1, 2].into();
        assert_eq!(f.order(&both, 0), vec![1, 2]);
        assert_eq!(f.order(&both, 1), vec![2, 1]);
        // A campaign not yet in the load counts as idle.
        let with_new: HashSet<i64> = [1, 9].into();
        assert_eq!(f.order(&with_new, 0)[0], 1);
    }

    #[test]
    fn a_landed_claim_counts_at_once_and_an_overlapped_read_does_not_undo_it() {
        let mut f = FairShare::default();
        f.reconcile(f.seen(), true, &[load(1, 0, 1)]);
        let seen = f.seen();
        f.claim_started();
        f.claim_finished(Some(1));
        assert_eq!(f.load_of(1), Some((1, 1)));
        // The read began before the claim and says 0: kept at 1.
        f.reconcile(seen, true, &[load(1, 0, 1)]);
        assert_eq!(f.load_of(1), Some((1, 1)));
        // A read begun while a claim is under way is not quiet either.
        f.claim_started();
        let during = f.seen();
        f.claim_finished(None);
        f.reconcile(during, true, &[load(1, 0, 1)]);
        assert_eq!(f.load_of(1), Some((1, 1)));
        // A quiet read is taken, unless a call started or ended meanwhile.
        let quiet = f.seen();
        f.reconcile(quiet, false, &[load(1, 0, 1)]);
        assert_eq!(f.load_of(1), Some((1, 1)));
        let quiet = f.seen();
        f.reconcile(quiet, true, &[load(1, 0, 1)]);
        assert_eq!(f.load_of(1), Some((0, 1)));
    }

    #[test]
    fn a_steady_stream_of_claims_still_takes_the_store_load_every_few_refreshes() {
        let mut f = FairShare::default();
        f.reconcile(f.seen(), true, &[load(1, 5, 1)]);
        for _ in 0..MAX_SKIPS {
            let seen = f.seen();
            f.claim_started();
            f.claim_finished(None);
            f.reconcile(seen, true, &[load(1, 0, 1)]);
            assert_eq!(f.load_of(1), Some((5, 1)));
        }
        let seen = f.seen();
        f.claim_started();
        f.claim_finished(None);
        f.reconcile(seen, true, &[load(1, 0, 1)]);
        assert_eq!(f.load_of(1), Some((0, 1)));
    }

    #[test]
    fn campaigns_leave_and_join_and_weights_follow_even_on_a_skipped_refresh() {
        let mut f = FairShare::default();
        f.reconcile(f.seen(), true, &[load(1, 2, 1), load(2, 1, 1)]);
        let seen = f.seen();
        f.claim_started();
        f.claim_finished(Some(1));
        f.reconcile(seen, true, &[load(1, 0, 3), load(3, 4, 1)]);
        assert_eq!(f.load_of(1), Some((3, 3)), "kept count, new weight");
        assert_eq!(f.load_of(2), None, "stopped dialing");
        assert_eq!(f.load_of(3), Some((4, 1)), "joined with what was read");
    }
}
