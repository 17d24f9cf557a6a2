//! Core story (US-3.2): durable call creation, retries, error handling, no double dial,
//! campaign state and data integrity. Wiremock and the simulator on 127.0.0.1; the backoff
//! schedule under tokio's paused time.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::json;
use switchboard::model::{AttemptOutcome, CallStatus, CampaignStatus};
use switchboard::simulator::{SimConfig, Simulator};
use switchboard::store::stats::{CallQuery, CallTab};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn created_body(id: &str) -> serde_json::Value {
    json!({"id": id, "orgId": "o", "status": "queued", "createdAt": "2026-11-24T10:00:00.000Z",
           "subscriptionLimits": {"concurrencyBlocked": false, "concurrencyLimit": 10, "remainingConcurrentCalls": 9}})
}

async fn only_call(store: &switchboard::store::Store) -> switchboard::store::calls::Call {
    let rows = store
        .call_page(&CallQuery {
            tab: CallTab::All,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "exactly one call row: {rows:?}");
    store.call(rows[0].id).await.unwrap()
}

#[tokio::test]
async fn success_stores_provider_id_and_starts_the_campaign() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_body("vapi-call-1")))
        .expect(1)
        .mount(&server)
        .await;
    let (store, _dir) = store().await;
    let campaign_id = campaign(&store, "spring", 1).await;
    let before = store.campaign(campaign_id).await.unwrap();
    assert_eq!(before.status, CampaignStatus::Dialing);
    assert_eq!(
        before.started_at, None,
        "started_at waits for the first created call"
    );

    let engine = engine(config(&server.uri()), &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), created(1)).await;
    engine.shutdown().await;

    let call = only_call(&store).await;
    assert_eq!(call.provider_call_id.as_deref(), Some("vapi-call-1"));
    assert_eq!(call.status, CallStatus::Queued);
    assert_eq!(call.attempt_count, 1);
    let c = store.campaign(campaign_id).await.unwrap();
    assert_eq!(c.status, CampaignStatus::Dialing);
    assert!(c.started_at.is_some());
    assert_eq!((c.total_calls_created, c.active_calls), (1, 1));

    // The request is Vapi's CreateCallDTO: no top-level metadata.
    let requests = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["assistantId"], "asst-1");
    assert_eq!(body["phoneNumberId"], "pn-1");
    assert_eq!(body["customer"]["number"], "+14153010000");
    assert_eq!(body["assistantOverrides"]["metadata"]["callId"], call.id);
    assert_eq!(body["name"], call.reference.as_str());
    assert!(
        body.get("metadata").is_none(),
        "no top-level metadata: {body}"
    );
    assert_invariants(&store).await;
}

#[tokio::test]
async fn rate_limited_create_follows_the_backoff_schedule_then_succeeds() {
    let vapi = Scripted::start(vec![
        Reply::Status(429, None),
        Reply::Status(429, None),
        Reply::Status(429, None),
        Reply::Created,
    ])
    .await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    // The default 1 s / 4 s / 10 s schedule at 1/10 scale: the engine must follow whatever
    // schedule is configured (the default itself is checked in dispatch::retry).
    let mut cfg = config(&vapi.base_url);
    cfg.dispatch.backoff_ms = vec![100, 400, 1_000];
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), created(1)).await;
    engine.shutdown().await;

    let gaps = gaps_ms(&vapi.post_times());
    assert_eq!(gaps.len(), 3, "four POSTs: {gaps:?}");
    for (gap, expected) in gaps.iter().zip([100u128, 400, 1_000]) {
        assert!(
            *gap >= expected && *gap < expected + 250,
            "retry gaps {gaps:?} should follow the 100/400/1000 ms schedule"
        );
    }
    let call = only_call(&store).await;
    assert_eq!(call.attempt_count, 4);
    let attempts = store.attempts(call.id).await.unwrap();
    let delays: Vec<Option<i64>> = attempts.iter().map(|a| a.retry_delay_ms).collect();
    assert_eq!(delays, vec![Some(100), Some(400), Some(1_000), None]);
    assert_eq!(attempts[0].http_status, Some(429));
    assert_eq!(attempts[3].outcome, AttemptOutcome::Created);
    assert_invariants(&store).await;
}

