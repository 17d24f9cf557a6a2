//! "Never twice, for real": the outcomes that may have created a call are settled before
//! anything is re-sent, and only one engine dispatches from a database.
//!
//! A small Vapi stand-in (`Late`) plays production's hard cases exactly: a request that hangs
//! and creates its call after the client gave up, a 500 after the create, a 504 that created
//! nothing, listings in shuffled order that honour createdAt windows. Settle times are scaled
//! down (1-2 s) so the suite stays quick; the logic does not depend on the scale.

use crate::common;

use std::time::Duration;

use common::late::{Late, Post, new_call};
use common::*;
use switchboard::dispatch::{self, EngineError};
use switchboard::model::{AttemptOutcome, CallStatus, ContactStatus};
use switchboard::store::calls::RetryOutcome;

fn settle_config(base_url: &str, settle_ms: u64) -> switchboard::config::Config {
    let mut c = config(base_url);
    c.vapi.request_timeout_ms = 300;
    c.vapi.settle_after_ms = settle_ms;
    c.vapi.lookup_skew_ms = 500;
    fast_retries(&mut c);
    c
}

async fn the_call(store: &switchboard::store::Store) -> switchboard::store::calls::Call {
    store.call(1).await.expect("call 1")
}

fn outcomes(attempts: &[switchboard::store::attempts::Attempt]) -> Vec<AttemptOutcome> {
    attempts.iter().map(|a| a.outcome).collect()
}

/// A request that hangs, whose call Vapi creates after the client gave up, and after the
/// first look-up found nothing: adopted once it shows up, never dialled again.
#[tokio::test]
async fn a_call_created_late_by_a_hung_request_is_adopted_not_redialled() {
    let vapi = Late::start(vec![Post::HangThenCreateLate {
        after: Duration::from_millis(900),
    }])
    .await;
    let Some((store, _dir)) =
        test_store("a_call_created_late_by_a_hung_request_is_adopted_not_redialled").await
    else {
        return;
    };
    campaign(&store, "c", 1).await;
    let engine = engine(settle_config(&vapi.base_url, 2_000), &store, KEY).await;
    wait_for(&engine, Duration::from_secs(15), all_completed).await;
    engine.shutdown().await;
    assert_eq!(vapi.posts().len(), 1, "sent once");
    let call = the_call(&store).await;
    assert_eq!(call.provider_call_id.as_deref(), Some("late-0"));
    assert_eq!(call.status, CallStatus::Ended);
    let attempts = store.attempts(call.id).await.unwrap();
    assert_eq!(outcomes(&attempts), vec![AttemptOutcome::Adopted]);
    assert_eq!(vapi.created_per_name().get(&call.reference), Some(&1));
    assert_invariants(&store).await;
}

/// A call Vapi creates a moment after the first look-up found nothing is adopted at a
/// later look-up on the backoff schedule, long before the settle deadline (60 s here), and
/// nothing is sent again.
#[tokio::test]
async fn a_call_created_after_the_first_look_up_is_adopted_long_before_the_settle_deadline() {
    let vapi = Late::start(vec![Post::HangThenCreateLate {
        after: Duration::from_millis(900),
    }])
    .await;
    let Some((store, _dir)) = test_store(
        "a_call_created_after_the_first_look_up_is_adopted_long_before_the_settle_deadline",
    )
    .await
    else {
        return;
    };
    campaign(&store, "c", 1).await;
    let mut cfg = settle_config(&vapi.base_url, 60_000);
    cfg.dispatch.backoff_ms = vec![250, 500, 1_000];
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), all_completed).await;
    engine.shutdown().await;
    assert_eq!(vapi.posts().len(), 1, "sent once");
    let call = the_call(&store).await;
    assert_eq!(call.provider_call_id.as_deref(), Some("late-0"));
    let attempts = store.attempts(call.id).await.unwrap();
    assert_eq!(outcomes(&attempts), vec![AttemptOutcome::Adopted]);
    assert_invariants(&store).await;
}

/// A 500 (HTML page) after Vapi created the call: looked up and adopted.
#[tokio::test]
async fn a_500_after_the_create_is_adopted() {
    for code in [500, 502, 520] {
        let vapi = Late::start(vec![Post::CreateThenFail(code)]).await;
        let Some((store, _dir)) = test_store("a_500_after_the_create_is_adopted").await else {
            return;
        };
        campaign(&store, "c", 1).await;
        let engine = engine(settle_config(&vapi.base_url, 1_000), &store, KEY).await;
        wait_for(&engine, Duration::from_secs(10), all_completed).await;
        engine.shutdown().await;
        assert_eq!(vapi.posts().len(), 1, "HTTP {code}: sent once");
        let call = the_call(&store).await;
        let attempts = store.attempts(call.id).await.unwrap();
        assert_eq!(outcomes(&attempts), vec![AttemptOutcome::Adopted], "{code}");
        assert!(
            attempts[0].error.as_deref().is_none_or(|e| e.len() < 400),
            "the HTML page is not stored whole"
        );
        assert_invariants(&store).await;
    }
}

