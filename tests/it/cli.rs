//! The command line as a user meets it: clear one-line errors that change nothing, import
//! reports, and `run --headless --until-done` against the simulator.

use crate::common;

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
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE");
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
    /// `campaign create NAME` with assistant "a" and number "p", calling at any hour with no
    /// caps and no redials (dispatch tests; the policy has tests of its own).
    fn create_any_hour(&self, name: &str) -> (bool, String, String) {
        let mut args = vec![
            "campaign",
            "create",
            name,
            "--assistant-id",
            "a",
            "--phone-number-id",
            "p",
        ];
        args.extend(common::process::ANY_HOUR);
        self.run(&args)
    }

    /// A started campaign "c" with `n` generated contacts, made through the CLI.
    fn started_campaign(&self, n: usize) {
        self.create_any_hour("c");
        let csv = self.write("c.csv", &switchboard::demo::generated_contacts(n));
        self.run(&["contacts", "import", "c", &csv]);
        self.run(&["campaign", "start", "c"]);
    }

    /// `run --headless --until-done` with `key`, off the async runtime's threads.
    async fn run_until_done(&self, key: &'static str) -> std::process::Output {
        self.run_until_done_with(key, &[]).await
    }

    /// The same with global options (`before`) in front of `run`.
    async fn run_until_done_with(
        &self,
        key: &'static str,
        before: &[&'static str],
    ) -> std::process::Output {
        let dir = self.dir.path().to_path_buf();
        let mut args = before.to_vec();
        args.extend(["run", "--headless", "--until-done"]);
        tokio::task::spawn_blocking(move || {
            Command::cargo_bin("switchboard")
                .unwrap()
                .current_dir(&dir)
                .env("VAPI_API_KEY", key)
                .env_remove("RUST_BACKTRACE")
                .env_remove("RUST_LOG")
                .args(args)
                .timeout(std::time::Duration::from_secs(60))
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }
}

/// A simulator on 127.0.0.1 accepting `key`, with calls of `talk_ms` after 10 ms of queue
/// and ringing.
async fn quick_sim(key: &str, talk_ms: std::ops::RangeInclusive<u64>) -> Simulator {
    Simulator::start(
        SimConfig {
            api_key: key.into(),
            queue_ms: 5,
            ring_ms: 5,
            talk_min_ms: *talk_ms.start(),
            talk_max_ms: *talk_ms.end(),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap()
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
    assert!(env.create_any_hour("spring").0);
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
        out.contains("imported 1 contacts into spring (3 rejected, 0 duplicates"),
        "{out}"
    );
    let (ok, out, _) = env.run(&["contacts", "import", "spring", &csv]);
    assert!(ok);
    assert!(
        out.contains("imported 0 contacts into spring (3 rejected, 1 duplicates"),
        "{out}"
    );
    // With a default country code the national numbers import.
    let env2 = Env::new("[import]\ndefault_country_code = \"1\"\n");
    env2.create_any_hour("s");
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

    env.create_any_hour("c");
    let (ok, _, err) = env.run(&["contacts", "import", "c", "missing.csv"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("cannot read missing.csv"),
        "{err}"
    );

    let (ok, _, err) = env.run(&["campaign", "start", "c"]);
    assert!(!ok);
    assert!(one_error_line(&err).contains("has no contacts"), "{err}");

    let (ok, _, err) = env.create_any_hour("c");
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

/// `--log-format json`: every line on stdout is one JSON object (progress lines too), the
/// engine's lines carry the call's ids as fields, and the key is in none of them.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line_with_the_ids_and_never_the_key() {
    const KEY: &str = "sk-json-log-key-0123456789";
    let sim = quick_sim(KEY, 20..=50).await;
    let env = Env::new(&format!(
        "[vapi]\nbase_url = \"{}\"\n[dispatch]\nrate_per_second = 100.0\ntick_ms = 50\n[tracking]\npoll_interval_ms = 50\n",
        sim.base_url()
    ));
    env.started_campaign(3);
    let out = env
        .run_until_done_with(KEY, &["--log-format", "json"])
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for field in ["level", "target", "message"] {
            assert!(line.get(field).is_some(), "no {field}: {line}");
        }
    }
    let created: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "call created")
        .collect();
    assert_eq!(created.len(), 3, "{stdout}");
    for line in created {
        for id in ["campaign_id", "contact_id", "call_id", "attempt"] {
            assert!(line[id].is_i64(), "{id} as a number: {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l["target"] == "switchboard::progress"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("done: c COMPLETED"))),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY), "the key never prints");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_run_until_done_completes_a_campaign_against_the_simulator() {
    let sim = quick_sim("k", 20..=50).await;
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
    let first_row = calls.lines().nth(1).unwrap_or_default();
    assert_eq!(
        first_row.split_whitespace().nth(1),
        Some("c"),
        "the table names the campaign: {calls}"
    );

    // Scripting: one JSON object per line, campaigns named.
    let (ok, json, err) = env.run(&["calls", "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert_eq!(rows.len(), 20, "{json}");
    for row in &rows {
        assert_eq!(row["campaign"], "c", "{row}");
        assert_eq!(row["status"], "ENDED", "{row}");
        assert!(row["id"].is_i64(), "{row}");
    }
    let (ok, json, err) = env.run(&["campaign", "list", "--json"]);
    assert!(ok, "{err}");
    let campaigns: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert_eq!(campaigns.len(), 1, "{json}");
    assert_eq!(campaigns[0]["name"], "c");
    assert_eq!(campaigns[0]["status"], "COMPLETED");
    assert_eq!(campaigns[0]["contacts_done"], 20);
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

/// No ANSI escape in what a script or a log file receives.
fn assert_no_colour(text: &str) {
    assert!(!text.contains('\u{1b}'), "colour codes in: {text:?}");
}

#[test]
fn config_extremes_are_refused_with_one_line_naming_key_and_file() {
    let cases = [
        (
            "[vapi]\nlookup_margin_ms = 9000000000000000000\n",
            "vapi.lookup_skew_ms",
        ),
        (
            "[tracking]\npoll_requests_per_second = 1e-20\n",
            "tracking.poll_requests_per_second",
        ),
        (
            "[dispatch]\nrate_per_second = 100000.0\n",
            "dispatch.rate_per_second",
        ),
        (
            "[dispatch]\nrate_per_second = nan\n",
            "dispatch.rate_per_second",
        ),
        ("[dispatch]\nbudget_usd = inf\n", "dispatch.budget_usd"),
        (
            "[dispatch]\nmax_concurrent_calls = 0\n",
            "dispatch.max_concurrent_calls",
        ),
        ("[dispatch]\nbackoff_ms = []\n", "dispatch.backoff_ms"),
        (
            "[dispatch]\nbackoff_ms = [1000, 999999999999]\n",
            "dispatch.backoff_ms",
        ),
        ("[vapi]\nsettle_after_ms = 0\n", "vapi.settle_after_ms"),
    ];
    for (extra, key) in cases {
        let env = Env::new(extra);
        let (ok, _, err) = env.run(&["campaign", "list"]);
        assert!(!ok, "{extra:?} accepted");
        let line = one_error_line(&err);
        assert!(
            line.contains(key) && line.contains("switchboard.toml"),
            "{extra:?}: {line}"
        );
        assert_no_colour(&err);
    }
}

#[test]
fn cli_rates_share_the_config_bound() {
    let env = Env::new("");
    for rate in ["100000", "0", "NaN", "inf", "-1e-20", "fast"] {
        let out = env
            .cmd()
            .args(["dispatch", "rate", "--", rate])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "rate {rate} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = one_error_line(&err);
        assert!(line.contains(rate), "{line}");
        assert_no_colour(&err);
    }
    let (_, _, err) = env.run(&["dispatch", "rate", "1000.5"]);
    assert!(
        one_error_line(&err).contains("must be between 0.01 and 1000 calls/s"),
        "{err}"
    );
    let (ok, out, err) = env.run(&["dispatch", "rate", "1000"]);
    assert!(ok, "the maximum itself is allowed: {err}");
    assert!(out.contains("→ 1000/s"), "{out}");
}

fn status(env: &Env) -> serde_json::Value {
    let (ok, out, err) = env.run(&["dispatch", "status", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    serde_json::from_str(out.trim()).expect(&out)
}

#[test]
fn dispatch_rate_overrides_until_reset_and_status_says_so() {
    let env = Env::new("[dispatch]\nrate_per_second = 3.0\n");
    let s = status(&env);
    assert_eq!(s["paused"], false);
    assert_eq!(s["rate_per_second"], 3.0);
    assert_eq!(s["rate_is_override"], false);
    assert_eq!(s["config_rate_per_second"], 3.0);

    assert!(env.run(&["dispatch", "rate", "7.5"]).0);
    let s = status(&env);
    assert_eq!(s["rate_per_second"], 7.5);
    assert_eq!(s["rate_is_override"], true);
    assert_eq!(s["config_rate_per_second"], 3.0);
    let (_, text, _) = env.run(&["dispatch", "status"]);
    assert!(text.contains("7.5/s (override; config 3/s"), "{text}");

    let (ok, out, _) = env.run(&["dispatch", "rate", "--reset"]);
    assert!(ok);
    assert!(out.contains("the config's 3/s is in force"), "{out}");
    let s = status(&env);
    assert_eq!(s["rate_per_second"], 3.0);
    assert_eq!(s["rate_is_override"], false);

    let (ok, _, err) = env.run(&["dispatch", "rate"]);
    assert!(!ok, "a rate or --reset is required");
    assert!(err.starts_with("error:"), "{err}");

    assert!(env.run(&["dispatch", "pause", "--reason", "lunch"]).0);
    let s = status(&env);
    assert_eq!(s["paused"], true);
    assert_eq!(s["pause_reason"], "lunch");
    assert!(env.run(&["dispatch", "resume"]).0);
    let s = status(&env);
    assert_eq!(s["paused"], false);
    assert!(s["pause_reason"].is_null());
}

#[test]
fn a_corrupt_or_unreachable_database_is_one_line_without_colour() {
    let env = Env::new("");
    std::fs::write(
        env.dir.path().join("sb.db"),
        "this is not a database".repeat(200),
    )
    .unwrap();
    let (ok, _, err) = env.run(&["campaign", "list"]);
    assert!(!ok);
    let line = one_error_line(&err);
    assert!(line.contains("cannot open the database"), "{line}");
    assert_no_colour(&err);

    // -v (or RUST_BACKTRACE=1) gives the full report, still without colour off a terminal.
    let (ok, _, err) = env.run(&["-v", "campaign", "list"]);
    assert!(!ok);
    assert!(err.lines().count() > 1, "{err}");
    assert_no_colour(&err);
    let out = env
        .cmd()
        .env("RUST_BACKTRACE", "1")
        .args(["campaign", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().count() > 1, "{err}");
    assert_no_colour(&err);

    let config = env.write(
        "elsewhere.toml",
        &format!(
            "[database]\npath = \"{}\"\n",
            env.dir
                .path()
                .join("no-such-folder")
                .join("sb.db")
                .display()
        ),
    );
    let (ok, _, err) = env.run(&["--config", &config, "campaign", "list"]);
    assert!(!ok);
    let line = one_error_line(&err);
    assert!(
        line.contains("no-such-folder") && line.contains("does not exist"),
        "{line}"
    );
    assert_no_colour(&err);
}

#[test]
fn a_csv_with_a_huge_header_line_gets_a_short_message() {
    let env = Env::new("");
    env.create_any_hour("c");
    let header = "x".repeat(10 * 1024 * 1024);
    let csv = env.write("huge.csv", &format!("{header}\n+14155550100\n"));
    let (ok, _, err) = env.run(&["contacts", "import", "c", &csv]);
    assert!(!ok);
    let line = one_error_line(&err);
    assert!(line.len() < 1_000, "{} bytes", line.len());
    assert!(line.contains('…'), "{line}");
    assert!(line.contains("huge.csv"), "{line}");
}

#[test]
fn webhook_problems_are_one_line_each() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    // The base URL is never reached: the engine stops before its first request.
    let env = Env::new(&format!(
        "[vapi]\nbase_url = \"http://127.0.0.1:9\"\n[webhook]\nlisten = \"{addr}\"\n"
    ));
    let run = |secret: Option<&str>| {
        let mut cmd = env.cmd();
        cmd.env("VAPI_API_KEY", "k")
            .env_remove("VAPI_WEBHOOK_SECRET")
            .args(["run", "--headless", "--until-done"])
            .timeout(std::time::Duration::from_secs(30));
        if let Some(secret) = secret {
            cmd.env("VAPI_WEBHOOK_SECRET", secret);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(None);
    let line = one_error_line(&err);
    assert!(line.contains("VAPI_WEBHOOK_SECRET"), "{line}");
    let err = run(Some("s3cret"));
    let line = one_error_line(&err);
    assert!(
        line.contains("cannot start the webhook listener") && line.contains(&addr.to_string()),
        "{line}"
    );
    assert!(!line.contains("s3cret"), "{line}");
    assert_no_colour(&err);
    drop(taken);
}

async fn fast_simulator() -> Simulator {
    Simulator::start(
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
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn until_done_waits_through_an_operators_pause_unless_told_not_to() {
    let sim = fast_simulator().await;
    let env = Env::new(&format!(
        "[vapi]\nbase_url = \"{}\"\n[dispatch]\nrate_per_second = 100.0\ntick_ms = 50\n[tracking]\npoll_interval_ms = 50\npoll_requests_per_second = 200.0\n",
        sim.base_url()
    ));
    env.started_campaign(5);
    assert!(env.run(&["dispatch", "pause"]).0);

    // --exit-on-pause: today's behaviour, exit 2 at once.
    let dir = env.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("switchboard")
            .unwrap()
            .current_dir(&dir)
            .env("VAPI_API_KEY", "k")
            .env_remove("RUST_BACKTRACE")
            .args(["run", "--headless", "--until-done", "--exit-on-pause"])
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("paused by an operator"), "{stderr}");
    assert_eq!(sim.stats().calls_created, 0);

    // Default: the run is still going after it reported the pause; a resume lets it finish.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("switchboard"))
        .current_dir(env.dir.path())
        .env("VAPI_API_KEY", "k")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .args(["run", "--headless", "--until-done"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        // The second progress line comes two seconds after the first: past the point where
        // the old decision exited.
        let mut paused_lines = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains("PAUSED: paused by operator") {
                paused_lines += 1;
                if paused_lines == 2 {
                    return (true, lines);
                }
            }
        }
        (false, lines)
    })
    .await
    .unwrap();
    let (saw_pause, rest) = seen;
    assert!(saw_pause, "the run ended during the pause");
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running while paused"
    );
    assert_eq!(sim.stats().calls_created, 0, "nothing dialled while paused");
    assert!(env.run(&["dispatch", "resume"]).0);
    let (status, tail) = tokio::task::spawn_blocking(move || {
        let tail: Vec<String> = rest.map_while(Result::ok).collect();
        (child.wait().unwrap(), tail)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{tail:?}");
    assert!(
        tail.iter().any(|l| l.contains("done: c COMPLETED")),
        "{tail:?}"
    );
    assert_eq!(sim.stats().calls_created, 5);
}

#[test]
fn campaign_rules_dnc_why_and_export_through_the_cli() {
    let env = Env::new("");
    let (ok, _, err) = env.run(&[
        "campaign",
        "create",
        "c",
        "--assistant-id",
        "a",
        "--phone-number-id",
        "p",
        "--window",
        "09:00-20:00",
        "--days",
        "mon-fri",
        "--timezone",
        "America/Chicago",
    ]);
    assert!(ok, "{err}");
    let (ok, out, _) = env.run(&["campaign", "show", "c"]);
    assert!(ok);
    assert!(out.contains("09:00-20:00 on mon-fri"), "{out}");
    assert!(out.contains("≤3 per 24 h, ≤7 per 7 days"), "{out}");
    assert!(out.contains("America/Chicago"), "{out}");
    assert!(out.contains("customer-busy"), "{out}");
    let (ok, _, err) = env.run(&["campaign", "edit", "c", "--window", "20:00-09:00"]);
    assert!(!ok);
    assert!(one_error_line(&err).contains("HH:MM-HH:MM"), "{err}");
    let (ok, _, err) = env.run(&["campaign", "edit", "c", "--timezone", "Mars/Base"]);
    assert!(!ok);
    assert!(one_error_line(&err).contains("IANA"), "{err}");
    let (ok, out, err) = env.run(&["dnc", "add", "+1 415 555 0100", "--reason", "asked"]);
    assert!(ok, "{err}");
    assert!(out.contains("+14155550100 added"), "{out}");
    let (_, out, _) = env.run(&["dnc", "list"]);
    assert!(out.contains("+14155550100"), "{out}");
    let (ok, out, _) = env.run(&["why", "+14155550100"]);
    assert!(ok);
    assert!(out.contains("on the do-not-call list since"), "{out}");
    assert!(out.contains("DNC_ADD"), "{out}");
    let csv = env.write("c.csv", "phone,timezone\n+14155550100,\n+18005550101,\n");
    let (_, out, _) = env.run(&["contacts", "import", "c", &csv]);
    assert!(out.contains("1 with no known zone"), "{out}");
    let (ok, out, err) = env.run(&["export", "c", "--format", "jsonl"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let (ok, out, _) = env.run(&["export", "c"]);
    assert!(ok);
    assert!(out.starts_with("contact_id,name,phone"), "{out}");
    assert!(env.run(&["dnc", "remove", "+14155550100"]).0);
    let (ok, _, err) = env.run(&["dnc", "remove", "+14155550100"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("not on the do-not-call list"),
        "{err}"
    );
}

/// `switchboard call …` next to an engine running headless: each action goes through the
/// database to the engine that holds the call, reaches the simulator with the spec's body,
/// and its answer prints in one line. After the end, `calls --json` and the export carry
/// what was said.
#[tokio::test(flavor = "multi_thread")]
async fn call_actions_from_the_cli_reach_a_call_held_by_a_headless_engine() {
    use serde_json::json;
    let sim = crate::live::sim(|c| {
        c.fault_control = 0.0;
        c.api_key = "k".into();
    })
    .await;
    let env = Env::new(&format!(
        "[vapi]\nbase_url = \"{}\"\n[dispatch]\nrate_per_second = 20.0\ntick_ms = 50\n[tracking]\npoll_interval_ms = 200\npoll_requests_per_second = 50.0\n",
        sim.base_url()
    ));
    env.started_campaign(2);
    let _engine = common::process::Killed(
        std::process::Command::new(common::process::BIN)
            .current_dir(env.dir.path())
            .env("VAPI_API_KEY", "k")
            .env("RUST_LOG", "warn")
            .args(["run", "--headless"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("engine"),
    );
    // Both calls at Vapi and in progress (the CLI reads them from the database).
    let in_progress = || {
        let (_, out, _) = env.run(&["calls", "--json", "--status", "IN_PROGRESS"]);
        out.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let rows = loop {
        let rows = tokio::task::block_in_place(in_progress);
        if rows.len() == 2 {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two calls in progress: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let id = |r: &serde_json::Value| r["id"].as_i64().expect("id").to_string();
    let provider =
        |r: &serde_json::Value| r["provider_call_id"].as_str().expect("at Vapi").to_owned();
    let (a, b) = (id(&rows[0]), id(&rows[1]));
    let (pa, pb) = (provider(&rows[0]), provider(&rows[1]));
    let act = |args: &[&str]| {
        let (ok, out, err) = tokio::task::block_in_place(|| env.run(args));
        assert!(ok, "{args:?}: {err}");
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line of answer: {out}");
        lines[0].to_owned()
    };
    let said = act(&["call", "say", &a, "One moment please"]);
    assert!(
        said.contains(&format!("call {a}")),
        "names the call: {said}"
    );
    act(&["call", "whisper", &a, "offer Thursday"]);
    act(&["call", "mute", &a]);
    act(&["call", "unmute", &a]);
    act(&["call", "transfer", &b, "+14155550123"]);
    let bodies = |pid: &str| -> Vec<serde_json::Value> {
        sim.stats()
            .control_messages
            .into_iter()
            .filter(|m| m["callId"] == pid)
            .map(|m| m["body"].clone())
            .collect()
    };
    assert_eq!(
        bodies(&pa),
        vec![
            json!({"type": "say", "content": "One moment please", "endCallAfterSpoken": false}),
            json!({"type": "add-message", "message": {"role": "system", "content": "offer Thursday"}, "triggerResponseEnabled": false}),
            json!({"type": "control", "control": "mute-assistant"}),
            json!({"type": "control", "control": "unmute-assistant"}),
        ]
    );
    assert_eq!(
        bodies(&pb),
        vec![
            json!({"type": "transfer", "destination": {"type": "number", "number": "+14155550123"}})
        ]
    );
    // A few turns of the scripted conversation said, then the call is ended from the CLI.
    let http = switchboard::vapi::http::client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let call: serde_json::Value = http
            .get(format!("{}/call/{pa}", sim.base_url()))
            .bearer_auth("k")
            .send()
            .await
            .expect("sim")
            .json()
            .await
            .expect("call json");
        if call["messages"].as_array().is_some_and(|m| m.len() >= 2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no turns said: {call}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    act(&["call", "end", &a]);
    assert_eq!(bodies(&pa).last(), Some(&json!({"type": "end-call"})));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let ended = loop {
        let (_, out, _) = tokio::task::block_in_place(|| env.run(&["calls", "--json"]));
        let row = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| id(r) == a && r["status"] == "ENDED");
        if let Some(row) = row {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "call {a} ended: {out}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(ended["ended_reason"], "ended by operator", "{ended}");
    let transcript = ended["transcript"]
        .as_array()
        .expect("the final transcript");
    assert!(transcript.len() >= 2, "{ended}");
    assert_eq!(transcript[0]["speaker"], "ASSISTANT", "{ended}");
    assert!(
        transcript[0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{ended}"
    );
    let first_line = transcript[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (ok, export, err) =
        tokio::task::block_in_place(|| env.run(&["export", "c", "--format", "jsonl"]));
    assert!(ok, "{err}");
    assert!(
        export.lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|r| r["transcript"].as_str().map(str::to_owned))
                .is_some_and(|t| t.starts_with(&format!("ASSISTANT: {first_line}")))
        }),
        "the export carries the transcript: {export}"
    );
    sim.shutdown().await;
}

/// Follow-ups, arms, callbacks and the report through the CLI: each setting shown back,
/// bad values refused in one line that changes nothing.
#[test]
fn follow_ups_arms_callbacks_and_the_report_through_the_cli() {
    let env = Env::new("");
    let (ok, _, err) = env.run(&[
        "campaign",
        "create",
        "ab",
        "--assistant-id",
        "asst-a,asst-b:2",
        "--phone-number-id",
        "p",
        "--done-when",
        "appointment_booked=true",
        "--follow-up",
        "not-interested=never,call-back-later=1d",
        "--voicemail-message",
        "Hi from Acme.",
        "--timezone",
        "America/Chicago",
    ]);
    assert!(ok, "{err}");
    let (ok, out, _) = env.run(&["campaign", "show", "ab"]);
    assert!(ok);
    assert!(
        out.contains("lanes callback,fresh,redial · 3 attempts at most · callbacks from callback_at · done when appointment_booked=true, not-interested=never,call-back-later=1day by outcome · voicemail message on the last attempt"),
        "{out}"
    );
    for (args, says) in [
        (vec!["--lane-order", "fresh,fresh,redial"], "lane order"),
        (vec!["--done-when", "booked"], "done-when"),
        (vec!["--follow-up", "later=soon"], "follow-up"),
        (vec!["--max-attempts", "500"], "500"),
        (vec!["--assistant-id", "a,a"], "given twice"),
    ] {
        let mut all = vec!["campaign", "edit", "ab"];
        all.extend(args);
        let (ok, _, err) = env.run(&all);
        assert!(!ok, "{all:?}");
        assert!(one_error_line(&err).contains(says), "{all:?}: {err}");
    }
    let (ok, out, err) = env.run(&["campaign", "arm", "ab", "asst-a", "pause"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("arm asst-a is paused; its waiting contacts move to the other arms"),
        "{out}"
    );
    let (ok, _, err) = env.run(&["campaign", "arm", "ab", "asst-b", "stop"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("pause the campaign instead"),
        "{err}"
    );
    let (ok, out, _) = env.run(&["campaign", "report", "ab"]);
    assert!(ok);
    assert!(out.contains("1. asst-a") && out.contains("PAUSED"), "{out}");
    assert!(out.contains("2. asst-b") && out.contains("ACTIVE"), "{out}");
    let (ok, out, _) = env.run(&["campaign", "report", "ab", "--json"]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(json["arms"].as_array().map(Vec::len), Some(2), "{json}");
    // A callback by hand: the contact's zone, one line.
    let csv = env.write("ab.csv", "phone\n+13125550100\n");
    env.run(&["contacts", "import", "ab", &csv]);
    let (ok, out, err) = env.run(&["callback", "+1 312 555 0100", "--at", "2030-01-07 15:00"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("+13125550100 in campaign ab: callback booked by an operator for 2030-01-07 15:00 America/Chicago"),
        "{out}"
    );
    let (ok, _, err) = env.run(&["callback", "+13125550100", "--at", "whenever"]);
    assert!(!ok);
    assert!(one_error_line(&err).contains("callback time"), "{err}");
    let (ok, _, err) = env.run(&["callback", "+13125550199", "--at", "15:00"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("no campaign has a contact"),
        "{err}"
    );
}

/// Ctrl-C during a long `contacts import`: the command stops at the parser's next yield,
/// removes every row it wrote, says so on one line and exits with an error status of its
/// own (not killed by the signal).
#[test]
fn ctrl_c_during_an_import_removes_its_rows_and_says_so() {
    use std::io::Read as _;
    let env = Env::new("");
    env.create_any_hour("big");
    let csv = env.write("big.csv", &switchboard::demo::generated_contacts(2_000_000));
    let mut child = std::process::Command::new(common::process::BIN)
        .current_dir(env.dir.path())
        .args(["contacts", "import", "big", &csv])
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first batch's progress: rows are written by then.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("rows…") {
        match stderr.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => panic!("the import ended before its first progress line: {seen:?}"),
        }
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), None, "not killed by the signal: {rest}");
    assert_eq!(status.code(), Some(1), "{rest}");
    let line = rest
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("one error line: {rest}"));
    assert!(
        line.contains("SIGINT") && line.contains("none of its contacts were kept"),
        "{rest:?}"
    );
    let (_, out, _) = env.run(&["campaign", "show", "big"]);
    assert!(!out.contains("2000000"), "{out}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let count = runtime.block_on(async {
        let store = switchboard::store::Store::open(&env.dir.path().join("sb.db"))
            .await
            .unwrap();
        let mut total = 0;
        for status in [
            switchboard::model::ContactStatus::Pending,
            switchboard::model::ContactStatus::Done,
        ] {
            total += store.count_contacts(1, status).await.unwrap();
        }
        total
    });
    assert_eq!(count, 0, "the interrupted import's rows are gone");
}

/// Ctrl-C during `export --out FILE`: the export stops, says so on one line, and leaves
/// neither FILE nor a partial file behind.
#[test]
fn ctrl_c_during_an_export_leaves_no_partial_file() {
    let env = Env::new("");
    env.create_any_hour("big");
    let csv = env.write("big.csv", &switchboard::demo::generated_contacts(400_000));
    let (ok, _, err) = env.run(&["contacts", "import", "big", &csv]);
    assert!(ok, "{err}");
    let out = env.dir.path().join("out.csv");
    let partial = env.dir.path().join("out.csv.partial");
    let child = std::process::Command::new(common::process::BIN)
        .current_dir(env.dir.path())
        .args(["export", "big", "--out", "out.csv"])
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Rows are being written once the partial file has grown.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 100_000 {
        assert!(
            std::time::Instant::now() < deadline && !out.exists(),
            "the export finished or never started before it could be stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(
        line.contains("SIGINT") && line.contains("out.csv was not written"),
        "{line}"
    );
    assert!(!out.exists() && !partial.exists(), "no file left behind");
}

/// Ctrl-C during `migrate-db`: the copy stops, its one transaction on the target is rolled
/// back, it says so on one line with an exit status of its own, and the target holds nothing.
#[test]
fn ctrl_c_during_migrate_db_copies_nothing() {
    use std::io::Read as _;
    let env = Env::new("");
    env.create_any_hour("big");
    let csv = env.write("big.csv", &switchboard::demo::generated_contacts(300_000));
    let (ok, _, err) = env.run(&["contacts", "import", "big", &csv]);
    assert!(ok, "{err}");
    let mut child = std::process::Command::new(common::process::BIN)
        .current_dir(env.dir.path())
        .args(["migrate-db", "--from", "sb.db", "--to", "copy.db"])
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The contacts' progress: rows are being copied by then.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("copying contacts") {
        match stderr.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => panic!("migrate-db ended before its progress: {seen:?}"),
        }
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), None, "not killed by the signal: {rest}");
    assert_eq!(status.code(), Some(1), "{rest}");
    // After the progress line it ended: one error line.
    let errors: Vec<&str> = rest.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{rest}");
    let line = errors[0];
    assert!(
        line.contains("SIGINT") && line.contains("nothing was copied into copy.db"),
        "{line}"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (campaigns, contacts) = runtime.block_on(async {
        let copy = switchboard::store::Store::open(&env.dir.path().join("copy.db"))
            .await
            .unwrap();
        let contacts: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
            .fetch_one(copy.reader())
            .await
            .unwrap();
        (copy.campaigns().await.unwrap().len(), contacts)
    });
    assert_eq!((campaigns, contacts), (0, 0), "the copy was rolled back");
    // And the copy can be made again from the start.
    let (ok, out, err) = env.run(&["migrate-db", "--from", "sb.db", "--to", "copy.db"]);
    assert!(ok, "{err}");
    assert!(out.contains("contacts: 300000 rows"), "{out}");
}

/// Under systemd (`NOTIFY_SOCKET`, `WATCHDOG_USEC`): READY=1 once dispatch can start, STATUS=
/// lines, WATCHDOG=1 pings from the engine's loop, STOPPING=1 at the end, in that order.
#[tokio::test(flavor = "multi_thread")]
async fn systemd_hears_ready_status_watchdog_and_stopping_in_order() {
    let sim = quick_sim("k", 300..=400).await;
    let env = Env::new(&format!(
        "[vapi]\nbase_url = \"{}\"\n[dispatch]\nrate_per_second = 20.0\ntick_ms = 20\n[tracking]\npoll_interval_ms = 50\n",
        sim.base_url()
    ));
    env.started_campaign(5);
    let socket_path = env.dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let dir = env.dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(common::process::BIN)
            .current_dir(&dir)
            .env("VAPI_API_KEY", "k")
            .env("NOTIFY_SOCKET", &socket_path)
            // Half of it: a ping every 100 ms.
            .env("WATCHDOG_USEC", "200000")
            .env_remove("WATCHDOG_PID")
            .env_remove("RUST_LOG")
            .args(["run", "--headless", "--until-done"])
            .output()
            .unwrap()
    });
    let mut messages: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !run.is_finished() && std::time::Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    while let Ok(n) = socket.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let out = run.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let position = |what: &str| messages.iter().position(|m| m.contains(what));
    let ready = position("READY=1").unwrap_or_else(|| panic!("no READY=1: {messages:?}"));
    assert_eq!(ready, 0, "READY=1 comes first: {messages:?}");
    let stopping = position("STOPPING=1").unwrap_or_else(|| panic!("no STOPPING=1: {messages:?}"));
    assert_eq!(
        stopping,
        messages.len() - 1,
        "STOPPING=1 comes last: {messages:?}"
    );
    let pings = messages.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(pings >= 2, "pings while the campaign ran: {messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("STATUS=1 campaign(s) dialling")),
        "{messages:?}"
    );
    sim.shutdown().await;
}

/// `switchboard status`: not ready (exit 1, the lease check failed) with no engine, ready
/// (exit 0, the engine named) while one runs.
#[tokio::test(flavor = "multi_thread")]
async fn status_says_whether_an_engine_is_ready() {
    let sim = quick_sim("k", 20..=50).await;
    let env = Env::new(&format!("[vapi]\nbase_url = \"{}\"\n", sim.base_url()));
    let (ok, out, _) = env.run(&["status", "--json"]);
    assert!(!ok, "{out}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(answer["ready"], false, "{out}");
    assert_eq!(answer["checks"]["database"], true, "{out}");
    assert_eq!(answer["checks"]["lease"], false, "{out}");

    let mut engine = std::process::Command::new(common::process::BIN)
        .current_dir(env.dir.path())
        .env("VAPI_API_KEY", "k")
        .env_remove("RUST_LOG")
        .args(["run", "--headless"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = None;
    for _ in 0..200 {
        let (ok, out, _) = tokio::task::block_in_place(|| env.run(&["status", "--json"]));
        if ok {
            ready = Some(out);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &engine.id().to_string()])
        .status();
    let _ = engine.wait();
    let out = ready.expect("ready within 10 s of the engine's start");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(answer["ready"], true, "{out}");
    assert!(
        answer["engine"].as_str().is_some_and(|e| e.contains(':')),
        "{out}"
    );
    sim.shutdown().await;
}

/// `calls --where`: a bad expression is one line naming the column and changes nothing; a
/// good one filters, and `--count` prints the exact number of matches.
#[test]
fn calls_where_filters_and_a_bad_expression_says_where() {
    let env = Env::new("");
    env.started_campaign(3);
    let (ok, out, err) = env.run(&["calls", "--where", "status = FIALED"]);
    assert!(!ok, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("column 10: unknown call status"), "{err}");
    let (ok, out, err) = env.run(&["calls", "--count", "--where", "attempts >= 1"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "0", "no call made yet");
    let (ok, out, err) = env.run(&["calls", "--count", "--where", "not attempts >= 1"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "0");
}

#[test]
fn bulk_counts_first_refuses_without_a_terminal_and_acts_with_yes() {
    let env = Env::new("");
    env.started_campaign(5);
    let (ok, out, err) = env.run(&["contacts", "--count", "--where", "status = PENDING"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "5");
    let (ok, out, err) = env.run(&["contacts", "--where", "zone ~ \"", "--limit", "2"]);
    assert!(!ok, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let (ok, out, err) = env.run(&[
        "bulk",
        "skip",
        "--contacts",
        "--where",
        "status = PENDING",
        "--dry-run",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "dry run: 5 matched: 5 skipped", "{out}");
    // No terminal to ask on: nothing is done without --yes.
    let (ok, out, err) = env.run(&["bulk", "skip", "--contacts", "--where", "status = PENDING"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("Skip 5 of the 5 contacts matching `status = PENDING`?"),
        "{err}"
    );
    assert!(err.contains("add --yes"), "{err}");
    let (ok, out, _) = env.run(&["contacts", "--count", "--where", "status = SKIPPED"]);
    assert!(ok);
    assert_eq!(out.trim(), "0", "nothing changed");
    let (ok, out, err) = env.run(&["bulk", "delete", "--where", "status = FAILED"]);
    assert!(!ok, "{out}");
    assert!(err.contains("unknown action `delete`"), "{err}");
    let (ok, out, err) = env.run(&[
        "bulk",
        "skip",
        "--contacts",
        "--where",
        "status = PENDING",
        "--yes",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("bulk skip contacts where `status = PENDING`: 5 matched: 5 skipped"),
        "{out}"
    );
    let (ok, out, _) = env.run(&["contacts", "--count", "--where", "status = SKIPPED"]);
    assert!(ok);
    assert_eq!(out.trim(), "5");
    // The export of the matches only.
    let (ok, out, err) = env.run(&["export", "c", "--where", "status = SKIPPED and name ~ a"]);
    assert!(ok, "{err}");
    let rows = out.lines().count() - 1;
    let (_, named, _) = env.run(&["contacts", "--count", "--where", "name ~ a"]);
    assert_eq!(rows.to_string(), named.trim(), "{out}");
    // Saved filters: shared with the consoles, used as `--where @NAME`.
    let (ok, out, err) = env.run(&["filters", "save", "skipped", "status = SKIPPED"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "filter skipped saved: status = SKIPPED");
    let (ok, out, _) = env.run(&["contacts", "--count", "--where", "@skipped"]);
    assert!(ok);
    assert_eq!(out.trim(), "5");
    let (ok, _, err) = env.run(&["calls", "--where", "@nope"]);
    assert!(!ok);
    assert!(err.contains("no saved filter nope"), "{err}");
    let (ok, _, err) = env.run(&["filters", "save", "two words", "status = FAILED"]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (ok, out, _) = env.run(&["filters"]);
    assert!(ok);
    assert!(out.starts_with("skipped "), "{out}");
    let (ok, out, _) = env.run(&["filters", "delete", "skipped"]);
    assert!(ok, "{out}");
}
