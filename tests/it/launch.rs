//! Before and around a campaign's launch: `switchboard check` against the simulator (an
//! unknown assistant, a variable the prompt uses that contacts lack, zones no window
//! reaches, with their exit codes) and the scheduled start and end, at the claim with an
//! injected instant and in an engine whose clock is set just before the start.

use crate::common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use switchboard::model::clock::Clock;
use switchboard::model::{CampaignStatus, StopCause};
use switchboard::policy::schedule::Schedule;
use switchboard::simulator::{SimConfig, Simulator};

use crate::policy::utc;

/// The claim is the one place every call passes: before the start and from the end-by it
/// dials nobody, whatever the engine believes.
#[tokio::test]
async fn the_claim_dials_nobody_before_the_start_nor_from_the_end_by() {
    let (store, _db) = store().await;
    let id = campaign(&store, "later", 3).await;
    let start = utc("2030-01-07T15:00:00Z");
    let end = utc("2030-01-07T16:00:00Z");
    let schedule = Schedule {
        starts_at: Some(start),
        ends_by: Some(end),
    };
    store.set_campaign_schedule(id, &schedule).await.unwrap();
    let claim = |at| {
        let store = store.clone();
        async move { store.claim_call_at(id, "i", "e", at).await.unwrap() }
    };
    assert!(claim(start - chrono::Duration::seconds(1)).await.is_none());
    assert!(claim(end).await.is_none());
    assert!(claim(end + chrono::Duration::days(1)).await.is_none());
    assert_eq!(
        store
            .count_contacts(id, switchboard::model::ContactStatus::Pending)
            .await
            .unwrap(),
        3,
        "a refused claim leaves every contact waiting"
    );
    assert!(claim(start).await.is_some(), "dials from the start");
    assert!(claim(end - chrono::Duration::seconds(1)).await.is_some());
    // The rules' edits keep the schedule; only `campaign start --at/--end-by` sets it.
    let rules = store.campaign_rules(id).await.unwrap();
    store.set_campaign_rules(id, &rules).await.unwrap();
    assert_eq!(store.campaign_rules(id).await.unwrap().schedule(), schedule);
}