/// A 429 spends no retry and the call's waits still grow along the schedule, even when
/// another call's create succeeds between its 429s (which ends the engine-wide 429 streak).
/// Timeline: A's first 429 is answered at 200 ms; B's create, sent meanwhile, succeeds at
/// 300-350 ms; A's second 429 comes at ~700 ms and must wait the schedule's second step.
#[tokio::test]
async fn a_call_s_429_waits_grow_along_the_schedule_whatever_other_calls_do() {
    let after = |ms, reply| Reply::After(ms, Box::new(reply));
    let vapi = Scripted::start(vec![
        after(200, Reply::Status(429, None)),
        after(300, Reply::Created),
        Reply::Status(429, None),
        Reply::Created,
    ])
    .await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 2).await;
    let mut cfg = config(&vapi.base_url);
    cfg.dispatch.backoff_ms = vec![500, 2_000, 3_000];
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(15), created(2)).await;
    engine.shutdown().await;

    let rows = store
        .call_page(&CallQuery {
            tab: CallTab::All,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut by_attempts: Vec<(i64, i64)> = rows.iter().map(|r| (r.id, 0)).collect();
    for (id, n) in &mut by_attempts {
        *n = store.call(*id).await.unwrap().attempt_count;
    }
    by_attempts.sort_by_key(|(_, n)| *n);
    assert_eq!(
        by_attempts.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        vec![1, 3],
        "B created at once, A after two 429s"
    );
    let attempts = store.attempts(by_attempts[1].0).await.unwrap();
    let delays: Vec<Option<i64>> = attempts.iter().map(|a| a.retry_delay_ms).collect();
    assert_eq!(
        delays,
        vec![Some(500), Some(2_000), None],
        "the second 429 waits the schedule's second step (B's success reset the engine's streak)"
    );
    let outcomes: Vec<AttemptOutcome> = attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            AttemptOutcome::RateLimited,
            AttemptOutcome::RateLimited,
            AttemptOutcome::Created
        ]
    );
    assert_invariants(&store).await;
}

#[tokio::test]
async fn retry_after_longer_than_the_schedule_wins() {
    let vapi = Scripted::start(vec![Reply::Status(429, Some(1)), Reply::Created]).await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let mut cfg = config(&vapi.base_url);
    cfg.dispatch.backoff_ms = vec![100, 400, 1_000];
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), created(1)).await;
    engine.shutdown().await;
    let gaps = gaps_ms(&vapi.post_times());
    assert!(
        gaps[0] >= 1_000 && gaps[0] < 1_250,
        "Retry-After: 1 beats 100 ms → {gaps:?}"
    );
}

#[tokio::test]
async fn retries_used_up_fail_the_call_with_the_last_error() {
    let vapi = Scripted::start(vec![Reply::Status(503, None); 4]).await;
    let (store, _dir) = store().await;
    let campaign_id = campaign(&store, "c", 1).await;
    let mut cfg = config(&vapi.base_url);
    fast_retries(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), |s| s.failed == 1).await;
    engine.shutdown().await;
    assert_eq!(vapi.posts(), 4, "1 attempt + max_retries (3)");
    let call = only_call(&store).await;
    assert_eq!(call.status, CallStatus::Failed);
    assert_eq!(call.attempt_count, 4);
    let reason = call.ended_reason.unwrap();
    assert!(
        reason.contains("gave up after 4 attempts") && reason.contains("HTTP 503"),
        "{reason}"
    );
    let c = store.campaign(campaign_id).await.unwrap();
    assert_eq!(
        c.status,
        CampaignStatus::Completed,
        "its only contact is done"
    );
    assert_eq!(c.failed_calls, 1);
    assert_invariants(&store).await;
}

