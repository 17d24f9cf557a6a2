//! switchboard benchmark: prints one `name: value` line per figure, each measured in the same
//! run as its baseline. `cargo build --release && cargo run --release --example bench`
//! (add `-- --quick` for a shorter run of every figure, `-- --smoke` for CI's small one).
//!
//! Figures: create_calls_per_s vs sqlite_bound_calls_per_s (ratio goal ≥ 0.7), rate_error_pct
//! and max_per_second_window at 20/s, import_rows_per_s and import_peak_rss_mb for a generated
//! CSV, frame_ms_1m_calls on TestBackend 160x48, console_idle_cpu_pct under tmux;
//! postgres_create_calls_per_s_{1,2,3}_engines vs postgres_bound_calls_per_s (a throw-away
//! PostgreSQL server, skipped without its binaries); slot_utilisation with and without
//! webhooks, end_detect_ms and requests_per_call; rate_limit_ratio and share_429 behind a
//! gateway the engine is not told; import_unordered_rows_per_s; scale_engine_rss_mb and CPU
//! per live call with 1,000,000 contacts and 10,000 calls live.

#[path = "../tests/it/common/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use switchboard::config::{Config, Secret};
use switchboard::console::{App, ConsoleOptions, KeyRegistry, Update};
use switchboard::dispatch::{self, Snapshot};
use switchboard::model::AttemptOutcome;
use switchboard::simulator::{SimConfig, Simulator};
use switchboard::store::Store;
use switchboard::store::calls::CallUpdate;
use switchboard::store::contacts::NewContact;
use switchboard::store::stats::{Anchor, CallQuery};
use switchboard::vapi::VapiClient;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Sizes {
    calls: usize,
    rate_secs: u64,
    /// How long an answered call talks in the slot runs (the smoke run's are short: its
    /// utilisation then weighs the fixed latencies more, and is not the goal's figure).
    slot_talk_ms: u64,
    import_rows: usize,
    frame_calls: usize,
    idle_secs: u64,
    /// How long the scale run follows its live calls.
    scale_follow_secs: u64,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child-import") {
        let label = args.get(4).map_or("import", String::as_str);
        return child_import(Path::new(&args[2]), &args[3], label);
    }
    // `--smoke`: every figure once at a small size, for CI (keeps the figures' code running;
    // its figures are not the goals' measurements).
    let smoke = args.iter().any(|a| a == "--smoke");
    let quick = smoke || args.iter().any(|a| a == "--quick");
    // `--only NAME` runs one part: throughput, postgres, rate, slots, gateway, import, frame,
    // idle, scale.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let sizes = if smoke {
        Sizes {
            calls: 500,
            rate_secs: 2,
            slot_talk_ms: 1_000,
            import_rows: 20_000,
            frame_calls: 100_000,
            idle_secs: 3,
            scale_follow_secs: 3,
        }
    } else if quick {
        Sizes {
            calls: 3_000,
            rate_secs: 3,
            slot_talk_ms: 5_000,
            // The goal is stated for 1,000,000 rows: a smaller import is dominated by fixed
            // costs (the numbering plan's metadata alone loads in ~0.16 s, 16 % of a
            // 200,000-row import), so the quick run measures the full size too (~5 s).
            import_rows: 1_000_000,
            frame_calls: 1_000_000,
            // Not shorter: /proc counts CPU in 10 ms ticks, so over 3 s one tick is 0.33 %
            // and the < 1 % goal read as met or not by one tick.
            idle_secs: 10,
            scale_follow_secs: 10,
        }
    } else {
        Sizes {
            calls: 20_000,
            rate_secs: 10,
            slot_talk_ms: 5_000,
            import_rows: 1_000_000,
            frame_calls: 1_000_000,
            idle_secs: 10,
            scale_follow_secs: 10,
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    println!("machine: {}", machine());
    let mode = match (smoke, quick) {
        (true, _) => "smoke",
        (false, true) => "quick",
        (false, false) => "full",
    };
    println!("mode: {mode}");
    if run("throughput") {
        runtime.block_on(throughput(sizes.calls))?;
    }
    if run("postgres") {
        runtime.block_on(postgres_engines(if smoke {
            150
        } else if quick {
            1_000
        } else {
            sizes.calls / 2
        }))?;
    }
    if run("rate") {
        runtime.block_on(rate_accuracy(sizes.rate_secs))?;
    }
    let (slots, gateway) = match (smoke, quick) {
        (true, _) => (100, 60),
        (false, true) => (200, 150),
        (false, false) => (400, 300),
    };
    if run("slots") {
        runtime.block_on(slot_utilisation(slots, sizes.slot_talk_ms, true))?;
        runtime.block_on(slot_utilisation(slots, sizes.slot_talk_ms, false))?;
    }
    if run("gateway") {
        runtime.block_on(rate_limit(gateway))?;
    }
    if run("import") {
        imports(sizes.import_rows)?;
    }
    if run("frame") {
        runtime.block_on(frame(sizes.frame_calls))?;
    }
    if run("idle") {
        idle_cpu(sizes.idle_secs)?;
    }
    if run("scale") {
        let (contacts, live) = match (smoke, quick) {
            (true, _) => (20_000, 300),
            _ => (1_000_000, 10_000),
        };
        scale(&runtime, contacts, live, sizes.scale_follow_secs)?;
    }
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cores} cores, {cpu}")
}