/// An unknown outcome is neither failed nor re-sent until it is settled: the re-send comes
/// only after a complete look-up made once the settle time has passed.
#[tokio::test]
async fn an_unknown_outcome_is_not_resent_before_it_is_settled() {
    let settle = Duration::from_millis(1_500);
    let vapi = Late::start(vec![Post::FailOnly(504)]).await;
    let Some((store, _dir)) =
        test_store("an_unknown_outcome_is_not_resent_before_it_is_settled").await
    else {
        return;
    };
    campaign(&store, "c", 1).await;
    let engine = engine(
        settle_config(&vapi.base_url, settle.as_millis() as u64),
        &store,
        KEY,
    )
    .await;
    // Soon after the 504 the call is UNKNOWN, not FAILED, and nothing was sent again.
    wait_for(&engine, Duration::from_secs(5), |s| s.creating == 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let call = the_call(&store).await;
    assert_eq!(call.status, CallStatus::Unknown);
    assert_eq!(vapi.posts().len(), 1);
    wait_for(&engine, Duration::from_secs(10), all_completed).await;
    engine.shutdown().await;
    let posts = vapi.posts();
    assert_eq!(posts.len(), 2);
    assert!(
        posts[1].0 - posts[0].0 >= settle,
        "re-sent {:?} after the first request, before the settle time {settle:?}",
        posts[1].0 - posts[0].0
    );
    let attempts = store.attempts(1).await.unwrap();
    assert_eq!(
        outcomes(&attempts),
        vec![AttemptOutcome::NotCreated, AttemptOutcome::Created]
    );
    assert_invariants(&store).await;
}

/// A look-up that cannot finish proves nothing: the call stays UNKNOWN (never FAILED, never
/// re-sent) for as long as that lasts, and is settled once look-ups work again.
#[tokio::test]
async fn a_lookup_that_cannot_finish_keeps_the_call_unknown() {
    let vapi = Late::start(vec![Post::FailOnly(504)]).await;
    vapi.set_lists_fail(true);
    let Some((store, _dir)) =
        test_store("a_lookup_that_cannot_finish_keeps_the_call_unknown").await
    else {
        return;
    };
    campaign(&store, "c", 1).await;
    let mut cfg = settle_config(&vapi.base_url, 500);
    cfg.dispatch.max_retries = 1;
    let engine = engine(cfg, &store, KEY).await;
    // Past the settle time and more failed look-ups than retries: still unknown. (Both are
    // waited for: the look-ups counted by the server, the deadline from the request's send.)
    until(
        Duration::from_secs(15),
        "three failed look-ups past the settle time",
        || {
            let state = vapi.state.lock().unwrap();
            let past_settle = state
                .posts
                .first()
                .is_some_and(|(sent, _)| sent.elapsed() >= Duration::from_millis(1_000));
            let ready = state.lists >= 3 && past_settle;
            async move { ready }
        },
    )
    .await;
    assert_eq!(the_call(&store).await.status, CallStatus::Unknown);
    assert_eq!(vapi.posts().len(), 1);
    vapi.set_lists_fail(false);
    wait_for(&engine, Duration::from_secs(15), all_completed).await;
    engine.shutdown().await;
    assert_eq!(vapi.posts().len(), 2, "re-sent once settled");
    assert_invariants(&store).await;
}

/// An operator's retry of an UNKNOWN call dials only once it is settled as not created —
/// even when the call's own retries are used up.
#[tokio::test]
async fn an_operators_retry_of_an_unknown_call_waits_for_the_settle() {
    let settle = Duration::from_millis(1_500);
    let vapi = Late::start(vec![Post::FailOnly(504)]).await;
    let Some((store, _dir)) =
        test_store("an_operators_retry_of_an_unknown_call_waits_for_the_settle").await
    else {
        return;
    };
    let id = campaign(&store, "c", 1).await;
    let mut cfg = settle_config(&vapi.base_url, settle.as_millis() as u64);
    cfg.dispatch.max_retries = 0; // without the operator, it would fail once settled
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(5), |s| s.creating == 1).await;
    // The 504 answered: the call is UNKNOWN (not yet settled) when the operator retries it.
    until(Duration::from_secs(5), "the call UNKNOWN", || {
        let store = store.clone();
        async move { store.call(1).await.unwrap().status == CallStatus::Unknown }
    })
    .await;
    assert_eq!(
        store.retry_call(1).await.unwrap(),
        RetryOutcome::AfterSettling
    );
    assert_eq!(vapi.posts().len(), 1, "the retry sent nothing by itself");
    wait_for(&engine, Duration::from_secs(10), all_completed).await;
    engine.shutdown().await;
    let posts = vapi.posts();
    assert_eq!(posts.len(), 2);
    assert!(posts[1].0 - posts[0].0 >= settle);
    let c = store.campaign(id).await.unwrap();
    assert_eq!((c.total_calls_created, c.failed_calls), (1, 0));
    assert_invariants(&store).await;
}

