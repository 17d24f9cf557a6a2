//! Following the conversation, at the store with an injected clock: callbacks asked for in
//! a call or booked by hand, dialled at their time in the contact's zone, moved into the
//! window, never on do-not-call; the claim's lanes; outcome rules under one attempt cap;
//! the voicemail ladder.

use crate::common;
use crate::policy::{campaign_with, claim, rules, utc};

use chrono::{DateTime, Duration, Utc};
use common::*;
use switchboard::model::{ArmStatus, CallStatus, CampaignStatus, ContactStatus, Lane};
use switchboard::store::Store;
use switchboard::store::analysis::CallAnalysis;
use switchboard::store::calls::CallUpdate;
use switchboard::store::follow_up::FollowUpSettings;
use switchboard::store::stats::{CallQuery, CallTab};

/// A Chicago number (the zone comes from the area code).
const CHICAGO: &str = "+13125550100";

/// Claims the campaign's next contact at `at` and creates its call at Vapi as `vapi-{n}`;
/// returns the call and contact ids.
async fn dial(store: &Store, id: i64, at: DateTime<Utc>, n: usize) -> Option<(i64, i64)> {
    let (job, attempt) = store.claim_call_at(id, "i", "e", at).await.unwrap()?;
    created(store, job.call_id, attempt, n).await;
    Some((job.call_id, job.contact_id))
}

/// Vapi created the claimed call `call_id` (attempt `attempt`) as `vapi-{n}`.
async fn created(store: &Store, call_id: i64, attempt: i64, n: usize) {
    created_as(store, call_id, attempt, &format!("vapi-{n}")).await;
}

/// Vapi reports call `vapi-{n}` ended with `reason` at `at`, answered when `talked`.
async fn ends(store: &Store, n: usize, at: DateTime<Utc>, reason: &str, talked: bool) {
    let talked_s = talked.then_some(120);
    ended_as(store, &format!("vapi-{n}"), at, reason, talked_s, None).await;
}

/// Call `vapi-{n}` had a conversation that the person ended at `at`.
async fn talked(store: &Store, n: usize, at: DateTime<Utc>) {
    ends(store, n, at, "customer-ended-call", true).await;
}

/// The end-of-call report of `vapi-{n}`: its success evaluation and structured data.
async fn report(store: &Store, n: usize, success: Option<&str>, structured: &str) {
    let analysis = CallAnalysis {
        success_evaluation: success.map(String::from),
        structured_data: Some(structured.into()),
        ..Default::default()
    };
    assert!(
        store
            .record_analysis(&format!("vapi-{n}"), &analysis)
            .await
            .unwrap()
    );
}

async fn settings(store: &Store, id: i64, f: impl FnOnce(&mut FollowUpSettings)) {
    let mut s = FollowUpSettings::default();
    f(&mut s);
    store.set_follow_up_settings(id, &s).await.unwrap();
}

/// A started campaign calling `CHICAGO` (and `more` numbers) in `window` on `days`, with the
/// follow-up settings `campaign create` writes.
async fn chicago_campaign(
    store: &Store,
    name: &str,
    window: &str,
    days: &str,
    more: &[&str],
) -> i64 {
    let csv = std::iter::once("phone")
        .chain([CHICAGO])
        .chain(more.iter().copied())
        .collect::<Vec<_>>()
        .join("\n");
    let id = campaign_with(store, name, &csv, rules(window, days, (0, 0))).await;
    settings(store, id, |_| {}).await;
    id
}

/// A fast simulator whose numbers follow `scripts`, with `f`'s changes.
async fn scripted_sim(
    scripts: std::collections::HashMap<String, switchboard::simulator::NumberScript>,
    f: impl FnOnce(&mut switchboard::simulator::SimConfig),
) -> switchboard::simulator::Simulator {
    let mut c = switchboard::simulator::SimConfig {
        api_key: KEY.into(),
        queue_ms: 30,
        ring_ms: 60,
        scripts,
        ..Default::default()
    };
    f(&mut c);
    switchboard::simulator::Simulator::start(c, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator")
}

/// The Pending tab's rows of a campaign: (phone, lane), in claim order.
async fn pending(store: &Store, id: i64, now: DateTime<Utc>) -> Vec<(String, Option<Lane>)> {
    let query = CallQuery {
        campaign_id: Some(id),
        tab: CallTab::Pending,
        limit: 100,
        ..Default::default()
    };
    store
        .pending_page_at(&query, now)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.phone, r.lane))
        .collect()
}

