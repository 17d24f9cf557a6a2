//! The engine: background tokio tasks that claim pending contacts at the allowed pace, run
//! each call's attempt sequence, track active calls to their end, react to Vapi's limits and
//! obey commands. Clients see only the published [`Snapshot`] and the [`Command`] channel.
//!
//! Tasks: the control loop (commands, a tick that re-reads the store and publishes the
//! snapshot), the claim loop (admission gate → claim → worker), one worker per call in
//! flight, the poller, and optionally the webhook listener.

pub mod attempt;
pub mod breaker;
pub mod budget;
pub mod command;
pub mod concurrency;
pub mod fair_share;
pub mod gate;
pub mod health;
pub mod live;
mod live_set;
pub mod metrics;
pub mod number_health;
pub mod pacer;
mod pool;
pub mod predial;
pub mod quota;
mod reactions;
mod read_plan;
mod service_manager;
pub use service_manager::Notify;
pub mod snapshot;
pub mod streaks;
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
pub use reactions::call_update;
pub use snapshot::{CampaignView, EngineEvent, EventKind, NumberView, QuotaView, Snapshot};

use crate::config::Config;
use crate::model::{CampaignStatus, Pause, StopCause};
use crate::store::calls::Claim;
use crate::store::campaigns::Campaign;
use crate::store::lease::{Acquired, EngineIdentity};
use crate::store::{Store, StoreError};
use crate::vapi::VapiClient;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("webhook.listen is set but the secret is missing: set the environment variable {0}")]
    WebhookSecret(String),
    #[error("{0}")]
    Predial(String),
    #[error(
        "another engine is dispatching from this database ({holder}, heartbeat {age_s} s ago): only one engine may dispatch at a time; stop it, or open a console to attach to it"
    )]
    LeaseHeld { holder: String, age_s: i64 },
    #[error("cannot start the webhook listener on {addr}: {source}")]
    Webhook {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listener {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
}

/// What every task of the engine shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub store: Store,
    pub vapi: VapiClient,
    pub gate: Gate,
    pub config: Config,
    /// This database's id (part of every call reference).
    pub instance: String,
    /// This engine (the lease holder).
    pub engine: EngineIdentity,
    /// Ended reasons not in the table, logged once each.
    pub unclassified: std::sync::Mutex<HashSet<String>>,
    /// Pool numbers failing calls in a row (they are benched at the limit).
    pub number_streaks: pool::Streaks,
    /// The pre-dial hook, when `[predial] url` is set.
    pub predial: Option<predial::PredialHook>,
    /// The request budget every request to Vapi takes from.
    pub budget: budget::RequestBudget,
    /// Webhook messages refused for their credentials, shown in the snapshot.
    pub webhook_refusals: Arc<webhook::Refusals>,
    /// The live calls' monitor URLs (memory only: never stored, logged or shown).
    pub monitors: live::Monitors,
    /// The live calls' cost so far, for the runaway guard.
    pub live_costs: live::LiveCosts,
}

impl Ctx {
    /// Wall time by the store's clock (the one clock the engine reads).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.store.clock().now()
    }
}

/// `GET /call` through the request budget (used by look-ups and bulk reads).
pub(crate) struct BudgetedLister<'a>(&'a Ctx);

impl crate::vapi::search::CallLister for BudgetedLister<'_> {
    async fn list(
        &self,
        filter: &crate::vapi::ListCallsFilter,
    ) -> Result<Vec<crate::vapi::VapiCall>, crate::vapi::VapiError> {
        self.0.budget.acquire().await;
        let result = self.0.vapi.list_calls(filter).await;
        self.0.note(&result);
        result
    }
}

impl Ctx {
    pub(crate) fn lister(&self) -> BudgetedLister<'_> {
        BudgetedLister(self)
    }

    /// `POST /call`. Its place in the request budget was taken *before* the attempt was
    /// committed, so that the attempt's start is the moment of sending: a look-up's window is
    /// measured from it, and a request held back after the commit could create its call
    /// outside that window.
    pub(crate) async fn create_call(
        &self,
        request: &crate::vapi::CreateCallRequest,
    ) -> Result<crate::vapi::CreateCallResponse, crate::vapi::VapiError> {
        let result = self.vapi.create_call(request).await;
        self.note(&result);
        result
    }

    /// `GET /call/{id}` through the request budget.
    pub(crate) async fn get_call(
        &self,
        id: &str,
    ) -> Result<crate::vapi::VapiCall, crate::vapi::VapiError> {
        self.budget.acquire().await;
        let result = self.vapi.get_call(id).await;
        self.note(&result);
        result
    }

    /// A 429 from any request teaches the budget the gateway's limit.
    fn note<T>(&self, result: &Result<T, crate::vapi::VapiError>) {
        if let Err(e) = result
            && e.is_rate_limited()
        {
            self.budget.on_rate_limited(e.retry_after());
        }
    }

    /// How long after its attempt started a request may still create a call: the settle time
    /// (longer than Vapi's proxy keeps a request alive) plus our own request timeout (the
    /// request may have taken that long to reach Vapi at all).
    pub(crate) fn settle_after(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(
            (self.config.vapi.settle_after_ms + self.config.vapi.request_timeout_ms) as i64,
        )
    }
}

/// A running engine: its client interface and the task to wait for.
pub struct EngineHandle {
    client: EngineClient,
    task: tokio::task::JoinHandle<()>,
    /// Where the webhook listener is bound, when enabled.
    pub webhook_addr: Option<SocketAddr>,
    /// Where `/healthz` and `/readyz` are served (`metrics.listen`), when enabled.
    pub health_addr: Option<SocketAddr>,
    ctx: Arc<Ctx>,
}

impl EngineHandle {
    /// Who this engine is (the holder of its lease).
    pub fn identity(&self) -> &EngineIdentity {
        &self.ctx.engine
    }

    pub fn client(&self) -> EngineClient {
        self.client.clone()
    }

    /// Waits until the engine has stopped (after a `Quit`).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(target: "switchboard::engine", "engine task ended abnormally: {e}");
        }
    }

    /// How many times the gate has held a request back (a pause, the cap, the rate, a
    /// back-off, a refusal): a test waits for it to grow to see the engine ask and be held,
    /// instead of sleeping and hoping it asked.
    pub fn admissions_held(&self) -> u64 {
        self.ctx.gate.read(|s| s.held)
    }

    /// Sends `Quit` and waits for the engine to finish.
    pub async fn shutdown(self) {
        let _ = self.client.send(Command::Quit).await;
        self.join().await;
    }
}

