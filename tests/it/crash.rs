//! Crash safety and chaos: the real binary runs headless against `switchboard simulate` (a
//! separate process) with injected faults, and is killed with SIGKILL at random moments,
//! then restarted. The simulator's own record proves no contact was dialled twice per attempt
//! sequence; the database must account for every contact with consistent counters.
//!
//! The short form runs in `cargo test`; the long form (`--ignored`) uses thousands of contacts.

use crate::common;

use std::process::{Command, Stdio};

use common::process::{BIN, Killed, free_port, ok, stats};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use switchboard::model::{CallStatus, ContactStatus};
use switchboard::store::Store;
use switchboard::store::stats::{CallQuery, CallTab};

const KEY: &str = "chaos-key";

fn sb(dir: &std::path::Path) -> std::process::Command {
    common::process::sb(dir, KEY)
}

async fn chaos(contacts: usize, kills: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
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
                // The production-hard profile: unordered lists, late creation after the client
                // gave up, 5xx after a create, read 429s, start errors, vanishing calls, late
                // costs; with the refusals turned up.
                "--realism",
                "--fault-429",
                "0.10",
                "--fault-503",
                "0.06",
                "--fault-504",
                "0.05",
                "--fault-timeout",
                "0.04",
                "--fault-late-create",
                "0.04",
                "--late-create-ms",
                "1200",
                "--fault-5xx-after-create",
                "0.04",
                "--hang-ms",
                "1500",
                // Slow creates (0.8 s, reads stay fast): kills often land while a create is
                // still being processed, and a restart at once must not send it again.
                "--latency-ms",
                "800",
                "--queue-ms",
                "5",
                "--ring-ms",
                "5",
                "--talk-min-ms",
                "20",
                "--talk-max-ms",
                "150",
                "--concurrency-limit",
                "0",
                "--seed",
                &seed.to_string(),
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
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!(
            "[database]\npath = \"chaos.db\"\n[vapi]\nbase_url = \"{base}\"\nrequest_timeout_ms = 1000\nlookup_skew_ms = 1000\nsettle_after_ms = 2500\nlease_timeout_ms = 5000\nmax_requests_per_second = 500.0\n\
             [dispatch]\nrate_per_second = 50.0\nmax_concurrent_calls = 60\nbackoff_ms = [10, 30, 60]\nquick_hangup_ms = 0\n\
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
            "chaos",
            "--assistant-id",
            "a",
            "--phone-number-id",
            "p",
        ])
        .args(common::process::ANY_HOUR));
    ok(sb(dir.path()).args(["contacts", "import", "chaos", "c.csv"]));
    ok(sb(dir.path()).args(["campaign", "start", "chaos"]));

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut killed = 0;
    for round in 0..kills {
        let mut child = sb(dir.path())
            .args(["run", "--headless", "--until-done"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start engine");
        // Every other kill lands in the first second of a run (while the previous run's
        // requests may still be creating calls at the simulator), the others later.
        let alive_ms = if round % 2 == 0 {
            rng.random_range(30..1_000)
        } else {
            rng.random_range(300..2_500)
        };
        std::thread::sleep(Duration::from_millis(alive_ms));
        if child.try_wait().expect("poll child").is_none() {
            child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
            killed += 1;
        }
        let _ = child.wait();
    }
    assert!(
        killed >= kills.min(3),
        "the engine should have been killed mid-run ({killed} kills)"
    );

    let out = sb(dir.path())
        .args(["run", "--headless", "--until-done"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .expect("final run");
    assert!(
        out.status.success(),
        "final run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sim = stats(&base).await;
    let twice: Vec<_> = sim
        .created_per_name
        .iter()
        .filter(|(_, n)| **n > 1)
        .collect();
    let store = Store::open(&dir.path().join("chaos.db")).await.unwrap();
    if !twice.is_empty() {
        // Say how: the attempts of each call dialled twice.
        for (name, _) in &twice {
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM calls WHERE reference = ?")
                .bind(name.as_str())
                .fetch_optional(
                    &sqlx::SqlitePool::connect(&format!(
                        "sqlite://{}",
                        dir.path().join("chaos.db").display()
                    ))
                    .await
                    .unwrap(),
                )
                .await
                .unwrap();
            if let Some(id) = id {
                eprintln!(
                    "{name}: call {id}: {:#?}",
                    store.attempts(id).await.unwrap()
                );
            }
            let listed: serde_json::Value = switchboard::vapi::http::client()
                .get(format!("{base}/call?limit=1000"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for c in listed.as_array().into_iter().flatten() {
                if c["name"] == name.as_str() {
                    eprintln!(
                        "at the simulator: id {} createdAt {}",
                        c["id"], c["createdAt"]
                    );
                }
            }
        }
    }
    assert!(
        twice.is_empty(),
        "dialled twice within one attempt sequence: {twice:?}"
    );
    assert!(
        store.verify_counters().await.unwrap().is_empty(),
        "counters equal recomputed counts"
    );
    assert_eq!(
        store.in_flight_attempts().await.unwrap(),
        0,
        "no attempt left in flight"
    );
    let c = store.campaign_by_name("chaos").await.unwrap();
    assert_eq!(
        store
            .count_contacts(c.id, ContactStatus::Done)
            .await
            .unwrap(),
        contacts as i64,
        "every contact done"
    );
    assert_eq!(
        c.total_calls_created as u64, sim.calls_created,
        "every call Vapi created is known here"
    );
    let calls = store
        .call_page(&CallQuery {
            tab: CallTab::All,
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(calls.iter().all(|r| match r.status {
        CallStatus::Ended => r.ended_reason.is_some(),
        CallStatus::Failed => r.ended_reason.as_deref().is_some_and(|s| !s.is_empty()),
        _ => false,
    }));
    println!(
        "chaos: {contacts} contacts, {killed} SIGKILLs, {} create requests, {} calls created, {} failed, {} adopted by look-up",
        sim.create_requests,
        sim.calls_created,
        c.failed_calls,
        count_adopted(&store, &calls).await
    );
}

async fn count_adopted(store: &Store, calls: &[switchboard::store::stats::CallListRow]) -> usize {
    let mut n = 0;
    for c in calls {
        n += store
            .attempts(c.id)
            .await
            .unwrap()
            .iter()
            .filter(|a| a.outcome == switchboard::model::AttemptOutcome::Adopted)
            .count();
    }
    n
}

/// Starts `switchboard simulate` on a free port with `args`; waits until it listens.
fn simulator(args: &[&str]) -> (Killed, String) {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["simulate", "--port", &port.to_string(), "--api-key", KEY])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start simulator");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "simulator did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Killed(child), format!("http://127.0.0.1:{port}"))
}

/// A campaign of `contacts` in `dir` against `base`, started, with `extra` config lines.
fn campaign_dir(dir: &std::path::Path, base: &str, contacts: usize, extra: &str) {
    std::fs::write(
        dir.join("switchboard.toml"),
        format!(
            "[database]\npath = \"chaos.db\"\n[vapi]\nbase_url = \"{base}\"\nrequest_timeout_ms = 3000\n\
             settle_after_ms = 1500\nlookup_skew_ms = 1000\nlease_timeout_ms = 5000\nmax_requests_per_second = 500.0\n{extra}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("c.csv"),
        switchboard::demo::generated_contacts(contacts),
    )
    .unwrap();
    ok(sb(dir)
        .args([
            "campaign",
            "create",
            "c",
            "--assistant-id",
            "a",
            "--phone-number-id",
            "p",
        ])
        .args(common::process::ANY_HOUR));
    ok(sb(dir).args(["contacts", "import", "c", "c.csv"]));
    ok(sb(dir).args(["campaign", "start", "c"]));
}

/// SIGTERM (systemd, docker) quits like Ctrl-C: no new calls, the requests in flight finish
/// and are recorded, nothing is left IN_FLIGHT.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_quits_gracefully_and_records_requests_in_flight() {
    let (_sim, base) = simulator(&["--latency-ms", "800", "--concurrency-limit", "0"]);
    let dir = tempfile::tempdir().unwrap();
    campaign_dir(
        dir.path(),
        &base,
        50,
        "[dispatch]\nrate_per_second = 50.0\nmax_concurrent_calls = 20\n",
    );
    let mut child = sb(dir.path())
        .args(["run", "--headless"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start engine");
    // Wait until creates are in flight (each takes 0.8 s at the simulator).
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats(&base).await.create_requests < 5 {
        assert!(Instant::now() < deadline, "no create was sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    ok(Command::new("kill").args(["-TERM", &pid]));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "graceful stop, not a kill");
    let store = Store::open(&dir.path().join("chaos.db")).await.unwrap();
    assert_eq!(
        store.in_flight_attempts().await.unwrap(),
        0,
        "every request in flight was recorded"
    );
    let sim = stats(&base).await;
    let c = store.campaign_by_name("c").await.unwrap();
    assert_eq!(
        c.total_calls_created as u64, sim.calls_created,
        "every call Vapi created is known here"
    );
    assert!(
        (c.total_calls_created as usize) < 50,
        "dispatch stopped: {} created",
        c.total_calls_created
    );
}

/// `run --headless` twice on one database: the second is refused with one line naming the
/// first, and sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_headless_engine_is_refused_in_one_line() {
    let (_sim, base) = simulator(&["--latency-ms", "200", "--concurrency-limit", "0"]);
    let dir = tempfile::tempdir().unwrap();
    campaign_dir(dir.path(), &base, 20, "[dispatch]\nrate_per_second = 2.0\n");
    let first = Killed(
        sb(dir.path())
            .args(["run", "--headless"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start engine"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats(&base).await.create_requests < 1 {
        assert!(Instant::now() < deadline, "the first engine sent nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = sb(dir.path())
        .args(["run", "--headless", "--until-done"])
        .output()
        .expect("second engine");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr.trim();
    assert!(
        line.starts_with("error: another engine is dispatching from this database")
            && line.contains(&format!(":{}", first.0.id()))
            && !line.contains('\n'),
        "{stderr}"
    );
    drop(first);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_engine_loses_nothing_and_dials_nobody_twice() {
    chaos(600, 10, 42).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "long chaos run: cargo test --test crash -- --ignored"]
async fn chaos_thousands_of_contacts_many_kills() {
    chaos(3_000, 10, 7).await;
}
