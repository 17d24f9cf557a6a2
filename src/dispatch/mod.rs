//! The engine: background tokio tasks that claim pending contacts at the allowed pace, run
//! each call's attempt sequence, track active calls to their end, react to Vapi's limits and
//! obey commands. Clients see only the published [`Snapshot`] and the [`Command`] channel.
//!
//! Tasks: the control loop (commands, a tick that re-reads the store and publishes the
//! snapshot), the claim loop (admission gate → claim → worker), one worker per call in
//! flight, the poller, and optionally the webhook listener.

pub mod breaker;
pub mod command;
pub mod gate;
pub mod pacer;
pub mod quota;
pub mod retry;
pub mod snapshot;
mod tracker;
mod webhook;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

pub use command::{Command, CommandEnvelope, CommandReply, EngineClient};
use gate::{Gate, Refusal, RequestKind};
pub use snapshot::{CampaignView, EventKind, QuotaView, Snapshot};

use crate::config::Config;
use crate::model::{CampaignStatus, quota_reason};
use crate::store::campaigns::Campaign;
use crate::store::{Store, StoreError};
use crate::vapi::VapiClient;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("webhook.listen is set but the secret is missing: set the environment variable {0}")]
    WebhookSecret(String),
    #[error("cannot start the webhook listener on {addr}: {source}")]
    Webhook {
        addr: String,
        source: std::io::Error,
    },
}

/// Ended reasons that count as a conversation for the success rate.
const SUCCESS_REASONS: &[&str] = &[
    "customer-ended-call",
    "assistant-ended-call",
    "assistant-said-end-call-phrase",
    "assistant-forwarded-call",
    "exceeded-max-duration",
];

/// What every task of the engine shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub store: Store,
    pub vapi: VapiClient,
    pub gate: Gate,
    pub config: Config,
    pub instance: String,
    /// Webhook messages refused for their credentials, shown in the snapshot.
    pub webhook_refusals: Arc<webhook::Refusals>,
}

/// A running engine: its client interface and the task to wait for.
pub struct EngineHandle {
    client: EngineClient,
    task: tokio::task::JoinHandle<()>,
    /// Where the webhook listener is bound, when enabled.
    pub webhook_addr: Option<SocketAddr>,
}

impl EngineHandle {
    pub fn client(&self) -> EngineClient {
        self.client.clone()
    }

    /// Waits until the engine has stopped (after a `Quit`).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(target: "switchboard::engine", "engine task ended abnormally: {e}");
        }
    }

    /// Sends `Quit` and waits for the engine to finish.
    pub async fn shutdown(self) {
        let _ = self.client.send(Command::Quit).await;
        self.join().await;
    }
}