/// A rate-limit storm longer than every backoff fails no call: a 429 waits for the request
/// budget and spends none of the call's retries.
#[tokio::test]
async fn a_429_storm_longer_than_all_retries_fails_no_call() {
    let vapi = Scripted::start(vec![Reply::Status(429, None); 7]).await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let mut cfg = config(&vapi.base_url);
    fast_retries(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(20), created(1)).await;
    engine.shutdown().await;
    assert_eq!(vapi.posts(), 8, "7 rate-limited attempts, then the create");
    let call = only_call(&store).await;
    assert!(call.provider_call_id.is_some());
    let outcomes: Vec<AttemptOutcome> = store
        .attempts(call.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.outcome)
        .collect();
    let mut expected = vec![AttemptOutcome::RateLimited; 7];
    expected.push(AttemptOutcome::Created);
    assert_eq!(outcomes, expected);
    assert_invariants(&store).await;
}

#[tokio::test]
async fn bad_request_is_not_retried_and_keeps_vapis_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "message": ["property metadata should not exist", "customer.number must be a valid phone number"],
            "error": "Bad Request", "statusCode": 400})))
        .expect(1)
        .mount(&server)
        .await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let engine = engine(config(&server.uri()), &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), |s| s.failed == 1).await;
    engine.shutdown().await;
    let call = only_call(&store).await;
    assert_eq!(call.status, CallStatus::Failed);
    assert_eq!(call.attempt_count, 1);
    assert_eq!(
        call.ended_reason.as_deref(),
        Some(
            "HTTP 400: property metadata should not exist; customer.number must be a valid phone number"
        )
    );
    assert_eq!(
        store.attempts(call.id).await.unwrap()[0].outcome,
        AttemptOutcome::Rejected
    );
    assert_invariants(&store).await;
}

#[tokio::test]
async fn unauthorized_fails_the_call_and_pauses_all_dispatch() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Invalid Key"})))
        .expect(1)
        .mount(&server)
        .await;
    let (store, _dir) = store().await;
    let campaign_id = campaign(&store, "c", 5).await;
    // Slow enough that the 401 is back before the second create is due.
    let mut cfg = config(&server.uri());
    cfg.dispatch.rate_per_second = 2.0;
    let engine = engine(cfg, &store, KEY).await;
    let s = wait_for(&engine, Duration::from_secs(10), |s| {
        s.dispatch_paused.is_some() && s.creating == 0
    })
    .await;
    let pause = s.dispatch_paused.unwrap();
    assert!(pause.reason.contains("API key"), "{pause}");
    assert_eq!(pause.cause, switchboard::model::StopCause::Credentials);
    wait_held(&engine, 5).await;
    engine.shutdown().await;
    // One request, one failed call; the other four contacts were never dialled.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let c = store.campaign(campaign_id).await.unwrap();
    assert_eq!(
        (c.failed_calls, c.contacts_done, c.contacts_total),
        (1, 1, 5)
    );
    assert!(
        store.engine_control().await.unwrap().dispatch_paused,
        "the pause is durable"
    );
    assert_invariants(&store).await;
}

#[tokio::test]
async fn network_timeout_is_looked_up_then_retried() {
    let server = MockServer::start().await;
    // First POST hangs past the client timeout and creates nothing; the look-up finds
    // nothing; the second POST succeeds.
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(created_body("never-seen"))
                .set_delay(Duration::from_secs(3)),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_body("second")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1..)
        .mount(&server)
        .await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let mut cfg = config(&server.uri());
    cfg.vapi.request_timeout_ms = 300;
    fast_retries(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), created(1)).await;
    engine.shutdown().await;
    let call = only_call(&store).await;
    assert_eq!(call.provider_call_id.as_deref(), Some("second"));
    let outcomes: Vec<AttemptOutcome> = store
        .attempts(call.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![AttemptOutcome::NotCreated, AttemptOutcome::Created],
        "settled as not created, then sent again"
    );
    let lookups = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == "/call")
        .collect::<Vec<_>>();
    let query = lookups[0].url.query().unwrap_or("");
    assert!(
        query.contains("assistantId=asst-1")
            && query.contains("phoneNumberId=pn-1")
            && query.contains("createdAtGe=")
            && query.contains("createdAtLe="),
        "{query}"
    );
    assert_invariants(&store).await;
}

