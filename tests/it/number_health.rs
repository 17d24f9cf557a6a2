//! Number health end to end: a pool number people answer far less than its peers is
//! flagged in `campaign show` and the engine's snapshot, and benched for the cool-down when
//! the campaign rests weak numbers.

use std::time::Duration;

use crate::common::*;
use switchboard::simulator::{SimConfig, Simulator};
use switchboard::store::Store;

const KEY: &str = "health-key";

/// Claims `n` contacts and ends each call: answered (a two-minute talk) at `rates` by the
/// number it was made from, never answered otherwise.
async fn calls_by_number(
    store: &Store,
    campaign: i64,
    n: usize,
    answered_per_100: &[(&str, usize)],
) {
    let mut made: std::collections::HashMap<String, usize> = Default::default();
    for i in 0..n {
        let (job, attempt) = store
            .claim_call_at(campaign, "i", "e", chrono::Utc::now())
            .await
            .expect("claim")
            .expect("a contact to claim");
        let id = format!("vapi-h-{i}");
        created_as(store, job.call_id, attempt, &id).await;
        let seen = made.entry(job.phone_number_id.clone()).or_default();
        *seen += 1;
        let rate = answered_per_100
            .iter()
            .find(|(number, _)| *number == job.phone_number_id)
            .map_or(0, |(_, r)| *r);
        let answered = (*seen - 1) % 100 < rate;
        let reason = if answered {
            "customer-ended-call"
        } else {
            "customer-did-not-answer"
        };
        let talked_s = answered.then_some(120);
        ended_as(store, &id, chrono::Utc::now(), reason, talked_s, Some(0.05)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_answered_at_10_percent_among_numbers_at_40_is_flagged_and_benched() {
    let (store, _db) = store().await;
    let id = campaign(&store, "pool", 330).await;
    store
        .set_campaign_numbers(
            id,
            &[
                ("pn-weak".into(), 1),
                ("pn-a".into(), 1),
                ("pn-b".into(), 1),
            ],
        )
        .await
        .expect("pool");
    calls_by_number(
        &store,
        id,
        300,
        &[("pn-weak", 10), ("pn-a", 40), ("pn-b", 40)],
    )
    .await;

    // Flagged, not benched: the campaign does not rest numbers yet.
    let health =
        switchboard::dispatch::number_health::review(&store, id, 3_000, 0.0, chrono::Utc::now())
            .await
            .expect("review");
    let weak = health
        .numbers
        .iter()
        .find(|n| n.key == "pn-weak")
        .expect("pn-weak");
    assert_eq!((weak.day.calls, weak.day.answered), (100, 10), "{weak:?}");
    assert_eq!(
        weak.flag.as_deref(),
        Some("answered 10 % against 40 % for its peers")
    );
    assert!(!weak.rest);
    for peer in health.numbers.iter().filter(|n| n.key != "pn-weak") {
        assert_eq!(peer.flag, None, "{peer:?}");
    }
    assert_eq!(health.day.calls, 300);

    // The campaign rests numbers below half their peers' rate: the engine benches it.
    let mut rules = store.campaign_rules(id).await.expect("rules");
    rules.rest_numbers_below = 0.5;
    rules.call_window = "00:00-24:00".into();
    rules.call_days = "mon-sun".into();
    rules.cap_per_day = 0;
    rules.cap_per_week = 0;
    store.set_campaign_rules(id, &rules).await.expect("rules");
    let sim = Simulator::start(
        SimConfig {
            api_key: KEY.into(),
            seed: Some(5),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("simulator");
    let engine = engine(config(&sim.base_url()), &store, KEY).await;
    until(
        Duration::from_secs(20),
        "the weak number benched",
        || async {
            store
                .campaign_numbers(id)
                .await
                .expect("numbers")
                .iter()
                .any(|n| n.phone_number_id == "pn-weak" && n.benched_at(chrono::Utc::now()))
        },
    )
    .await;
    let numbers = store.campaign_numbers(id).await.expect("numbers");
    let weak = numbers
        .iter()
        .find(|n| n.phone_number_id == "pn-weak")
        .expect("weak");
    let reason = weak.bench_reason.as_deref().unwrap_or("");
    assert!(
        reason.starts_with("answered 10 % against 40 % for its peers over the last day"),
        "{reason}"
    );
    assert!(
        numbers
            .iter()
            .filter(|n| n.phone_number_id != "pn-weak")
            .all(|n| !n.benched_at(chrono::Utc::now())),
        "its peers stay in use: {numbers:?}"
    );
    // The quota pane's view carries the figures and the flag.
    wait_for(&engine, Duration::from_secs(10), |s| {
        s.numbers.iter().any(|n| {
            n.phone_number_id == "pn-weak" && n.health.as_ref().is_some_and(|h| h.flag.is_some())
        })
    })
    .await;
    engine.shutdown().await;
}