/// Recovers the store's state (counters, unfinished sequences) and starts the engine.
pub async fn start(
    config: Config,
    store: Store,
    vapi: VapiClient,
) -> Result<EngineHandle, EngineError> {
    let instance = store.instance_id().await?;
    for fixed in store.recompute_counters().await? {
        tracing::warn!(
            target: "switchboard::engine",
            campaign_id = fixed.campaign_id,
            "campaign counters repaired at start: stored {} but rows say {}",
            fixed.stored,
            fixed.recomputed
        );
    }
    let control = store.engine_control().await?;
    let rate = control
        .rate_per_second
        .unwrap_or(config.dispatch.rate_per_second);
    let gate = Gate::new(&config, rate);
    let midnight = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| crate::store::format_time(t.and_utc()))
        .unwrap_or_else(crate::store::now);
    let today = store.created_since(&midnight).await?;
    gate.update(|s| {
        s.quota.set_calls_today(today.max(0) as u64);
        s.paused = control.dispatch_paused.then(|| {
            control
                .pause_reason
                .clone()
                .unwrap_or_else(|| "paused".into())
        });
    });
    let webhook_secret = match &config.webhook.listen {
        Some(_) => Some(
            std::env::var(&config.webhook.secret_env)
                .ok()
                .filter(|s| !s.is_empty())
                .map(crate::config::Secret::new)
                .ok_or_else(|| EngineError::WebhookSecret(config.webhook.secret_env.clone()))?,
        ),
        None => None,
    };
    let ctx = Arc::new(Ctx {
        store,
        vapi,
        gate,
        config,
        instance,
        webhook_refusals: Arc::new(webhook::Refusals::default()),
    });
    let mut webhook_addr = None;
    if let (Some(listen), Some(secret)) = (&ctx.config.webhook.listen, webhook_secret) {
        let addr: SocketAddr =
            listen
                .parse()
                .map_err(|e: std::net::AddrParseError| EngineError::Webhook {
                    addr: listen.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                })?;
        webhook_addr = Some(
            webhook::serve(
                ctx.clone(),
                addr,
                secret,
                webhook::AuthCheck::from_config(&ctx.config.webhook),
                ctx.webhook_refusals.clone(),
            )
            .await
            .map_err(|source| EngineError::Webhook {
                addr: listen.clone(),
                source,
            })?,
        );
    }
    let unfinished = ctx.store.unfinished_jobs().await?;
    if !unfinished.is_empty() {
        tracing::info!(target: "switchboard::engine", count = unfinished.len(), "resuming unfinished call sequences (looking up any that may have been created)");
    }
    let (command_tx, command_rx) = mpsc::channel::<CommandEnvelope>(64);
    let (snapshot_tx, snapshot_rx) = watch::channel(Snapshot::default());
    let mut control_loop = ControlLoop {
        ctx: ctx.clone(),
        snapshot: snapshot_tx,
        reasons: HashMap::new(),
        ticks: 0,
        version: 0,
        pending_snapshot: None,
        idle_ticks: 0,
    };
    control_loop.refresh().await;
    control_loop.publish(false);
    let task = tokio::spawn(async move {
        let claim = tokio::spawn(claim_loop(ctx.clone(), unfinished));
        let poller = tokio::spawn(tracker::run_poller(ctx.clone()));
        control_loop.run(command_rx).await;
        if let Err(e) = claim.await {
            tracing::error!(target: "switchboard::engine", "claim loop ended abnormally: {e}");
        }
        let _ = poller.await;
        control_loop.refresh().await;
        control_loop.publish(true);
        tracing::info!(target: "switchboard::engine", "engine stopped");
    });
    Ok(EngineHandle {
        client: EngineClient::new(command_tx, snapshot_rx),
        task,
        webhook_addr,
    })
}