#[tokio::test]
async fn a_callback_asked_for_at_15_00_is_dialled_at_15_00_in_the_contacts_zone() {
    let (store, _db) = store().await;
    let mut r = rules("09:00-20:00", "all", (0, 0));
    r.timezone = "America/New_York".into();
    let id = campaign_with(&store, "cb", &format!("phone\n{CHICAGO}\n"), r).await;
    settings(&store, id, |_| {}).await;
    // Thursday 10:00 in Chicago.
    let t0 = utc("2026-12-03T16:00:00Z");
    let (first, contact) = dial(&store, id, t0, 1).await.unwrap();
    // The end first, then the report (the usual order of status-update and report).
    talked(&store, 1, t0 + Duration::minutes(3)).await;
    assert_eq!(
        store.campaign(id).await.unwrap().status,
        CampaignStatus::Completed
    );
    report(&store, 1, Some("false"), r#"{"callback_at": "15:00"}"#).await;
    // The campaign re-opens with the contact in the callback lane.
    let c = store.campaign(id).await.unwrap();
    assert_eq!((c.status, c.contacts_done), (CampaignStatus::Dialing, 0));
    assert_eq!(
        pending(&store, id, t0).await,
        vec![(CHICAGO.to_string(), Some(Lane::Callback))]
    );
    // 14:59 in Chicago (15:59 in the campaign's New York): not yet.
    assert_eq!(claim(&store, id, utc("2026-12-03T20:59:00Z")).await, None);
    let (second, again) = dial(&store, id, utc("2026-12-03T21:00:00Z"), 2)
        .await
        .expect("dialled at 15:00 Chicago");
    assert_eq!(again, contact);
    assert!(second > first);
    let why = store.why(CHICAGO).await.unwrap();
    assert!(
        why.iter()
            .any(|d| d.reason == "callback asked in the call for 2026-12-03 15:00 America/Chicago"),
        "{why:?}"
    );
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_report_before_the_end_asks_for_the_callback_all_the_same() {
    let (store, _db) = store().await;
    let id = chicago_campaign(&store, "early", "09:00-20:00", "all", &[]).await;
    let t0 = utc("2026-12-03T16:00:00Z");
    dial(&store, id, t0, 1).await.unwrap();
    report(
        &store,
        1,
        None,
        r#"{"callback_at": "2026-12-03T15:00:00-06:00"}"#,
    )
    .await;
    talked(&store, 1, t0 + Duration::minutes(3)).await;
    // A second report (webhooks are delivered again) decides nothing twice.
    report(
        &store,
        1,
        None,
        r#"{"callback_at": "2026-12-03T16:00:00-06:00"}"#,
    )
    .await;
    assert_eq!(claim(&store, id, utc("2026-12-03T20:59:00Z")).await, None);
    assert!(
        claim(&store, id, utc("2026-12-03T21:00:00Z"))
            .await
            .is_some()
    );
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_callback_outside_the_window_moves_to_its_next_opening_and_says_so() {
    let (store, _db) = store().await;
    let id = chicago_campaign(&store, "late", "09:00-20:00", "mon-fri", &[]).await;
    let t0 = utc("2026-12-04T16:00:00Z"); // Friday 10:00 Chicago
    dial(&store, id, t0, 1).await.unwrap();
    talked(&store, 1, t0 + Duration::minutes(3)).await;
    // 21:30 is outside 09:00-20:00; Saturday and Sunday are closed: Monday 09:00.
    report(&store, 1, None, r#"{"callback_at": "21:30"}"#).await;
    let monday = utc("2026-12-07T15:00:00Z");
    assert_eq!(claim(&store, id, utc("2026-12-05T03:30:00Z")).await, None);
    assert_eq!(claim(&store, id, monday - Duration::minutes(1)).await, None);
    assert!(claim(&store, id, monday).await.is_some());
    let why = store.why(CHICAGO).await.unwrap();
    assert!(
        why.iter().any(|d| d.reason
            == "callback asked in the call for 2026-12-04 21:30 America/Chicago, outside the window 09:00-20:00 mon-fri: moved to its next opening 2026-12-07 09:00"),
        "{why:?}"
    );
}

#[tokio::test]
async fn a_callback_is_never_dialled_while_the_number_is_on_the_do_not_call_list() {
    let (store, _db) = store().await;
    let id = chicago_campaign(&store, "dnc", "all", "all", &["+13125550101"]).await;
    let t0 = utc("2026-12-03T16:00:00Z");
    dial(&store, id, t0, 1).await.unwrap();
    talked(&store, 1, t0 + Duration::minutes(3)).await;
    report(&store, 1, None, r#"{"callback_at": "15:00"}"#).await;
    // The number asks to be left alone before the callback is due.
    store
        .dnc_add(CHICAGO, "asked by phone", "operator")
        .await
        .unwrap();
    let due = utc("2026-12-03T21:00:00Z");
    let other = dial(&store, id, due, 2).await.map(|(_, contact)| contact);
    let second = store.contact(other.unwrap()).await.unwrap();
    assert_eq!(second.phone, "+13125550101", "only the other contact");
    assert_eq!(claim(&store, id, due + Duration::hours(1)).await, None);
    assert_eq!(store.skipped_count(id).await.unwrap(), 1);
    // Nor can one be booked by hand.
    let refused = store
        .book_callback(CHICAGO, None, "16:00")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("is on the do-not-call list"),
        "{refused}"
    );
}

#[tokio::test]
async fn an_operator_books_a_callback_that_reopens_a_finished_campaign() {
    let (store, _db) = store().await;
    let id = campaign_with(
        &store,
        "hand",
        &format!("phone\n{CHICAGO}\n"),
        rules("09:00-20:00", "all", (0, 0)),
    )
    .await;
    let t0 = utc("2026-12-03T16:00:00Z");
    dial(&store, id, t0, 1).await.unwrap();
    talked(&store, 1, t0 + Duration::minutes(3)).await;
    assert_eq!(
        store.campaign(id).await.unwrap().status,
        CampaignStatus::Completed
    );
    let now = t0 + Duration::minutes(5);
    let booked = store
        .book_callback_at(CHICAGO, Some("hand"), "15:00", now)
        .await
        .unwrap();
    assert_eq!(booked.due, utc("2026-12-03T21:00:00Z"));
    assert_eq!(
        booked.why,
        "callback booked by an operator for 2026-12-03 15:00 America/Chicago"
    );
    assert_eq!(
        store.campaign(id).await.unwrap().status,
        CampaignStatus::Dialing
    );
    // One-line refusals: an unknown number, campaign, or time.
    for (phone, campaign, at, says) in [
        (
            "+13125559999",
            None,
            "15:00",
            "no campaign has a contact +13125559999",
        ),
        (
            CHICAGO,
            Some("nope"),
            "15:00",
            "campaign nope has no contact",
        ),
        (CHICAGO, None, "soon", "callback time \"soon\" must be"),
    ] {
        let e = store
            .book_callback_at(phone, campaign, at, now)
            .await
            .unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
    assert_eq!(
        claim(&store, id, booked.due - Duration::seconds(1)).await,
        None
    );
    assert!(claim(&store, id, booked.due).await.is_some());
}

#[tokio::test]
async fn callbacks_go_before_fresh_contacts_and_fresh_before_redials() {
    let (store, _db) = store().await;
    let mut r = rules("all", "all", (0, 0));
    r.redial_count = 2;
    r.redial_delay_s = 60;
    let csv = "phone\n+14155550001\n+14155550002\n+14155550003\n+14155550004\n";
    let id = campaign_with(&store, "lanes", csv, r).await;
    settings(&store, id, |_| {}).await;
    let t0 = utc("2026-12-03T16:00:00Z");
    // 0001 is busy (a redial due at once), 0002 asks for a callback (due at once).
    dial(&store, id, t0, 1).await.unwrap();
    ends(&store, 1, t0, "customer-busy", false).await;
    dial(&store, id, t0, 2).await.unwrap();
    talked(&store, 2, t0).await;
    report(
        &store,
        2,
        None,
        r#"{"callback_at": "2026-12-03T16:05:00Z"}"#,
    )
    .await;
    let later = t0 + Duration::minutes(10);
    assert_eq!(
        pending(&store, id, later).await,
        vec![
            ("+14155550002".to_string(), Some(Lane::Callback)),
            ("+14155550003".to_string(), Some(Lane::Fresh)),
            ("+14155550004".to_string(), Some(Lane::Fresh)),
            ("+14155550001".to_string(), Some(Lane::Redial)),
        ]
    );
    let mut order = Vec::new();
    for n in 3..7 {
        let (_, contact) = dial(&store, id, later, n).await.unwrap();
        order.push(store.contact(contact).await.unwrap().phone);
    }
    assert_eq!(
        order,
        [
            "+14155550002",
            "+14155550003",
            "+14155550004",
            "+14155550001"
        ]
    );
}

#[tokio::test]
async fn a_campaign_may_order_its_lanes_otherwise() {
    let (store, _db) = store().await;
    let mut r = rules("all", "all", (0, 0));
    r.redial_count = 2;
    r.redial_delay_s = 60;
    let id = campaign_with(
        &store,
        "redials-first",
        "phone\n+14155550001\n+14155550002\n",
        r,
    )
    .await;
    settings(&store, id, |s| {
        s.lane_order = "redial,fresh,callback".into()
    })
    .await;
    let t0 = utc("2026-12-03T16:00:00Z");
    dial(&store, id, t0, 1).await.unwrap();
    ends(&store, 1, t0, "customer-did-not-answer", false).await;
    let (_, contact) = dial(&store, id, t0 + Duration::minutes(5), 2)
        .await
        .unwrap();
    assert_eq!(store.contact(contact).await.unwrap().phone, "+14155550001");
}

#[tokio::test]
async fn outcome_rules_stop_at_the_first_success_and_one_cap_holds_across_every_rule() {
    let (store, _db) = store().await;
    let mut r = rules("all", "all", (0, 0));
    r.redial_count = 5;
    r.redial_delay_s = 60;
    let id = campaign_with(&store, "outcomes", "phone\n+14155550001\n+14155550002\n", r).await;
    settings(&store, id, |s| {
        s.done_when = Some("success".into());
        s.follow_ups = "not-interested=never,*=1h".into();
        s.max_attempts = 3;
    })
    .await;
    let t0 = utc("2026-12-03T16:00:00Z");
    // 0001: answered, not a success → follow-up in 1 h; then a success: done.
    dial(&store, id, t0, 1).await.unwrap();
    talked(&store, 1, t0).await;
    report(&store, 1, Some("false"), "{}").await;
    // 0002: busy (status redial), then a conversation that fails (outcome follow-up), then
    // one asking for a callback: the cap of 3 dials is reached, whatever the rule.
    dial(&store, id, t0, 2).await.unwrap();
    ends(&store, 2, t0, "customer-busy", false).await;
    let mut n = 3;
    let mut at = t0 + Duration::minutes(1);
    let mut calls_of = std::collections::HashMap::<String, usize>::new();
    while let Some((_, contact)) = dial(&store, id, at, n).await {
        let phone = store.contact(contact).await.unwrap().phone;
        *calls_of.entry(phone.clone()).or_default() += 1;
        talked(&store, n, at).await;
        match (phone.as_str(), calls_of[&phone]) {
            ("+14155550001", _) => report(&store, n, Some("true"), "{}").await,
            (_, 1) => report(&store, n, Some("false"), r#"{"outcome": "maybe"}"#).await,
            _ => {
                report(
                    &store,
                    n,
                    Some("false"),
                    r#"{"callback_at": "2026-12-03T20:00:00Z"}"#,
                )
                .await
            }
        }
        n += 1;
        at += Duration::hours(2);
        assert!(n < 20, "the rules never stop");
    }
    // After the first round: 0001 once more (a success), 0002 twice more (3 dials in all).
    assert_eq!(calls_of.get("+14155550001"), Some(&1), "{calls_of:?}");
    assert_eq!(calls_of.get("+14155550002"), Some(&2), "{calls_of:?}");
    let c = store.campaign(id).await.unwrap();
    assert_eq!(c.status, CampaignStatus::Completed);
    assert_eq!(c.total_calls_created, 5);
    let why = store.why("+14155550002").await.unwrap();
    assert!(
        why.iter().filter(|d| d.decision == "DIAL").count() == 3,
        "{why:?}"
    );
    assert_eq!(
        store.count_contacts(id, ContactStatus::Done).await.unwrap(),
        2
    );
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_voicemail_message_is_left_on_the_last_attempt_only() {
    let (store, _db) = store().await;
    let mut r = rules("all", "all", (0, 0));
    r.redial_count = 5;
    r.redial_delay_s = 0;
    let id = campaign_with(&store, "vm", "phone\n+14155550001\n", r).await;
    settings(&store, id, |s| {
        s.max_attempts = 3;
        s.voicemail_message = Some("Hi, this is Acme about your renewal.".into());
    })
    .await;
    let t0 = utc("2026-12-03T16:00:00Z");
    let mut messages = Vec::new();
    for n in 1..10 {
        let Some((job, attempt)) = store.claim_call_at(id, "i", "e", t0).await.unwrap() else {
            break;
        };
        messages.push(job.voicemail_message.clone());
        created(&store, job.call_id, attempt, n).await;
        ends(&store, n, t0, "voicemail", true).await;
    }
    assert_eq!(
        messages,
        vec![
            None,
            None,
            Some("Hi, this is Acme about your renewal.".to_string())
        ]
    );
    // A job read again (an engine restarted) keeps the decision.
    let last = store.call(3).await.unwrap();
    assert_eq!(last.status, CallStatus::Ended);
}

/// The engine sends the message in `assistantOverrides.voicemailMessage` on the last attempt
/// only (earlier ones omit it, so Vapi hangs up on the voicemail), and the campaign report
/// counts the messages left.
#[tokio::test]
async fn the_engine_leaves_the_voicemail_message_on_the_last_attempt_only() {
    use common::late::{End, Late};
    let voicemail = End {
        reason: "voicemail",
        talk_ms: Some(500),
        ..End::default()
    };
    let vapi = Late::with_ends(vec![], vec![voicemail; 5]).await;
    let Some((store, _db)) =
        test_store("the_engine_leaves_the_voicemail_message_on_the_last_attempt_only").await
    else {
        return;
    };
    let id = campaign(&store, "vm", 1).await;
    let mut r = store.campaign_rules(id).await.unwrap();
    r.redial_count = 5;
    r.redial_delay_s = 0;
    r.redial_reasons = "voicemail".into();
    store.set_campaign_rules(id, &r).await.unwrap();
    settings(&store, id, |s| {
        s.max_attempts = 3;
        s.voicemail_message = Some("Hi, Acme here; call us back at 555-0100.".into());
    })
    .await;
    let engine = engine(config(&vapi.base_url), &store, KEY).await;
    wait_for(&engine, std::time::Duration::from_secs(15), all_completed).await;
    engine.shutdown().await;
    let left: Vec<Option<String>> = vapi
        .bodies()
        .iter()
        .map(|b| {
            b["assistantOverrides"]["voicemailMessage"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(
        left,
        vec![
            None,
            None,
            Some("Hi, Acme here; call us back at 555-0100.".to_string())
        ]
    );
    let report = store.arm_report(id).await.unwrap();
    assert_eq!(report.total.voicemail_messages_left, 1);
    assert_invariants(&store).await;
}

// --- Assistants side by side ---

fn numbers_csv(n: usize) -> String {
    std::iter::once("phone".to_string())
        .chain((0..n).map(|i| format!("+1415{:07}", 3_000_000 + i)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn arms(spec: &[(&str, i64)]) -> Vec<(String, i64)> {
    spec.iter().map(|(a, w)| (a.to_string(), *w)).collect()
}

#[tokio::test]
async fn two_arms_split_2000_contacts_evenly_and_keep_their_arm_on_follow_ups() {
    let (store, _db) = store().await;
    let mut r = rules("all", "all", (0, 0));
    r.redial_count = 2;
    r.redial_delay_s = 60;
    let id = campaign_with(&store, "ab", &numbers_csv(2000), r).await;
    store
        .set_campaign_arms(id, &arms(&[("asst-a", 1), ("asst-b", 1)]))
        .await
        .unwrap();
    let t0 = utc("2026-12-03T16:00:00Z");
    let mut by_arm = std::collections::HashMap::<String, usize>::new();
    let mut first_arm = std::collections::HashMap::<i64, String>::new();
    let mut busy = Vec::new();
    for n in 0..2000 {
        let (job, attempt) = store
            .claim_call_at(id, "i", "e", t0)
            .await
            .unwrap()
            .expect("a contact for each claim");
        *by_arm.entry(job.assistant_id.clone()).or_default() += 1;
        first_arm.insert(job.contact_id, job.assistant_id.clone());
        // Every 50th contact is busy: redialled, on the same arm.
        if n % 50 == 0 {
            created(&store, job.call_id, attempt, n).await;
            ends(&store, n, t0, "customer-busy", false).await;
            busy.push(job.contact_id);
        }
    }
    let a = by_arm.get("asst-a").copied().unwrap_or(0);
    assert_eq!(a + by_arm.get("asst-b").copied().unwrap_or(0), 2000);
    assert!((900..=1100).contains(&a), "50/50 ± 5 %: {by_arm:?}");
    for _ in &busy {
        let (job, _) = store
            .claim_call_at(id, "i", "e", t0 + Duration::minutes(5))
            .await
            .unwrap()
            .expect("the redial");
        assert!(busy.contains(&job.contact_id));
        assert_eq!(job.assistant_id, first_arm[&job.contact_id], "kept its arm");
    }
}

#[tokio::test]
async fn a_paused_or_stopped_arm_hands_its_waiting_contacts_to_the_others() {
    let (store, _db) = store().await;
    let id = campaign_with(
        &store,
        "pause-arm",
        &numbers_csv(40),
        rules("all", "all", (0, 0)),
    )
    .await;
    store
        .set_campaign_arms(id, &arms(&[("asst-a", 1), ("asst-b", 1), ("asst-c", 1)]))
        .await
        .unwrap();
    store
        .set_arm_status(id, "asst-a", ArmStatus::Paused)
        .await
        .unwrap();
    store
        .set_arm_status(id, "asst-b", ArmStatus::Stopped)
        .await
        .unwrap();
    // The last arm taking contacts cannot go; a stopped one stays stopped.
    let e = store
        .set_arm_status(id, "asst-c", ArmStatus::Paused)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("pause the campaign instead"), "{e}");
    let e = store
        .set_arm_status(id, "asst-b", ArmStatus::Active)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is stopped"), "{e}");
    let t0 = utc("2026-12-03T16:00:00Z");
    for _ in 0..20 {
        let (job, _) = store
            .claim_call_at(id, "i", "e", t0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.assistant_id, "asst-c");
    }
    store
        .set_arm_status(id, "asst-a", ArmStatus::Active)
        .await
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    while let Some((job, _)) = store.claim_call_at(id, "i", "e", t0).await.unwrap() {
        seen.insert(job.assistant_id);
    }
    assert!(
        seen.contains("asst-a") && !seen.contains("asst-b"),
        "{seen:?}"
    );
}

/// The report's figures per arm against values computed apart (Python, the closed forms):
/// Wilson 12/20 → [38.66 %, 78.12 %], 4/20 → [8.07 %, 41.60 %]; z = 2.58, significant.
#[tokio::test]
async fn the_arm_report_matches_a_reference_computation() {
    let (store, _db) = store().await;
    let id = campaign_with(
        &store,
        "report",
        &numbers_csv(40),
        rules("all", "all", (0, 0)),
    )
    .await;
    store
        .set_campaign_arms(id, &arms(&[("asst-a", 1), ("asst-b", 1)]))
        .await
        .unwrap();
    let t0 = utc("2026-12-03T16:00:00Z");
    let mut n = 0;
    // 20 conversations on each arm (the other paused meanwhile): 12 and 4 successes.
    for (arm, other, successes) in [("asst-a", "asst-b", 12), ("asst-b", "asst-a", 4)] {
        store
            .set_arm_status(id, arm, ArmStatus::Active)
            .await
            .unwrap();
        store
            .set_arm_status(id, other, ArmStatus::Paused)
            .await
            .unwrap();
        for i in 0..20 {
            n += 1;
            dial(&store, id, t0, n).await.unwrap();
            store
                .apply_call_update(
                    &format!("vapi-{n}"),
                    &CallUpdate {
                        status: Some(CallStatus::Ended),
                        ended_reason: Some("customer-ended-call".into()),
                        cost_usd: Some(0.25),
                        started_at: Some(switchboard::store::format_time(t0)),
                        ended_at: Some(switchboard::store::format_time(t0 + Duration::minutes(1))),
                    },
                )
                .await
                .unwrap();
            let verdict = if i < successes { "true" } else { "false" };
            report(&store, n, Some(verdict), "{}").await;
        }
    }
    let r = store.arm_report(id).await.unwrap();
    let close = |got: Option<(f64, f64)>, lo: f64, hi: f64| {
        let (l, h) = got.expect("an interval");
        (l - lo).abs() < 1e-4 && (h - hi).abs() < 1e-4
    };
    let (a, b) = (&r.arms[0], &r.arms[1]);
    assert_eq!(
        (a.calls, a.answered, a.conversations, a.successes),
        (20, 20, 20, 12)
    );
    assert_eq!((b.calls, b.conversations, b.successes), (20, 20, 4));
    assert!(close(a.interval, 0.386_58, 0.781_19), "{:?}", a.interval);
    assert!(close(b.interval, 0.080_66, 0.416_02), "{:?}", b.interval);
    assert!(
        close(r.total.interval, 0.263_48, 0.554_04),
        "{:?}",
        r.total.interval
    );
    assert!((a.cost_per_success.unwrap() - 5.0 / 12.0).abs() < 1e-9);
    assert!((b.cost_per_success.unwrap() - 5.0 / 4.0).abs() < 1e-9);
    assert_eq!(
        (a.differs_from_best, b.differs_from_best),
        (None, Some(true))
    );
    assert_eq!(r.total.calls, 40);
}

/// End to end through the simulator's server messages: a callback asked for in a call is
/// dialled at its time, a voicemail is redialled and its second call books the appointment
/// (done), "not interested" is never called again.
#[tokio::test]
async fn the_engine_follows_what_people_said_through_webhooks() {
    use serde_json::json;
    use switchboard::simulator::{NumberScript, WebhookSigning};
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let (callback, voicemail, not_interested) = ("+14153010000", "+14153010001", "+14153010002");
    let soon = Utc::now() + Duration::seconds(2);
    let scripts = [
        (
            callback,
            NumberScript {
                voicemail_first: 0,
                talk_ms: 400,
                conversations: vec![
                    (Some(false), json!({"callback_at": soon.to_rfc3339()})),
                    (Some(true), json!({"appointment_booked": true})),
                ],
            },
        ),
        (
            voicemail,
            NumberScript {
                voicemail_first: 1,
                talk_ms: 400,
                conversations: vec![(Some(true), json!({"appointment_booked": true}))],
            },
        ),
        (
            not_interested,
            NumberScript {
                voicemail_first: 0,
                talk_ms: 400,
                conversations: vec![(Some(false), json!({"outcome": "not-interested"}))],
            },
        ),
    ];
    let sim = scripted_sim(
        scripts
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect(),
        |c| {
            c.seed = Some(11);
            c.webhook_url = Some(format!("http://127.0.0.1:{port}/webhook"));
            c.webhook_auth = WebhookSigning::Secret;
            c.webhook_secret = "wh-follow".into();
            c.webhook_late_ms = 800;
        },
    )
    .await;
    let Some((store, _db)) =
        test_store("the_engine_follows_what_people_said_through_webhooks").await
    else {
        return;
    };
    let id = campaign(&store, "follow", 3).await;
    let mut r = store.campaign_rules(id).await.unwrap();
    r.redial_reasons = "voicemail".into();
    r.redial_count = 2;
    r.redial_delay_s = 0;
    store.set_campaign_rules(id, &r).await.unwrap();
    settings(&store, id, |s| {
        s.done_when = Some("appointment_booked=true".into());
        s.follow_ups = "not-interested=never,*=1h".into();
        s.voicemail_message = Some("Acme calling back soon.".into());
    })
    .await;
    let mut cfg = config(&sim.base_url());
    cfg.webhook.listen = Some(format!("127.0.0.1:{port}"));
    cfg.webhook.secret_env = "SWITCHBOARD_TEST_FOLLOW_WEBHOOK_SECRET".into();
    // SAFETY: read by this test only.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_FOLLOW_WEBHOOK_SECRET", "wh-follow") };
    let engine = engine(cfg, &store, KEY).await;
    // `--until-done`'s rule: not done while a conversation's report is awaited (reports come
    // 800 ms after the end here), so the callback it books is never lost to an early exit.
    let s = wait_for(&engine, std::time::Duration::from_secs(30), |s| {
        switchboard::cli::headless::done(s).is_some()
    })
    .await;
    engine.shutdown().await;
    assert_eq!(s.awaiting_reports, 0);
    let c = store.campaign(id).await.unwrap();
    assert_eq!(
        (c.status, c.total_calls_created),
        (CampaignStatus::Completed, 5),
        "{c:?}"
    );
    let dials = |phone: &'static str| {
        let store = store.clone();
        async move {
            store
                .why(phone)
                .await
                .unwrap()
                .iter()
                .filter(|d| d.decision == "DIAL")
                .count()
        }
    };
    assert_eq!(dials(callback).await, 2);
    assert_eq!(dials(voicemail).await, 2);
    assert_eq!(dials(not_interested).await, 1);
    // The callback was not dialled before its time.
    let mut second = None;
    for n in 1..=5 {
        let call = store.call(n).await.unwrap();
        if store.contact(call.contact_id).await.unwrap().phone == callback && call.sequence == 2 {
            second = Some(call);
        }
    }
    let second = second.expect("the callback's call");
    let placed = switchboard::store::parse_time(&second.created_at).unwrap();
    assert!(
        placed >= soon - Duration::milliseconds(50),
        "{placed} < {soon}"
    );
    // The voicemail ladder: 3 attempts allowed, the message only on the last: none left here
    // (the second call was answered), one voicemail hung up on.
    assert_eq!(sim.stats().voicemail_hang_ups, 1);
    assert_eq!(sim.stats().voicemail_messages_left, 0);
    assert_invariants(&store).await;
}

/// An arm may name an assistant version (`asst-1@3`): its calls carry `assistantVersion`,
/// are listed and looked up under the bare assistant id, and every call ends.
#[tokio::test]
async fn an_arm_with_an_assistant_version_sends_it_and_its_calls_are_followed() {
    use common::late::Late;
    let vapi = Late::with_ends(vec![], vec![]).await;
    let Some((store, _db)) =
        test_store("an_arm_with_an_assistant_version_sends_it_and_its_calls_are_followed").await
    else {
        return;
    };
    let id = campaign(&store, "versions", 20).await;
    store
        .set_campaign_arms(id, &arms(&[("asst-1@3", 1), ("asst-2", 1)]))
        .await
        .unwrap();
    let engine = engine(config(&vapi.base_url), &store, KEY).await;
    wait_for(&engine, std::time::Duration::from_secs(15), all_completed).await;
    engine.shutdown().await;
    let bodies = vapi.bodies();
    assert_eq!(bodies.len(), 20);
    let mut per_arm = std::collections::HashMap::<String, usize>::new();
    for b in &bodies {
        let assistant = b["assistantId"].as_str().unwrap_or_default().to_string();
        match assistant.as_str() {
            "asst-1" => assert_eq!(b["assistantVersion"], "3", "{b}"),
            "asst-2" => assert!(b.get("assistantVersion").is_none(), "{b}"),
            other => panic!("assistant {other}"),
        }
        *per_arm.entry(assistant).or_default() += 1;
    }
    assert_eq!(per_arm.len(), 2, "{per_arm:?}");
    let report = store.arm_report(id).await.unwrap();
    assert_eq!(
        report.arms.iter().map(|a| a.calls).sum::<u64>(),
        20,
        "{report:?}"
    );
    assert_invariants(&store).await;
}

/// The campaign's callback tool: the assistant called `book_callback` with the time.
#[tokio::test]
async fn a_callback_booked_by_the_assistants_tool_is_dialled_at_its_time() {
    let (store, _db) = store().await;
    let id = chicago_campaign(&store, "tool", "09:00-20:00", "all", &[]).await;
    settings(&store, id, |s| {
        s.callback_tool = Some("book_callback".into())
    })
    .await;
    let t0 = utc("2026-12-03T16:00:00Z");
    dial(&store, id, t0, 1).await.unwrap();
    talked(&store, 1, t0 + Duration::minutes(3)).await;
    let analysis = CallAnalysis {
        structured_data: Some("{}".into()),
        tool_calls: Some(
            r#"[{"name": "book_callback", "arguments": "{\"at\": \"2026-12-04 11:30\"}"}]"#.into(),
        ),
        ..Default::default()
    };
    assert!(store.record_analysis("vapi-1", &analysis).await.unwrap());
    let due = utc("2026-12-04T17:30:00Z"); // 11:30 in Chicago
    assert_eq!(claim(&store, id, due - Duration::minutes(1)).await, None);
    assert!(claim(&store, id, due).await.is_some());
}

/// Without a webhook listener the analysis is read with the call (Vapi's Call carries it
/// once final): a callback asked for in the call is dialled at its time all the same.
#[tokio::test]
async fn without_webhooks_the_analysis_read_with_the_call_books_its_callback() {
    use serde_json::json;
    use switchboard::simulator::NumberScript;
    let soon = Utc::now() + Duration::seconds(2);
    let number = "+14153010000";
    let script = NumberScript {
        voicemail_first: 0,
        talk_ms: 400,
        conversations: vec![
            (Some(false), json!({"callback_at": soon.to_rfc3339()})),
            (Some(true), json!({})),
        ],
    };
    let sim = scripted_sim([(number.to_string(), script)].into(), |c| {
        c.seed = Some(13);
        c.cost_final_ms = 300;
    })
    .await;
    let Some((store, _db)) =
        test_store("without_webhooks_the_analysis_read_with_the_call_books_its_callback").await
    else {
        return;
    };
    let id = campaign(&store, "polled", 1).await;
    let engine = engine(config(&sim.base_url()), &store, KEY).await;
    let mut dialled_twice = false;
    for _ in 0..300 {
        let c = store.campaign(id).await.unwrap();
        if c.status == CampaignStatus::Completed && c.total_calls_created == 2 {
            dialled_twice = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    engine.shutdown().await;
    assert!(dialled_twice, "{:?}", store.campaign(id).await.unwrap());
    let second = store.call(2).await.unwrap();
    let placed = switchboard::store::parse_time(&second.created_at).unwrap();
    assert!(
        placed >= soon - Duration::milliseconds(50),
        "{placed} < {soon}"
    );
    let analysis = store
        .call_analysis(1)
        .await
        .unwrap()
        .expect("kept from the read");
    assert!(
        analysis
            .structured_data
            .as_deref()
            .is_some_and(|d| d.contains("callback_at")),
        "{analysis:?}"
    );
    assert_invariants(&store).await;
}
