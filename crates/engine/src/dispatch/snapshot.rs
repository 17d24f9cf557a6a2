//! What the engine publishes on a `tokio::sync::watch` after every change: the console,
//! headless mode and tests read this and nothing else of the engine's insides. Latest value
//! wins, so a slow reader never holds the engine back.

use std::collections::VecDeque;

use serde::Serialize;

use crate::model::{CampaignStatus, Pause, StopCause};

/// How many engine events (retries, breaker moves, pauses) the snapshot keeps.
pub const EVENT_RING: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Snapshot {
    /// Increases with every publication.
    pub version: u64,
    pub campaigns: Vec<CampaignView>,
    /// Contacts waiting to be claimed, across campaigns.
    pub pending: i64,
    /// Calls claimed and not yet created at Vapi (first attempt or waiting to retry).
    pub creating: i64,
    /// Calls created at Vapi and not yet ended.
    pub active: i64,
    pub failed: i64,
    /// Why all dispatch is paused (its cause, and the sentence the operator reads).
    pub dispatch_paused: Option<Pause>,
    /// Configured or throttled rate, calls created per second.
    pub rate_per_second: f64,
    pub burst: u32,
    pub breaker: BreakerView,
    pub quota: QuotaView,
    /// Global back-off after a 429: milliseconds left, 0 when none.
    pub backoff_ms: u64,
    /// Newest last.
    pub events: VecDeque<EngineEvent>,
    /// True once the engine has stopped (quit finished).
    pub stopped: bool,
    /// `host:pid` of the engine this console is attached to; `None` when the engine runs here.
    pub attached_to: Option<String>,
    /// Webhook messages refused (bad or missing credentials) since the engine started.
    pub webhook_refused: u64,
    /// Conversations ended in the last `REPORT_WAIT` whose end-of-call report has not come
    /// (it may ask for a callback): `--until-done` does not exit while there are any.
    pub awaiting_reports: usize,
    /// Why the latest one was refused.
    pub webhook_last_refusal: Option<String>,
    /// The phone numbers of unfinished campaigns: calls today and whether benched.
    pub numbers: Vec<NumberView>,
    /// Each unfinished campaign's number health (by campaign id), read every minute.
    pub number_health: std::collections::BTreeMap<i64, super::number_health::CampaignHealth>,
}

/// One number of a campaign's pool, for the quota pane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumberView {
    pub campaign: String,
    pub phone_number_id: String,
    pub weight: i64,
    pub calls_today: i64,
    /// Set while benched.
    pub benched_until: Option<String>,
    pub bench_reason: Option<String>,
    /// Its calls of the last hour and day, and whether it is flagged (None until read).
    pub health: Option<super::number_health::Health>,
    /// The campaign's calls of the last day, all numbers pooled (its average).
    pub campaign_day: Option<crate::model::number_health::Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignView {
    pub id: i64,
    pub name: String,
    pub status: CampaignStatus,
    pub pause_reason: Option<String>,
    pub pause_cause: Option<StopCause>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub contacts_total: i64,
    pub contacts_done: i64,
    pub pending: i64,
    pub creating: i64,
    pub active: i64,
    pub created: i64,
    pub ended: i64,
    pub failed: i64,
    pub cost_usd: f64,
    /// Ended calls whose reason counts as a conversation, over ended calls.
    pub success_rate: Option<f64>,
    /// Estimated cost of the contacts not yet done, from the average so far (or the
    /// configured estimate).
    pub estimated_remaining_usd: Option<f64>,
    /// Ended-reason histogram, most frequent first.
    pub reasons: Vec<(String, i64)>,
    /// No contact of this campaign is inside its calling window now:
    /// "next window opens 09:00 America/Chicago".
    pub waiting: Option<String>,
    /// Every compliance rule in force, on one line (None until first read).
    pub rules: Option<String>,
    /// What bounds when the waiting contacts can be called (None: always open, or not read
    /// yet), for an estimate that honours the windows.
    #[serde(skip)]
    pub reach: Option<Reach>,
}