/// Takes the next contact whenever the gate allows, fairly across campaigns, and runs its
/// sequence in a worker. On stop, waits for workers to record what their requests did.
async fn claim_loop(ctx: Arc<Ctx>, unfinished: Vec<crate::store::calls::DialJob>) {
    let mut workers = JoinSet::new();
    for job in unfinished {
        ctx.gate.update(|s| s.creating += 1);
        workers.spawn(worker::run_sequence(ctx.clone(), job, None));
    }
    let mut turn = 0usize;
    loop {
        while let Some(done) = workers.try_join_next() {
            if let Err(e) = done {
                tracing::error!(target: "switchboard::engine", "a call worker ended abnormally: {e}");
            }
        }
        let probe = match ctx.gate.admit(RequestKind::NewCall).await {
            Ok(probe) => probe,
            Err(Refusal::Stopping) => break,
            Err(Refusal::CampaignCancelled) => continue,
        };
        // Round-robin over the campaigns that have contacts waiting.
        let mut candidates: Vec<i64> = ctx.gate.read(|s| s.claimable.iter().copied().collect());
        candidates.sort_unstable();
        if !candidates.is_empty() {
            let start = turn % candidates.len();
            candidates.rotate_left(start);
        }
        turn = turn.wrapping_add(1);
        let mut claimed = None;
        for campaign_id in candidates {
            match ctx.store.claim_call(campaign_id, &ctx.instance).await {
                Ok(Some(job)) => {
                    claimed = Some(job);
                    break;
                }
                Ok(None) => ctx.gate.update(|s| {
                    s.claimable.remove(&campaign_id);
                }),
                Err(e) => {
                    tracing::error!(target: "switchboard::engine", campaign_id, "cannot claim a contact: {e}");
                }
            }
        }
        match claimed {
            Some((job, attempt_id)) => {
                tracing::debug!(target: "switchboard::engine", call_id = job.call_id, "claimed");
                workers.spawn(worker::run_sequence(ctx.clone(), job, Some(attempt_id)));
            }
            None => {
                // The slot taken at admission was not used.
                ctx.gate.update(|s| {
                    s.creating -= 1;
                    if probe {
                        s.breaker.release_probe();
                    }
                });
                ctx.gate
                    .changed(Duration::from_millis(ctx.config.dispatch.tick_ms))
                    .await;
            }
        }
    }
    // Quitting: requests already sent finish and are recorded; waiting retries stop at once.
    let grace = ctx.vapi_timeout() + Duration::from_secs(5);
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = workers.join_next().await {
            if let Err(e) = done {
                tracing::error!(target: "switchboard::engine", "a call worker ended abnormally: {e}");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(target: "switchboard::engine", "some requests did not finish in time; they are resolved by look-up at the next start");
        workers.abort_all();
    }
}

impl Ctx {
    fn vapi_timeout(&self) -> Duration {
        self.config.request_timeout()
    }
}

/// Commands, the periodic refresh from the store, and snapshot publication.
struct ControlLoop {
    ctx: Arc<Ctx>,
    snapshot: watch::Sender<Snapshot>,
    /// Ended-reason histograms, refreshed every few ticks.
    reasons: HashMap<i64, Vec<(String, i64)>>,
    ticks: u64,
    version: u64,
    /// Built by the last refresh, sent by `publish`.
    pending_snapshot: Option<Snapshot>,
    /// Consecutive ticks with nothing to do.
    idle_ticks: u64,
}

impl ControlLoop {
    async fn run(&mut self, mut commands: mpsc::Receiver<CommandEnvelope>) {
        let mut tick =
            tokio::time::interval(Duration::from_millis(self.ctx.config.dispatch.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = commands.recv() => {
                    let Some((command, reply)) = received else {
                        // Every client is gone: stop as if told to quit.
                        self.stop();
                        return;
                    };
                    let quit = matches!(command, Command::Quit);
                    let answer = self.handle(command).await;
                    if let Ok(line) = &answer {
                        tracing::info!(target: "switchboard::engine", "{line}");
                        self.ctx.gate.event(EventKind::Command, None, None, line.clone(), None);
                    }
                    let _ = reply.send(answer);
                    if quit {
                        return;
                    }
                    self.refresh().await;
                    self.publish(false);
                }
                _ = tick.tick() => {
                    // An idle engine (nothing in flight, nothing to claim) re-reads the store
                    // five times less often: the CLI's changes still land within a second.
                    let idle = self.ctx.gate.read(|s| s.creating == 0 && s.active == 0 && s.claimable.is_empty());
                    self.idle_ticks = if idle { self.idle_ticks + 1 } else { 0 };
                    if idle && !self.idle_ticks.is_multiple_of(5) {
                        continue;
                    }
                    self.refresh().await;
                    self.publish(false);
                }
            }
        }
    }

    fn stop(&self) {
        self.ctx.gate.update(|s| s.stopping = true);
    }

    async fn handle(&mut self, command: Command) -> CommandReply {
        let store = &self.ctx.store;
        let err = |e: StoreError| e.to_string();
        match command {
            Command::PauseAll { reason } => {
                store
                    .set_dispatch_paused(true, Some(&reason))
                    .await
                    .map_err(err)?;
                self.ctx.gate.update(|s| s.paused = Some(reason.clone()));
                Ok(format!("dispatch paused ({reason})"))
            }
            Command::ResumeAll => {
                store.set_dispatch_paused(false, None).await.map_err(err)?;
                self.ctx.gate.update(|s| s.paused = None);
                Ok("dispatch resumed".into())
            }
            Command::PauseCampaign { campaign_id } => {
                let campaign = store.campaign(campaign_id).await.map_err(err)?;
                if !store
                    .pause_campaign(campaign_id, "paused by operator")
                    .await
                    .map_err(err)?
                {
                    return Err(format!(
                        "campaign {} is {}, not dialling",
                        campaign.name, campaign.status
                    ));
                }
                self.ctx.gate.update(|s| {
                    s.dialing.remove(&campaign_id);
                    s.claimable.remove(&campaign_id);
                });
                Ok(format!("campaign {} paused", campaign.name))
            }
            Command::ResumeCampaign { campaign_id } => {
                let campaign = store.resume_campaign(campaign_id).await.map_err(err)?;
                Ok(format!(
                    "campaign {} resumed ({})",
                    campaign.name, campaign.status
                ))
            }
            Command::CancelCampaign { campaign_id } => {
                let campaign = store.cancel_campaign(campaign_id).await.map_err(err)?;
                self.ctx.gate.update(|s| {
                    s.dialing.remove(&campaign_id);
                    s.claimable.remove(&campaign_id);
                    s.cancelled.insert(campaign_id);
                });
                Ok(format!("campaign {} cancelled", campaign.name))
            }
            Command::SetRate { per_second } => {
                crate::config::check_rate(per_second).map_err(|e| format!("rate {e}"))?;
                store.set_rate(per_second).await.map_err(err)?;
                let before = self.ctx.gate.update(|s| {
                    let before = s.pacer.rate();
                    s.pacer.set_rate(per_second);
                    before
                });
                Ok(format!("rate {before:.1} → {per_second:.1}/s"))
            }
            Command::RetryCall { call_id } => {
                store.retry_failed_call(call_id).await.map_err(err)?;
                Ok(format!("retrying call {call_id}"))
            }
            Command::RetryFailed { campaign_id } => {
                let campaign = store.campaign(campaign_id).await.map_err(err)?;
                let n = store.retry_failed_calls(campaign_id).await.map_err(err)?;
                Ok(format!("retrying {n} failed calls of {}", campaign.name))
            }
            Command::Quit => {
                let in_flight = self.ctx.gate.read(|s| s.creating);
                self.stop();
                Ok(format!(
                    "stopping: waiting for {in_flight} call(s) being created"
                ))
            }
        }
    }

    /// Re-reads what other processes (the CLI) or other tasks changed, and applies quota stops.
    async fn refresh(&mut self) {
        if let Err(e) = self.try_refresh().await {
            tracing::error!(target: "switchboard::engine", "cannot refresh engine state: {e}");
        }
    }

    async fn try_refresh(&mut self) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        // Creates and ends counted in memory after this point are newer than what we read.
        let epoch = self.ctx.gate.read(|s| s.active_epoch);
        let control = store.engine_control().await?;
        let campaigns = store.campaigns().await?;
        let creating: HashMap<i64, i64> = store.creating_counts().await?.into_iter().collect();
        let config_rate = self.ctx.config.dispatch.rate_per_second;
        let spend: f64 = campaigns.iter().map(|c| c.cost_usd).sum();
        let ended: i64 = campaigns.iter().map(|c| c.ended_calls).sum();
        let stop = self.ctx.gate.update(|s| {
            if !s.stopping {
                s.paused = control.dispatch_paused.then(|| {
                    control
                        .pause_reason
                        .clone()
                        .unwrap_or_else(|| "paused".into())
                });
            }
            s.pacer
                .set_rate(control.rate_per_second.unwrap_or(config_rate));
            s.dialing = ids(&campaigns, CampaignStatus::Dialing);
            s.cancelled = ids(&campaigns, CampaignStatus::Cancelled);
            s.claimable = campaigns
                .iter()
                .filter(|c| c.status == CampaignStatus::Dialing && pending(c, &creating) > 0)
                .map(|c| c.id)
                .collect();
            if s.active_epoch == epoch {
                s.active = campaigns.iter().map(|c| c.active_calls).sum();
            }
            s.quota.set_spend(spend, ended.max(0) as u64);
            // Pauses follow what is settled: creates still in flight may yet fail.
            s.quota.stop_reason_with(0, s.active + s.creating)
        });
        // A quota stop pauses the campaigns that still have contacts waiting; nothing is
        // lost or failed for it, and active calls are still tracked.
        if let Some(reason) = stop {
            for c in campaigns
                .iter()
                .filter(|c| c.status == CampaignStatus::Dialing && pending(c, &creating) > 0)
            {
                if store.pause_campaign(c.id, &reason).await? {
                    let message = format!("campaign {} paused: {reason}", c.name);
                    tracing::warn!(target: "switchboard::engine", "{message}");
                    self.ctx
                        .gate
                        .event(EventKind::Quota, None, None, message, None);
                }
            }
        }
        if self.ticks.is_multiple_of(5) {
            for c in &campaigns {
                self.reasons
                    .insert(c.id, store.reason_histogram(c.id).await?);
            }
        }
        self.ticks += 1;
        self.build(campaigns, &creating);
        Ok(())
    }

    fn build(&mut self, campaigns: Vec<Campaign>, creating: &HashMap<i64, i64>) {
        let now = tokio::time::Instant::now();
        let per_call = self.ctx.gate.read(|s| s.quota.cost_per_call());
        let views: Vec<CampaignView> = campaigns
            .into_iter()
            .map(|c| {
                let reasons = self.reasons.get(&c.id).cloned().unwrap_or_default();
                campaign_view(c, creating, reasons, per_call)
            })
            .collect();
        let snapshot = self.ctx.gate.update(|s| Snapshot {
            version: 0,
            pending: views.iter().map(|v| v.pending).sum(),
            creating: views.iter().map(|v| v.creating).sum(),
            active: views.iter().map(|v| v.active).sum(),
            failed: views.iter().map(|v| v.failed).sum(),
            campaigns: views,
            dispatch_paused: s.paused.clone(),
            rate_per_second: s.pacer.rate(),
            burst: s.pacer.burst(),
            breaker: s.breaker.view(now),
            quota: QuotaView {
                requests_last_minute: s.pacer.last_minute(),
                requests_per_minute_limit: (s.pacer.rate() * 60.0).round() as u64,
                concurrency_used: s.active + s.creating,
                concurrency_cap: s.quota.concurrency_cap(),
                vapi_concurrency_limit: s.quota.vapi_limit(),
                vapi_remaining: s.quota.vapi_remaining(),
                rate_limited_total: s.quota.rate_limited_total,
                calls_today: s.quota.calls_today,
                daily_limit: s.quota.daily_limit(),
                spend_usd: s.quota.spend_usd,
                budget_usd: s.quota.budget_usd(),
            },
            backoff_ms: s
                .backoff_until
                .map(|u| u.saturating_duration_since(now).as_millis() as u64)
                .unwrap_or(0),
            events: s.events.clone(),
            stopped: false,
            webhook_refused: self.ctx.webhook_refusals.count(),
            webhook_last_refusal: self.ctx.webhook_refusals.last_reason(),
        });
        self.pending_snapshot = Some(snapshot);
    }

    /// Publishes the latest snapshot if it differs from the last one (an idle engine
    /// publishes nothing, so an idle console draws nothing).
    fn publish(&mut self, stopped: bool) {
        let Some(mut next) = self.pending_snapshot.take() else {
            return;
        };
        next.stopped = stopped;
        let changed = {
            let current = self.snapshot.borrow();
            let mut same = next.clone();
            same.version = current.version;
            *current != same
        };
        if changed || self.version == 0 {
            self.version += 1;
            next.version = self.version;
            self.snapshot.send_replace(next);
        }
    }
}