/// A console attached to the engine that holds the database's lease (on this machine or
/// another): the same snapshots, built from the database, and commands written to it, which
/// the holding engine picks up within a tick. It never claims, sends or tracks anything.
pub async fn attach(
    config: Config,
    store: Store,
    holder: String,
) -> Result<EngineHandle, EngineError> {
    let instance = store.instance_id().await?;
    let gate = gate_from_store(&config, &store).await?;
    // No requests are ever sent from here: the client is never used.
    let vapi = VapiClient::new(
        &config.vapi.base_url,
        crate::config::Secret::from(""),
        config.request_timeout(),
    )
    .map_err(|e| EngineError::Store(StoreError::Conflict(e.to_string())))?;
    let vapi = vapi.with_clock(store.clock().clone());
    let ctx = Arc::new(Ctx {
        store,
        vapi,
        gate,
        config,
        instance,
        engine: EngineIdentity::of_this_process(),
        unclassified: std::sync::Mutex::new(HashSet::new()),
        number_streaks: pool::Streaks::default(),
        predial: None,
        budget: budget::RequestBudget::new(1.0, 1),
        webhook_refusals: Arc::new(webhook::Refusals::default()),
        monitors: live::Monitors::default(),
        live_costs: live::LiveCosts::default(),
    });
    let (command_tx, command_rx) = mpsc::channel::<CommandEnvelope>(64);
    let (snapshot_tx, snapshot_rx) = watch::channel(Snapshot::default());
    let mut control_loop = ControlLoop::new(ctx.clone(), snapshot_tx, Some(holder));
    let handle_ctx = ctx.clone();
    control_loop.refresh().await;
    control_loop.publish(false);
    let task = tokio::spawn(async move {
        control_loop.run(command_rx).await;
        control_loop.refresh().await;
        control_loop.publish(true);
    });
    Ok(EngineHandle {
        client: EngineClient::new(command_tx, snapshot_rx),
        task,
        webhook_addr: None,
        health_addr: None,
        ctx: handle_ctx,
    })
}

/// Takes the database's dispatch lease, or says who holds it.
async fn take_lease(
    store: &Store,
    engine: &EngineIdentity,
    config: &Config,
) -> Result<(), EngineError> {
    match store
        .acquire_lease(engine, ctx_lease_timeout(config))
        .await?
    {
        Acquired::HeldBy(holder) => Err(EngineError::LeaseHeld {
            age_s: (store.clock().now_ms() - holder.heartbeat_ms) / 1000,
            holder: holder.name(),
        }),
        Acquired::Taken {
            previous: Some(previous),
        } => {
            tracing::warn!(
                target: "switchboard::engine",
                "took over the dispatch lease from {} (its heartbeat stopped): its requests in flight are settled by look-up, never re-sent blindly",
                previous.name()
            );
            Ok(())
        }
        Acquired::Taken { previous: None } => Ok(()),
    }
}

/// The gate as the store left it: the operator's rate and pause, the calls created today.
async fn gate_from_store(config: &Config, store: &Store) -> Result<Gate, EngineError> {
    let control = store.engine_control().await?;
    let rate = control
        .rate_per_second
        .unwrap_or(config.dispatch.rate_per_second);
    let gate = Gate::new(config, rate, store.clock().clone());
    let day_start = gate.update(|s| {
        let now = s.clock.now();
        s.quota.roll(now);
        s.quota.day_start()
    });
    let today = store
        .created_since(&crate::store::format_time(day_start))
        .await?;
    gate.update(|s| {
        let now = s.clock.now();
        s.quota.set_calls_today(today.max(0) as u64, now);
        s.paused = control.pause();
    });
    Ok(gate)
}

/// The webhook secret from the variable the config names, when a listener is configured.
fn webhook_secret(config: &Config) -> Result<Option<crate::config::Secret>, EngineError> {
    if config.webhook.listen.is_none() {
        return Ok(None);
    }
    std::env::var(&config.webhook.secret_env)
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| Some(crate::config::Secret::from(s)))
        .ok_or_else(|| EngineError::WebhookSecret(config.webhook.secret_env.clone()))
}

