//! The gate's count of calls holding a concurrency slot: being created (admitted, not yet
//! known to Vapi) and active at Vapi. Starts and ends are counted in memory at once; the
//! store's count corrects drift only when no start or end was counted since it was read.

/// What was counted when a store read began ([`Concurrency::epoch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

#[derive(Debug, Default)]
pub struct Concurrency {
    creating: i64,
    active: i64,
    /// Bumped by every start and end counted in memory.
    epoch: u64,
}

impl Concurrency {
    pub fn creating(&self) -> i64 {
        self.creating
    }

    pub fn active(&self) -> i64 {
        self.active
    }

    /// Slots in use: being created and active.
    pub fn in_use(&self) -> i64 {
        self.creating + self.active
    }

    pub fn is_idle(&self) -> bool {
        self.in_use() == 0
    }

    /// A create was admitted: it holds a slot before its claim, so that concurrent claims
    /// cannot overshoot the cap.
    pub fn reserve(&mut self) {
        self.creating += 1;
    }

    /// An admitted create is over (created, failed or given back).
    pub fn release(&mut self) {
        self.creating = (self.creating - 1).max(0);
    }

    /// A call became active at Vapi.
    pub fn started(&mut self) {
        self.active += 1;
        self.epoch += 1;
    }

    /// A call at Vapi ended: its slot is free.
    pub fn ended(&mut self) {
        self.active = (self.active - 1).max(0);
        self.epoch += 1;
    }

    /// Taken before a store read of the active calls.
    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch)
    }

    /// True when no start or end was counted since `seen`.
    pub fn unchanged_since(&self, seen: Epoch) -> bool {
        self.epoch == seen.0
    }

    /// The store's count of active calls, read after `seen`: taken only when nothing was
    /// counted in memory since (what was counted is newer than the read). Returns whether
    /// it was taken.
    pub fn reconcile(&mut self, seen: Epoch, active_in_store: i64) -> bool {
        let quiet = self.unchanged_since(seen);
        if quiet {
            self.active = active_in_store.max(0);
        }
        quiet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_ends_count_at_once_and_never_go_below_zero() {
        let mut c = Concurrency::default();
        c.reserve();
        c.reserve();
        assert_eq!((c.creating(), c.active(), c.in_use()), (2, 0, 2));
        c.release();
        c.started();
        assert_eq!((c.creating(), c.active()), (1, 1));
        c.release();
        c.release();
        c.ended();
        c.ended();
        assert_eq!((c.creating(), c.active()), (0, 0));
        assert!(c.is_idle());
    }

    #[test]
    fn the_store_count_is_taken_only_when_nothing_moved_since_the_read() {
        let mut c = Concurrency::default();
        c.started();
        c.started();
        // A read during which nothing moved corrects drift (a call ended unseen).
        let seen = c.epoch();
        assert!(c.reconcile(seen, 1));
        assert_eq!(c.active(), 1);
        // A call started after the read began: the read is older than the count.
        let seen = c.epoch();
        c.started();
        assert!(!c.reconcile(seen, 1));
        assert_eq!(c.active(), 2);
        // An end after the read began: the same.
        let seen = c.epoch();
        c.ended();
        assert!(!c.reconcile(seen, 5));
        assert_eq!(c.active(), 1);
    }
}