async fn contacts_campaign(store: &Store, n: usize) -> Result<i64> {
    let c = store.create_campaign("bench", "asst", "pn").await?;
    let rows: Vec<NewContact> = (0..n)
        .map(|i| NewContact {
            name: None,
            phone: format!("+1415{:07}", 2_000_000 + i),
            extension: None,
            variables: "{}".into(),
            ..Default::default()
        })
        .collect();
    store.insert_contacts(c.id, &rows).await?;
    store.start_campaign(c.id).await?;
    Ok(c.id)
}

/// Calls created end to end per second against a zero-latency simulator with no rate limit,
/// against a plain loop of the same durable writes (claim = intent, record = result).
async fn throughput(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    // The bound is measured before and after the engine run and averaged: fsync speed drifts.
    let before = sqlite_bound(&dir.path().join("bound1.db"), n).await?;
    let sim = idle_simulator().await?;
    let store = Store::open(&dir.path().join("engine.db")).await?;
    contacts_campaign(&store, n).await?;
    let mut config = Config::default();
    config.vapi.base_url = sim.base_url();
    config.dispatch.rate_per_second = switchboard::config::MAX_RATE;
    config.dispatch.burst = 10_000;
    config.dispatch.max_concurrent_calls = u32::MAX;
    config.tracking.poll_interval_ms = 3_600_000;
    config.vapi.max_requests_per_second = 1_000.0;
    let vapi = VapiClient::new(
        &config.vapi.base_url,
        Secret::from("k"),
        config.request_timeout(),
    )?;
    let started = Instant::now();
    let engine = dispatch::start(config, store.clone(), vapi).await?;
    let mut rx = engine.client().snapshots();
    loop {
        if rx
            .borrow_and_update()
            .campaigns
            .first()
            .is_some_and(|c| c.created as usize >= n)
        {
            break;
        }
        rx.changed().await?;
    }
    let engine_rate = n as f64 / started.elapsed().as_secs_f64();
    engine.shutdown().await;
    sim.shutdown().await;
    let after = sqlite_bound(&dir.path().join("bound2.db"), n).await?;
    let bound = (before + after) / 2.0;
    println!("sqlite_bound_before_after_per_s: {before:.0} / {after:.0}");
    println!("calls: {n}");
    println!("sqlite_bound_calls_per_s: {bound:.0}");
    println!("create_calls_per_s: {engine_rate:.0}");
    println!("create_vs_sqlite_bound: {:.2}", engine_rate / bound);
    metrics_cost(engine_rate);
    Ok(())
}

/// Write transactions a call costs the store, counted high: claim, the attempt, created,
/// each status update, ended, the analysis (a four-call engine run counted 43 with its
/// start-up's and heartbeats').
const WRITES_PER_CREATE: u32 = 8;

