//! The console in a real terminal: the built binary under tmux. Waits for the panes, pauses
//! with `p`, opens help with `?`, quits with `q` + confirmation, and checks the process exited
//! and the terminal was restored. Also checks the API key never reaches the screen, the logs or
//! the database.
//!
//! Needs tmux (.ci/run installs it). Without tmux the test says so and passes, except in CI
//! (CI=true), where a missing tmux is a failure.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use switchboard::simulator::{SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is required in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed; install it to run the real-terminal test");
    }
    found
}

struct Session {
    name: String,
}

impl Session {
    fn start(name: &str, dir: &Path, command: &str, env: &[(&str, &str)]) -> Session {
        let mut cmd = Command::new("tmux");
        cmd.args([
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "40",
            "-c",
        ])
        .arg(dir)
        .env_remove("CI");
        for (k, v) in env {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        cmd.arg(command);
        let status = cmd.status().expect("tmux new-session");
        assert!(status.success());
        Session {
            name: name.to_string(),
        }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name, keys])
            .status()
            .expect("send-keys");
    }

    fn wait_for(&self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{what:?} never appeared; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[test]
fn demo_console_pauses_helps_and_quits_cleanly_in_a_real_terminal() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("sb-demo-{}", std::process::id());
    let s = Session::start(
        &name,
        dir.path(),
        &format!("{BIN} demo --contacts 80; echo EXITED $?; sleep 30"),
        &[],
    );
    let screen = s.wait_for("Retry log", Duration::from_secs(30));
    assert!(
        screen.contains("DEMO") && screen.contains("Vapi is simulated"),
        "{screen}"
    );
    assert!(
        screen.contains("Campaign") && screen.contains("Quota"),
        "{screen}"
    );

    s.keys("p");
    s.wait_for("dispatch PAUSED", Duration::from_secs(5));
    s.keys("?");
    s.wait_for("show this help", Duration::from_secs(5));
    s.keys("Escape");
    s.keys("q");
    // Calls are in flight: quitting asks first, with Cancel as the default.
    s.wait_for("in flight", Duration::from_secs(5));
    s.keys("Enter");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        s.screen().contains("Retry log"),
        "Enter on the default (Cancel) must not quit"
    );
    s.keys("q");
    s.wait_for("in flight", Duration::from_secs(5));
    s.keys("y");
    let screen = s.wait_for("EXITED 0", Duration::from_secs(30));
    assert!(
        !screen.contains("Retry log"),
        "the alternate screen was left: {screen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_never_reaches_the_screen_the_logs_or_the_database() {
    if !tmux_available() {
        return;
    }
    const SECRET: &str = "sk-live-7c1e5ecret-9f2";
    let sim = Simulator::start(
        SimConfig {
            api_key: SECRET.into(),
            queue_ms: 5,
            ring_ms: 5,
            talk_min_ms: 20,
            talk_max_ms: 40,
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!("[vapi]\nbase_url = \"{}\"\n[dispatch]\nrate_per_second = 50.0\n[tracking]\npoll_interval_ms = 50\n", sim.base_url()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.csv"),
        switchboard::demo::generated_contacts(10),
    )
    .unwrap();
    let path = dir.path().to_path_buf();
    let sb = move |args: &[&str]| {
        Command::new(BIN)
            .current_dir(&path)
            .env("VAPI_API_KEY", SECRET)
            .env("RUST_LOG", "trace")
            .args(args)
            .output()
            .unwrap()
    };
    // Dispatch tests: calls at any hour, no caps, no redials (the policy has tests of its own).
    let create = [
        "campaign",
        "create",
        "c",
        "--assistant-id",
        "a",
        "--phone-number-id",
        "p",
    ];
    sb(&[&create[..], &common::process::ANY_HOUR[..]].concat());
    sb(&["contacts", "import", "c", "c.csv"]);
    sb(&["campaign", "start", "c"]);
    let out = tokio::task::block_in_place(|| sb(&["run", "--headless", "--until-done"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(logs.contains("call created"), "trace logs were written");
    assert!(!logs.contains(SECRET), "the key is in the logs");

    // The console on the same database, read-only, with the key in its environment.
    let name = format!("sb-key-{}", std::process::id());
    let s = Session::start(
        &name,
        dir.path(),
        &format!("{BIN} console --read-only; echo EXITED $?; sleep 30"),
        &[("VAPI_API_KEY", SECRET)],
    );
    let screen = s.wait_for("Retry log", Duration::from_secs(30));
    assert!(!screen.contains(SECRET), "the key is on screen");
    s.keys("l"); // the tracing log view
    std::thread::sleep(Duration::from_millis(500));
    assert!(!s.screen().contains(SECRET), "the key is in the log pane");
    s.keys("q");
    s.wait_for("EXITED 0", Duration::from_secs(30));

    for file in ["switchboard.db", "switchboard.db-wal", "switchboard.db-shm"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "the key is in {file}"
            );
        }
    }
    sim.shutdown().await;
}

/// A console opened on the database of an engine running headless attaches to it: it shows
/// the engine's history, and `p` pauses that engine (which stops creating calls).
#[tokio::test(flavor = "multi_thread")]
async fn a_console_attaches_to_a_headless_engine_and_pauses_it() {
    if !tmux_available() {
        return;
    }
    let sim = Simulator::start(
        SimConfig {
            api_key: "attach-key".into(),
            queue_ms: 5,
            ring_ms: 5,
            talk_min_ms: 3_000,
            talk_max_ms: 3_000,
            concurrency_limit: 0,
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!(
            "[vapi]\nbase_url = \"{}\"\n[dispatch]\nrate_per_second = 4.0\nmax_concurrent_calls = 200\n",
            sim.base_url()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.csv"),
        switchboard::demo::generated_contacts(400),
    )
    .unwrap();
    let sb = |args: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .env("VAPI_API_KEY", "attach-key")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Dispatch tests: calls at any hour, no caps, no redials (the policy has tests of its own).
    let create = [
        "campaign",
        "create",
        "c",
        "--assistant-id",
        "a",
        "--phone-number-id",
        "p",
    ];
    sb(&[&create[..], &common::process::ANY_HOUR[..]].concat());
    sb(&["contacts", "import", "c", "c.csv"]);
    sb(&["campaign", "start", "c"]);
    let mut engine = Command::new(BIN)
        .current_dir(dir.path())
        .env("VAPI_API_KEY", "attach-key")
        .args(["run", "--headless"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while sim.stats().calls_created < 3 {
        assert!(Instant::now() < deadline, "the engine created nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The console: no key in its environment is needed to attach. The waits below block
    // this thread, so they run off the runtime's workers (the simulator is served there).
    tokio::task::block_in_place(|| {
        // The console: no key in its environment is needed to attach.
        let name = format!("sb-attach-{}", std::process::id());
        let s = Session::start(
            &name,
            dir.path(),
            &format!("{BIN} console; echo EXITED $?; sleep 30"),
            &[],
        );
        let screen = s.wait_for("attached to", Duration::from_secs(30));
        assert!(
            screen.contains(&format!(":{}", engine.id())),
            "names the engine: {screen}"
        );
        // History from before the console started: the CLI's start and the engine's creates.
        s.wait_for("created at Vapi", Duration::from_secs(10));
        s.keys("p");
        s.wait_for("dispatch PAUSED", Duration::from_secs(10));
        // The engine picks the pause up within a tick and sends nothing more.
        std::thread::sleep(Duration::from_millis(1_000));
        let before = sim.stats().create_requests;
        std::thread::sleep(Duration::from_millis(2_000));
        assert_eq!(
            sim.stats().create_requests,
            before,
            "the engine kept creating after the attached console paused it"
        );
        assert!(before < 400, "paused mid-campaign ({before} creates)");
        eprintln!("attached console paused the engine after {before} creates");
        s.keys("q");
        s.wait_for("EXITED 0", Duration::from_secs(30));
        assert!(
            engine.try_wait().unwrap().is_none(),
            "leaving the attached console leaves the engine running"
        );
    });
    let _ = engine.kill();
    let _ = engine.wait();
    sim.shutdown().await;
}
