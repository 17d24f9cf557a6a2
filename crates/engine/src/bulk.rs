//! Bulk actions (`switchboard bulk`, the console's `B`): every row a filter matches, first
//! counted exactly by what the action would do to it ([`preview`], a dry run that writes
//! nothing), then acted on in batches of [`BATCH`] rows, each batch one write transaction in
//! which every row is read and decided again ([`run`]). The walk stops at the highest key
//! that existed when it started, so a retried contact's new call is never acted on by the
//! same run, and the whole run is one line in the event log, with its filter.

use crate::model::bulk::BulkAction;
use crate::model::filter::Scope;
use crate::ops::Actor;
use crate::store::bulk::{Destination, Selection, Tally};
use crate::store::filter::ResolvedFilter;
use crate::store::{Store, StoreError};

/// Rows per write transaction: small enough that the engine's claims wait at most a few
/// milliseconds for the writer.
pub const BATCH: i64 = 500;

/// What an operator asked: the action, on what, and the expression as typed (for the log).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    pub selection: Selection,
    pub action: BulkAction,
    /// The filter as the operator typed it, or a description of the selection.
    pub described: String,
}

/// The dry run's count: rows matched, and what the action would do to them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preview {
    pub matched: u64,
    pub tally: Tally,
}

impl Preview {
    /// Rows the action would change.
    pub fn changing(&self) -> u64 {
        self.tally
            .iter()
            .filter(|(result, _)| result.is_ok())
            .map(|(_, n)| n)
            .sum()
    }

    /// "5,000 matched: 4,990 retried, 10 UNKNOWN: retried once settled as not created; 3 left
    /// (being called now)".
    pub fn describe(&self) -> String {
        let mut done = Vec::new();
        let mut left = Vec::new();
        for (result, n) in &self.tally {
            match result {
                Ok(effect) => done.push(format!("{} {}", thousands(*n), effect.done())),
                Err(why) => left.push(format!("{} {why}", thousands(*n))),
            }
        }
        let mut line = format!("{} matched", thousands(self.matched));
        if !done.is_empty() {
            line.push_str(": ");
            line.push_str(&done.join(", "));
        }
        if !left.is_empty() {
            line.push_str(&format!("; left as they are: {}", left.join(", ")));
        }
        line
    }
}

/// Why a bulk action could not run (nothing, or only the batches before, were applied).
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

/// Counts exactly what `request` would do, writing nothing.
pub async fn preview(store: &Store, request: &BulkRequest) -> Result<Preview, BulkError> {
    destination(store, &request.action).await?;
    let resolved = resolve(store, &request.selection).await?;
    let upto = store.bulk_bound(request.selection.scope).await?;
    let mut preview = Preview::default();
    let mut after = 0;
    loop {
        let rows = store
            .bulk_matches(&request.selection, resolved.as_ref(), (after, upto), 5_000)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.key;
        for row in &rows {
            preview.matched += 1;
            let result = crate::model::bulk::decide(&request.action, row.target());
            *preview.tally.entry(result).or_default() += 1;
        }
    }
    Ok(preview)
}

/// Progress of a run: rows walked so far.
pub type Progress<'a> = &'a mut (dyn FnMut(u64) + Send);

/// Carries out `request` in batches, reporting rows walked after each; `stop` is looked at
/// between batches (Ctrl-C): what was applied stays, and the line says where it stopped.
/// Returns the one line also written to the event log.
pub async fn run(
    store: &Store,
    request: &BulkRequest,
    actor: Actor,
    progress: Progress<'_>,
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<String, BulkError> {
    let destination = destination(store, &request.action).await?;
    let resolved = resolve(store, &request.selection).await?;
    let upto = store.bulk_bound(request.selection.scope).await?;
    let mut outcome = Preview::default();
    let mut after = 0;
    let mut stopped = false;
    loop {
        if stop() {
            stopped = true;
            break;
        }
        let rows = store
            .bulk_matches(&request.selection, resolved.as_ref(), (after, upto), BATCH)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.key;
        let tally = store
            .bulk_apply(&request.action, &destination, &rows, actor.source())
            .await?;
        outcome.matched += rows.len() as u64;
        for (result, n) in tally {
            *outcome.tally.entry(result).or_default() += n;
        }
        progress(outcome.matched);
    }
    let line = format!(
        "bulk {} {} where {}: {}{}",
        request.action.verb(),
        match request.selection.scope {
            Scope::Calls => "calls",
            Scope::Contacts => "contacts",
        },
        request.described,
        outcome.describe(),
        if stopped {
            " (stopped before the end: run it again to go on)"
        } else {
            ""
        }
    );
    crate::ops::log(store, actor, &line).await;
    Ok(line)
}

/// The confirmation's question: "Retry 4,990 of the 5,000 calls matching `status = FAILED`?".
pub fn question(request: &BulkRequest, preview: &Preview) -> String {
    let noun = match request.selection.scope {
        Scope::Calls => "calls",
        Scope::Contacts => "contacts",
    };
    let verb = request.action.verb();
    let mut verb_cap = verb.clone();
    if let Some(first) = verb_cap.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    format!(
        "{verb_cap} {} of the {} {noun} matching {}? ({})",
        thousands(preview.changing()),
        thousands(preview.matched),
        request.described,
        preview.describe()
    )
}

/// Where a move goes, checked before anything is read.
async fn destination(store: &Store, action: &BulkAction) -> Result<Destination, BulkError> {
    match action {
        BulkAction::MoveCampaign { to } => {
            let campaign = store.campaign_by_name(to).await.map_err(|e| match e {
                StoreError::UnknownCampaign(_) => BulkError::Refused(format!("no campaign {to}")),
                other => BulkError::Store(other),
            })?;
            if campaign.status == crate::model::CampaignStatus::Cancelled {
                return Err(BulkError::Refused(format!(
                    "campaign {to} is cancelled: nothing can move to it"
                )));
            }
            Ok(Destination::Campaign { id: campaign.id })
        }
        BulkAction::Reschedule { at } if at.trim().is_empty() => {
            Err(BulkError::Refused("a callback needs a time".into()))
        }
        _ => Ok(Destination::None),
    }
}

async fn resolve(
    store: &Store,
    selection: &Selection,
) -> Result<Option<ResolvedFilter>, BulkError> {
    match &selection.query.filter {
        Some(filter) => Ok(Some(store.resolve_filter(filter).await?)),
        None => Ok(None),
    }
}

/// 4990 → "4,990".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::bulk::{Effect, Ineligible};

    #[test]
    fn a_preview_says_what_changes_and_what_is_left() {
        let mut preview = Preview {
            matched: 5_003,
            tally: Tally::new(),
        };
        preview.tally.insert(Ok(Effect::Retry), 4_990);
        preview.tally.insert(Ok(Effect::RetryOnceSettled), 10);
        preview.tally.insert(Err(Ineligible::NotFailed), 3);
        assert_eq!(preview.changing(), 5_000);
        assert_eq!(
            preview.describe(),
            "5,003 matched: 4,990 retried, 10 UNKNOWN: retried once settled as not created; \
             left as they are: 3 not FAILED or UNKNOWN"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
