//! Compliance rules at claim time, with an injected clock (`claim_call_at`): calling windows
//! in the contact's zone across a DST change and in a zone ahead of UTC, do-not-call added
//! mid-campaign, caps across campaigns, consent, and every decision recorded for `why`.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use switchboard::config::ImportConfig;
use switchboard::import::import_contacts;
use switchboard::model::CampaignStatus;
use switchboard::store::Store;
use switchboard::store::policy::CampaignRules;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn campaign_with(store: &Store, name: &str, csv: &str, rules: CampaignRules) -> i64 {
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

fn rules(window: &str, days: &str, caps: (i64, i64)) -> CampaignRules {
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
    }
}

/// Ends a claimed call as if Vapi had created it and it had ended (so the contact is DONE
/// and the call counts for the caps).
async fn claim(store: &Store, id: i64, at: DateTime<Utc>) -> Option<i64> {
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
