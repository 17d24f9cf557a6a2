//! Reads of the call list's visible window, kept cheap: only the newest wanted window is
//! read (older wishes are dropped), at most one read is in flight, reads start at most every
//! [`MIN_GAP`] (about four a second, however fast keys repeat or snapshots arrive), and the
//! list's total is counted at most every [`COUNT_TTL`] per list, since counting a million
//! rows costs far more than reading twenty.

use std::time::{Duration, Instant};

use crate::store::stats::{CallListRow, CallQuery};
use crate::store::{Result, Store};

pub const MIN_GAP: Duration = Duration::from_millis(250);
pub const COUNT_TTL: Duration = Duration::from_secs(2);

/// A list without its window: two queries with the same key count the same rows.
fn list_key(query: &CallQuery) -> CallQuery {
    CallQuery {
        offset: 0,
        limit: 0,
        anchor: None,
        ..query.clone()
    }
}

#[derive(Debug, Default)]
pub struct Pager {
    wanted: Option<CallQuery>,
    in_flight: bool,
    last_start: Option<Instant>,
    count: Option<(CallQuery, i64, Instant)>,
}

impl Pager {
    /// The window to read next; replaces any window wanted before and not yet read.
    pub fn want(&mut self, query: CallQuery) {
        self.wanted = Some(query);
    }

    /// When the next read may start, if there is one to do.
    pub fn due(&self) -> Option<Instant> {
        if self.in_flight || self.wanted.is_none() {
            return None;
        }
        Some(match self.last_start {
            Some(at) => at + MIN_GAP,
            None => Instant::now(),
        })
    }

    /// Takes the window to read now, with the list's total if a recent count is known.
    pub fn start(&mut self, now: Instant) -> Option<(CallQuery, Option<i64>)> {
        let gap_passed = self.last_start.is_none_or(|at| now >= at + MIN_GAP);
        if self.in_flight || !gap_passed {
            return None;
        }
        let query = self.wanted.take()?;
        self.in_flight = true;
        self.last_start = Some(now);
        let known = self.count.as_ref().and_then(|(key, total, at)| {
            (*key == list_key(&query) && now.duration_since(*at) < COUNT_TTL).then_some(*total)
        });
        Some((query, known))
    }

    /// A read ended; `counted_at` is set when it counted the list anew.
    pub fn finished(&mut self, query: &CallQuery, total: i64, counted_at: Option<Instant>) {
        self.in_flight = false;
        if let Some(at) = counted_at {
            self.count = Some((list_key(query), total, at));
        }
    }

    /// A read failed: let the next one go.
    pub fn failed(&mut self) {
        self.in_flight = false;
    }
}

/// One window of rows and the list's total. Counts only when it must: a short page tells
/// the total by itself, and a recent count is reused. Returns whether it counted.
pub async fn load(
    store: &Store,
    query: &CallQuery,
    known_total: Option<i64>,
) -> Result<(Vec<CallListRow>, i64, bool)> {
    let rows = store.call_page_near(query, known_total).await?;
    let len = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    // A page shorter than asked ends the list, so it tells the total by itself; not a
    // keyset page, whose anchor's index may be stale (rows arrived above it).
    let by_offset = query.anchor.is_none();
    if by_offset && ((len > 0 && len < query.limit) || (len == 0 && query.offset == 0)) {
        return Ok((rows, query.offset + len, true));
    }
    if let Some(total) = known_total {
        // A full page proves at least this many rows, whatever the older count said.
        let floor = if len > 0 { query.offset + len } else { 0 };
        return Ok((rows, total.max(floor), false));
    }
    let total = store.call_count(query).await?;
    Ok((rows, total, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::stats::CallTab;

    fn window(offset: i64) -> CallQuery {
        CallQuery {
            campaign_id: Some(1),
            offset,
            limit: 10,
            ..CallQuery::default()
        }
    }

    #[test]
    fn only_the_newest_window_is_read_and_reads_are_spaced() {
        let t0 = Instant::now();
        let mut pager = Pager::default();
        for offset in 0..50 {
            pager.want(window(offset));
        }
        let (first, known) = pager.start(t0).unwrap();
        assert_eq!(first.offset, 49, "older wishes are dropped");
        assert_eq!(known, None);
        // Nothing more until that read finishes.
        pager.want(window(60));
        assert_eq!(pager.due(), None);
        assert!(pager.start(t0 + Duration::from_secs(1)).is_none());
        pager.finished(&first, 1_000_000, Some(t0));
        // Then not before the gap.
        assert_eq!(pager.due(), Some(t0 + MIN_GAP));
        assert!(pager.start(t0 + Duration::from_millis(100)).is_none());
        let (second, known) = pager.start(t0 + MIN_GAP).unwrap();
        assert_eq!(second.offset, 60);
        assert_eq!(known, Some(1_000_000), "same list: the count is reused");
        pager.finished(&second, 1_000_000, None);

        // Another list is counted anew, and so is this one once the count is old.
        pager.want(CallQuery {
            tab: CallTab::Failed,
            ..window(0)
        });
        let (_, known) = pager.start(t0 + MIN_GAP * 2).unwrap();
        assert_eq!(known, None);
        pager.failed();
        pager.want(window(0));
        let (_, known) = pager.start(t0 + COUNT_TTL + MIN_GAP * 3).unwrap();
        assert_eq!(known, None);
    }

    #[tokio::test]
    async fn load_reads_only_the_window_and_counts_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        // An empty list: a short first page is its own count.
        let (rows, total, counted) = load(&store, &window(0), None).await.unwrap();
        assert!(rows.is_empty());
        assert_eq!((total, counted), (0, true));
        // An empty window further down proves nothing: the recent count stands, or the
        // list is counted.
        let (_, total, counted) = load(&store, &window(500), Some(7)).await.unwrap();
        assert_eq!((total, counted), (7, false));
        let (_, total, counted) = load(&store, &window(500), None).await.unwrap();
        assert_eq!((total, counted), (0, true));
    }
}
