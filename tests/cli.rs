//! The command line as a user meets it: clear one-line errors that change nothing, import
//! reports, and `run --headless --until-done` against the simulator.

mod common;

use std::path::Path;

use assert_cmd::Command;
use switchboard::simulator::{SimConfig, Simulator};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[database]\npath = \"{}\"\n{extra}",
            dir.path().join("sb.db").display()
        );
        std::fs::write(dir.path().join("switchboard.toml"), config).unwrap();
        Env { dir }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("switchboard").unwrap();
        cmd.current_dir(self.dir.path())
            .env_remove("VAPI_API_KEY")
            .env_remove("RUST_LOG");
        cmd
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Env {
    /// A started campaign "c" with `n` generated contacts, made through the CLI.
    fn started_campaign(&self, n: usize) {
        self.run(&[
            "campaign",
            "create",
            "c",
            "--assistant-id",
            "a",
            "--phone-number-id",
            "p",
        ]);
        let csv = self.write("c.csv", &switchboard::demo::generated_contacts(n));
        self.run(&["contacts", "import", "c", &csv]);
        self.run(&["campaign", "start", "c"]);
    }

    /// `run --headless --until-done` with `key`, off the async runtime's threads.
    async fn run_until_done(&self, key: &'static str) -> std::process::Output {
        let dir = self.dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            Command::cargo_bin("switchboard")
                .unwrap()
                .current_dir(&dir)
                .env("VAPI_API_KEY", key)
                .args(["run", "--headless", "--until-done"])
                .timeout(std::time::Duration::from_secs(60))
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }
}

fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one clear line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0]
}

#[test]
fn import_reports_each_bad_row_and_reimport_adds_nothing() {
    let env = Env::new("");
    assert!(
        env.run(&[
            "campaign",
            "create",
            "spring",
            "--assistant-id",
            "a",
            "--phone-number-id",
            "p"
        ])
        .0
    );
    let csv = env.write(
        "c.csv",
        "name,phone,extension,notes\nAda,+1 415 555 0100,,vip\nBob,555-0101,,\nCy,+14155550102,abc,\nDi,(415) 555-0103 ,,\n",
    );
    let (ok, out, _) = env.run(&["contacts", "import", "spring", &csv]);
    assert!(ok);
    assert!(
        out.contains("line 3: phone \"555-0101\" has no country code"),
        "{out}"
    );
    assert!(out.contains("line 4: extension \"abc\""), "{out}");
    assert!(out.contains("line 5:"), "{out}");
    assert!(
        out.contains("imported 1 contacts into spring (3 rejected, 0 duplicates)"),
        "{out}"
    );
    let (ok, out, _) = env.run(&["contacts", "import", "spring", &csv]);
    assert!(ok);
    assert!(
        out.contains("imported 0 contacts into spring (3 rejected, 1 duplicates)"),
        "{out}"
    );
    // With a default country code the national numbers import.
    let env2 = Env::new("[import]\ndefault_country_code = \"1\"\n");
    env2.run(&[
        "campaign",
        "create",
        "s",
        "--assistant-id",
        "a",
        "--phone-number-id",
        "p",
    ]);
    let csv2 = env2.write("c.csv", "phone\n415-555-0101\n");
    let (_, out, _) = env2.run(&["contacts", "import", "s", &csv2]);
    assert!(out.contains("imported 1 contacts"), "{out}");
}

#[test]
fn user_errors_are_one_line_and_change_nothing() {
    let env = Env::new("");
    let (ok, _, err) = env.run(&["contacts", "import", "nope", "missing.csv"]);
    assert!(!ok);
    assert_eq!(
        one_error_line(&err),
        "error: no campaign named \"nope\" (see `switchboard campaign list`)"
    );

    env.run(&[
        "campaign",
        "create",
        "c",
        "--assistant-id",
        "a",
        "--phone-number-id",
        "p",
    ]);
    let (ok, _, err) = env.run(&["contacts", "import", "c", "missing.csv"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("cannot read missing.csv"),
        "{err}"
    );

    let (ok, _, err) = env.run(&["campaign", "start", "c"]);
    assert!(!ok);
    assert!(one_error_line(&err).contains("has no contacts"), "{err}");

    let (ok, _, err) = env.run(&[
        "campaign",
        "create",
        "c",
        "--assistant-id",
        "a",
        "--phone-number-id",
        "p",
    ]);
    assert!(!ok);
    assert!(one_error_line(&err).contains("already exists"), "{err}");

    let (ok, _, err) = env.run(&["calls", "--status", "DONE-ISH"]);
    assert!(!ok);
    assert!(one_error_line(&err).contains("IN_PROGRESS"), "{err}");

    let (ok, _, err) = env.run(&["run", "--headless", "--until-done"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("set the environment variable VAPI_API_KEY"),
        "{err}"
    );

    let (_, out, _) = env.run(&["campaign", "list"]);
    assert!(out.contains("c    ") && out.contains("DRAFT"), "{out}");
    assert_eq!(out.lines().count(), 2, "still exactly one campaign: {out}");
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let env = Env::new("[dispatch]\nrate_per_secnd = 3\n");
    let (ok, _, err) = env.run(&["campaign", "list"]);
    assert!(!ok);
    let line = one_error_line(&err);
    assert!(
        line.contains("switchboard.toml") && line.contains("rate_per_secnd"),
        "{line}"
    );
    let env = Env::new("[dispatch]\nmax_concurrent_calls = 0\n");
    let (_, _, err) = env.run(&["campaign", "list"]);
    assert!(
        one_error_line(&err).contains("dispatch.max_concurrent_calls"),
        "{err}"
    );
    let (ok, _, err) = env.run(&["--config", "nowhere.toml", "campaign", "list"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("nowhere.toml does not exist"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_run_until_done_completes_a_campaign_against_the_simulator() {
    let sim = Simulator::start(
        SimConfig {
            api_key: "k".into(),
            queue_ms: 5,
            ring_ms: 5,
            talk_min_ms: 20,
            talk_max_ms: 50,
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let env = Env::new(&format!(
        "[vapi]\nbase_url = \"{}\"\n[dispatch]\nrate_per_second = 100.0\ntick_ms = 50\n[tracking]\npoll_interval_ms = 50\npoll_requests_per_second = 200.0\n",
        sim.base_url()
    ));
    env.started_campaign(20);
    let out = env.run_until_done("k").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("done: c COMPLETED"), "{stdout}");
    assert!(
        !stdout.contains("\"k\"") && !stdout.contains("Bearer k"),
        "the key never prints"
    );
    assert_eq!(sim.stats().calls_created, 20);
    let (_, calls, _) = env.run(&["calls", "--campaign", "c", "--status", "ENDED"]);
    assert!(calls.contains("20 of 20 calls"), "{calls}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_stops_the_headless_run_with_a_non_zero_exit() {
    let sim = Simulator::start(
        SimConfig {
            api_key: "right".into(),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let env = Env::new(&format!(
        "[vapi]\nbase_url = \"{}\"\n[dispatch]\ntick_ms = 50\n",
        sim.base_url()
    ));
    env.started_campaign(3);
    let out = env.run_until_done("wrong-key-123").await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Vapi rejected the API key"), "{stderr}");
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert!(
        !all.contains("wrong-key-123"),
        "the key must never be printed"
    );
    let db = std::fs::read(Path::new(env.dir.path()).join("sb.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&db).contains("wrong-key-123"),
        "nor stored"
    );
}
