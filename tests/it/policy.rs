//! Compliance rules at claim time, with an injected clock (`claim_call_at`): calling windows
//! in the contact's zone across a DST change and in a zone ahead of UTC, do-not-call added
//! mid-campaign, caps across campaigns, consent, and every decision recorded for `why`.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use switchboard::config::ImportConfig;
use switchboard::import::import_contacts;
use switchboard::model::CampaignStatus;
use switchboard::store::Store;
use switchboard::store::policy::CampaignRules;

pub(crate) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(crate) async fn campaign_with(
    store: &Store,
    name: &str,
    csv: &str,
    rules: CampaignRules,
) -> i64 {
    let c = store.create_campaign(name, "a", "p").await.unwrap();
    store.set_campaign_rules(c.id, &rules).await.unwrap();
    import_contacts(
        store,
        c.id,
        csv.as_bytes(),
        &ImportConfig::default(),
        |_| {},
    )
    .await
    .unwrap();
    store.start_campaign(c.id).await.unwrap();
    c.id
}

pub(crate) fn rules(window: &str, days: &str, caps: (i64, i64)) -> CampaignRules {
    CampaignRules {
        call_window: window.into(),
        call_days: days.into(),
        timezone: "UTC".into(),
        cap_per_day: caps.0,
        cap_per_week: caps.1,
        require_consent: false,
        dnc_field: Some("do_not_call".into()),
        redial_reasons: "customer-busy,customer-did-not-answer,voicemail".into(),
        redial_delay_s: 7200,
        redial_count: 0,
        rule_pack: None,
        suppress_days: 0,
        max_call_s: 0,
        max_call_cost: 0.0,
        end_on_repeats: 0,
        rest_numbers_below: 0.0,
        starts_at: None,
        ends_by: None,
    }
}

/// Ends a claimed call as if Vapi had created it and it had ended (so the contact is DONE
/// and the call counts for the caps).
pub(crate) async fn claim(store: &Store, id: i64, at: DateTime<Utc>) -> Option<i64> {
    let (job, _) = store.claim_call_at(id, "i", "e", at).await.unwrap()?;
    Some(job.contact_id)
}