/// Serves `app` on `listener` until the engine stops (`what` names it in the log).
fn serve_until_stopping(
    ctx: Arc<Ctx>,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    what: &'static str,
) {
    tokio::spawn(async move {
        let stopped = async move {
            while !ctx.gate.read(|s| s.stopping) {
                ctx.gate.changed(Duration::from_millis(500)).await;
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(target: "switchboard::engine", "{what} failed: {e}");
        }
    });
}

/// Binds the webhook listener's configured address, if any (nothing is served yet).
async fn bind_webhook(config: &Config) -> Result<Option<tokio::net::TcpListener>, EngineError> {
    let Some(listen) = &config.webhook.listen else {
        return Ok(None);
    };
    let bad = |source| EngineError::Webhook {
        addr: listen.clone(),
        source,
    };
    let addr: SocketAddr = listen.parse().map_err(|e: std::net::AddrParseError| {
        bad(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    })?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bad)?;
    Ok(Some(listener))
}

/// Serves the webhook routes on the bound listener; returns where it listens.
fn start_webhook(
    ctx: &Arc<Ctx>,
    listener: tokio::net::TcpListener,
    secret: crate::config::Secret,
) -> Result<SocketAddr, EngineError> {
    let check = webhook::AuthCheck::from_config(&ctx.config.webhook);
    webhook::serve(
        ctx.clone(),
        listener,
        secret,
        check,
        ctx.webhook_refusals.clone(),
    )
    .map_err(|source| EngineError::Webhook {
        addr: ctx.config.webhook.listen.clone().unwrap_or_default(),
        source,
    })
}

/// Recovers the store's state (counters, unfinished sequences) and starts the engine.
/// Whatever can fail without the database (the webhook secret, its port, the pre-dial hook)
/// is checked before the lease is taken, and the lease is given back if the start fails after
/// it: a failed start never leaves a lease the next start must wait out or take over.
pub async fn start(
    config: Config,
    store: Store,
    vapi: VapiClient,
) -> Result<EngineHandle, EngineError> {
    start_notifying(config, store, vapi, &Notify::FromEnv).await
}

/// [`start`], telling `notify` (rather than systemd) that the engine is ready and alive.
pub async fn start_notifying(
    config: Config,
    store: Store,
    vapi: VapiClient,
    notify: &Notify,
) -> Result<EngineHandle, EngineError> {
    let webhook_secret = webhook_secret(&config)?;
    let predial =
        predial::PredialHook::from_config(&config.predial).map_err(EngineError::Predial)?;
    let webhook = match webhook_secret {
        Some(secret) => bind_webhook(&config)
            .await?
            .map(|listener| (listener, secret)),
        None => None,
    };
    let health = health::bind(&config).await?;
    let instance = store.instance_id().await?;
    // One engine per database: take the lease first, before anything is read or sent.
    let engine = EngineIdentity::of_this_process();
    take_lease(&store, &engine, &config).await?;
    let lease_store = store.clone();
    let started = start_holding_lease(
        config,
        store,
        vapi,
        Prepared {
            instance,
            engine: engine.clone(),
            predial,
            webhook,
            health,
            notify: notify.clone(),
        },
    )
    .await;
    if started.is_err()
        && let Err(e) = lease_store.release_lease(&engine).await
    {
        tracing::warn!(target: "switchboard::engine", "cannot release the dispatch lease: {e}");
    }
    started
}

/// What `start` made ready before it took the lease.
struct Prepared {
    instance: String,
    engine: EngineIdentity,
    predial: Option<predial::PredialHook>,
    webhook: Option<(tokio::net::TcpListener, crate::config::Secret)>,
    health: Option<tokio::net::TcpListener>,
    notify: Notify,
}

async fn start_holding_lease(
    config: Config,
    store: Store,
    vapi: VapiClient,
    prepared: Prepared,
) -> Result<EngineHandle, EngineError> {
    let Prepared {
        instance,
        engine,
        predial,
        webhook,
        health,
        notify,
    } = prepared;
    for fixed in store.recompute_counters().await? {
        tracing::warn!(
            target: "switchboard::engine",
            campaign_id = fixed.campaign_id,
            "campaign counters repaired at start: stored {} but rows say {}",
            fixed.stored,
            fixed.recomputed
        );
    }
    let gate = gate_from_store(&config, &store).await?;
    // A burst of 2: governor's GCRA puts the next slot at `max(tat, now) + T`, so at burst 1
    // every late wake-up (tokio's timer rounds up to the millisecond) stretched the period,
    // and creates paced at the budget's own rate ran 2.2 % slow. One spare slot absorbs that
    // lateness; creates stay spaced by the pacer.
    let budget = budget::RequestBudget::new(config.vapi.max_requests_per_second, 2);
    let vapi = vapi.with_clock(store.clock().clone());
    let ctx = Arc::new(Ctx {
        store,
        vapi,
        gate,
        config,
        instance,
        engine,
        unclassified: std::sync::Mutex::new(HashSet::new()),
        number_streaks: pool::Streaks::default(),
        predial,
        budget,
        webhook_refusals: Arc::new(webhook::Refusals::default()),
        monitors: live::Monitors::default(),
        live_costs: live::LiveCosts::default(),
    });
    let webhook_addr = match webhook {
        Some((listener, secret)) => Some(start_webhook(&ctx, listener, secret)?),
        None => None,
    };
    let health_addr = match health {
        Some(listener) => Some(health::serve(
            ctx.clone(),
            listener,
            webhook_addr.is_some(),
        )?),
        None => None,
    };
    adopt_orphans(&ctx).await?;
    let unfinished = ctx.store.unfinished_jobs(&ctx.engine.id).await?;
    if !unfinished.is_empty() {
        tracing::info!(target: "switchboard::engine", count = unfinished.len(), "resuming unfinished call sequences (looking up any that may have been created)");
    }
    let (command_tx, command_rx) = mpsc::channel::<CommandEnvelope>(64);
    let (snapshot_tx, snapshot_rx) = watch::channel(Snapshot::default());
    let mut control_loop = ControlLoop::new(ctx.clone(), snapshot_tx, None);
    let handle_ctx = ctx.clone();
    let mut service = service_manager::ServiceManager::new(&notify);
    control_loop.refresh().await;
    control_loop.publish(false);
    share_request_budget(&ctx).await;
    recover_live_requests(&ctx).await;
    // Dispatch can start: the lease is held, the state recovered.
    service.ready(tokio::time::Instant::now());
    control_loop.service = Some(service);
    let task = tokio::spawn(async move {
        let claim = tokio::spawn(claim_loop(ctx.clone(), unfinished));
        let poller = tokio::spawn(tracker::run_poller(ctx.clone()));
        let heartbeat = tokio::spawn(keep_lease(ctx.clone()));
        let supervisor = tokio::spawn(live::supervise(ctx.clone()));
        control_loop.run(command_rx).await;
        if let Some(service) = &control_loop.service {
            service.stopping();
        }
        supervisor.abort();
        if let Err(e) = claim.await {
            tracing::error!(target: "switchboard::engine", "claim loop ended abnormally: {e}");
        }
        let _ = poller.await;
        heartbeat.abort();
        control_loop.refresh().await;
        control_loop.publish(true);
        if let Err(e) = ctx.store.release_lease(&ctx.engine).await {
            tracing::warn!(target: "switchboard::engine", "cannot release the dispatch lease: {e}");
        }
        tracing::info!(target: "switchboard::engine", "engine stopped");
    });
    Ok(EngineHandle {
        client: EngineClient::new(command_tx, snapshot_rx),
        task,
        webhook_addr,
        health_addr,
        ctx: handle_ctx,
    })
}

/// What `dispatch status` shows of a running engine, published with every heartbeat.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EngineStatus {
    pub breaker: String,
    pub concurrency_cap: u32,
    pub creating: i64,
    pub active: i64,
    pub create_rate_per_second: f64,
    pub learnt_requests_per_second: f64,
    pub max_requests_per_second: f64,
    pub rate_limited: u64,
}

fn engine_status(ctx: &Ctx) -> String {
    let budget = ctx.budget.view();
    let status = ctx.gate.update(|s| EngineStatus {
        breaker: format!("{:?}", s.breaker.view(tokio::time::Instant::now()).state),
        concurrency_cap: s.quota.concurrency_cap(),
        creating: s.concurrency.creating(),
        active: s.concurrency.active(),
        create_rate_per_second: s.pacer.rate(),
        learnt_requests_per_second: budget.learnt_per_second,
        max_requests_per_second: budget.configured_per_second,
        rate_limited: budget.rate_limited,
    });
    serde_json::to_string(&status).unwrap_or_else(|_| "{}".into())
}

/// How often the rescuer looks for unfinished calls without a worker.
const RESCUE_EVERY: Duration = Duration::from_secs(10);