/// A campaign's calling window, schedule and waiting contacts by zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Reach {
    pub window: crate::model::policy::Window,
    pub schedule: crate::model::policy::schedule::Schedule,
    pub zones: Vec<crate::model::forecast::ZoneLoad>,
}

impl CampaignView {
    /// Done of total, for the progress gauge.
    pub fn progress(&self) -> f64 {
        if self.contacts_total == 0 {
            0.0
        } else {
            self.contacts_done as f64 / self.contacts_total as f64
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum BreakerState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct BreakerView {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub threshold: u32,
    /// Milliseconds until an open breaker lets a probe through.
    pub retry_in_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct QuotaView {
    /// Create requests sent in the last 60 s, against rate × 60.
    pub requests_last_minute: u64,
    pub requests_per_minute_limit: u64,
    /// Calls being created or active, against the cap in force.
    pub concurrency_used: i64,
    pub concurrency_cap: u32,
    /// What Vapi last reported (`subscriptionLimits`).
    pub vapi_concurrency_limit: Option<u32>,
    pub vapi_remaining: Option<u32>,
    /// 429s answered to any request.
    pub rate_limited_total: u64,
    /// The shared request budget: the rate learnt from the gateway against the ceiling.
    pub budget: super::budget::BudgetView,
    pub calls_today: u64,
    pub daily_limit: Option<u64>,
    pub spend_usd: f64,
    pub budget_usd: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    Attempt,
    Retry,
    Created,
    Adopted,
    /// A call whose outcome is unknown: it may exist at Vapi and is being settled.
    Unknown,
    /// A call settled as not created (a complete look-up after the settle time).
    Settled,
    Failed,
    Breaker,
    Pause,
    Quota,
    Command,
    /// A live call: an operator's request answered, the runaway guard ending a call.
    Live,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::Attempt,
        EventKind::Retry,
        EventKind::Created,
        EventKind::Adopted,
        EventKind::Unknown,
        EventKind::Settled,
        EventKind::Failed,
        EventKind::Breaker,
        EventKind::Pause,
        EventKind::Quota,
        EventKind::Command,
        EventKind::Live,
    ];

    /// As stored in `engine_events.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Attempt => "Attempt",
            EventKind::Retry => "Retry",
            EventKind::Created => "Created",
            EventKind::Adopted => "Adopted",
            EventKind::Unknown => "Unknown",
            EventKind::Settled => "Settled",
            EventKind::Failed => "Failed",
            EventKind::Breaker => "Breaker",
            EventKind::Pause => "Pause",
            EventKind::Quota => "Quota",
            EventKind::Command => "Command",
            EventKind::Live => "Live",
        }
    }

    /// Reads a stored kind; an unknown one (a newer version wrote it) reads as a command.
    pub fn parse(text: &str) -> EventKind {
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == text)
            .unwrap_or(EventKind::Command)
    }
}

impl EngineEvent {
    pub fn to_row(&self) -> crate::store::events::EventRow {
        crate::store::events::EventRow {
            at: self.at.clone(),
            kind: self.kind.as_str().into(),
            call_id: self.call_id,
            attempt: self.attempt,
            message: self.message.clone(),
            next_delay_ms: self.next_delay_ms.map(|d| d as i64),
        }
    }

    pub fn from_row(row: crate::store::events::EventRow) -> EngineEvent {
        EngineEvent {
            kind: EventKind::parse(&row.kind),
            at: row.at,
            call_id: row.call_id,
            attempt: row.attempt,
            message: row.message,
            next_delay_ms: row.next_delay_ms.map(|d| d.max(0) as u64),
        }
    }
}

/// One line of the retry log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineEvent {
    /// Wall-clock time, ISO-8601 UTC.
    pub at: String,
    pub kind: EventKind,
    pub call_id: Option<i64>,
    pub attempt: Option<i64>,
    pub message: String,
    pub next_delay_ms: Option<u64>,
}