#[tokio::test]
async fn no_call_is_created_outside_the_window_across_a_dst_change() {
    let (store, _dir) = store().await;
    // New York numbers (212): the zone comes from the area code.
    let csv: String = std::iter::once("phone".to_string())
        .chain((0..200).map(|i| format!("+1212555{:04}", i)))
        .collect::<Vec<_>>()
        .join("\n");
    let id = campaign_with(&store, "ny", &csv, rules("09:00-20:00", "all", (0, 0))).await;
    assert_eq!(
        store.campaign_zones(id).await.unwrap(),
        vec!["America/New_York"]
    );
    let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
    // 2026-03-07 00:00Z to 03-10: clocks go forward on 03-08 at 02:00 local.
    let mut at = utc("2026-03-07T00:00:00Z");
    let mut claimed = Vec::new();
    while at < utc("2026-03-10T00:00:00Z") {
        if claim(&store, id, at).await.is_some() {
            claimed.push(at);
        }
        at += Duration::minutes(15);
    }
    assert!(!claimed.is_empty());
    for t in &claimed {
        let local = t.with_timezone(&ny);
        let hour = chrono::Timelike::hour(&local);
        assert!((9..20).contains(&hour), "claimed at {t} = {local} local");
    }
    // The first claim after the change is 09:00 EDT = 13:00Z (the day before, 14:00Z).
    assert!(claimed.contains(&utc("2026-03-07T14:00:00Z")));
    assert!(!claimed.contains(&utc("2026-03-08T12:45:00Z")));
    assert!(claimed.contains(&utc("2026-03-08T13:00:00Z")));
    assert!(
        claimed.contains(&utc("2026-03-08T00:45:00Z")),
        "19:45 EST is open"
    );
    assert!(
        !claimed.contains(&utc("2026-03-08T01:00:00Z")),
        "20:00 EST is closed"
    );
    assert!(
        !claimed.contains(&utc("2026-03-09T00:00:00Z")),
        "20:00 EDT is closed"
    );
    let state = store
        .window_state(id, utc("2026-03-08T03:00:00Z"))
        .await
        .unwrap();
    match state {
        switchboard::policy::WindowState::Closed { opens_at, zone } => {
            assert_eq!(opens_at, utc("2026-03-08T13:00:00Z"));
            assert_eq!(
                switchboard::policy::opens_text(opens_at, zone, utc("2026-03-08T03:00:00Z")),
                "next window opens Sun 09:00 America/New_York"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_zone_ahead_of_utc_is_called_on_its_own_morning() {
    let (store, _dir) = store().await;
    let csv = "phone,timezone\n+81312345678,\n+14155550100,America/Los_Angeles\n";
    let id = campaign_with(&store, "jp", csv, rules("09:00-20:00", "mon-fri", (0, 0))).await;
    // Sunday 23:30Z: Monday 08:30 in Tokyo, Sunday in Los Angeles: nobody.
    assert_eq!(claim(&store, id, utc("2026-01-18T23:30:00Z")).await, None);
    // 00:00Z Monday: 09:00 in Tokyo.
    let first = claim(&store, id, utc("2026-01-19T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(store.contact(first).await.unwrap().phone, "+81312345678");
    assert_eq!(claim(&store, id, utc("2026-01-19T00:01:00Z")).await, None);
    // 17:00Z Monday: 09:00 in Los Angeles.
    let second = claim(&store, id, utc("2026-01-19T17:00:00Z"))
        .await
        .unwrap();
    assert_eq!(store.contact(second).await.unwrap().phone, "+14155550100");
}

#[tokio::test]
async fn zones_come_from_the_column_else_the_number_else_the_campaign() {
    let (store, _dir) = store().await;
    let c = store.create_campaign("z", "a", "p").await.unwrap();
    let csv = "phone,timezone,consent_source,plan\n\
               +13125550100,,web form,gold\n\
               +18005550100,,,\n\
               +442079460958,Europe/Paris,,\n\
               +442079460959,Mars/Olympus,,\n";
    let report = import_contacts(
        &store,
        c.id,
        csv.as_bytes(),
        &ImportConfig::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.imported, 3);
    assert_eq!(report.zone_ambiguous, 1, "the toll-free number");
    assert_eq!(report.rejected.len(), 1);
    assert!(report.rejected[0].reason.contains("Mars/Olympus"));
    assert_eq!(
        store.campaign_zones(c.id).await.unwrap(),
        vec!["America/Chicago", "Europe/Paris"]
    );
}

#[tokio::test]
async fn a_number_put_on_do_not_call_mid_campaign_is_never_dialled() {
    let (store, _dir) = store().await;
    let csv = "phone\n+14155550100\n+14155550101\n+14155550102\n";
    let id = campaign_with(&store, "dnc", csv, rules("all", "all", (0, 0))).await;
    let now = Utc::now();
    claim(&store, id, now).await.unwrap();
    assert!(
        store
            .dnc_add("+14155550101", "asked not to be called", "test")
            .await
            .unwrap()
    );
    let next = claim(&store, id, now).await.unwrap();
    assert_eq!(store.contact(next).await.unwrap().phone, "+14155550102");
    assert_eq!(claim(&store, id, now).await, None);
    assert_eq!(store.skipped_count(id).await.unwrap(), 1);
    let why = store.why("+14155550101").await.unwrap();
    let kinds: Vec<&str> = why.iter().map(|r| r.decision.as_str()).collect();
    assert_eq!(kinds, vec!["DNC_ADD", "SKIP"]);
    assert!(why[1].reason.contains("do-not-call"), "{why:?}");
    assert_eq!(why[1].campaign.as_deref(), Some("dnc"));
    let dialled = store.why("+14155550100").await.unwrap();
    assert_eq!(dialled.len(), 1);
    assert_eq!(dialled[0].decision, "DIAL");
    assert!(dialled[0].call_id.is_some());
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_number_in_several_campaigns_is_called_no_more_than_its_cap() {
    let (store, _dir) = store().await;
    let csv = "phone\n+14155550100\n";
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        ids.push(campaign_with(&store, name, csv, rules("all", "all", (3, 7))).await);
    }
    let t0 = utc("2026-01-14T12:00:00Z");
    for (i, id) in ids.iter().take(3).enumerate() {
        let at = t0 + Duration::hours(i as i64);
        assert!(claim(&store, *id, at).await.is_some());
    }
    // The fourth campaign: 3 calls in 24 h already.
    let at = t0 + Duration::hours(5);
    assert_eq!(claim(&store, ids[3], at).await, None);
    let why = store.why("+14155550100").await.unwrap();
    let last = why.last().unwrap();
    assert_eq!(last.decision, "DEFER");
    assert!(last.reason.contains("cap 3/24 h"), "{}", last.reason);
    assert!(
        last.reason.contains("2026-01-15T12:00:00.000Z"),
        "{}",
        last.reason
    );
    // Deferred until the oldest call is 24 h old.
    assert_eq!(claim(&store, ids[3], t0 + Duration::hours(23)).await, None);
    assert!(
        claim(&store, ids[3], t0 + Duration::hours(24))
            .await
            .is_some()
    );
    let c = store.campaign(ids[3]).await.unwrap();
    assert_eq!(c.status, CampaignStatus::Dialing);
}

#[tokio::test]
async fn a_contact_without_consent_is_skipped_when_consent_is_required() {
    let (store, _dir) = store().await;
    let csv = "phone,consent_source,consent_at\n\
               +14155550100,web form,2026-01-02T10:00:00Z\n\
               +14155550101,,\n";
    let mut r = rules("all", "all", (0, 0));
    r.require_consent = true;
    let id = campaign_with(&store, "consent", csv, r).await;
    let now = Utc::now();
    let first = claim(&store, id, now).await.unwrap();
    assert_eq!(store.contact(first).await.unwrap().phone, "+14155550100");
    assert_eq!(claim(&store, id, now).await, None);
    let skipped: Vec<_> = store
        .why("+14155550101")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.decision == "SKIP")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].reason.contains("consent"));
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_campaign_whose_contacts_are_all_skipped_completes() {
    let (store, _dir) = store().await;
    store.dnc_add("+14155550100", "x", "test").await.unwrap();
    let id = campaign_with(
        &store,
        "all-dnc",
        "phone\n+14155550100\n",
        rules("all", "all", (0, 0)),
    )
    .await;
    assert_eq!(claim(&store, id, Utc::now()).await, None);
    let c = store.campaign(id).await.unwrap();
    assert_eq!(c.status, CampaignStatus::Completed);
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_do_not_call_analysis_puts_the_number_on_the_list() {
    let (store, _dir) = store().await;
    let csv = "phone\n+14155550100\n";
    let id = campaign_with(&store, "stop", csv, rules("all", "all", (0, 0))).await;
    let (job, attempt) = store
        .claim_call_at(id, "i", "e", Utc::now())
        .await
        .unwrap()
        .unwrap();
    store
        .record_created(
            job.call_id,
            attempt,
            switchboard::model::AttemptOutcome::Created,
            "vapi-1",
            &switchboard::store::calls::CallUpdate::default(),
        )
        .await
        .unwrap();
    let analysis = switchboard::store::analysis::CallAnalysis {
        structured_data: Some(r#"{"do_not_call": true, "callback": false}"#.into()),
        ..Default::default()
    };
    assert!(store.record_analysis("vapi-1", &analysis).await.unwrap());
    let list = store.dnc_list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].phone, "+14155550100");
    assert_eq!(list[0].source, "call analysis");
    // The same number in another campaign is skipped.
    let other = campaign_with(&store, "other", csv, rules("all", "all", (0, 0))).await;
    assert_eq!(claim(&store, other, Utc::now()).await, None);
    assert_eq!(store.skipped_count(other).await.unwrap(), 1);
}

/// Claims, creates and ends the contact's call with `reason` at `at`.
async fn call_ends(store: &Store, id: i64, at: DateTime<Utc>, reason: &str, n: usize) -> i64 {
    let (job, attempt) = store
        .claim_call_at(id, "i", "e", at)
        .await
        .unwrap()
        .unwrap();
    store
        .record_created(
            job.call_id,
            attempt,
            switchboard::model::AttemptOutcome::Created,
            &format!("vapi-{n}"),
            &switchboard::store::calls::CallUpdate::default(),
        )
        .await
        .unwrap();
    let end = switchboard::store::calls::CallUpdate {
        status: Some(switchboard::model::CallStatus::Ended),
        ended_reason: Some(reason.into()),
        ended_at: Some(switchboard::store::format_time(at + Duration::minutes(1))),
        ..Default::default()
    };
    store
        .apply_call_update(&format!("vapi-{n}"), &end)
        .await
        .unwrap();
    job.call_id
}

#[tokio::test]
async fn a_busy_contact_is_redialled_after_its_delay_and_no_more_than_the_limit() {
    let (store, _dir) = store().await;
    let mut r = rules("all", "all", (0, 0));
    r.redial_count = 2;
    let id = campaign_with(&store, "redial", "phone\n+14155550100\n", r).await;
    let t0 = utc("2026-01-14T12:00:00Z");
    let first = call_ends(&store, id, t0, "customer-busy", 1).await;
    // Not before 2 h after the end (12:01).
    assert_eq!(claim(&store, id, t0 + Duration::minutes(120)).await, None);
    let t1 = t0 + Duration::minutes(121);
    let second = call_ends(&store, id, t1, "customer-did-not-answer", 2).await;
    let t2 = t1 + Duration::minutes(121);
    let third = call_ends(&store, id, t2, "customer-busy", 3).await;
    assert!(first < second && second < third);
    // Two redials made: the contact is done, the campaign complete.
    assert_eq!(claim(&store, id, t2 + Duration::hours(5)).await, None);
    let c = store.campaign(id).await.unwrap();
    assert_eq!(c.status, CampaignStatus::Completed);
    assert_eq!(c.contacts_done, 1);
    let calls = store.call_links(id).await.unwrap();
    assert_eq!(
        calls,
        vec![(first, None), (second, Some(first)), (third, Some(second))]
    );
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_call_with_a_conversation_is_never_redialled() {
    let (store, _dir) = store().await;
    let mut r = rules("all", "all", (0, 0));
    r.redial_count = 2;
    r.redial_reasons = "customer-busy,customer-ended-call".into();
    let id = campaign_with(&store, "talked", "phone\n+14155550100\n", r).await;
    let t0 = utc("2026-01-14T12:00:00Z");
    call_ends(&store, id, t0, "customer-ended-call", 1).await;
    assert_eq!(claim(&store, id, t0 + Duration::hours(3)).await, None);
    assert_eq!(
        store.campaign(id).await.unwrap().status,
        CampaignStatus::Completed
    );
}

// --- Phone-number pool ---

/// A pool's numbers are used in turn by weight; a benched one is skipped until its time,
/// and a campaign whose every number is benched claims nothing.
#[tokio::test]
async fn the_pool_takes_numbers_in_turn_by_weight_and_skips_benched_ones() {
    let (store, _db) = store().await;
    let id = campaign_with(&store, "pool", &numbers_csv(8), rules("all", "all", (0, 0))).await;
    store
        .set_campaign_numbers(id, &[("pn-a".into(), 2), ("pn-b".into(), 1)])
        .await
        .unwrap();
    let at = utc("2026-11-28T12:00:00Z");
    let mut used = Vec::new();
    for _ in 0..3 {
        let (job, _) = store
            .claim_call_at(id, "i", "e", at)
            .await
            .unwrap()
            .unwrap();
        used.push(job.phone_number_id);
    }
    // Weight 2 to 1: a, a, b (then a again).
    assert_eq!(used, ["pn-a", "pn-a", "pn-b"]);
    let call = store.call(1).await.unwrap();
    assert_eq!(call.phone_number_id.as_deref(), Some("pn-a"));

    // pn-a benched for an hour: only pn-b is used.
    let usable = store
        .bench_number(id, "pn-a", at + Duration::hours(1), "daily limit", at)
        .await
        .unwrap();
    assert_eq!(usable, 1);
    let (job, _) = store
        .claim_call_at(id, "i", "e", at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.phone_number_id, "pn-b");

    // Both benched: nothing is claimed and no contact is touched.
    store
        .bench_number(id, "pn-b", at + Duration::hours(2), "failing", at)
        .await
        .unwrap();
    let pending_before = pending(&store, id).await;
    assert!(
        store
            .claim_call_at(id, "i", "e", at)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(pending(&store, id).await, pending_before);
    // After pn-a's bench, it is used again (and its calls of the day counted).
    let later = at + Duration::minutes(61);
    let (job, _) = store
        .claim_call_at(id, "i", "e", later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.phone_number_id, "pn-a");
    let numbers = store.campaign_numbers(id).await.unwrap();
    let a = numbers
        .iter()
        .find(|n| n.phone_number_id == "pn-a")
        .unwrap();
    assert!(!a.benched_at(later));
    assert_eq!(a.calls_on(later), 3);
}

fn numbers_csv(n: usize) -> String {
    let mut csv = String::from("phone\n");
    for i in 0..n {
        csv.push_str(&format!("+1415555{:04}\n", 2000 + i));
    }
    csv
}

async fn pending(store: &Store, id: i64) -> i64 {
    store
        .count_contacts(id, switchboard::model::ContactStatus::Pending)
        .await
        .unwrap()
}

async fn limited_sim(per_number: u64) -> switchboard::simulator::Simulator {
    use switchboard::simulator::{SimConfig, Simulator};
    Simulator::start(
        SimConfig {
            api_key: KEY.into(),
            queue_ms: 5,
            ring_ms: 10,
            talk_min_ms: 30,
            talk_max_ms: 60,
            concurrency_limit: 0,
            seed: Some(5),
            number_daily_limit: per_number,
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("simulator")
}

async fn wait_campaign(
    store: &Store,
    id: i64,
    want: CampaignStatus,
) -> switchboard::store::campaigns::Campaign {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let c = store.campaign(id).await.unwrap();
        if c.status == want {
            return c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "campaign still {} ({:?}), wanted {want}",
            c.status,
            c.pause_reason
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Vapi's daily limit for one number benches it until the next day; the campaign goes on
/// with its other number, and every contact is dialled once.
#[tokio::test]
async fn a_number_benched_on_its_daily_limit_and_the_campaign_goes_on_with_the_others() {
    let sim = limited_sim(3).await;
    let (store, _db) = store().await;
    let id = campaign(&store, "pool", 6).await;
    // pn-1 is picked three times as often: it reaches its limit of 3 first.
    store
        .set_campaign_numbers(id, &[("pn-1".into(), 3), ("pn-2".into(), 1)])
        .await
        .unwrap();
    let mut cfg = config(&sim.base_url());
    cfg.dispatch.rate_per_second = 20.0;
    fast_retries(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    let c = wait_campaign(&store, id, CampaignStatus::Completed).await;
    engine.shutdown().await;
    let stats = sim.stats();
    sim.shutdown().await;
    assert_eq!(c.pause_reason, None);
    // Six people dialled, each once; the refused creates rang nobody.
    assert_eq!(
        stats.calls_created as i64 - limited(&store).await,
        6,
        "{stats:?}"
    );
    assert!(limited(&store).await >= 1, "pn-1 never reached its limit");
    let numbers = store.campaign_numbers(id).await.unwrap();
    let now = Utc::now();
    let pn1 = numbers
        .iter()
        .find(|n| n.phone_number_id == "pn-1")
        .unwrap();
    let pn2 = numbers
        .iter()
        .find(|n| n.phone_number_id == "pn-2")
        .unwrap();
    assert!(pn1.benched_at(now), "{pn1:?}");
    assert!(
        pn1.bench_reason
            .as_deref()
            .unwrap_or("")
            .contains("daily limit"),
        "{pn1:?}"
    );
    assert!(pn1.benched_until.as_deref().unwrap() > switchboard::store::format_time(now).as_str());
    assert!(!pn2.benched_at(now), "{pn2:?}");
    assert_eq!(
        store
            .count_contacts(id, switchboard::model::ContactStatus::Done)
            .await
            .unwrap(),
        6
    );
    assert_invariants(&store).await;
}

/// Every number benched: the campaign pauses with the reason, its contacts still PENDING.
#[tokio::test]
async fn every_number_benched_pauses_the_campaign_without_burning_contacts() {
    let sim = limited_sim(2).await;
    let (store, _db) = store().await;
    let id = campaign(&store, "pool", 6).await;
    let mut cfg = config(&sim.base_url());
    cfg.dispatch.rate_per_second = 20.0;
    fast_retries(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    let c = wait_campaign(&store, id, CampaignStatus::Paused).await;
    // Calls in flight when the number was benched end and are recorded.
    wait_for(&engine, std::time::Duration::from_secs(10), |s| {
        s.active == 0 && s.creating == 0
    })
    .await;
    engine.shutdown().await;
    sim.shutdown().await;
    let reason = c.pause_reason.unwrap_or_default();
    assert!(reason.starts_with("every phone number"), "{reason}");
    assert!(reason.contains("pn-1"), "{reason}");
    let done = store
        .count_contacts(id, switchboard::model::ContactStatus::Done)
        .await
        .unwrap();
    assert_eq!(done, 2, "only the two calls Vapi placed are done");
    assert_eq!(pending(&store, id).await, 4, "the others wait, not burnt");
    assert_invariants(&store).await;
}

/// Calls Vapi ended with the number's daily limit (none of them rang anybody).
async fn limited(store: &Store) -> i64 {
    let mut n = 0;
    for c in store.campaigns().await.unwrap() {
        for (reason, count) in store.reason_histogram(c.id).await.unwrap() {
            if reason == "call.start.error-vapi-number-outbound-daily-limit" {
                n += count;
            }
        }
    }
    n
}

// --- Pre-dial hook ---

/// The hook says no for one number: that contact is SKIPPED with the hook's reason and never
/// reaches Vapi; the others are dialled, each asked about once.
#[tokio::test]
async fn the_predial_hook_skips_the_contacts_it_refuses_and_nothing_is_sent_for_them() {
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/predial"))
        .and(body_partial_json(
            serde_json::json!({"phone": "+14153010001"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"allow": false, "reason": "opted out in CRM"})),
        )
        .with_priority(1)
        .mount(&hook)
        .await;
    Mock::given(method("POST"))
        .and(path("/predial"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"allow": true})))
        .with_priority(2)
        .mount(&hook)
        .await;
    let (store, _db, c, stats) = run_with_hook(
        format!("{}/predial", hook.uri()),
        4,
        CampaignStatus::Completed,
        |_| {},
    )
    .await;
    let id = c.id;
    assert_eq!(
        stats.calls_created, 3,
        "the refused contact never reached Vapi"
    );
    assert_eq!(c.contacts_done, 4);
    assert_eq!(
        store
            .count_contacts(id, switchboard::model::ContactStatus::Skipped)
            .await
            .unwrap(),
        1
    );
    let asked = hook.received_requests().await.unwrap();
    assert_eq!(asked.len(), 4, "each contact asked about once");
    let body: serde_json::Value = serde_json::from_slice(&asked[0].body).unwrap();
    for field in ["callId", "campaignId", "contactId", "phone", "variables"] {
        assert!(body.get(field).is_some(), "{field} missing from {body}");
    }
    let why = store.why("+14153010001").await.unwrap();
    assert!(
        why.iter()
            .any(|d| d.decision == "SKIP" && d.reason.contains("opted out in CRM")),
        "{why:?}"
    );
    assert_invariants(&store).await;
}

/// Runs a campaign of `n` contacts against the simulator with the pre-dial hook at `url`
/// until the campaign is `until`: the store, the campaign then, and what Vapi saw.
async fn run_with_hook(
    url: String,
    n: usize,
    until: CampaignStatus,
    tweak: impl FnOnce(&mut switchboard::config::Config),
) -> (
    Store,
    TestDb,
    switchboard::store::campaigns::Campaign,
    switchboard::simulator::SimStats,
) {
    let sim = limited_sim(0).await;
    let (store, db) = store().await;
    let id = campaign(&store, "hooked", n).await;
    let mut cfg = config(&sim.base_url());
    cfg.predial.url = Some(url);
    fast_retries(&mut cfg);
    tweak(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    let c = wait_campaign(&store, id, until).await;
    engine.shutdown().await;
    let stats = sim.stats();
    sim.shutdown().await;
    (store, db, c, stats)
}

/// A hook that is down: `on_error = "skip"` skips the first contacts, and
/// `pause_after_errors` errors in a row pause the campaign with the others still PENDING.
#[tokio::test]
async fn a_predial_hook_that_is_down_pauses_the_campaign_before_burning_the_list() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&hook)
        .await;
    let (store, _db, c, stats) = run_with_hook(hook.uri(), 6, CampaignStatus::Paused, |cfg| {
        cfg.predial.pause_after_errors = 2;
        // One call at a time, so that errors come in a known order.
        cfg.dispatch.max_concurrent_calls = 1;
    })
    .await;
    let id = c.id;
    assert_eq!(
        stats.create_requests, 0,
        "nothing sent without the hook's answer"
    );
    let reason = c.pause_reason.unwrap_or_default();
    assert!(reason.contains("pre-dial hook failed 2 times"), "{reason}");
    assert_eq!(
        store
            .count_contacts(id, switchboard::model::ContactStatus::Skipped)
            .await
            .unwrap(),
        1,
        "the first error skipped its contact (on_error = skip)"
    );
    assert_eq!(pending(&store, id).await, 5);
    assert_invariants(&store).await;
}

// --- Rule packs and duplicate suppression ---

/// A state pack narrows the campaign's own window and caps, never widens them.
#[tokio::test]
async fn a_state_pack_narrows_the_window_and_caps() {
    let (store, _db) = store().await;
    let mut r = rules("07:00-21:00", "all", (0, 0));
    r.rule_pack = Some("us-fl".into());
    let id = campaign_with(
        &store,
        "fl",
        "phone,timezone\n+14155550101,UTC\n",
        r.clone(),
    )
    .await;
    // 07:30 and 20:30 in the contact's zone (UTC, from its column): outside Florida's
    // 08:00-20:00 though inside the campaign's own window.
    assert_eq!(claim(&store, id, utc("2026-03-02T07:30:00Z")).await, None);
    assert_eq!(claim(&store, id, utc("2026-03-02T20:30:00Z")).await, None);
    assert!(
        claim(&store, id, utc("2026-03-02T08:30:00Z"))
            .await
            .is_some()
    );
    // Its cap (3 in 24 h) applies though the campaign has none.
    assert_eq!(r.rules().caps.per_day, 3);
    assert_eq!(r.window().hours(), "08:00-20:00");
    // An unknown pack, or one that leaves no hours, is refused.
    let mut bad = r.clone();
    bad.rule_pack = Some("us-zz".into());
    assert!(store.set_campaign_rules(id, &bad).await.is_err());
    let mut empty = rules("06:00-08:00", "all", (0, 0));
    empty.rule_pack = Some("us-fl".into());
    assert!(store.set_campaign_rules(id, &empty).await.is_err());
}

/// A number another campaign called recently is skipped where suppression is on, and
/// dialled where it is off.
#[tokio::test]
async fn duplicate_suppression_skips_a_number_another_campaign_called() {
    let (store, _db) = store().await;
    let at = utc("2026-03-02T12:00:00Z");
    let csv = "phone\n+14155550177\n";
    let first = campaign_with(&store, "first", csv, rules("all", "all", (0, 0))).await;
    assert!(claim(&store, first, at).await.is_some());
    let mut suppressing = rules("all", "all", (0, 0));
    suppressing.suppress_days = 30;
    let second = campaign_with(&store, "second", csv, suppressing).await;
    let third = campaign_with(&store, "third", csv, rules("all", "all", (0, 0))).await;
    let later = at + Duration::days(3);
    assert_eq!(claim(&store, second, later).await, None);
    assert_eq!(
        store
            .count_contacts(second, switchboard::model::ContactStatus::Skipped)
            .await
            .unwrap(),
        1
    );
    let why = store.why("+14155550177").await.unwrap();
    assert!(
        why.iter()
            .any(|d| d.decision == "SKIP" && d.reason.contains("called by campaign first")),
        "{why:?}"
    );
    assert!(
        claim(&store, third, later).await.is_some(),
        "suppression is off there"
    );
}

#[tokio::test]
async fn a_number_added_through_the_operations_layer_is_skipped_at_its_claim() {
    // The console's do-not-call key and `dnc add` send this command through `ops::apply`.
    use switchboard::dispatch::Command;
    use switchboard::ops::{Actor, apply};
    let (store, _dir) = store().await;
    let csv = "phone\n+14155550100\n+14155550101\n";
    let id = campaign_with(&store, "ops-dnc", csv, rules("all", "all", (0, 0))).await;
    let config = config("http://127.0.0.1:9");
    let add = Command::AddToDnc {
        phone: "+14155550100".into(),
        reason: "asked in a call".into(),
    };
    let answer = apply(&store, &config, &add, Actor::Console).await;
    assert_eq!(
        answer.as_deref(),
        Ok("+14155550100 added to the do-not-call list")
    );
    let again = apply(&store, &config, &add, Actor::Console).await;
    assert_eq!(
        again.as_deref(),
        Ok("+14155550100 was already on the do-not-call list")
    );
    let entry = store.dnc_list().await.unwrap();
    assert_eq!(entry.len(), 1);
    assert_eq!(entry[0].source, "console");
    // The first contact is skipped at the claim; the second is dialled.
    let claimed = claim(&store, id, Utc::now()).await.unwrap();
    assert_eq!(store.contact(claimed).await.unwrap().phone, "+14155550101");
    assert_eq!(claim(&store, id, Utc::now()).await, None);
    assert_eq!(store.skipped_count(id).await.unwrap(), 1);
    let why = store.why("+14155550100").await.unwrap();
    let kinds: Vec<&str> = why.iter().map(|r| r.decision.as_str()).collect();
    assert_eq!(kinds, vec!["DNC_ADD", "SKIP"]);
    // The operator's action is in the event log every console shows.
    let events = store.recent_events(10).await.unwrap();
    assert!(
        events.iter().any(|e| e
            .message
            .contains("+14155550100 added to the do-not-call list")),
        "{events:?}"
    );
    // A number that is not E.164 is refused and nothing is written.
    let bad = Command::AddToDnc {
        phone: "4155550100".into(),
        reason: "typo".into(),
    };
    assert!(apply(&store, &config, &bad, Actor::Cli).await.is_err());
    assert_eq!(store.dnc_list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_pending_tab_says_when_each_contact_will_be_dialled_and_why() {
    use switchboard::policy::WaitReason;
    use switchboard::store::stats::{CallQuery, CallTab};
    let (store, _dir) = store().await;
    // Chicago numbers (312); 09:00-20:00 local; at most one call a number in 24 h, counted
    // across campaigns: another campaign calls +13125550100 first.
    let window = rules("09:00-20:00", "all", (1, 0));
    let other = campaign_with(&store, "other", "phone\n+13125550100\n", window.clone()).await;
    let csv = "phone\n+13125550100\n+13125550101\n";
    let id = campaign_with(&store, "when", csv, window).await;
    let query = CallQuery {
        campaign_id: Some(id),
        tab: CallTab::Pending,
        limit: 10,
        ..Default::default()
    };
    // 15:00Z = 10:00 in Chicago: the other campaign dials the number; here it is deferred
    // by the cap and the next contact dialled.
    let at = utc("2025-05-01T15:00:00Z");
    assert!(claim(&store, other, at).await.is_some());
    let third = claim(&store, id, at).await.unwrap();
    assert_eq!(store.contact(third).await.unwrap().phone, "+13125550101");
    let rows = store.pending_page_at(&query, at).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let waiting = rows[0].waiting.as_ref().expect("deferred by the cap");
    // The cap frees at 15:00Z the next day: 10:00 local, inside the window.
    assert_eq!(waiting.until, utc("2025-05-02T15:00:00Z"));
    assert_eq!(waiting.zone.name(), "America/Chicago");
    assert!(
        matches!(&waiting.why, WaitReason::Deferred(r) if r.contains("cap 1/24 h")),
        "{waiting:?}"
    );
    // A day later it is due: "now".
    let later = store
        .pending_page_at(&query, utc("2025-05-02T15:00:00Z"))
        .await
        .unwrap();
    assert_eq!(later[0].waiting, None);
    // At 02:00Z it is 21:00 in Chicago: the window opens at 09:00 local (14:00Z).
    let night = store
        .pending_page_at(&query, utc("2025-05-03T02:00:00Z"))
        .await
        .unwrap();
    let waiting = night[0].waiting.as_ref().expect("window closed");
    assert_eq!(waiting.why, WaitReason::Window);
    assert_eq!(waiting.until, utc("2025-05-03T14:00:00Z"));
}

/// Calls made before pools name no number: replacing the pool pins them to the number they
/// were made from (the campaign's), so look-ups keep finding them.
#[tokio::test]
async fn replacing_the_pool_pins_calls_made_before_pools_to_their_number() {
    let (store, db) = store().await;
    if db.is_postgres() {
        println!("SQLite only: a call from before pools is faked through the SQLite file");
        return;
    }
    let id = campaign_with(&store, "old", &numbers_csv(1), rules("all", "all", (0, 0))).await;
    let (job, _) = store
        .claim_call_at(id, "i", "e", utc("2026-03-02T12:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    {
        use sqlx::Connection;
        let mut file = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            db.path().join("switchboard.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("UPDATE calls SET phone_number_id = NULL")
            .execute(&mut file)
            .await
            .unwrap();
    }
    assert_eq!(store.call(job.call_id).await.unwrap().phone_number_id, None);
    store
        .set_campaign_numbers(id, &[("pn-new".into(), 1)])
        .await
        .unwrap();
    assert_eq!(
        store
            .call(job.call_id)
            .await
            .unwrap()
            .phone_number_id
            .as_deref(),
        Some("p")
    );
    assert_eq!(store.campaign(id).await.unwrap().phone_number_id, "pn-new");
}