#[tokio::test]
async fn timeout_after_the_call_was_created_adopts_it_instead_of_dialling_again() {
    let sim = Simulator::start(
        SimConfig {
            api_key: KEY.into(),
            fault_timeout: 1.0,
            hang_ms: 5_000,
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let mut cfg = config(&sim.base_url());
    cfg.vapi.request_timeout_ms = 300;
    fast_retries(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), created(1)).await;
    engine.shutdown().await;
    let stats = sim.stats();
    assert_eq!(
        stats.calls_created, 1,
        "exactly one call at Vapi: {stats:?}"
    );
    assert_eq!(stats.create_requests, 1, "never re-sent");
    let call = only_call(&store).await;
    assert!(call.provider_call_id.is_some());
    let attempts = store.attempts(call.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Adopted);
    assert_eq!(stats.created_per_name.get(&call.reference), Some(&1));
    sim.shutdown().await;
    assert_invariants(&store).await;
}

#[tokio::test]
async fn the_call_row_is_committed_before_the_request_is_answered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(created_body("slow"))
                .set_delay(Duration::from_millis(1_500)),
        )
        .mount(&server)
        .await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let engine = engine(config(&server.uri()), &store, KEY).await;
    // While the request is in flight, the intent is already durable.
    let mut seen_in_flight = false;
    for _ in 0..100 {
        if server.received_requests().await.unwrap().len() == 1 {
            let call = only_call(&store).await;
            assert_eq!(call.status, CallStatus::Creating);
            assert_eq!(call.provider_call_id, None);
            let attempts = store.attempts(call.id).await.unwrap();
            assert_eq!(attempts[0].outcome, AttemptOutcome::InFlight);
            seen_in_flight = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen_in_flight, "the request never arrived");
    wait_for(&engine, Duration::from_secs(10), created(1)).await;
    engine.shutdown().await;
    assert_eq!(
        only_call(&store).await.provider_call_id.as_deref(),
        Some("slow")
    );
    assert_invariants(&store).await;
}

#[tokio::test]
async fn a_simulated_campaign_ends_with_every_call_ended_or_failed_and_consistent_counters() {
    let sim = Simulator::start(
        SimConfig {
            api_key: KEY.into(),
            fault_429: 0.05,
            fault_503: 0.05,
            fault_timeout: 0.05,
            hang_ms: 2_000,
            queue_ms: 5,
            ring_ms: 5,
            talk_min_ms: 10,
            talk_max_ms: 40,
            concurrency_limit: 0,
            seed: Some(7),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let (store, _dir) = store().await;
    campaign(&store, "c", 60).await;
    let mut cfg = config(&sim.base_url());
    cfg.vapi.request_timeout_ms = 250;
    cfg.dispatch.max_concurrent_calls = 20;
    cfg.dispatch.breaker_failures = 50;
    fast_retries(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(30), all_completed).await;
    engine.shutdown().await;
    let stats = sim.stats();
    assert!(
        stats.created_per_name.values().all(|n| *n == 1),
        "a contact was dialled twice: {stats:?}"
    );
    let c = store.campaign(1).await.unwrap();
    assert_eq!(c.contacts_done, 60);
    assert_eq!(c.ended_calls + c.failed_calls, 60);
    assert_eq!(c.total_calls_created as u64, stats.calls_created);
    let failed = store
        .call_page(&CallQuery {
            tab: CallTab::Failed,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        failed
            .iter()
            .all(|f| f.ended_reason.as_deref().is_some_and(|r| !r.is_empty()))
    );
    sim.shutdown().await;
    assert_invariants(&store).await;
}
