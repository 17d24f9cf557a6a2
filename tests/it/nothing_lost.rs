//! "Nothing lost, nothing stuck": what Vapi says about the campaign pauses it instead of
//! burning its contacts; calls that vanish or cost more after their end are followed; a
//! store fault strands nothing.

use crate::common;

use std::time::Duration;

use common::late::{End, Late, Post};
use common::*;
use switchboard::model::{CallStatus, CampaignStatus, ContactStatus};

fn fast(base_url: &str) -> switchboard::config::Config {
    let mut c = config(base_url);
    c.vapi.request_timeout_ms = 500;
    fast_retries(&mut c);
    c.dispatch.rate_per_second = 50.0;
    c
}

fn paused(s: &switchboard::dispatch::Snapshot) -> bool {
    s.campaigns
        .first()
        .is_some_and(|c| c.status == CampaignStatus::Paused)
        && s.creating == 0
}

/// A 400 naming the campaign's phone number pauses the campaign at the first request; every
/// contact is still PENDING.
#[tokio::test]
async fn a_wrong_phone_number_pauses_the_campaign_with_every_contact_pending() {
    let vapi = Late::start(vec![Post::Reject("Couldn't Get Phone Number."); 50]).await;
    let Some((store, _dir)) =
        test_store("a_wrong_phone_number_pauses_the_campaign_with_every_contact_pending").await
    else {
        return;
    };
    let id = campaign(&store, "c", 20).await;
    let engine = engine(fast(&vapi.base_url), &store, KEY).await;
    let s = wait_for(&engine, Duration::from_secs(10), paused).await;
    engine.shutdown().await;
    let reason = s.campaigns[0].pause_reason.clone().unwrap_or_default();
    assert!(reason.contains("Couldn't Get Phone Number"), "{reason}");
    assert!(vapi.posts().len() <= 3, "{} requests", vapi.posts().len());
    assert_eq!(
        store
            .count_contacts(id, ContactStatus::Pending)
            .await
            .unwrap(),
        20,
        "no contact burnt"
    );
    assert_eq!(store.campaign(id).await.unwrap().failed_calls, 0);
    assert_invariants(&store).await;
}

/// The same unexplained refusal three times in a row is the campaign's, not the contacts':
/// paused, and the three contacts given back.
#[tokio::test]
async fn three_identical_refusals_in_a_row_pause_and_give_the_contacts_back() {
    let vapi = Late::start(vec![Post::Reject("Bad Request: resource unavailable"); 50]).await;
    let Some((store, _dir)) =
        test_store("three_identical_refusals_in_a_row_pause_and_give_the_contacts_back").await
    else {
        return;
    };
    let id = campaign(&store, "c", 10).await;
    let mut cfg = fast(&vapi.base_url);
    cfg.dispatch.rate_per_second = 5.0; // one at a time: the streak is three requests
    let engine = engine(cfg, &store, KEY).await;
    let s = wait_for(&engine, Duration::from_secs(10), paused).await;
    engine.shutdown().await;
    let reason = s.campaigns[0].pause_reason.clone().unwrap_or_default();
    assert!(reason.contains("3 calls in a row"), "{reason}");
    assert_eq!(vapi.posts().len(), 3);
    assert_eq!(
        store
            .count_contacts(id, ContactStatus::Pending)
            .await
            .unwrap(),
        10
    );
    assert_eq!(store.campaign(id).await.unwrap().failed_calls, 0);
    assert_invariants(&store).await;
}

