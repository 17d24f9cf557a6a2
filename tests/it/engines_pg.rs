//! Several engines on one PostgreSQL: three `run --headless` processes share a campaign
//! against `switchboard simulate --realism`; one is SIGKILLed mid-campaign. The simulator's
//! record shows no attempt sequence dialled twice and the account's limits held for all three
//! together (create rate in any 1 s window, peak concurrency); the database shows every
//! contact done and the killed engine's unfinished calls settled by the survivors.
//! Skipped (with a SKIPPED line) where no PostgreSQL server binaries are installed, unless CI.

use crate::common;

use std::process::{Child, Command, Stdio};

use common::process::{BIN, Killed, free_port, ok, stats};
use std::time::{Duration, Instant};

use common::pg::PgServer;
use switchboard::model::{CallStatus, ContactStatus};
use switchboard::store::Store;
use switchboard::store::stats::{CallQuery, CallTab};

const KEY: &str = "pg-key";

fn sb(dir: &std::path::Path) -> std::process::Command {
    common::process::sb(dir, KEY)
}

const RATE: u64 = 12;
const CAP: u64 = 10;

#[tokio::test(flavor = "multi_thread")]
async fn three_engines_share_a_campaign_and_survive_a_kill() {
    let Some(pg) = PgServer::start("three_engines_share_a_campaign_and_survive_a_kill") else {
        return;
    };
    let url = pg.url("postgres");
    let contacts = 120;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _sim = Killed(
        Command::new(BIN)
            .args([
                "simulate",
                "--port",
                &port.to_string(),
                "--api-key",
                KEY,
                "--realism",
                "--fault-429",
                "0.05",
                "--fault-503",
                "0.03",
                "--fault-timeout",
                "0.03",
                "--fault-late-create",
                "0.03",
                "--late-create-ms",
                "1200",
                "--fault-5xx-after-create",
                "0.03",
                "--hang-ms",
                "1500",
                "--latency-ms",
                "300",
                "--queue-ms",
                "5",
                "--ring-ms",
                "5",
                "--talk-min-ms",
                "300",
                "--talk-max-ms",
                "1200",
                "--concurrency-limit",
                "0",
                "--seed",
                "7",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start simulator"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "simulator did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!(
            "[database]\nurl = \"{url}\"\n[vapi]\nbase_url = \"{base}\"\nrequest_timeout_ms = 1000\nlookup_skew_ms = 1000\nsettle_after_ms = 2500\nlease_timeout_ms = 3000\nmax_requests_per_second = 500.0\n\
             [dispatch]\nrate_per_second = {RATE}.0\nmax_concurrent_calls = {CAP}\nbackoff_ms = [10, 30, 60]\nquick_hangup_ms = 0\n\
             breaker_failures = 10000\ntick_ms = 50\n[tracking]\npoll_interval_ms = 100\npoll_requests_per_second = 1000.0\nfallback_after_ms = 500\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.csv"),
        switchboard::demo::generated_contacts(contacts),
    )
    .unwrap();
    ok(sb(dir.path())
        .args([
            "campaign",
            "create",
            "multi",
            "--assistant-id",
            "a",
            "--phone-number-id",
            "p",
        ])
        .args(common::process::ANY_HOUR));
    ok(sb(dir.path()).args(["contacts", "import", "multi", "c.csv"]));
    ok(sb(dir.path()).args(["campaign", "start", "multi"]));

    let spawn = || {
        sb(dir.path())
            .args(["run", "--headless", "--until-done"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start engine")
    };
    let mut engines: Vec<Child> = (0..3).map(|_| spawn()).collect();
    let store = Store::open_postgres(&url).await.expect("open store");

    // Mid-campaign, with the victim holding calls being created: SIGKILL it.
    let victim_pid = i64::from(engines[1].id());
    let started = Instant::now();
    let victim_id = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the engines did not start dispatching"
        );
        let holder = store
            .live_engines(60_000)
            .await
            .unwrap()
            .into_iter()
            .find(|h| h.pid == victim_pid);
        let created = stats(&base).await.calls_created;
        if let Some(h) = holder
            && created >= 15
            && !unfinished_of(&store, &h.holder).await.is_empty()
        {
            break h.holder;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    engines[1].kill().expect("SIGKILL");
    let _ = engines[1].wait();
    let orphans = unfinished_of(&store, &victim_id).await;
    assert!(!orphans.is_empty(), "the kill left calls in flight");

    // The survivors finish the campaign (bounded).
    for (i, child) in engines.iter_mut().enumerate() {
        if i == 1 {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            if let Some(status) = child.try_wait().expect("poll") {
                assert!(status.success(), "engine {i} ended with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "engine {i} did not finish the campaign"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let sim = stats(&base).await;
    let twice: Vec<_> = sim
        .created_per_name
        .iter()
        .filter(|(_, n)| **n > 1)
        .collect();
    assert!(twice.is_empty(), "dialled twice: {twice:?}");
    let c = store.campaign_by_name("multi").await.unwrap();
    assert_eq!(
        store
            .count_contacts(c.id, ContactStatus::Done)
            .await
            .unwrap(),
        contacts as i64,
        "every contact done, none lost"
    );
    assert_eq!(
        c.total_calls_created as u64, sim.calls_created,
        "every call Vapi created is known here"
    );
    assert_eq!(store.in_flight_attempts().await.unwrap(), 0);
    assert!(store.verify_counters().await.unwrap().is_empty());
    // The killed engine's unfinished calls were settled by the survivors: adopted (their
    // engine id changed) or followed to their end by a survivor's reads of Vapi.
    let mut adopted = 0;
    for id in &orphans {
        let call = store.call(*id).await.unwrap();
        assert!(
            call.status.is_terminal(),
            "call {id} of the killed engine left {}",
            call.status
        );
        if call.engine_id.as_deref() != Some(victim_id.as_str()) {
            adopted += 1;
        }
    }
    assert!(
        store
            .live_engines(60_000)
            .await
            .unwrap()
            .iter()
            .all(|h| h.holder != victim_id),
        "the killed engine's lease was taken over"
    );
    let calls = store
        .call_page(&CallQuery {
            tab: CallTab::All,
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        calls
            .iter()
            .all(|r| matches!(r.status, CallStatus::Ended | CallStatus::Failed))
    );
    assert!(
        sim.max_creates_per_second <= RATE,
        "combined create rate {} /s above the configured {RATE}/s",
        sim.max_creates_per_second
    );
    assert!(
        sim.peak_concurrency <= CAP,
        "combined concurrency {} above the cap {CAP}",
        sim.peak_concurrency
    );
    println!(
        "engines_pg: 3 engines, 1 SIGKILL with {} calls unfinished ({adopted} adopted by survivors), {contacts} contacts, {} creates, max {} creates/s (bound {RATE}), peak concurrency {} (cap {CAP})",
        orphans.len(),
        sim.calls_created,
        sim.max_creates_per_second,
        sim.peak_concurrency
    );
}

/// Calls of `engine` still being created, settled or live at Vapi.
async fn unfinished_of(store: &Store, engine: &str) -> Vec<i64> {
    let calls = store
        .call_page(&CallQuery {
            tab: CallTab::All,
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for r in calls {
        if r.status.is_terminal() {
            continue;
        }
        let call = store.call(r.id).await.unwrap();
        if call.engine_id.as_deref() == Some(engine) {
            out.push(r.id);
        }
    }
    out
}

/// `migrate-db` copies a SQLite history (campaign, contacts, calls, attempts) into an empty
/// PostgreSQL database: the same campaigns, counters and calls; a second copy is refused.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_db_copies_a_sqlite_history_into_postgres() {
    let Some(pg) = PgServer::start("migrate_db_copies_a_sqlite_history_into_postgres") else {
        return;
    };
    let url = pg.url("postgres");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.db");
    let sqlite = Store::open(&path).await.unwrap();
    let id = common::campaign(&sqlite, "history", 5).await;
    let instance = sqlite.instance_id().await.unwrap();
    let (job, attempt) = sqlite
        .claim_call(id, &instance, "e1")
        .await
        .unwrap()
        .expect("a contact to claim");
    let update = switchboard::store::calls::CallUpdate {
        status: Some(CallStatus::Queued),
        ..Default::default()
    };
    sqlite
        .record_created(
            job.call_id,
            attempt,
            switchboard::model::AttemptOutcome::Created,
            "prov-1",
            &update,
        )
        .await
        .unwrap();
    sqlite.close().await;
    let copy = |to: &str| {
        sb(dir.path())
            .args(["migrate-db", "--from"])
            .arg(&path)
            .args(["--to", to])
            .output()
            .expect("migrate-db")
    };
    let out = copy(&url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source = Store::open(&path).await.unwrap();
    let target = Store::open_postgres(&url).await.unwrap();
    assert_eq!(
        target.campaigns().await.unwrap(),
        source.campaigns().await.unwrap()
    );
    assert_eq!(target.instance_id().await.unwrap(), instance);
    assert_eq!(
        target.call(job.call_id).await.unwrap(),
        source.call(job.call_id).await.unwrap()
    );
    assert_eq!(
        target.attempts(job.call_id).await.unwrap(),
        source.attempts(job.call_id).await.unwrap()
    );
    assert!(target.verify_counters().await.unwrap().is_empty());
    // New rows continue after the copied ids.
    let next = target
        .claim_call(id, &instance, "e2")
        .await
        .unwrap()
        .expect("another contact");
    assert!(next.0.call_id > job.call_id);
    // A second copy into a database with campaigns is refused in one line.
    let again = copy(&url);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("empty database"), "{err}");
}

/// The console's reads on PostgreSQL too: the Pending tab (its next dial times from
/// `eligible_at`/`eligible_reason` and the window, its count and filter), a window read by
/// key, and the campaign report's grouped query.
#[tokio::test]
async fn the_pending_times_and_the_campaign_report_read_on_postgres() {
    use chrono::{DateTime, Utc};
    use switchboard::policy::WaitReason;
    let Some(pg) = PgServer::start("the_pending_times_and_the_campaign_report_read_on_postgres")
    else {
        return;
    };
    let store = Store::open_postgres(&pg.url("postgres")).await.unwrap();
    let id = common::campaign(&store, "report", 2).await;
    let mut rules = store.campaign_rules(id).await.unwrap();
    rules.timezone = "America/Chicago".into();
    rules.call_window = "09:00-20:00".into();
    rules.redial_count = 1;
    store.set_campaign_rules(id, &rules).await.unwrap();
    let at: DateTime<Utc> = "2025-05-01T15:00:00Z".parse().unwrap(); // 10:00 in Chicago
    let instance = store.instance_id().await.unwrap();
    let (job, attempt) = store
        .claim_call_at(id, &instance, "e1", at)
        .await
        .unwrap()
        .expect("a contact to claim");
    store
        .record_created(
            job.call_id,
            attempt,
            switchboard::model::AttemptOutcome::Created,
            "prov-1",
            &Default::default(),
        )
        .await
        .unwrap();
    let ended = switchboard::store::calls::CallUpdate {
        status: Some(CallStatus::Ended),
        ended_reason: Some("customer-busy".into()),
        cost_usd: Some(0.25),
        ended_at: Some("2025-05-01T15:01:00.000Z".into()),
        ..Default::default()
    };
    store.apply_call_update("prov-1", &ended).await.unwrap();

    let report = store.campaign_report(id).await.unwrap();
    assert_eq!(report.by_reason.len(), 1);
    assert_eq!(report.by_reason[0].key, "customer-busy");
    assert_eq!(report.by_hour[0].key, 10, "{report:?}");
    assert_eq!(report.by_dial[0].key, 1);
    assert!((report.by_dial[0].cost_usd - 0.25).abs() < 1e-9);

    let query = CallQuery {
        campaign_id: Some(id),
        tab: CallTab::Pending,
        limit: 10,
        ..Default::default()
    };
    let rows = store.pending_page_at(&query, at).await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The busy contact waits for its redial (two hours after the end); the other is due.
    let redial = rows
        .iter()
        .find(|r| r.contact_id == job.contact_id)
        .unwrap();
    let waiting = redial.waiting.as_ref().expect("a redial to wait for");
    assert!(
        matches!(&waiting.why, WaitReason::Deferred(r) if r == "redial 1 of 1 after customer-busy"),
        "{waiting:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contact_id != job.contact_id && r.waiting.is_none())
    );
    // The tab's count and its filter (case-insensitive, as on SQLite).
    let filtered = CallQuery {
        text: Some("CONTACT 1".into()),
        ..query.clone()
    };
    assert_eq!(store.call_count(&filtered).await.unwrap(), 1);
    assert_eq!(store.pending_page_at(&filtered, at).await.unwrap().len(), 1);
    // An expression over each waiting contact and its latest call.
    let busy = CallQuery {
        filter: Some(switchboard::model::filter::parse("reason ~ busy").unwrap()),
        ..query.clone()
    };
    assert_eq!(store.call_count(&busy).await.unwrap(), 1);
    let rows = store.pending_page_at(&busy, at).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].contact_id, job.contact_id);
    // A window read by key around a held row (deep in a long list).
    let all = CallQuery {
        campaign_id: Some(id),
        limit: 5,
        ..Default::default()
    };
    let first = store.call_page(&all).await.unwrap();
    assert_eq!(first.len(), 1);
    let anchored = CallQuery {
        anchor: Some(switchboard::store::stats::Anchor::of(0, &first[0])),
        ..all
    };
    let by_key = store.call_page(&anchored).await.unwrap();
    assert_eq!(
        by_key.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![first[0].id]
    );
}
