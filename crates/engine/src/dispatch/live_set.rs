//! The calls the tracker follows, kept in memory between its rounds.
//!
//! Reading every live call from the store each round cost most of an engine's CPU with
//! thousands live. A round now reads only the calls updated since the last one (new calls,
//! calls that moved on) from the store's index of live calls, drops the calls its own reads
//! saw end, and reads the whole set again every [`FULL_READ_EVERY`] to let go of calls ended
//! elsewhere (a webhook, the supervisor, another engine). A call kept a little after its
//! end only makes a read come a little sooner; every path that records an end is idempotent.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::calls::LiveCall;
use crate::store::{Result, Store};

/// The whole set is read again this often.
pub(crate) const FULL_READ_EVERY: Duration = Duration::from_secs(5);
/// Calls read since a moment a little before the last read: a write may commit with a
/// time a moment older than a read that starts after it.
const SINCE_OVERLAP: chrono::Duration = chrono::Duration::seconds(1);
/// Most calls followed (the rest are still read by the fallback and closed when overdue).
const MOST_FOLLOWED: i64 = 100_000;

#[derive(Default)]
pub(crate) struct LiveSet {
    calls: HashMap<i64, LiveCall>,
    /// Each campaign's assistant and phone number.
    pairs: HashMap<i64, (String, String)>,
    /// When the last read started (by the store's clock), and when the last whole read did.
    last_read: Option<DateTime<Utc>>,
    last_full_read: Option<tokio::time::Instant>,
}

impl LiveSet {
    /// Brings the set up to date with the store (`now` by the store's clock).
    pub(crate) async fn refresh(
        &mut self,
        store: &Store,
        engine_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let full = self
            .last_full_read
            .is_none_or(|at| at.elapsed() >= FULL_READ_EVERY);
        let since = if full {
            None
        } else {
            self.last_read.map(|t| t - SINCE_OVERLAP)
        };
        let read = store.live_calls(engine_id, since, MOST_FOLLOWED).await?;
        if since.is_none() {
            self.calls.clear();
            self.last_full_read = Some(tokio::time::Instant::now());
        }
        let new_campaign = read
            .iter()
            .any(|c| !self.pairs.contains_key(&c.campaign_id));
        if since.is_none() || new_campaign {
            self.pairs = store.campaign_pairs().await?;
        }
        self.calls.extend(read.into_iter().map(|c| (c.id, c)));
        self.last_read = Some(now);
        Ok(())
    }

    /// Lets go of the calls Vapi said ended (by provider id) and those closed here (by id).
    pub(crate) fn forget(&mut self, ended: &HashSet<String>, closed: &HashSet<i64>) {
        self.calls.retain(|id, c| {
            !closed.contains(id)
                && c.provider_call_id
                    .as_ref()
                    .is_none_or(|p| !ended.contains(p))
        });
    }

    pub(crate) fn calls(&self) -> impl Iterator<Item = &LiveCall> {
        self.calls.values()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The assistant/phone-number pair a call is listed under at Vapi (its arm's assistant
    /// and its pool number, else its campaign's), if its campaign is known.
    pub(crate) fn pair_of(&self, call: &LiveCall) -> Option<(String, String)> {
        let (assistant, number) = self.pairs.get(&call.campaign_id)?;
        Some((
            call.assistant_id
                .clone()
                .unwrap_or_else(|| assistant.clone()),
            call.phone_number_id
                .clone()
                .unwrap_or_else(|| number.clone()),
        ))
    }
}