async fn rescue(ctx: &Arc<Ctx>, workers: &mut JoinSet<worker::SequenceEnd>) {
    if let Err(e) = adopt_orphans(ctx).await {
        tracing::warn!(target: "switchboard::engine", "rescuer cannot look for stopped engines: {e}");
    }
    let jobs = match ctx.store.unfinished_jobs(&ctx.engine.id).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(target: "switchboard::engine", "rescuer cannot read unfinished calls: {e}");
            return;
        }
    };
    for job in jobs {
        if ctx
            .gate
            .read(|s| s.working.contains(&job.call_id) || s.stopping)
        {
            continue;
        }
        tracing::warn!(target: "switchboard::engine", call_id = job.call_id, "rescuing a call left without a worker: resuming it from its stored state");
        let slot = worker::CreatingSlot::take(ctx, job.call_id);
        workers.spawn(worker::run_sequence(ctx.clone(), job, None, slot));
    }
}

/// PostgreSQL: the calls of engines whose heartbeat stopped become this engine's, to be
/// settled by look-up from their stored state (a no-op on SQLite).
/// Requests for live calls that a stopped engine took and never answered (see
/// `Store::recover_live_requests`).
async fn recover_live_requests(ctx: &Arc<Ctx>) {
    let timeout = ctx_lease_timeout(&ctx.config);
    let mut live: Vec<String> = match ctx.store.live_engines(timeout).await {
        Ok(engines) => engines.into_iter().map(|e| e.holder).collect(),
        Err(e) => {
            tracing::warn!(target: "switchboard::engine", "cannot list the engines: {e}");
            return;
        }
    };
    live.push(ctx.engine.id.clone());
    match ctx.store.recover_live_requests(&live).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(target: "switchboard::engine", "{n} request(s) for live calls left by a stopped engine recovered")
        }
        Err(e) => {
            tracing::warn!(target: "switchboard::engine", "cannot recover requests for live calls: {e}")
        }
    }
}

async fn adopt_orphans(ctx: &Arc<Ctx>) -> Result<(), crate::store::StoreError> {
    let (dead, adopted) = ctx
        .store
        .adopt_orphans(&ctx.engine, ctx_lease_timeout(&ctx.config))
        .await?;
    for engine in &dead {
        tracing::warn!(
            target: "switchboard::engine",
            "engine {} stopped (its heartbeat is older than vapi.lease_timeout_ms): its requests in flight are settled here by look-up, never re-sent blindly",
            engine.name()
        );
    }
    if adopted > 0 {
        tracing::info!(target: "switchboard::engine", adopted, "took over unfinished calls of stopped engines");
    }
    Ok(())
}

fn ctx_lease_timeout(config: &Config) -> i64 {
    config.vapi.lease_timeout_ms as i64
}

/// PostgreSQL: the account's request budget (`vapi.max_requests_per_second`) is split evenly
/// between the live engines, so that together they never ask more of Vapi's gateway than one
/// engine would (each still learns its share's real limit from 429s). Re-read with every
/// heartbeat: an engine that joins or stops changes every share within one heartbeat.
async fn share_request_budget(ctx: &Ctx) {
    if ctx.store.backend() != crate::store::Backend::Postgres {
        return;
    }
    match ctx.store.live_engines(ctx_lease_timeout(&ctx.config)).await {
        Ok(live) => {
            let share = budget_share(ctx.config.vapi.max_requests_per_second, live.len());
            let before = ctx.budget.view().configured_per_second;
            if (before - share).abs() > 1e-9 {
                tracing::info!(target: "switchboard::engine", engines = live.len(), share, "request budget shared between the live engines");
                ctx.budget.set_ceiling(share);
            }
        }
        Err(e) => {
            tracing::warn!(target: "switchboard::engine", "cannot count the live engines for the request budget: {e}");
        }
    }
}

/// One engine's share of the account's request budget (pure).
pub(crate) fn budget_share(configured_per_second: f64, live_engines: usize) -> f64 {
    configured_per_second / live_engines.max(1) as f64
}

/// Renews the lease's heartbeat a few times per timeout. If the lease was taken over (this
/// engine stalled past the timeout and another took its place), dispatch stops at once: the
/// other engine now owns these calls.
async fn keep_lease(ctx: Arc<Ctx>) {
    let every = Duration::from_millis((ctx.config.vapi.lease_timeout_ms / 4).max(250));
    let mut failures = 0u32;
    loop {
        if !ctx.gate.sleep(every).await {
            return;
        }
        let status = engine_status(&ctx);
        match ctx.store.renew_lease(&ctx.engine, Some(&status)).await {
            Ok(true) => {
                failures = 0;
                share_request_budget(&ctx).await;
            }
            Ok(false) => {
                let message = "the dispatch lease was taken over by another engine (this one stalled past vapi.lease_timeout_ms): stopping dispatch here".to_string();
                tracing::error!(target: "switchboard::engine", "{message}");
                ctx.gate
                    .event(EventKind::Pause, None, None, message.clone(), None);
                ctx.gate.update(|s| {
                    s.lease_lost = true;
                    s.stopping = true;
                });
                return;
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(target: "switchboard::engine", "cannot renew the dispatch lease ({failures}): {e}");
            }
        }
    }
}