/// An assistant that fails the people it reaches (pipeline errors) pauses its campaign once
/// the share of faults passes the threshold; the quick hang-ups among them are not counted
/// as faults.
#[tokio::test]
async fn an_assistant_failing_most_calls_pauses_its_campaign() {
    let ends: Vec<End> = (0..40)
        .map(|i| match i % 3 {
            0 => End {
                reason: "pipeline-error-openai-llm-failed",
                ..End::default()
            },
            1 => End {
                reason: "customer-ended-call",
                talk_ms: Some(1_200),
                ..End::default()
            },
            _ => End::default(),
        })
        .collect();
    let vapi = Late::with_ends(vec![], ends).await;
    let Some((store, _dir)) =
        test_store("an_assistant_failing_most_calls_pauses_its_campaign").await
    else {
        return;
    };
    let id = campaign(&store, "c", 40).await;
    let mut cfg = fast(&vapi.base_url);
    cfg.dispatch.assistant_failure_window = 10;
    let engine = engine(cfg, &store, KEY).await;
    let s = wait_for(&engine, Duration::from_secs(10), |s| {
        paused(s) && s.active == 0
    })
    .await;
    engine.shutdown().await;
    let reason = s.campaigns[0].pause_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("assistant faults: "), "{reason}");
    assert!(
        reason.contains("pipeline-error-openai-llm-failed"),
        "{reason}"
    );
    let c = store.campaign(id).await.unwrap();
    assert!(
        c.total_calls_created < 40,
        "stopped early: {}",
        c.total_calls_created
    );
    assert!(
        store
            .count_contacts(id, ContactStatus::Pending)
            .await
            .unwrap()
            > 0,
        "the rest wait for the fix"
    );
    assert_invariants(&store).await;
}

/// The guard with the quick hang-up signal on, windows of 10 answered calls.
fn guarded(base_url: &str) -> switchboard::config::Config {
    let mut cfg = fast(base_url);
    cfg.dispatch.quick_hangup_ms = 3_000;
    cfg.dispatch.quick_hangup_baseline_calls = 10;
    cfg.dispatch.quick_hangup_window = 10;
    cfg.dispatch.assistant_failure_window = 10;
    cfg
}

fn hang_up_after(talk_ms: i64) -> End {
    End {
        reason: "customer-ended-call",
        talk_ms: Some(talk_ms),
        ..End::default()
    }
}

/// People hanging up on a cold call after 2 s is the list, not the assistant: a campaign
/// where every answered call is such a hang-up runs to the end.
#[tokio::test]
async fn normal_quick_hang_ups_do_not_pause_a_campaign() {
    let vapi = Late::with_ends(vec![], vec![hang_up_after(2_000); 40]).await;
    let Some((store, _dir)) = test_store("normal_quick_hang_ups_do_not_pause_a_campaign").await
    else {
        return;
    };
    let id = campaign(&store, "c", 40).await;
    let engine = engine(guarded(&vapi.base_url), &store, KEY).await;
    let s = wait_for(&engine, Duration::from_secs(20), |s| {
        all_completed(s) || paused(s)
    })
    .await;
    engine.shutdown().await;
    assert!(all_completed(&s), "{:?}", s.campaigns[0].pause_reason);
    let c = store.campaign(id).await.unwrap();
    assert_eq!((c.total_calls_created, c.ended_calls), (40, 40));
    assert_eq!(c.pause_reason, None);
    assert_invariants(&store).await;
}

/// Quick hang-ups rising far above the campaign's own start (a new prompt, a silent voice)
/// pause it, with a line that names the signal and its figures.
#[tokio::test]
async fn quick_hang_ups_rising_above_the_baseline_pause_a_campaign() {
    let ends: Vec<End> = (0..60)
        .map(|i| {
            if i < 10 || i % 10 == 0 {
                hang_up_after(40_000)
            } else {
                hang_up_after(1_500)
            }
        })
        .collect();
    let vapi = Late::with_ends(vec![], ends).await;
    let Some((store, _dir)) =
        test_store("quick_hang_ups_rising_above_the_baseline_pause_a_campaign").await
    else {
        return;
    };
    let id = campaign(&store, "c", 60).await;
    let mut cfg = guarded(&vapi.base_url);
    // One call at a time, so the first 10 answered calls are the first 10 created.
    cfg.dispatch.max_concurrent_calls = 1;
    let engine = engine(cfg, &store, KEY).await;
    let s = wait_for(&engine, Duration::from_secs(20), |s| {
        paused(s) && s.active == 0
    })
    .await;
    engine.shutdown().await;
    let reason = s.campaigns[0].pause_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("quick hang-ups: "), "{reason}");
    assert!(
        reason.contains("of the last 10 answered calls within 3 s")
            && reason.contains("baseline of 0 % (0 of its first 10 answered calls)"),
        "{reason}"
    );
    let c = store.campaign(id).await.unwrap();
    assert!(c.total_calls_created < 60, "{}", c.total_calls_created);
    assert_invariants(&store).await;
}

