//! The filter language against the store's SQL (both backends): exact counts for
//! comparisons, `not` over missing values, classes and successes resolved from the model's
//! tables, structured data and text.

use crate::common::*;
use switchboard::store::Store;
use switchboard::store::analysis::CallAnalysis;
use switchboard::store::stats::{CallQuery, CallTab};

/// Claims the next contact of `campaign` and has Vapi create it as `vapi-{n}`.
async fn dialled(store: &Store, campaign: i64, n: usize) {
    let (job, attempt) = store
        .claim_call_at(campaign, "i", "e", chrono::Utc::now())
        .await
        .unwrap()
        .expect("a contact to claim");
    created_as(store, job.call_id, attempt, &format!("vapi-{n}")).await;
}

/// `vapi-{n}` ended with `reason`, `talked_s` seconds of conversation (none: never started).
async fn ended(store: &Store, n: usize, reason: &str, talked_s: Option<i64>, cost: f64) {
    let id = format!("vapi-{n}");
    ended_as(store, &id, chrono::Utc::now(), reason, talked_s, Some(cost)).await;
}

#[tokio::test]
async fn filters_count_exactly_what_they_say() {
    let (store, _db) = store().await;
    let alpha = campaign(&store, "alpha", 5).await;
    let beta = campaign(&store, "beta", 1).await;
    for n in 1..=5 {
        dialled(&store, alpha, n).await;
    }
    dialled(&store, beta, 6).await;
    // 1: a two-minute conversation judged a success, with structured data and a summary.
    ended(&store, 1, "customer-ended-call", Some(120), 0.50).await;
    let analysis = CallAnalysis {
        summary: Some("Wants a demo on Thursday".into()),
        success_evaluation: Some("true".into()),
        structured_data: Some(r#"{"interested": true, "plan": "Pro"}"#.into()),
        ..Default::default()
    };
    store.record_analysis("vapi-1", &analysis).await.unwrap();
    // 2: busy, never started; 3: a conversation Vapi judged a failure.
    ended(&store, 2, "customer-busy", None, 0.02).await;
    ended(&store, 3, "customer-ended-call", Some(30), 0.10).await;
    let failed = CallAnalysis {
        success_evaluation: Some("false".into()),
        structured_data: Some(r#"{"interested": false}"#.into()),
        ..Default::default()
    };
    store.record_analysis("vapi-3", &failed).await.unwrap();
    // 4: an LLM failure after the person answered: the assistant's fault.
    ended(&store, 4, "pipeline-error-openai-llm-failed", Some(5), 0.01).await;
    // 5 (alpha) and 6 (beta) are still live: no reason, no end, no cost.
    let count = |text: &'static str| {
        let store = store.clone();
        async move {
            let filter = switchboard::model::filter::parse(text).expect(text);
            let query = CallQuery {
                tab: CallTab::All,
                filter: Some(filter),
                limit: 100,
                ..Default::default()
            };
            let counted = store.call_count(&query).await.expect(text);
            let paged = store.call_page(&query).await.expect(text).len() as i64;
            assert_eq!(counted, paged, "{text}: the count is the page's rows");
            counted
        }
    };
    let cases: &[(&str, i64)] = &[
        ("status = ENDED", 4),
        ("status != ENDED", 2),
        ("campaign = beta", 1),
        ("campaign != beta", 5),
        ("reason ~ BUSY", 1),
        // `not` is two-valued: the live calls have no reason, so they are not busy.
        ("not reason = customer-busy", 5),
        ("reason != customer-busy and status = ENDED", 3),
        ("class = outcome", 3),
        ("class = assistant-fault", 1),
        ("not class = outcome", 3),
        ("success = true", 1),
        ("success = false", 3),
        ("not success = true", 5),
        ("duration >= 1m", 1),
        ("duration < 60", 2),
        ("cost > 0.05", 2),
        ("cost <= $0.02", 2),
        ("data.interested = true", 1),
        ("data.interested = false", 1),
        ("data.plan = pro", 1),
        ("summary ~ demo", 1),
        ("name ~ \"contact\"", 6),
        ("attempts = 1 and created > 1h", 6),
        ("created < 1h", 0),
        ("ended >= 2000-01-01 or status = IN_PROGRESS", 4),
        (
            "(reason ~ customer or class = assistant-fault) and not campaign = beta",
            4,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(count(text).await, *want, "{text}");
    }
}

/// A filter saved by one console (through the operations layer) is read by a second one the
/// way its loop reads them, and `F` there applies it; the CLI's `--where @NAME` finds it too.
#[tokio::test]
async fn a_saved_filter_is_seen_by_a_second_console() {
    use switchboard::console::{Action, App, ConsoleOptions, KeyRegistry, Update};
    let (store, _db) = store().await;
    let line = switchboard::ops::save_filter(
        &store,
        "failed-twice",
        "status = FAILED and attempts >= 2",
        switchboard::ops::Actor::Console,
    )
    .await
    .expect("saved");
    assert_eq!(
        line,
        "filter failed-twice saved: status = FAILED and attempts >= 2"
    );
    let refused = switchboard::ops::save_filter(
        &store,
        "bad",
        "status = FIALED",
        switchboard::ops::Actor::Console,
    )
    .await
    .expect_err("a bad expression is not saved");
    assert!(refused.contains("column 10"), "{refused}");
    let mut second = App::new(ConsoleOptions::default(), KeyRegistry::default());
    let saved = store.saved_filters().await.expect("read");
    assert_eq!(saved.len(), 1, "{saved:?}");
    second.apply(Update::SavedFilters(saved));
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    let key = KeyEvent::from(KeyCode::Char('F'));
    let Some(Action::LoadPage(query)) = second.handle_key(key) else {
        panic!("F applies the saved filter");
    };
    assert_eq!(
        query.filter,
        switchboard::model::filter::parse("status = FAILED and attempts >= 2").ok()
    );
    let events = store.recent_events(10).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("filter failed-twice saved")),
        "logged as an operator's action"
    );
}