fn ids(campaigns: &[Campaign], status: CampaignStatus) -> HashSet<i64> {
    campaigns
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id)
        .collect()
}

/// Contacts not yet claimed: total less done, less those with a live call.
fn pending(c: &Campaign, creating: &HashMap<i64, i64>) -> i64 {
    (c.contacts_total
        - c.contacts_done
        - c.active_calls
        - creating.get(&c.id).copied().unwrap_or(0))
    .max(0)
}

fn campaign_view(
    c: Campaign,
    creating: &HashMap<i64, i64>,
    reasons: Vec<(String, i64)>,
    per_call: Option<f64>,
) -> CampaignView {
    let outcomes: i64 = reasons
        .iter()
        .filter(|(r, _)| quota_reason(r).is_none())
        .map(|(_, n)| n)
        .sum();
    let successes: i64 = reasons
        .iter()
        .filter(|(r, _)| SUCCESS_REASONS.contains(&r.as_str()))
        .map(|(_, n)| n)
        .sum();
    let pending = pending(&c, creating);
    let remaining = (c.contacts_total - c.contacts_done).max(0);
    CampaignView {
        id: c.id,
        pending,
        creating: creating.get(&c.id).copied().unwrap_or(0),
        active: c.active_calls,
        created: c.total_calls_created,
        ended: c.ended_calls,
        failed: c.failed_calls,
        cost_usd: c.cost_usd,
        success_rate: (outcomes > 0).then(|| successes as f64 / outcomes as f64),
        estimated_remaining_usd: per_call.map(|p| p * remaining as f64),
        reasons,
        name: c.name,
        status: c.status,
        pause_reason: c.pause_reason,
        started_at: c.started_at,
        completed_at: c.completed_at,
        contacts_total: c.contacts_total,
        contacts_done: c.contacts_done,
    }
}