/// A call that never rang goes back to the queue (3 times at most, then FAILED), instead of
/// being marked done.
#[tokio::test]
async fn a_call_that_never_rang_is_dialled_again_a_bounded_number_of_times() {
    let never = End {
        reason: "call.start.error-vapifault-database-error",
        talk_ms: None,
        cost: 0.0,
        ..End::default()
    };
    let vapi = Late::with_ends(vec![], vec![never; 10]).await;
    let Some((store, _dir)) =
        test_store("a_call_that_never_rang_is_dialled_again_a_bounded_number_of_times").await
    else {
        return;
    };
    let id = campaign(&store, "c", 1).await;
    let engine = engine(fast(&vapi.base_url), &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), all_completed).await;
    engine.shutdown().await;
    assert_eq!(vapi.posts().len(), 4, "the first call and 3 more");
    let c = store.campaign(id).await.unwrap();
    assert_eq!((c.ended_calls, c.failed_calls), (3, 1));
    let last = store.call(4).await.unwrap();
    assert_eq!(last.status, CallStatus::Failed);
    assert_eq!(
        last.ended_reason.as_deref(),
        Some("call.start.error-vapifault-database-error")
    );
    // Retryable by an operator.
    store.retry_call(4).await.unwrap();
    assert_eq!(
        store
            .count_contacts(id, ContactStatus::Pending)
            .await
            .unwrap(),
        1
    );
    assert_invariants(&store).await;
}

/// A call Vapi no longer knows (404) is closed and frees its slot; the run finishes.
#[tokio::test]
async fn a_vanished_call_frees_its_slot_and_the_campaign_finishes() {
    let vanished = End {
        vanished: true,
        ..End::default()
    };
    let vapi = Late::with_ends(vec![], vec![vanished]).await;
    let Some((store, _dir)) =
        test_store("a_vanished_call_frees_its_slot_and_the_campaign_finishes").await
    else {
        return;
    };
    let id = campaign(&store, "c", 3).await;
    let mut cfg = fast(&vapi.base_url);
    cfg.tracking.fallback_after_ms = 300;
    let engine = engine(cfg, &store, KEY).await;
    let s = wait_for(&engine, Duration::from_secs(10), all_completed).await;
    engine.shutdown().await;
    assert!(
        switchboard::cli::headless::done(&s).is_some(),
        "--until-done exits"
    );
    let call = store.call(1).await.unwrap();
    assert_eq!(call.status, CallStatus::Ended);
    assert!(
        call.ended_reason
            .as_deref()
            .is_some_and(|r| r.contains("vanished")),
        "{:?}",
        call.ended_reason
    );
    assert_eq!(store.campaign(id).await.unwrap().active_calls, 0);
    assert_invariants(&store).await;
}

/// The cost Vapi reports after `ended` (analysis added) replaces the first one, and the
/// budget stop counts it.
#[tokio::test]
async fn the_final_cost_after_the_end_is_followed_and_reaches_the_budget() {
    let late_cost = End {
        cost: 0.01,
        final_cost: Some((0.10, Duration::from_millis(300))),
        ..End::default()
    };
    let vapi = Late::with_ends(vec![], vec![late_cost; 40]).await;
    let Some((store, _dir)) =
        test_store("the_final_cost_after_the_end_is_followed_and_reaches_the_budget").await
    else {
        return;
    };
    let id = campaign(&store, "c", 40).await;
    let mut cfg = fast(&vapi.base_url);
    cfg.dispatch.rate_per_second = 4.0;
    cfg.dispatch.budget_usd = Some(0.5);
    let engine = engine(cfg, &store, KEY).await;
    let s = wait_for(&engine, Duration::from_secs(20), paused).await;
    // Costs that were still partial at the pause become final too (within ~1 s here; a slow
    // machine is given 15 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let c = store.campaign(id).await.unwrap();
        let is_final = (c.cost_usd - 0.10 * c.total_calls_created as f64).abs() < 1e-6;
        if is_final || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.shutdown().await;
    let reason = s.campaigns[0].pause_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("budget of $0.50"), "{reason}");
    let c = store.campaign(id).await.unwrap();
    let expected = 0.10 * c.total_calls_created as f64;
    assert!(
        (c.cost_usd - expected).abs() < 1e-6,
        "spend {} = {} calls at the final $0.10",
        c.cost_usd,
        c.total_calls_created
    );
    assert!(
        c.total_calls_created <= 8,
        "stopped near the budget at final costs, not at the first $0.01: {} calls",
        c.total_calls_created
    );
    assert_invariants(&store).await;
}