/// What the metrics a create records cost (its outcome and attempt counters, its claim's
/// latency histogram, and the store's two histograms for each of its write transactions,
/// into the Prometheus recorder `metrics.listen` installs), against one create's share of the
/// end-to-end rate above. Installed only now: the figures before ran without a recorder, as
/// an engine does by default.
fn metrics_cost(creates_per_s: f64) {
    use switchboard::dispatch::metrics;
    if metrics::install().is_none() {
        println!("metrics_cost_pct_of_create: skipped (a recorder was installed already)");
        return;
    }
    const N: u32 = 200_000;
    let started = Instant::now();
    for i in 0..N {
        metrics::create("created");
        metrics::attempt(None);
        metrics::claim_took(f64::from(i % 100) * 1e-4);
        for w in 0..WRITES_PER_CREATE {
            let secs = f64::from((i + w) % 100) * 1e-4;
            ::metrics::histogram!("switchboard_store_wait_seconds").record(secs);
            ::metrics::histogram!("switchboard_store_write_seconds").record(secs);
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / f64::from(N);
    let create_ns = 1e9 / creates_per_s;
    println!(
        "metrics_cost_pct_of_create: {:.3} (goal < 2; {ns:.0} ns a create against {create_ns:.0} ns a create end to end)",
        ns / create_ns * 100.0
    );
}

/// Calls created per second on PostgreSQL by 1, 2 and 3 engines sharing one campaign (each
/// with its own store, as separate processes would), beside the same plain loop of durable
/// writes on PostgreSQL (the bound). A throw-away server (fsync on) is started with initdb; no
/// server binaries: the part is skipped with a line saying so.
async fn postgres_engines(n: usize) -> Result<()> {
    let Some(server) = pg::PgServer::start_with("bench postgres", true) else {
        println!("postgres: SKIPPED (no PostgreSQL server binaries)");
        return Ok(());
    };
    let bound_url = server.create_db("bound");
    let bound = pg_bound(&bound_url, n).await?;
    println!("postgres_calls: {n}");
    println!("postgres_bound_calls_per_s: {bound:.0}");
    for shared in [false, true] {
        let url = server.create_db(&format!("claims{shared}"));
        let rate = pg_claims(&url, n, shared).await?;
        let how = if shared { "shared_pacer" } else { "no_pacer" };
        println!("postgres_claims_per_s_3_claimers_{how}: {rate:.0}");
    }
    for engines in 1..=3usize {
        let url = server.create_db(&format!("engines{engines}"));
        let sim = idle_simulator().await?;
        let setup = Store::open_postgres(&url).await?;
        contacts_campaign(&setup, n).await?;
        let mut config = Config::default();
        config.vapi.base_url = sim.base_url();
        config.dispatch.rate_per_second = switchboard::config::MAX_RATE;
        config.dispatch.burst = 10_000;
        config.dispatch.max_concurrent_calls = u32::MAX;
        config.tracking.poll_interval_ms = 3_600_000;
        config.vapi.max_requests_per_second = 1_000.0;
        let started = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..engines {
            let store = Store::open_postgres(&url).await?;
            let vapi = VapiClient::new(
                &config.vapi.base_url,
                Secret::from("k"),
                config.request_timeout(),
            )?;
            handles.push(dispatch::start(config.clone(), store, vapi).await?);
        }
        loop {
            let c = setup.campaign_by_name("bench").await?;
            if c.total_calls_created as usize >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        for h in handles {
            h.shutdown().await;
        }
        sim.shutdown().await;
        setup.close().await;
        println!("postgres_create_calls_per_s_{engines}_engines: {rate:.0}");
        println!(
            "postgres_create_vs_bound_{engines}_engines: {:.2}",
            rate / bound
        );
    }
    Ok(())
}

/// Claims alone (no request, no record) by three claimers at once, each with its own store,
/// with the shared pacer's row lock held across each claim (`shared`, as engines on
/// PostgreSQL claim) or without it: what the shared row costs the claim path.
async fn pg_claims(url: &str, n: usize, shared: bool) -> Result<f64> {
    let setup = Store::open_postgres(url).await?;
    let id = contacts_campaign(&setup, n).await?;
    let instance = setup.instance_id().await?;
    let limits = shared.then_some(switchboard::store::calls::SharedLimits {
        rate_per_second: 1e9,
        concurrency_cap: i64::MAX,
    });
    let started = Instant::now();
    let mut claimers = Vec::new();
    for k in 0..3 {
        let store = Store::open_postgres(url).await?;
        let instance = instance.clone();
        claimers.push(tokio::spawn(async move {
            let engine = format!("bench-{k}");
            loop {
                match store
                    .claim_call_within(id, &instance, &engine, limits)
                    .await?
                {
                    switchboard::store::calls::Claim::Empty => break,
                    _ => continue,
                }
            }
            store.close().await;
            Ok::<(), switchboard::store::StoreError>(())
        }));
    }
    for claimer in claimers {
        claimer.await??;
    }
    setup.close().await;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The plain loop of `sqlite_bound` on PostgreSQL (one connection: one engine's writer).
async fn pg_bound(url: &str, n: usize) -> Result<f64> {
    let store = Store::open_postgres(url).await?;
    let id = contacts_campaign(&store, n).await?;
    let instance = store.instance_id().await?;
    let update = CallUpdate {
        status: Some(switchboard::model::CallStatus::Queued),
        ..CallUpdate::default()
    };
    let started = Instant::now();
    let mut i = 0;
    while let Some((job, attempt)) = store.claim_call(id, &instance, "bench").await? {
        let provider = format!("p{i}");
        store
            .record_created(
                job.call_id,
                attempt,
                AttemptOutcome::Created,
                &provider,
                &update,
            )
            .await?;
        i += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    store.close().await;
    Ok(rate)
}

/// How close a campaign comes to the account's concurrency bound: 50 slots at the simulator
/// that the engine learns from `subscriptionLimits` (the operator's cap is set higher), calls
/// of `talk_ms` (5 s but in the smoke run; a fifth end unanswered after 0.1 s), with webhooks or without (then ends are learnt
/// by bulk reads). Bound = N·D/C with D an answered call's length; `slot_utilisation` = bound
/// / makespan (goal ≥ 0.95 with webhooks, ≥ 0.90 without); `requests_per_call` counts every
/// request the simulator saw (goal ≤ 1.5). Beside it, the stricter bound of the calls as they
/// went: the same calls dispatched in the same order at the same rate with no latency at all.
async fn slot_utilisation(n: usize, talk_ms: u64, webhooks: bool) -> Result<()> {
    const SLOTS: u32 = 50;
    const QUEUE_MS: u64 = 50;
    const RING_MS: u64 = 50;
    const RATE: f64 = 100.0;
    let how = if webhooks { "webhooks" } else { "no webhooks" };
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let sim = Simulator::start(
        SimConfig {
            api_key: "k".into(),
            concurrency_limit: SLOTS,
            queue_ms: QUEUE_MS,
            ring_ms: RING_MS,
            talk_min_ms: talk_ms,
            talk_max_ms: talk_ms,
            seed: Some(1),
            webhook_url: webhooks.then(|| format!("http://127.0.0.1:{port}/webhook")),
            webhook_secret: "bench-secret".into(),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("limits.db")).await?;
    contacts_campaign(&store, n).await?;
    let mut config = Config::default();
    config.vapi.base_url = sim.base_url();
    config.dispatch.rate_per_second = RATE;
    config.dispatch.max_concurrent_calls = 200; // the account's 50 is the real limit
    config.vapi.max_requests_per_second = 100.0;
    config.dispatch.quick_hangup_ms = 0;
    if webhooks {
        config.webhook.listen = Some(format!("127.0.0.1:{port}"));
        config.webhook.secret_env = "SWITCHBOARD_BENCH_WEBHOOK_SECRET".into();
        // SAFETY: set before the engine starts, read by it only; the bench is one thread here.
        unsafe { std::env::set_var("SWITCHBOARD_BENCH_WEBHOOK_SECRET", "bench-secret") };
    }
    let vapi = VapiClient::new(
        &config.vapi.base_url,
        Secret::from("k"),
        config.request_timeout(),
    )?;
    let started = Instant::now();
    let engine = dispatch::start(config, store.clone(), vapi).await?;
    let mut rx = engine.client().snapshots();
    loop {
        if rx
            .borrow_and_update()
            .campaigns
            .first()
            .is_some_and(|c| c.status == switchboard::model::CampaignStatus::Completed)
        {
            break;
        }
        rx.changed().await?;
    }
    let makespan = started.elapsed().as_secs_f64();
    engine.shutdown().await;
    let stats = sim.stats();
    sim.shutdown().await;
    // Calls that answer (most) last queue + ring + talk; the rest end sooner, so this bound
    // is generous to the engine's opponent: the real floor is lower (the line below).
    let duration = (QUEUE_MS + RING_MS + talk_ms) as f64 / 1000.0;
    let bound = n as f64 * duration / f64::from(SLOTS);
    let requests = stats.create_requests + stats.get_requests;
    println!("slot_contacts ({how}): {n} (50 slots learnt, {duration:.1} s calls)");
    println!("slot_makespan_s ({how}): {makespan:.1} (bound N·D/C {bound:.1})");
    let goal = if webhooks { 0.95 } else { 0.90 };
    println!(
        "slot_utilisation ({how}): {:.2} (goal >= {goal:.2})",
        bound / makespan
    );
    println!(
        "slot_peak_concurrency ({how}): {} (account limit {SLOTS})",
        stats.peak_concurrency
    );
    println!(
        "requests_per_call ({how}): {:.2} (goal <= 1.5; {} creates, {} reads, {} blocked)",
        requests as f64 / n as f64,
        stats.create_requests,
        stats.get_requests,
        stats.concurrency_blocked
    );
    let replay = replay_makespan(&store, SLOTS, RATE).await?;
    println!(
        "slot_utilisation_of_calls_made ({how}): {:.2} (bound {replay:.1} s: these calls, in this order, at {RATE}/s, with no latency)",
        replay / makespan
    );
    end_detection(&store, how).await?;
    Ok(())
}

/// The makespan of the run's calls (their durations at Vapi, in creation order) dispatched
/// greedily into `slots` at `rate` with no latency at all: no dispatcher does better without
/// knowing durations in advance.
async fn replay_makespan(store: &Store, slots: u32, rate: f64) -> Result<f64> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT created_at, ended_at FROM calls WHERE status = $1 ORDER BY id")
            .bind(switchboard::model::CallStatus::Ended)
            .fetch_all(store.reader())
            .await?;
    let mut free_at: std::collections::BinaryHeap<std::cmp::Reverse<u64>> =
        (0..slots).map(|_| std::cmp::Reverse(0)).collect();
    let spacing_us = (1e6 / rate) as u64;
    let (mut last, mut end) = (0u64, 0u64);
    for (created, ended) in &rows {
        let (Some(created), Some(ended)) = (
            switchboard::store::parse_time(created),
            ended.as_deref().and_then(switchboard::store::parse_time),
        ) else {
            continue;
        };
        let us = (ended - created).num_microseconds().unwrap_or(0).max(0) as u64;
        let std::cmp::Reverse(free) = free_at.pop().unwrap_or(std::cmp::Reverse(0));
        let start = free.max(last + spacing_us);
        last = start;
        end = end.max(start + us);
        free_at.push(std::cmp::Reverse(start + us));
    }
    Ok(end as f64 / 1e6)
}

/// The time from a call's end at Vapi (its `endedAt`) to the engine's record of the end
/// (the row's `updated_at` as the end was written; the final cost came with the end here),
/// which is when its slot is free again: p50 and p99 over the run's ended calls.
async fn end_detection(store: &Store, how: &str) -> Result<()> {
    let rows: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT ended_at, updated_at FROM calls WHERE status = $1 AND ended_at IS NOT NULL",
    )
    .bind(switchboard::model::CallStatus::Ended)
    .fetch_all(store.reader())
    .await?;
    let mut ms: Vec<i64> = rows
        .iter()
        .filter_map(|(ended, recorded)| {
            let ended = switchboard::store::parse_time(ended.as_deref()?)?;
            let recorded = switchboard::store::parse_time(recorded)?;
            Some((recorded - ended).num_milliseconds().max(0))
        })
        .collect();
    ms.sort_unstable();
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    match (at(0.5), at(0.99)) {
        (Some(p50), Some(p99)) => println!(
            "end_detect_ms ({how}): p50 {p50}, p99 {p99} ({} calls)",
            ms.len()
        ),
        _ => println!("end_detect_ms ({how}): no ended calls"),
    }
    Ok(())
}

/// How close a campaign comes to a gateway limit it is not told: the simulator admits 12
/// requests a second (a token bucket over every request), the operator configures 50/s.
/// Bound = N/R (one create per call is the least; its end can come in a bulk read with many
/// others); `rate_limit_ratio` = bound / makespan (goal ≥ 0.85) and `share_429` = 429s /
/// requests (goal < 5 %).
async fn rate_limit(n: usize) -> Result<()> {
    const GATEWAY_RPS: f64 = 12.0;
    let sim = Simulator::start(
        SimConfig {
            api_key: "k".into(),
            concurrency_limit: 0,
            queue_ms: 50,
            ring_ms: 50,
            talk_min_ms: 1_000,
            talk_max_ms: 1_000,
            gateway_rps: GATEWAY_RPS,
            gateway_burst: 12,
            seed: Some(2),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("gateway.db")).await?;
    contacts_campaign(&store, n).await?;
    let mut config = Config::default();
    config.vapi.base_url = sim.base_url();
    config.dispatch.rate_per_second = 50.0;
    config.dispatch.max_concurrent_calls = 1_000;
    config.vapi.max_requests_per_second = 50.0;
    config.dispatch.quick_hangup_ms = 0;
    let vapi = VapiClient::new(
        &config.vapi.base_url,
        Secret::from("k"),
        config.request_timeout(),
    )?;
    let started = Instant::now();
    let engine = dispatch::start(config, store.clone(), vapi).await?;
    let mut rx = engine.client().snapshots();
    let learnt = loop {
        {
            let s = rx.borrow_and_update();
            if s.campaigns
                .first()
                .is_some_and(|c| c.status == switchboard::model::CampaignStatus::Completed)
            {
                break s.quota.budget.learnt_per_second;
            }
        }
        rx.changed().await?;
    };
    let makespan = started.elapsed().as_secs_f64();
    engine.shutdown().await;
    let stats = sim.stats();
    sim.shutdown().await;
    let requests = stats.create_requests + stats.get_requests;
    let bound = n as f64 / GATEWAY_RPS;
    println!(
        "gateway_contacts: {n} (gateway {GATEWAY_RPS}/s unknown to the engine, configured 50/s)"
    );
    println!("gateway_bound_s: {bound:.1}");
    println!("gateway_makespan_s: {makespan:.1}");
    println!("rate_limit_ratio: {:.2} (goal >= 0.85)", bound / makespan);
    println!(
        "share_429: {:.1} % (goal < 5 %; {} of {requests} requests)",
        stats.gateway_rejected as f64 / requests as f64 * 100.0,
        stats.gateway_rejected
    );
    println!("gateway_learnt_rate_per_s: {learnt:.1}");
    Ok(())
}

/// A zero-latency simulator with no concurrency limit whose calls stay queued (nothing to poll).
async fn idle_simulator() -> Result<Simulator> {
    let config = SimConfig {
        api_key: "k".into(),
        concurrency_limit: 0,
        queue_ms: 3_600_000,
        ..SimConfig::default()
    };
    Ok(Simulator::start(config, ([127, 0, 0, 1], 0).into()).await?)
}

/// Calls per second of a plain loop of one call's durable writes: the claim (contact, call
/// row and attempt IN_FLIGHT: the intent) and the result (provider id and counters).
async fn sqlite_bound(path: &Path, n: usize) -> Result<f64> {
    let store = Store::open(path).await?;
    let id = contacts_campaign(&store, n).await?;
    let instance = store.instance_id().await?;
    let update = CallUpdate {
        status: Some(switchboard::model::CallStatus::Queued),
        ..CallUpdate::default()
    };
    let started = Instant::now();
    let mut i = 0;
    while let Some((job, attempt)) = store.claim_call(id, &instance, "bench").await? {
        let provider = format!("p{i}");
        store
            .record_created(
                job.call_id,
                attempt,
                AttemptOutcome::Created,
                &provider,
                &update,
            )
            .await?;
        i += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    store.close().await;
    Ok(rate)
}

/// Achieved create rate at a configured 20/s (burst 1), from the engine's own attempt log.
async fn rate_accuracy(secs: u64) -> Result<()> {
    let rate = 20.0;
    let dir = tempfile::tempdir()?;
    let sim = idle_simulator().await?;
    let path = dir.path().join("rate.db");
    let store = Store::open(&path).await?;
    contacts_campaign(&store, (rate as usize) * (secs as usize) + 100).await?;
    let mut config = Config::default();
    config.vapi.base_url = sim.base_url();
    config.dispatch.rate_per_second = rate;
    config.dispatch.burst = 1;
    config.dispatch.max_concurrent_calls = 100_000;
    config.tracking.poll_interval_ms = 3_600_000;
    let vapi = VapiClient::new(
        &config.vapi.base_url,
        Secret::from("k"),
        config.request_timeout(),
    )?;
    let engine = dispatch::start(config, store.clone(), vapi).await?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    engine.shutdown().await;
    sim.shutdown().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
    let starts: Vec<String> =
        sqlx::query_scalar("SELECT started_at FROM call_attempts ORDER BY started_at")
            .fetch_all(&pool)
            .await?;
    let times: Vec<f64> = starts
        .iter()
        .filter_map(|s| switchboard::store::parse_time(s))
        .map(|t| t.timestamp_micros() as f64 / 1e6)
        .collect();
    if times.len() < 2 {
        return Err("too few creates to measure the rate".into());
    }
    let span = times[times.len() - 1] - times[0];
    let mean = (times.len() - 1) as f64 / span;
    let mut max_window = 0;
    for (i, t) in times.iter().enumerate() {
        let n = times[i..].iter().take_while(|u| **u < t + 1.0).count();
        max_window = max_window.max(n);
    }
    println!("rate_configured_per_s: {rate:.1}");
    println!("rate_achieved_per_s: {mean:.3}");
    println!("rate_error_pct: {:.2}", (mean - rate).abs() / rate * 100.0);
    println!(
        "max_per_second_window: {max_window} (limit rate + burst = {})",
        rate as usize + 1
    );
    Ok(())
}

/// `n` contacts whose numbers come in no particular order (a multiplicative permutation of
/// the ordered ones): every insert lands somewhere else in the phone index.
fn unordered_contacts(n: usize) -> String {
    let mut csv = String::with_capacity(32 * (n + 1));
    csv.push_str("name,phone\n");
    // 7,919,993 is coprime with 8,000,000 (odd, not a multiple of 5): i -> i * it mod
    // 8,000,000 is a permutation.
    for i in 0..n as u64 {
        let scrambled = i * 7_919_993 % 8_000_000;
        csv.push_str(&format!("Contact {i},+1415{:07}\n", 2_000_000 + scrambled));
    }
    csv
}

/// The imports: in phone order and in none, into SQLite and into a throw-away PostgreSQL.
fn imports(rows: usize) -> Result<()> {
    import(rows, "import", switchboard::demo::generated_contacts)?;
    import(rows, "import_unordered", unordered_contacts)?;
    match pg::PgServer::start_with("bench import", true) {
        Some(server) => {
            let url = server.url("postgres");
            import_into(
                rows,
                "import_pg",
                switchboard::demo::generated_contacts,
                &url,
            )?;
            import_into(rows, "import_unordered_pg", unordered_contacts, &url)?;
        }
        None => println!("import_pg: SKIPPED (no PostgreSQL server binaries)"),
    }
    Ok(())
}

/// Imports a generated CSV in a child process, so its peak RSS is the import's alone; its
/// figures are printed as `{label}_rows_per_s` and `{label}_peak_rss_mb`.
fn import(rows: usize, label: &str, contacts: fn(usize) -> String) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("import.db").display().to_string();
    import_into(rows, label, contacts, &db)
}

/// The same into `db`: a SQLite path or a PostgreSQL URL (whose server's memory is not in
/// the peak RSS).
fn import_into(rows: usize, label: &str, contacts: fn(usize) -> String, db: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("contacts.csv");
    std::fs::write(&csv, contacts(rows))?;
    let out = Command::new(std::env::current_exe()?)
        .args(["--child-import", &csv.display().to_string(), db, label])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "import child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

fn child_import(csv: &Path, db: &str, label: &str) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = if db.starts_with("postgres://") {
            Store::open_postgres(db).await?
        } else {
            Store::open(Path::new(db)).await?
        };
        let c = store.create_campaign(label, "a", "p").await?;
        let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(csv)?);
        let started = Instant::now();
        let report =
            switchboard::import::import_contacts(&store, c.id, file, &Default::default(), |_| {})
                .await?;
        let secs = started.elapsed().as_secs_f64();
        println!("{label}_rows: {}", report.imported);
        println!(
            "{label}_rows_per_s: {:.0} (goal >= 200000)",
            report.imported as f64 / secs
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    println!("{label}_peak_rss_mb: {:.1} (goal < 150)", hwm_kb / 1024.0);
    Ok(())
}

/// Builds and renders one console frame with `n` calls in the store: the page read of the
/// visible window plus the render on TestBackend 160x48.
async fn frame(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("frame.db");
    let store = Store::open(&path).await?;
    let c = store.create_campaign("big", "a", "p").await?;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
    let fill = Instant::now();
    sqlx::query(
        "WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?) \
         INSERT INTO contacts (campaign_id, name, phone, status, sequence, created_at) \
         SELECT ?, 'Contact ' || x, '+1415' || (2000000 + x), 'DONE', 1, '2026-11-24T00:00:00.000Z' FROM seq",
    )
    .bind(n as i64)
    .bind(c.id)
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO calls (campaign_id, contact_id, sequence, reference, status, provider_call_id, attempt_count, \
         ended_reason, created_at, updated_at) \
         SELECT campaign_id, id, 1, 'r' || id, CASE id % 10 WHEN 0 THEN 'FAILED' ELSE 'ENDED' END, \
         CASE id % 10 WHEN 0 THEN NULL ELSE 'p' || id END, 1 + id % 3, \
         CASE id % 10 WHEN 0 THEN 'HTTP 400: bad number' ELSE 'customer-ended-call' END, \
         '2026-11-24T00:00:00.000Z', '2026-11-24T00:00:00.000Z' FROM contacts",
    )
    .execute(&pool)
    .await?;
    pool.close().await;
    store.recompute_counters().await?;
    println!("frame_fill_s: {:.1}", fill.elapsed().as_secs_f64());

    let keys = KeyRegistry::new(&Default::default())?;
    let mut app = App::new(ConsoleOptions::default(), keys);
    let mut terminal = Terminal::new(TestBackend::new(160, 48))?;
    app.apply(Update::Resize {
        width: 160,
        height: 48,
    });
    let campaign = store.campaign(c.id).await?;
    let snapshot = Snapshot {
        version: 1,
        campaigns: vec![switchboard::dispatch::CampaignView {
            id: campaign.id,
            name: campaign.name.clone(),
            status: campaign.status,
            pause_reason: None,
            pause_cause: None,
            started_at: None,
            completed_at: None,
            contacts_total: campaign.contacts_total,
            contacts_done: campaign.contacts_done,
            pending: 0,
            creating: 0,
            active: 0,
            created: campaign.total_calls_created,
            ended: campaign.ended_calls,
            failed: campaign.failed_calls,
            cost_usd: 0.0,
            success_rate: Some(0.9),
            estimated_remaining_usd: None,
            reasons: store.reason_histogram(c.id).await?,
            waiting: None,
            rules: None,
            reach: None,
        }],
        ..Snapshot::default()
    };
    app.apply(Update::Snapshot(Box::new(snapshot)));
    let total = {
        let started = Instant::now();
        let total = store.call_count(&app.current_query()).await?;
        println!(
            "call_count_ms_1m_calls: {:.1} (re-read at most every 2 s)",
            started.elapsed().as_secs_f64() * 1e3
        );
        total
    };
    let frames = 50;
    let started = Instant::now();
    for i in 0..frames {
        let mut query = app.current_query();
        query.offset = (i * 40) as i64;
        let rows = store.call_page_near(&query, Some(total)).await?;
        app.apply(Update::Page { query, rows, total });
        terminal.draw(|f| f.render_widget(&app, f.area()))?;
    }
    let per_frame = started.elapsed().as_secs_f64() * 1e3 / frames as f64;
    println!("frame_calls: {n}");
    println!("frame_ms_1m_calls: {per_frame:.2} (bound 5)");
    // The far end of the list (`G`) is read from the other end, as the console does. A
    // window in the middle is read by key around a row the console holds (keyset paging):
    // the row there is found first (untimed), as scrolling there would have loaded it.
    for (name, offset) in [("last_page", total - 40), ("middle", total / 2)] {
        // Ten windows a page apart, each timed alone (the anchor's look-up is not).
        let mut spent = 0.0;
        for step in 0..10 {
            let offset = offset - step * 40;
            let mut query = app.current_query();
            query.offset = offset;
            query.anchor = None;
            if name == "middle" {
                let probe = CallQuery {
                    offset,
                    limit: 1,
                    anchor: None,
                    ..query.clone()
                };
                let held = store.call_page_near(&probe, Some(total)).await?;
                let row = held.first().ok_or("no row in the middle")?;
                query.anchor = Some(Anchor::of(offset, row));
            }
            let started = Instant::now();
            let rows = store.call_page_near(&query, Some(total)).await?;
            app.apply(Update::Page { query, rows, total });
            terminal.draw(|f| f.render_widget(&app, f.area()))?;
            spent += started.elapsed().as_secs_f64() * 1e3;
        }
        println!("frame_ms_1m_calls_{name}: {:.2} (bound 5)", spent / 10.0);
    }
    filtered_frames(&store, &mut app, &mut terminal).await
}

/// The same console with a `/` expression in force: the exact count of its matches (the
/// console re-reads it at most every 2 s), then frames paged through them from the top and
/// by key from the middle. One expression the indexes serve (a status), one they cannot
/// (text in the ended reason, read row by row until a window is full).
async fn filtered_frames(
    store: &Store,
    app: &mut App,
    terminal: &mut Terminal<TestBackend>,
) -> Result<()> {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    for (name, expression) in [
        ("status", "status = FAILED and attempts >= 2"),
        ("text", "reason ~ ended or zone = America/Chicago"),
    ] {
        app.handle_key(KeyEvent::from(KeyCode::Char('/')));
        for c in expression.chars() {
            app.handle_key(KeyEvent::from(KeyCode::Char(c)));
        }
        app.handle_key(KeyEvent::from(KeyCode::Enter));
        let started = Instant::now();
        let total = store.call_count(&app.current_query()).await?;
        println!(
            "filter_count_ms_1m_calls_{name}: {:.1} ({total} matches of `{expression}`; re-read at most every 2 s)",
            started.elapsed().as_secs_f64() * 1e3
        );
        let mut spent = 0.0;
        let frames = 20;
        for i in 0..frames {
            let mut query = app.current_query();
            query.offset = (i * 40).min((total - 40).max(0));
            query.anchor = None;
            if i >= frames / 2 {
                // The second half: windows around a held row in the middle, by key.
                let offset = total / 2 - (i - frames / 2) * 40;
                let probe = CallQuery {
                    offset,
                    limit: 1,
                    ..query.clone()
                };
                let held = store.call_page_near(&probe, Some(total)).await?;
                let row = held.first().ok_or("no row in the middle")?;
                query.offset = offset;
                query.anchor = Some(Anchor::of(offset, row));
            }
            let started = Instant::now();
            let rows = store.call_page_near(&query, Some(total)).await?;
            app.apply(Update::Page { query, rows, total });
            terminal.draw(|f| f.render_widget(&*app, f.area()))?;
            spent += started.elapsed().as_secs_f64() * 1e3;
        }
        println!(
            "frame_ms_1m_calls_filtered_{name}: {:.2} (bound 5)",
            spent / frames as f64
        );
        app.handle_key(KeyEvent::from(KeyCode::Esc));
    }
    Ok(())
}

/// CPU used by an idle console (nothing dispatching) over `secs`, under tmux.
fn idle_cpu(secs: u64) -> Result<()> {
    let binary = match built_binary() {
        Some(binary) if Command::new("tmux").arg("-V").output().is_ok() => binary,
        _ => {
            println!("console_idle_cpu_pct: skipped (needs tmux and `cargo build --release`)");
            return Ok(());
        }
    };
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("switchboard.toml"),
        "[vapi]\nbase_url = \"http://127.0.0.1:9\"\n",
    )?;
    let session = format!("sb-bench-{}", std::process::id());
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "160",
            "-y",
            "48",
            "-c",
        ])
        .arg(dir.path())
        .args(["-e", "VAPI_API_KEY=bench-idle"])
        .arg(format!("{} console --read-only", binary.display()))
        .status()?;
    if !status.success() {
        return Err("tmux new-session failed".into());
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = String::from_utf8(
        Command::new("tmux")
            .args(["list-panes", "-t", &session, "-F", "#{pane_pid}"])
            .output()?
            .stdout,
    )?;
    let pid: u32 = pid.trim().parse()?;
    let ticks = || -> Result<u64> { Ok(process_use(pid)?.0) };
    let before = ticks()?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let used = ticks()? - before;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    // /proc times are in clock ticks of 1/100 s on Linux.
    println!(
        "console_idle_cpu_pct: {:.2} ({used} ticks of 10 ms in {elapsed:.1} s; goal < 0.5 %)",
        used as f64 / 100.0 / elapsed * 100.0
    );
    Ok(())
}

/// The `switchboard` binary of the benchmark's own profile (`cargo build --release` for
/// figures), if built.
fn built_binary() -> Option<PathBuf> {
    let binary = std::env::current_exe()
        .ok()?
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("switchboard"))?;
    binary.exists().then_some(binary)
}

/// CPU ticks (1/100 s) a process used so far, and its resident memory in MB.
fn process_use(pid: u32) -> Result<(u64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Ok((field(11) + field(12), rss_kb / 1024.0))
}

/// The engine at scale: `switchboard run --headless` (a child process, so its memory is its
/// own) on a campaign of `contacts` with `live` calls of ten minutes at the simulator, no
/// webhooks. Its RSS once they are all live, and its CPU over `follow_secs` while it follows
/// them.
fn scale(
    runtime: &tokio::runtime::Runtime,
    contacts: usize,
    live: u32,
    follow_secs: u64,
) -> Result<()> {
    let Some(binary) = built_binary() else {
        println!("scale: skipped (needs `cargo build --release`)");
        return Ok(());
    };
    let sim = runtime.block_on(Simulator::start(
        SimConfig {
            api_key: "k".into(),
            concurrency_limit: 0,
            queue_ms: 50,
            ring_ms: 50,
            talk_min_ms: 600_000,
            talk_max_ms: 600_000,
            seed: Some(3),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    ))?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("scale.db");
    runtime.block_on(async {
        let store = Store::open(&db).await?;
        let c = store.create_campaign("scale", "asst", "pn").await?;
        let csv = switchboard::demo::generated_contacts(contacts);
        switchboard::import::import_contacts(
            &store,
            c.id,
            csv.as_bytes(),
            &Default::default(),
            |_| {},
        )
        .await?;
        store.start_campaign(c.id).await?;
        store.close().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!(
            "[database]\npath = \"scale.db\"\n[vapi]\nbase_url = \"{}\"\nmax_requests_per_second = 1000.0\n\
             [dispatch]\nrate_per_second = 500.0\nmax_concurrent_calls = {live}\n",
            sim.base_url()
        ),
    )?;
    let mut child = Command::new(binary)
        .current_dir(dir.path())
        .env("VAPI_API_KEY", "k")
        .args(["run", "--headless"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(180);
    while sim.stats().active_now < u64::from(live) && Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Err("the engine exited early".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let reached = sim.stats().active_now;
    let ramp = started.elapsed().as_secs_f64();
    // Settle a moment, then follow them.
    std::thread::sleep(Duration::from_secs(2.min(follow_secs)));
    let (before, _) = process_use(child.id())?;
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(follow_secs));
    let (after, rss_mb) = process_use(child.id())?;
    let secs = window.elapsed().as_secs_f64();
    let requests = sim.stats();
    let _ = child.kill();
    let _ = child.wait();
    runtime.block_on(sim.shutdown());
    let cpu_pct = (after - before) as f64 / secs;
    println!(
        "scale_live_calls: {reached} of {live} ({contacts} contacts; all live after {ramp:.1} s)"
    );
    println!("scale_engine_rss_mb: {rss_mb:.1}");
    println!("scale_engine_cpu_pct: {cpu_pct:.2} (following {reached} live calls, no webhooks)");
    println!(
        "scale_cpu_us_per_live_call_per_s: {:.2} ({} reads in all)",
        cpu_pct / 100.0 * 1e6 / reached.max(1) as f64,
        requests.get_requests
    );
    Ok(())
}