/// An engine whose clock reads 0.6 s before the scheduled start: it says it waits, creates
/// nothing before the start, dials from then, and pauses the campaign at its end-by with the
/// schedule as the cause (contacts left waiting, every call created inside the schedule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_waits_for_the_scheduled_start_and_stops_at_the_end_by() {
    let sim = Simulator::start(
        SimConfig {
            api_key: KEY.into(),
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
    let (store, _db) = store().await;
    let id = campaign(&store, "scheduled", 200).await;
    let start = utc("2030-01-07T15:00:00Z");
    let end = start + chrono::Duration::milliseconds(1_500);
    let schedule = Schedule {
        starts_at: Some(start),
        ends_by: Some(end),
    };
    store.set_campaign_schedule(id, &schedule).await.unwrap();
    let store = store.with_clock(Clock::following_tokio(
        start - chrono::Duration::milliseconds(600),
    ));
    let mut config = common::config(&sim.base_url());
    config.dispatch.rate_per_second = 10.0;
    let engine = common::engine(config, &store, KEY).await;
    let waiting = wait_for(&engine, Duration::from_secs(10), |s| {
        s.campaigns.first().is_some_and(|c| {
            c.waiting
                .as_deref()
                .is_some_and(|w| w.contains("scheduled to start"))
        })
    })
    .await;
    assert_eq!(waiting.campaigns[0].created, 0, "{waiting:#?}");
    // The console's estimate is given the schedule and every waiting contact by zone.
    let reach = waiting.campaigns[0]
        .reach
        .as_ref()
        .expect("read with the rules");
    assert_eq!(reach.schedule, schedule);
    assert_eq!(reach.zones.iter().map(|z| z.contacts).sum::<u64>(), 200);
    let paused = wait_for(&engine, Duration::from_secs(15), |s| {
        s.campaigns
            .first()
            .is_some_and(|c| c.status == CampaignStatus::Paused)
    })
    .await;
    engine.shutdown().await;
    let c = store.campaign(id).await.unwrap();
    assert_eq!(c.pause_cause, Some(StopCause::Schedule), "{c:?}");
    assert!(
        c.pause_reason
            .as_deref()
            .is_some_and(|r| r.contains("end-by")),
        "{c:?}"
    );
    let created: Vec<String> = sqlx::query_scalar(switchboard::store::q(
        "SELECT created_at FROM calls WHERE campaign_id = ? ORDER BY created_at",
    ))
    .bind(id)
    .fetch_all(store.reader())
    .await
    .unwrap();
    assert!(!created.is_empty(), "dialled from the start: {paused:#?}");
    for at in &created {
        let at = switchboard::store::parse_time(at).unwrap();
        assert!(
            at >= start && at < end,
            "a call created at {at}, outside {start}..{end}"
        );
    }
    let waiting_left = store
        .count_contacts(id, switchboard::model::ContactStatus::Pending)
        .await
        .unwrap();
    assert!(waiting_left > 0, "the end-by left contacts waiting");
    assert_eq!(sim.stats().create_requests as usize, created.len());
    // A resume after the end-by goes on past it: the passed end-by is dropped.
    store.resume_campaign(id).await.unwrap();
    let rules = store.campaign_rules(id).await.unwrap();
    assert_eq!(rules.schedule().ends_by, None);
    assert_eq!(rules.schedule().starts_at, Some(start));
    sim.shutdown().await;
}

/// `check` and `campaign start` as a user runs them, against the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_an_unknown_assistant_a_missing_variable_and_unreachable_zones() {
    let sim = Simulator::start(
        SimConfig {
            api_key: KEY.into(),
            assistants: vec!["asst-1".into()],
            phone_numbers: vec!["pn-1".into(), "pn-2".into()],
            blocked_numbers: vec!["pn-2".into()],
            assistant_prompt:
                "You call {{firstName}} about the {{ plan | default: \"usual\" }} plan.".into(),
            first_message: "Hello {{customer.name}}!".into(),
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
            "[database]\npath = \"sb.db\"\n[vapi]\nbase_url = \"{}\"\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = process::sb(dir.path(), KEY).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let (_, out, err) = run(args);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out} {err}"))
    };
    let topics = |report: &serde_json::Value, severity: &str| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == severity)
            .map(|f| f["topic"].as_str().unwrap().to_string())
            .collect()
    };
    let (code, _, err) = run(&[
        "campaign",
        "create",
        "c",
        "--assistant-id",
        "asst-9",
        "--phone-number-id",
        "pn-1",
        "--window",
        "09:00-17:00",
        "--days",
        "all",
    ]);
    assert_eq!(code, Some(0), "{err}");
    // London, Honolulu and Tokyo; Bob has no firstName, Cy no name.
    std::fs::write(
        dir.path().join("c.csv"),
        "name,phone,firstName,timezone\n\
         Ada,+442079460000,Ada,Europe/London\n\
         Bob,+442079460001,,Europe/London\n\
         ,+18085550100,Cy,Pacific/Honolulu\n\
         Di,+81355550100,Di,Asia/Tokyo\n",
    )
    .unwrap();
    let (code, _, err) = run(&["contacts", "import", "c", "c.csv"]);
    assert_eq!(code, Some(0), "{err}");

    // An assistant the account does not have: a blocker, exit 1.
    let (code, out, _) = run(&["check", "c"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("blocker: assistant asst-9 does not exist at Vapi"),
        "{out}"
    );
    let report = json(&["check", "c", "--json"]);
    assert_eq!(report["ok"], false);
    assert_eq!(topics(&report, "blocker"), vec!["assistant"], "{report}");

    // The known assistant: its prompt's {{firstName}} lacks one contact, its first
    // message's {{customer.name}} another; `plan` has a default and is needed by nobody.
    run(&["campaign", "edit", "c", "--assistant-id", "asst-1"]);
    let report = json(&["check", "c", "--json"]);
    let variables: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["topic"] == "variable")
        .collect();
    assert_eq!(variables.len(), 2, "{report}");
    assert!(
        variables[0]["message"]
            .as_str()
            .unwrap()
            .contains("{{firstName}}"),
        "{report}"
    );
    assert_eq!(variables[0]["contacts"], 1);
    assert_eq!(
        variables[0]["example"], "contact #2 (+442079460001)",
        "{report}"
    );
    assert!(
        variables[1]["message"]
            .as_str()
            .unwrap()
            .contains("{{customer.name}}"),
        "{report}"
    );
    assert_eq!(
        variables[1]["example"], "contact #3 (+18085550100)",
        "{report}"
    );
    assert!(!report.to_string().contains("{{plan"), "{report}");
    // `campaign start` runs the same check and refuses; nothing changes.
    let (code, out, err) = run(&["campaign", "start", "c"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("not started: 2 blocker(s) above"), "{err}");
    let (_, show, _) = run(&["campaign", "show", "c"]);
    assert!(show.starts_with("campaign c (#1) DRAFT"), "{show}");

    // Fixed contacts; a blocked number in the pool is a blocker of its own.
    std::fs::write(
        dir.path().join("fixed.csv"),
        "name,phone,firstName,timezone\n\
         Ada,+442079460002,Ada,Europe/London\n\
         Cy,+18085550101,Cy,Pacific/Honolulu\n\
         Di,+81355550101,Di,Asia/Tokyo\n\
         Ed,+44 7700 900123,Ed,Europe/London\n",
    )
    .unwrap();
    run(&[
        "campaign",
        "create",
        "d",
        "--assistant-id",
        "asst-1",
        "--phone-number-id",
        "pn-1,pn-2",
        "--window",
        "09:00-17:00",
        "--days",
        "all",
    ]);
    run(&["contacts", "import", "d", "fixed.csv"]);
    let report = json(&["check", "d", "--json"]);
    assert_eq!(topics(&report, "blocker"), vec!["phone_number"], "{report}");
    // Ed's number is possible but outside the UK plan's known ranges: a warning naming him.
    let unverified: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["topic"] == "contact_number")
        .collect();
    assert_eq!(unverified.len(), 1, "{report}");
    assert_eq!(unverified[0]["severity"], "warning");
    assert_eq!(unverified[0]["contacts"], 1);
    assert_eq!(
        unverified[0]["example"], "contact #8 (+447700900123)",
        "{report}"
    );
    run(&["campaign", "edit", "d", "--phone-number-id", "pn-1"]);
    let (code, out, _) = run(&["check", "d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ready to start"), "{out}");

    // Tomorrow 12:00-13:00 UTC: London is open (12:00 or 13:00 local), Honolulu (02:00)
    // and Tokyo (21:00) are not. Two zones unreachable is a warning; the start goes ahead.
    let noon = (Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let (at, end_by) = (
        noon.to_rfc3339(),
        (noon + chrono::Duration::hours(1)).to_rfc3339(),
    );
    let (code, out, err) = run(&["campaign", "start", "d", "--at", &at, "--end-by", &end_by]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("warning: 1 waiting contact(s) in Pacific/Honolulu: no calling window"),
        "{out}"
    );
    assert!(
        out.contains("warning: 1 waiting contact(s) in Asia/Tokyo"),
        "{out}"
    );
    assert!(out.contains("campaign d started (DIALING)"), "{out}");
    let (_, show, _) = run(&["campaign", "show", "d"]);
    assert!(
        show.contains("schedule:       starts") && show.contains("ends by"),
        "{show}"
    );
    assert!(
        show.contains("now:            scheduled to start"),
        "{show}"
    );

    // A list whose every zone is closed until the end-by is a blocker: nothing would dial.
    std::fs::write(
        dir.path().join("far.csv"),
        "name,phone,firstName,timezone\nCy,+18085550102,Cy,Pacific/Honolulu\n",
    )
    .unwrap();
    run(&[
        "campaign",
        "create",
        "e",
        "--assistant-id",
        "asst-1",
        "--phone-number-id",
        "pn-1",
        "--window",
        "09:00-17:00",
        "--days",
        "all",
    ]);
    run(&["contacts", "import", "e", "far.csv"]);
    let (code, out, err) = run(&["campaign", "start", "e", "--at", &at, "--end-by", &end_by]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("blocker: 1 waiting contact(s) in Pacific/Honolulu"),
        "{out}"
    );
    let (code, out, err) = run(&[
        "campaign",
        "start",
        "e",
        "--no-check",
        "--at",
        &at,
        "--end-by",
        &end_by,
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        !out.contains("blocker"),
        "--no-check prints no check: {out}"
    );
    sim.shutdown().await;
}