/// Takes the next contact whenever the gate allows, fairly across campaigns, and runs its
/// sequence in a worker. On stop, waits for workers to record what their requests did.
async fn claim_loop(ctx: Arc<Ctx>, unfinished: Vec<crate::store::calls::DialJob>) {
    let mut workers = JoinSet::new();
    for job in unfinished {
        let slot = worker::CreatingSlot::take(&ctx, job.call_id);
        workers.spawn(worker::run_sequence(ctx.clone(), job, None, slot));
    }
    let mut turn = 0usize;
    let mut last_rescue = tokio::time::Instant::now();
    loop {
        // The rescuer: an unfinished call with no live worker (its worker panicked, or a store
        // error cut it short) gets one again, while the engine runs.
        if last_rescue.elapsed() >= RESCUE_EVERY {
            last_rescue = tokio::time::Instant::now();
            rescue(&ctx, &mut workers).await;
        }
        while let Some(done) = workers.try_join_next() {
            if let Err(e) = done {
                tracing::error!(target: "switchboard::engine", "a call worker ended abnormally: {e}");
            }
        }
        let probe = match ctx.gate.admit(RequestKind::NewCall).await {
            Ok(probe) => probe,
            Err(Refusal::Stopping) => break,
            Err(Refusal::CampaignCancelled | Refusal::Paused) => continue,
        };
        // The gate counted this sequence in `creating`; the slot gives it back when dropped.
        let mut slot = worker::CreatingSlot::admitted(&ctx);
        // The request budget before the claim: the attempt is committed just before sending.
        ctx.budget.acquire().await;
        // Weighted fair share: the campaign with the fewest calls in flight for its weight
        // first (ties in turn), so one big campaign cannot starve the others.
        let candidates = ctx.gate.read(|s| s.fair_share.order(&s.claimable, turn));
        turn = turn.wrapping_add(1);
        let mut claimed = None;
        ctx.gate.update(|s| s.fair_share.claim_started());
        // On PostgreSQL the account's rate and concurrency cap are shared with the other
        // engines: taken in the claim's transaction.
        let limits = (ctx.store.backend() == crate::store::Backend::Postgres).then(|| {
            ctx.gate.read(|s| crate::store::calls::SharedLimits {
                rate_per_second: s.pacer.rate(),
                concurrency_cap: i64::from(s.quota.concurrency_cap()),
            })
        });
        for campaign_id in candidates {
            let started = std::time::Instant::now();
            let claim = ctx
                .store
                .claim_call_within(campaign_id, &ctx.instance, &ctx.engine.id, limits)
                .await;
            metrics::claim_took(started.elapsed().as_secs_f64());
            match claim {
                Ok(Claim::Claimed(job, attempt_id)) => {
                    claimed = Some((*job, attempt_id));
                    break;
                }
                Ok(Claim::Throttled(_)) => break,
                Ok(Claim::NumbersBenched(why)) => {
                    let pause = Pause::new(StopCause::Engine, why);
                    if let Err(e) = reactions::pause_campaign(&ctx, campaign_id, None, &pause).await
                    {
                        tracing::error!(target: "switchboard::engine", campaign_id, "cannot pause the campaign: {e}");
                    }
                }
                Ok(Claim::Empty) => ctx.gate.update(|s| {
                    s.claimable.remove(&campaign_id);
                }),
                Err(e) => {
                    tracing::error!(target: "switchboard::engine", campaign_id, "cannot claim a contact: {e}");
                }
            }
        }
        let landed = claimed.as_ref().map(|(job, _)| job.campaign_id);
        ctx.gate.update(|s| s.fair_share.claim_finished(landed));
        match claimed {
            Some((job, attempt_id)) => {
                tracing::debug!(target: "switchboard::engine", call_id = job.call_id, "claimed");
                slot.bind(job.call_id);
                workers.spawn(worker::run_sequence(
                    ctx.clone(),
                    job,
                    Some(attempt_id),
                    slot,
                ));
            }
            None => {
                // The slot taken at admission was not used.
                drop(slot);
                if probe {
                    ctx.gate.update(|s| s.breaker.release_probe());
                }
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
    /// Success rates (Vapi's evaluation where reports carry one), refreshed now and then.
    /// Each campaign's success rate ([`crate::model::success_of`]) and its ended count
    /// when it was read.
    success: HashMap<i64, (i64, Option<f64>)>,
    /// Every campaign's rules in force, on one line, refreshed every few ticks.
    rules: HashMap<i64, String>,
    /// Every unfinished campaign's windows and waiting contacts by zone, and when read.
    reach: HashMap<i64, (tokio::time::Instant, Option<snapshot::Reach>)>,
    /// Every campaign's phone-number pool, refreshed every few ticks.
    numbers: Vec<crate::store::numbers::PoolNumber>,
    /// Every unfinished campaign's number health, and when it was read.
    number_health: HashMap<i64, (tokio::time::Instant, number_health::CampaignHealth)>,
    ticks: u64,
    version: u64,
    /// Built by the last refresh, sent by `publish`.
    pending_snapshot: Option<Snapshot>,
    /// Consecutive ticks with nothing to do.
    idle_ticks: u64,
    /// Attached: the store's change mark at the last re-read, and when it was.
    attached_read: Option<(Option<crate::store::ChangeMark>, tokio::time::Instant)>,
    /// Idle: the same, for the once-a-second re-read.
    idle_read: Option<(Option<crate::store::ChangeMark>, tokio::time::Instant)>,
    /// Set when this is a console attached to another engine (`host:pid`): it only reads
    /// the database and writes commands to it.
    attached_to: Option<String>,
    /// The newest lines of the event log (from the database: every engine's and operator's).
    events: std::collections::VecDeque<EngineEvent>,
    /// Calling windows per dialing campaign: when to look again, and while every zone is
    /// closed, "next window opens …". A closed campaign is not claimable: the claim loop
    /// sleeps on the gate instead of trying it, and the window is re-read when it opens
    /// (or within a minute, should an operator edit the rules).
    windows: HashMap<i64, (chrono::DateTime<chrono::Utc>, Option<String>)>,
    /// systemd's notifications (the dispatching engine's; none for an attached console).
    service: Option<service_manager::ServiceManager>,
}

impl ControlLoop {
    fn new(ctx: Arc<Ctx>, snapshot: watch::Sender<Snapshot>, attached_to: Option<String>) -> Self {
        ControlLoop {
            ctx,
            snapshot,
            reasons: HashMap::new(),
            numbers: Vec::new(),
            number_health: HashMap::new(),
            rules: HashMap::new(),
            reach: HashMap::new(),
            success: HashMap::new(),
            ticks: 0,
            version: 0,
            pending_snapshot: None,
            idle_ticks: 0,
            attached_read: None,
            idle_read: None,
            attached_to,
            events: Default::default(),
            windows: HashMap::new(),
            service: None,
        }
    }
}

/// An attached (or idle) control loop re-reads an unchanged store this often.
const ATTACHED_REREAD: Duration = Duration::from_secs(5);

/// How often a campaign's waiting contacts are counted by zone for the estimate.
const REACH_REREAD: Duration = Duration::from_secs(30);

/// Reads a campaign's number health once a minute; a dialling campaign that rests weak
/// numbers (`rest_numbers_below`) has them benched for the cool-down.
async fn review_numbers(
    ctx: &Ctx,
    read: &mut HashMap<i64, (tokio::time::Instant, number_health::CampaignHealth)>,
    campaign: &crate::store::campaigns::Campaign,
    rest_below: f64,
) -> Result<(), crate::store::StoreError> {
    let fresh = read
        .get(&campaign.id)
        .is_some_and(|(at, _)| at.elapsed() < HEALTH_REREAD);
    if fresh {
        return Ok(());
    }
    let health = number_health::review(
        &ctx.store,
        campaign.id,
        ctx.config.dispatch.quick_hangup_ms,
        rest_below,
        ctx.now(),
    )
    .await?;
    if campaign.status == CampaignStatus::Dialing && rest_below > 0.0 {
        number_health::rest(ctx, campaign.id, &health, rest_below).await?;
    }
    read.insert(campaign.id, (tokio::time::Instant::now(), health));
    Ok(())
}

/// How often each campaign's number health is read (a day of its ended calls, by index).
const HEALTH_REREAD: Duration = Duration::from_secs(60);

/// The bounds on when a campaign's waiting contacts can be called: `None` when there are
/// none (always open, no schedule), so the estimate is the pace alone and nothing is read.
async fn reach_of(
    store: &crate::store::Store,
    campaign_id: i64,
    rules: &crate::store::policy::CampaignRules,
) -> Result<Option<snapshot::Reach>, StoreError> {
    let window = rules.window();
    let schedule = rules.schedule();
    if window == crate::model::policy::Window::ALWAYS && schedule.ends_by.is_none() {
        return Ok(None);
    }
    let zones = store.waiting_by_zone(campaign_id, rules.zone()).await?;
    Ok(Some(snapshot::Reach {
        window,
        schedule,
        zones,
    }))
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
                    }
                    let _ = reply.send(answer);
                    if quit {
                        return;
                    }
                    self.refresh().await;
                    self.publish(false);
                }
                _ = tick.tick() => {
                    // The watchdog is fed from this loop: if it stalls, the pings stop.
                    if let Some(service) = &mut self.service {
                        service.tick(tokio::time::Instant::now());
                    }
                    if self.attached_to.is_some() {
                        // A console attached to another engine (or to none) re-reads the
                        // store only when a commit changed the file, or every few seconds
                        // (calling windows open and close by the clock alone).
                        let mark = self.ctx.store.change_mark();
                        let stale = self.attached_read.as_ref().is_none_or(|(seen, at)| {
                            mark.is_none() || mark != *seen || at.elapsed() >= ATTACHED_REREAD
                        });
                        if stale {
                            self.attached_read = Some((mark, tokio::time::Instant::now()));
                            self.refresh().await;
                            self.publish(false);
                        }
                        continue;
                    }
                    // An idle engine (nothing in flight, nothing to claim) re-reads the store
                    // five times less often: the CLI's changes still land within a second.
                    // Not on its first idle tick: the last end just completed a campaign.
                    let idle = self.ctx.gate.read(|s| s.concurrency.is_idle() && s.claimable.is_empty());
                    self.idle_ticks = if idle { self.idle_ticks + 1 } else { 0 };
                    // A window opening or a schedule's start or end is due: look now.
                    let now = self.ctx.now();
                    let window_due = self.windows.values().any(|(at, _)| *at <= now);
                    if idle && !window_due && self.idle_ticks > 1 && !self.idle_ticks.is_multiple_of(5) {
                        continue;
                    }
                    // Idle, and nothing committed since the last re-read: nothing to see
                    // (re-read every 5 s all the same, should an operator edit the rules).
                    let mark = self.ctx.store.change_mark();
                    if idle
                        && !window_due
                        && self.idle_ticks > 1
                        && mark.is_some()
                        && self.idle_read.as_ref().is_some_and(|(seen, at)| {
                            *seen == mark && at.elapsed() < ATTACHED_REREAD
                        })
                    {
                        continue;
                    }
                    self.idle_read = Some((mark, tokio::time::Instant::now()));
                    self.refresh().await;
                    self.publish(false);
                }
            }
        }
    }

    fn stop(&self) {
        self.ctx.gate.update(|s| s.stopping = true);
    }

    /// Carries out a command through the operations layer (store and log), then applies its
    /// in-memory effect on this engine at once (an attached console has none: the engine that
    /// holds the database picks the change up within a tick).
    async fn handle(&mut self, command: Command) -> CommandReply {
        if let Command::Quit = command {
            let in_flight = self.ctx.gate.read(|s| s.concurrency.creating());
            self.stop();
            return Ok(format!(
                "stopping: waiting for {in_flight} call(s) being created"
            ));
        }
        let line = crate::ops::apply(
            &self.ctx.store,
            &self.ctx.config,
            &command,
            crate::ops::Actor::Console,
        )
        .await?;
        self.ctx.gate.update(|s| match &command {
            Command::PauseAll { reason } => {
                s.paused = Some(Pause::new(StopCause::Operator, reason.as_str()))
            }
            Command::ResumeAll => s.paused = None,
            Command::PauseCampaign { campaign_id } => {
                s.dialing.remove(campaign_id);
                s.claimable.remove(campaign_id);
            }
            Command::CancelCampaign { campaign_id } => {
                s.dialing.remove(campaign_id);
                s.claimable.remove(campaign_id);
                s.cancelled.insert(*campaign_id);
            }
            Command::EndLiveCalls {
                campaign_id: None, ..
            } => {
                s.paused = Some(Pause::new(
                    StopCause::Operator,
                    "kill switch: live calls ended",
                ))
            }
            Command::EndLiveCalls {
                campaign_id: Some(campaign_id),
                ..
            } => {
                s.dialing.remove(campaign_id);
                s.claimable.remove(campaign_id);
            }
            Command::SetRate { per_second } => s.pacer.set_rate(*per_second),
            Command::ResetRate => s.pacer.set_rate(self.ctx.config.dispatch.rate_per_second),
            Command::StartCampaign { .. }
            | Command::ResumeCampaign { .. }
            | Command::RetryCall { .. }
            | Command::RetryFailed { .. }
            | Command::AddToDnc { .. }
            | Command::BookCallback { .. }
            | Command::SetArm { .. }
            | Command::Live { .. }
            | Command::WatchCall { .. }
            | Command::Quit => {}
        });
        Ok(line)
    }

    /// Re-reads what other processes (the CLI) or other tasks changed, and applies quota stops.
    async fn refresh(&mut self) {
        if let Err(e) = self.try_refresh().await {
            tracing::error!(target: "switchboard::engine", "cannot refresh engine state: {e}");
        }
    }

    async fn try_refresh(&mut self) -> Result<(), StoreError> {
        if self.attached_to.is_none() {
            self.roll_day().await?;
        }
        self.sync_events().await;
        // Creates and ends counted in memory after this point are newer than what we read.
        let (epoch, load_seen) = self
            .ctx
            .gate
            .read(|s| (s.concurrency.epoch(), s.fair_share.seen()));
        let control = self.ctx.store.engine_control().await?;
        let campaigns = self.ctx.store.campaigns().await?;
        let waiting = self.windows_at(&campaigns, self.ctx.now()).await?;
        let store = &self.ctx.store;
        let creating: HashMap<i64, i64> = store.creating_counts().await?.into_iter().collect();
        let config_rate = self.ctx.config.dispatch.rate_per_second;
        let spend: f64 = campaigns.iter().map(|c| c.cost_usd).sum();
        let ended: i64 = campaigns.iter().map(|c| c.ended_calls).sum();
        let in_flight = |c: &Campaign| c.active_calls + creating.get(&c.id).copied().unwrap_or(0);
        let stop = self.ctx.gate.update(|s| {
            if !s.stopping {
                s.paused = control.pause();
            }
            s.pacer
                .set_rate(control.rate_per_second.unwrap_or(config_rate));
            s.dialing = ids(&campaigns, CampaignStatus::Dialing);
            s.cancelled = ids(&campaigns, CampaignStatus::Cancelled);
            s.claimable = campaigns
                .iter()
                .filter(|c| {
                    c.status == CampaignStatus::Dialing
                        && pending(c, &creating) > 0
                        && !waiting.contains_key(&c.id)
                })
                .map(|c| c.id)
                .collect();
            let dialing: Vec<fair_share::Load> = campaigns
                .iter()
                .filter(|c| c.status == CampaignStatus::Dialing)
                .map(|c| fair_share::Load {
                    campaign_id: c.id,
                    in_flight: in_flight(c),
                    weight: c.weight,
                })
                .collect();
            let active_quiet = s.concurrency.unchanged_since(epoch);
            s.fair_share.reconcile(load_seen, active_quiet, &dialing);
            s.concurrency
                .reconcile(epoch, campaigns.iter().map(|c| c.active_calls).sum());
            s.quota.set_spend(spend, ended.max(0) as u64);
            // Pauses follow what is settled: creates still in flight may yet fail.
            s.quota.stop_reason_with(0, s.concurrency.in_use())
        });
        // A quota stop pauses the campaigns that still have contacts waiting; nothing is
        // lost or failed for it, and active calls are still tracked.
        if let Some(stop) = stop.filter(|_| self.attached_to.is_none()) {
            for c in campaigns
                .iter()
                .filter(|c| c.status == CampaignStatus::Dialing && pending(c, &creating) > 0)
            {
                if store.pause_campaign(c.id, &stop).await? {
                    let message = format!("campaign {} paused: {stop}", c.name);
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
            self.numbers = store.all_numbers().await?;
            for c in campaigns.iter().filter(|c| !c.status.is_final()) {
                let rules = store.campaign_rules(c.id).await?;
                self.rules.insert(c.id, rules.summary());
                // A count by zone of the waiting contacts: a scan, so not every few ticks.
                let fresh = self
                    .reach
                    .get(&c.id)
                    .is_some_and(|(at, _)| at.elapsed() < REACH_REREAD);
                if !fresh {
                    let reach = reach_of(store, c.id, &rules).await?;
                    self.reach
                        .insert(c.id, (tokio::time::Instant::now(), reach));
                }
                review_numbers(
                    &self.ctx,
                    &mut self.number_health,
                    c,
                    rules.rest_numbers_below,
                )
                .await?;
            }
        }
        // The success rate is a scan of the ended calls: again every 10 ticks when calls
        // ended since the last one, and every 50 in any case.
        if self.ticks.is_multiple_of(10) {
            for c in &campaigns {
                let scanned = self.success.get(&c.id).map(|(ended, _)| *ended);
                if scanned != Some(c.ended_calls) || self.ticks.is_multiple_of(50) {
                    let rate = store.success_rate(c.id).await?;
                    self.success.insert(c.id, (c.ended_calls, rate));
                }
            }
        }
        self.ticks += 1;
        self.build(campaigns, &creating, &waiting);
        Ok(())
    }

    /// The dialing campaigns whose every zone is outside the calling window at `now`, with
    /// when the first opens. Read from the store when the cached answer is due.
    async fn windows_at(
        &mut self,
        campaigns: &[Campaign],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<HashMap<i64, String>, StoreError> {
        let mut waiting = HashMap::new();
        for c in campaigns
            .iter()
            .filter(|c| c.status == CampaignStatus::Dialing)
        {
            let due = self.windows.get(&c.id).is_none_or(|(at, _)| *at <= now);
            if due {
                let state = self.ctx.store.window_state(c.id, now).await?;
                let entry = match &state {
                    crate::policy::WindowState::Open(_) => {
                        // Looked at again within a minute, or at the end-by if sooner.
                        let ends_by = self
                            .ctx
                            .store
                            .campaign_rules(c.id)
                            .await?
                            .schedule()
                            .ends_by;
                        let again = now + chrono::Duration::seconds(60);
                        (
                            ends_by.filter(|e| *e > now).map_or(again, |e| e.min(again)),
                            None,
                        )
                    }
                    crate::policy::WindowState::Ended { .. } => {
                        // Done as planned: paused (calls still live run to their end), so a
                        // resume is the operator's choice to go on past it.
                        let pause = Pause::new(StopCause::Schedule, state.text(now));
                        if let Err(e) =
                            reactions::pause_campaign(&self.ctx, c.id, None, &pause).await
                        {
                            tracing::error!(target: "switchboard::engine", campaign_id = c.id, "cannot pause the campaign: {e}");
                        }
                        (now + chrono::Duration::seconds(60), Some(pause.reason))
                    }
                    crate::policy::WindowState::Closed { opens_at: at, .. }
                    | crate::policy::WindowState::NotStarted { starts_at: at, .. } => {
                        let text = state.text(now);
                        if self.windows.get(&c.id).is_none_or(|(_, t)| t.is_none()) {
                            let message = format!("campaign {} waiting: {text}", c.name);
                            tracing::info!(target: "switchboard::engine", "{message}");
                            self.ctx
                                .gate
                                .event(EventKind::Quota, None, None, message, None);
                        }
                        ((*at).min(now + chrono::Duration::seconds(60)), Some(text))
                    }
                };
                self.windows.insert(c.id, entry);
            }
            if let Some((_, Some(text))) = self.windows.get(&c.id) {
                waiting.insert(c.id, text.clone());
            }
        }
        Ok(waiting)
    }

    /// Writes this engine's new log lines to the database and reads back the newest lines of
    /// everyone's (the CLI's actions, another console's), which the snapshot shows.
    async fn sync_events(&mut self) {
        let fresh: Vec<crate::store::events::EventRow> = self
            .ctx
            .gate
            .update(|s| s.events.drain(..).map(|e| e.to_row()).collect());
        if let Err(e) = self.ctx.store.append_events(&fresh).await {
            tracing::warn!(target: "switchboard::engine", "cannot keep {} log lines: {e}", fresh.len());
        }
        match self
            .ctx
            .store
            .recent_events(snapshot::EVENT_RING as i64)
            .await
        {
            Ok(rows) => self.events = rows.into_iter().map(EngineEvent::from_row).collect(),
            Err(e) => tracing::warn!(target: "switchboard::engine", "cannot read the log: {e}"),
        }
    }

    /// At midnight (in the daily limit's time zone) a new day starts: the day's creates are
    /// counted afresh and the campaigns the old day's limit paused are resumed.
    async fn roll_day(&self) -> Result<(), StoreError> {
        let Some(day_start) = self.ctx.gate.update(|s| {
            let now = s.clock.now();
            s.quota.roll(now).then(|| s.quota.day_start())
        }) else {
            return Ok(());
        };
        let store = &self.ctx.store;
        let today = store
            .created_since(&crate::store::format_time(day_start))
            .await?;
        self.ctx.gate.update(|s| {
            let now = s.clock.now();
            s.quota.set_calls_today(today.max(0) as u64, now)
        });
        for c in store.campaigns().await? {
            let daily = c.pause().is_some_and(|p| p.cause == StopCause::DailyLimit);
            if daily {
                store.resume_campaign(c.id).await?;
                let message = format!(
                    "campaign {} resumed: a new day for the daily call limit",
                    c.name
                );
                tracing::info!(target: "switchboard::engine", "{message}");
                self.ctx
                    .gate
                    .event(EventKind::Quota, None, None, message, None);
            }
        }
        Ok(())
    }

    fn build(
        &mut self,
        campaigns: Vec<Campaign>,
        creating: &HashMap<i64, i64>,
        waiting: &HashMap<i64, String>,
    ) {
        let now = tokio::time::Instant::now();
        let per_call = self.ctx.gate.read(|s| s.quota.cost_per_call());
        let views: Vec<CampaignView> = campaigns
            .into_iter()
            .map(|c| {
                let reasons = self.reasons.get(&c.id).cloned().unwrap_or_default();
                let success = self.success.get(&c.id).and_then(|(_, rate)| *rate);
                let waits = waiting.get(&c.id).cloned();
                let rules = self.rules.get(&c.id).cloned();
                let reach = self.reach.get(&c.id).and_then(|(_, r)| r.clone());
                let mut view = campaign_view(c, creating, reasons, per_call);
                view.waiting = waits;
                view.rules = rules;
                view.reach = reach;
                view.success_rate = success;
                view
            })
            .collect();
        let budget = self.ctx.budget.view();
        let wall = self.ctx.now();
        let numbers: Vec<NumberView> = self
            .numbers
            .iter()
            .filter_map(|n| {
                let campaign = views.iter().find(|v| v.id == n.campaign_id)?;
                // Finished campaigns' pools are history, not state.
                if campaign.status.is_final() {
                    return None;
                }
                Some(NumberView {
                    campaign: campaign.name.clone(),
                    phone_number_id: n.phone_number_id.clone(),
                    weight: n.weight,
                    calls_today: n.calls_on(wall),
                    benched_until: n
                        .benched_at(wall)
                        .then(|| n.benched_until.clone())
                        .flatten(),
                    bench_reason: n.benched_at(wall).then(|| n.bench_reason.clone()).flatten(),
                    health: self.number_health.get(&n.campaign_id).and_then(|(_, h)| {
                        h.numbers
                            .iter()
                            .find(|x| x.key == n.phone_number_id)
                            .cloned()
                    }),
                    campaign_day: self.number_health.get(&n.campaign_id).map(|(_, h)| h.day),
                })
            })
            .collect();
        let snapshot = self.ctx.gate.update(|s| Snapshot {
            awaiting_reports: {
                let now = tokio::time::Instant::now();
                s.awaiting_reports.retain(|_, ended| {
                    now.saturating_duration_since(*ended) < reactions::REPORT_WAIT
                });
                s.awaiting_reports.len()
            },
            numbers,
            number_health: self
                .number_health
                .iter()
                .filter(|(id, _)| views.iter().any(|v| v.id == **id && !v.status.is_final()))
                .map(|(id, (_, health))| (*id, health.clone()))
                .collect(),
            version: 0,
            // Contacts of DRAFT, COMPLETED or CANCELLED campaigns wait for nothing.
            pending: views
                .iter()
                .filter(|v| matches!(v.status, CampaignStatus::Dialing | CampaignStatus::Paused))
                .map(|v| v.pending)
                .sum(),
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
                concurrency_used: s.concurrency.in_use(),
                concurrency_cap: s.quota.concurrency_cap(),
                vapi_concurrency_limit: s.quota.vapi_limit(),
                vapi_remaining: s.quota.vapi_remaining(),
                rate_limited_total: budget.rate_limited,
                budget,
                calls_today: s.quota.calls_today,
                daily_limit: s.quota.daily_limit(),
                spend_usd: s.quota.spend_usd,
                budget_usd: s.quota.budget_usd(),
            },
            backoff_ms: s
                .rate_limited
                .until()
                .map(|u| u.saturating_duration_since(now).as_millis() as u64)
                .unwrap_or(0),
            events: self.events.clone(),
            stopped: false,
            attached_to: self.attached_to.clone(),
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
            if let Some(service) = &mut self.service {
                service.status(&next);
                metrics::snapshot(&next);
            }
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
        // Read apart from the reasons (it needs Vapi's evaluations): see `success`.
        success_rate: None,
        estimated_remaining_usd: per_call.map(|p| p * remaining as f64),
        reasons,
        waiting: None,
        rules: None,
        reach: None,
        name: c.name,
        status: c.status,
        pause_reason: c.pause_reason,
        pause_cause: c.pause_cause,
        started_at: c.started_at,
        completed_at: c.completed_at,
        contacts_total: c.contacts_total,
        contacts_done: c.contacts_done,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn engines_split_the_request_budget_evenly() {
        assert_eq!(super::budget_share(20.0, 1), 20.0);
        assert_eq!(super::budget_share(21.0, 3), 7.0);
        // No live row read (a race at start): this engine counts as one.
        assert_eq!(super::budget_share(20.0, 0), 20.0);
        let three: f64 = (0..3).map(|_| super::budget_share(20.0, 3)).sum();
        assert!((three - 20.0).abs() < 1e-9);
    }
}