/// A writer lock held by someone else (a long import, a backup) makes the engine's writes
/// fail for a while: every call is still recorded once, none is stranded or dialled twice.
#[tokio::test]
async fn a_store_locked_for_seconds_strands_nothing() {
    let vapi = Late::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.db");
    let store =
        switchboard::store::Store::open_with_busy_timeout(&path, Duration::from_millis(200))
            .await
            .unwrap();
    let id = campaign(&store, "c", 30).await;
    let mut cfg = fast(&vapi.base_url);
    cfg.dispatch.rate_per_second = 10.0;
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), created_at_least(3)).await;
    // Another connection takes the write lock for 2.5 s.
    {
        use sqlx::Connection;
        let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut other)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    }
    wait_for(&engine, Duration::from_secs(30), all_completed).await;
    engine.shutdown().await;
    let per_name = vapi.created_per_name();
    assert_eq!(per_name.len(), 30, "every contact dialled");
    assert!(
        per_name.values().all(|n| *n == 1),
        "none twice: {per_name:?}"
    );
    assert_eq!(
        store.count_contacts(id, ContactStatus::Done).await.unwrap(),
        30
    );
    assert_invariants(&store).await;
}

/// `migrate-db`'s copy pages every table by its primary key: a table of several pages whose
/// key is shared by many rows (a transcript's lines) arrives whole, neither a row skipped nor
/// repeated, and each table's progress is told as it goes.
#[tokio::test]
async fn a_copy_of_several_pages_moves_every_row_once() {
    use switchboard::model::live::{Speaker, TranscriptLine};
    let dir = tempfile::tempdir().unwrap();
    let source = switchboard::store::Store::open(&dir.path().join("from.db"))
        .await
        .unwrap();
    let id = common::campaign(&source, "history", 2_500).await;
    let instance = source.instance_id().await.unwrap();
    let mut calls = Vec::new();
    for n in 0..4 {
        let (job, attempt) = source
            .claim_call(id, &instance, "e1")
            .await
            .unwrap()
            .expect("a contact to claim");
        let provider = format!("prov-{n}");
        source
            .record_created(
                job.call_id,
                attempt,
                switchboard::model::AttemptOutcome::Created,
                &provider,
                &Default::default(),
            )
            .await
            .unwrap();
        let lines: Vec<TranscriptLine> = (0..400)
            .map(|i| TranscriptLine::new(Speaker::Customer, f64::from(i), &format!("{n}.{i}")))
            .collect();
        source.set_transcript(&provider, &lines).await.unwrap();
        calls.push(job.call_id);
    }
    let target = switchboard::store::Store::open(&dir.path().join("to.db"))
        .await
        .unwrap();
    let told = std::sync::Mutex::new(Vec::new());
    let report = source
        .copy_into(&target, |table, rows| {
            told.lock().unwrap().push((table.to_string(), rows))
        })
        .await
        .unwrap();
    let rows = |table: &str| {
        report
            .rows
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, n)| *n)
    };
    assert_eq!(rows("contacts"), Some(2_500));
    assert_eq!(rows("call_transcripts"), Some(1_600));
    let told = told.into_inner().unwrap();
    let pages: Vec<u64> = told
        .iter()
        .filter(|(t, _)| t == "contacts")
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(pages, [1_000, 2_000, 2_500], "{told:?}");
    for call in calls {
        assert_eq!(
            target.transcript(call).await.unwrap(),
            source.transcript(call).await.unwrap()
        );
    }
    let waiting = |store: &switchboard::store::Store| {
        let store = store.clone();
        async move {
            store
                .count_contacts(id, ContactStatus::Pending)
                .await
                .unwrap()
        }
    };
    assert_eq!(waiting(&target).await, waiting(&source).await);
    assert!(target.verify_counters().await.unwrap().is_empty());
}