/// A crash right after a slow create was sent, and an immediate restart: the new engine takes
/// the interrupted attempt for UNKNOWN and adopts the call Vapi created late, never re-sending.
#[tokio::test]
async fn a_restart_right_after_a_crash_settles_the_interrupted_attempt() {
    let vapi = Late::start(vec![]).await;
    let Some((store, _dir)) =
        test_store("a_restart_right_after_a_crash_settles_the_interrupted_attempt").await
    else {
        return;
    };
    let id = campaign(&store, "c", 2).await;
    // The crashed engine: both contacts claimed, attempts IN_FLIGHT. The first request
    // reached Vapi, which creates its call 700 ms later (after the restart's first look-up);
    // the second never left the machine.
    let instance = store.instance_id().await.unwrap();
    let (first, _) = store
        .claim_call(id, &instance, "crashed")
        .await
        .unwrap()
        .unwrap();
    store
        .claim_call(id, &instance, "crashed")
        .await
        .unwrap()
        .unwrap();
    let late = vapi.state.clone();
    let name = first.reference.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        new_call(&mut late.lock().unwrap(), &name);
    });
    let engine = engine(settle_config(&vapi.base_url, 1_500), &store, KEY).await;
    wait_for(&engine, Duration::from_secs(15), all_completed).await;
    engine.shutdown().await;
    let per_name = vapi.created_per_name();
    assert_eq!(
        per_name.get(&first.reference),
        Some(&1),
        "not dialled again"
    );
    assert_eq!(per_name.len(), 2);
    assert_eq!(vapi.posts().len(), 1, "only the second contact was sent");
    assert_eq!(
        outcomes(&store.attempts(first.call_id).await.unwrap()),
        vec![AttemptOutcome::Adopted]
    );
    assert_invariants(&store).await;
}

/// Two engines on one database: the second is refused before it reads or sends anything.
#[tokio::test]
async fn a_second_engine_on_the_same_database_is_refused_and_sends_nothing() {
    let vapi = Late::start(vec![]).await;
    let Some((store, dir)) =
        test_store("a_second_engine_on_the_same_database_is_refused_and_sends_nothing").await
    else {
        return;
    };
    if dir.is_postgres() {
        // On PostgreSQL a second engine shares the work instead (tests/engines_pg.rs).
        println!("SQLite only: one engine per SQLite database");
        return;
    }
    campaign(&store, "c", 3).await;
    let first = engine(settle_config(&vapi.base_url, 1_000), &store, KEY).await;
    // Another process's view of the same file.
    let other = switchboard::store::Store::open_in(dir.path())
        .await
        .unwrap();
    let cfg = settle_config(&vapi.base_url, 1_000);
    let second = dispatch::start(cfg.clone(), other.clone(), client(&cfg, KEY)).await;
    match second {
        Err(EngineError::LeaseHeld { holder, .. }) => {
            assert!(holder.contains(':'), "names host:pid, got {holder}")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a second engine started on the same database"),
    }
    wait_for(&first, Duration::from_secs(10), all_completed).await;
    first.shutdown().await;
    assert_eq!(
        vapi.posts().len(),
        3,
        "every contact dialled once, by one engine"
    );
    // After a clean stop the lease is free: the next engine starts at once.
    let next = dispatch::start(cfg.clone(), other, client(&cfg, KEY)).await;
    assert!(next.is_ok(), "the lease was released");
    next.unwrap().shutdown().await;
    assert_eq!(
        store.count_contacts(1, ContactStatus::Done).await.unwrap(),
        3
    );
}

/// An engine whose start fails (the webhook's secret unset, its port taken) leaves no lease
/// behind: the next engine starts at once, and nothing was sent.
#[tokio::test]
async fn a_start_that_fails_leaves_no_lease_behind() {
    let vapi = Late::start(vec![]).await;
    let Some((store, _dir)) = test_store("a_start_that_fails_leaves_no_lease_behind").await else {
        return;
    };
    campaign(&store, "c", 1).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = settle_config(&vapi.base_url, 1_000);
    cfg.webhook.listen = Some(taken.local_addr().unwrap().to_string());
    cfg.webhook.secret_env = "SWITCHBOARD_TEST_NO_SUCH_VARIABLE".into();
    let unset = dispatch::start(cfg.clone(), store.clone(), client(&cfg, KEY)).await;
    assert!(
        matches!(unset, Err(EngineError::WebhookSecret(_))),
        "{:?}",
        unset.err()
    );
    // A variable every process has stands in for a secret: the port is what fails here.
    cfg.webhook.secret_env = "PATH".into();
    let port_taken = dispatch::start(cfg.clone(), store.clone(), client(&cfg, KEY)).await;
    assert!(
        matches!(port_taken, Err(EngineError::Webhook { .. })),
        "{:?}",
        port_taken.err()
    );
    assert!(
        store.lease_holder(60_000).await.unwrap().is_none(),
        "no lease left by the failed starts"
    );
    assert!(vapi.posts().is_empty(), "nothing sent");
    drop(taken);
    let cfg = settle_config(&vapi.base_url, 1_000);
    let next = dispatch::start(cfg.clone(), store.clone(), client(&cfg, KEY))
        .await
        .expect("the next engine starts at once");
    wait_for(&next, Duration::from_secs(10), all_completed).await;
    next.shutdown().await;
    assert_eq!(vapi.posts().len(), 1);
}
