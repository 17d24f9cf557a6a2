//! Bad input never panics, always gives a clear error, and never half-writes: property tests
//! for the CSV importer, the Vapi response parser and the config loader, plus a garbled
//! create response end to end.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use serde_json::json;
use switchboard::config::Config;
use switchboard::import::{import_contacts, normalize_phone};
use switchboard::model::AttemptOutcome;
use switchboard::vapi::{CreateCallResponse, VapiCall};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn rules_with_country(code: &str) -> switchboard::config::ImportConfig {
    switchboard::config::ImportConfig {
        default_country_code: Some(code.into()),
        ..Default::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// CSV-ish text: a few columns, quotes, commas, newlines, unicode, junk.
fn csv_text() -> impl Strategy<Value = String> {
    let cell = prop_oneof![
        "\\+?[0-9 ()\\-.]{0,18}",
        "[a-zA-Z ]{0,12}",
        "\"[^\"]{0,10}\"",
        "\"unterminated[a-z]{0,5}",
        ".{0,8}",
    ];
    let row = prop::collection::vec(cell, 0..5).prop_map(|cells| cells.join(","));
    (
        prop_oneof![
            Just("name,phone,extension,x".to_string()),
            Just("phone".to_string()),
            "[a-z,]{0,20}"
        ],
        prop::collection::vec(row, 0..25),
    )
        .prop_map(|(header, rows)| format!("{header}\n{}", rows.join("\n")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_importer_accounts_for_every_row_and_never_panics(text in csv_text()) {
        runtime().block_on(async {
            let (store, _dir) = store().await;
            let c = store.create_campaign("c", "a", "p").await.unwrap();
            match import_contacts(&store, c.id, text.as_bytes(), &rules_with_country("1"), |_| {}).await {
                Ok(report) => {
                    prop_assert_eq!(report.imported + report.duplicates + report.rejected.len() as u64, report.rows);
                    prop_assert_eq!(store.contact_count(c.id).await.unwrap() as u64, report.imported);
                    prop_assert_eq!(store.campaign(c.id).await.unwrap().contacts_total as u64, report.imported);
                    for r in &report.rejected {
                        prop_assert!(r.line >= 2 && !r.reason.is_empty());
                    }
                }
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    prop_assert_eq!(store.contact_count(c.id).await.unwrap(), 0, "nothing half-written");
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn phone_normalisation_either_gives_e164_or_a_reason(raw in ".{0,30}") {
        match normalize_phone(&raw, None).map(|p| p.e164) {
            Ok(p) => {
                prop_assert!(p.starts_with('+'));
                prop_assert!((9..=16).contains(&p.len()));
                prop_assert!(p[1..].bytes().all(|b| b.is_ascii_digit()));
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn the_response_parser_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        // Random bytes essentially never form a call with an id; either way no panic.
        if let Ok(r) = serde_json::from_slice::<CreateCallResponse>(&bytes) {
            prop_assert!(bytes.windows(4).any(|w| w == b"\"id\""), "{:?}", r);
        }
        let _ = serde_json::from_slice::<Vec<VapiCall>>(&bytes);
    }

    #[test]
    fn the_response_parser_handles_wrong_types_unknown_values_and_huge_fields(
        status in prop_oneof![Just(json!("ended")), Just(json!("teleporting")), Just(json!(42)), Just(json!(null))],
        reason in prop_oneof![Just(json!("customer-busy")), Just(json!("x".repeat(100_000))), Just(json!(["a"])), Just(json!(null))],
        cost in prop_oneof![Just(json!(0.12)), Just(json!("free")), Just(json!(-1.0)), Just(json!(1e308))],
        truncate in 0usize..200,
    ) {
        let body = json!({"id": "c1", "status": status, "endedReason": reason, "cost": cost,
                          "subscriptionLimits": {"concurrencyBlocked": "yes"}});
        let text = body.to_string();
        // Whatever the other fields hold, a body with an id is a created call.
        let parsed = serde_json::from_str::<CreateCallResponse>(&text).expect("an id is enough");
        prop_assert_eq!(parsed.call.id.as_str(), "c1");
        prop_assert_eq!(parsed.call.status.as_deref(), status.as_str());
        prop_assert_eq!(parsed.call.ended_reason.as_deref(), reason.as_str());
        prop_assert_eq!(parsed.call.cost, cost.as_f64().filter(|c| c.is_finite()));
        prop_assert!(!parsed.subscription_limits.unwrap_or_default().concurrency_blocked);
        // A truncated body is an error with a message, never a panic.
        let cut = &text[..truncate.min(text.len())];
        match serde_json::from_str::<CreateCallResponse>(cut) {
            Ok(_) => prop_assert_eq!(cut, text.as_str()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn the_config_loader_never_panics_and_names_the_file(
        section in prop_oneof![Just("dispatch"), Just("vapi"), Just("database"), Just("tracking"), Just("bogus")],
        key in "[a-z_]{1,20}",
        value in prop_oneof![Just("1".to_string()), Just("-5".to_string()), Just("\"x\"".to_string()), Just("[1, 2]".to_string()), Just("1e400".to_string()), Just("nan".to_string()), ".{0,10}"],
    ) {
        let text = format!("[{section}]\n{key} = {value}\n");
        if let Err(e) = Config::parse(&text, Path::new("fuzz.toml")) {
            prop_assert!(e.to_string().contains("fuzz.toml"), "{}", e);
        }
    }

    #[test]
    fn arbitrary_config_text_never_panics(text in ".{0,200}") {
        match Config::parse(&text, Path::new("fuzz.toml")) {
            Ok(c) => prop_assert!(c.dispatch.rate_per_second > 0.0, "validated"),
            Err(e) => prop_assert!(e.to_string().starts_with("config file fuzz.toml"), "{}", e),
        }
    }
}

#[tokio::test]
async fn a_garbled_created_response_is_looked_up_not_resent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(
            ResponseTemplate::new(201).set_body_string("{\"id\": \"vapi-1\", \"status\": \"que"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let reference = {
        let instance = store.instance_id().await.unwrap();
        switchboard::store::calls::call_reference(&instance, 1, 1)
    };
    Mock::given(method("GET"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "other", "name": "someone-else"},
            {"id": "vapi-1", "name": reference, "status": "ringing"}
        ])))
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri());
    fast_retries(&mut cfg);
    let engine = engine(cfg, &store, KEY).await;
    wait_for(&engine, Duration::from_secs(10), created(1)).await;
    engine.shutdown().await;
    let call = store.call(1).await.unwrap();
    assert_eq!(call.provider_call_id.as_deref(), Some("vapi-1"));
    let attempts = store.attempts(1).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Adopted);
    assert_invariants(&store).await;
}

/// Filter-ish text: the language's own words and symbols, values of each kind, and junk.
fn filter_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "status", "reason", "class", "campaign", "arm", "zone", "number", "phone", "attempts",
            "duration", "cost", "created", "ended", "success", "data.x", "data.", "name",
            "summary", "nope",
        ]),
        prop::sample::select(vec![
            "=", "!=", "<", "<=", ">", ">=", "~", "!", "==", "and", "or", "not", "(", ")",
        ]),
        prop::sample::select(vec![
            "FAILED",
            "ENDED",
            "PENDING",
            "busy",
            "true",
            "false",
            "2h",
            "2026-12-01",
            "\"2026-12-01 09:00\"",
            "America/Chicago",
            "-1",
            "1e309",
            "0.5",
            "\"",
            "'x'",
            "%",
            "_",
            "\\",
            "'; DROP TABLE calls; --",
            "ü",
            "",
        ]),
    ];
    let junk = (
        prop::collection::vec(token, 0..9),
        prop::sample::select(vec![" ", "", "  "]),
    )
        .prop_map(|(tokens, sep)| tokens.join(sep));
    // Mostly well-formed comparisons, so that accepted filters reach the database too.
    // Mostly comparisons of a field with a value of its kind, so accepted filters reach the
    // database; the operator is any, so some are still refused.
    let comparison = (
        prop::sample::select(vec![
            ("status", "FAILED"),
            ("status", "PENDING"),
            ("status", "DONE"),
            ("reason", "busy"),
            ("reason", "\"%_\\\""),
            ("class", "no-answer"),
            ("campaign", "c"),
            ("arm", "a"),
            ("zone", "America/Chicago"),
            ("number", "+15550100"),
            ("phone", "555"),
            ("attempts", "2"),
            ("duration", "30"),
            ("cost", "0.5"),
            ("created", "2h"),
            ("created", "2026-12-01"),
            ("ended", "\"2026-12-01 09:00\""),
            ("success", "true"),
            ("data.x", "yes"),
            ("name", "ann"),
            ("summary", "call back"),
        ]),
        prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">=", "~"]),
        any::<bool>(),
    )
        .prop_map(|((field, value), op, not)| {
            format!("{}{field} {op} {value}", if not { "not " } else { "" })
        });
    let expression = (
        prop::collection::vec(comparison, 1..4),
        prop::sample::select(vec![" and ", " or "]),
    )
        .prop_map(|(parts, joint)| parts.join(joint));
    prop_oneof![3 => expression, 1 => junk]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_filter_is_refused_at_a_column_inside_it_or_runs_on_calls_and_contacts(
        text in filter_text()
    ) {
        use switchboard::model::filter::{Scope, parse};
        use switchboard::store::bulk::Selection;
        use switchboard::store::stats::CallQuery;
        match parse(&text) {
            Err(e) => {
                prop_assert!(!e.message.is_empty());
                let end = text.chars().count() + 1;
                prop_assert!(
                    (1..=end).contains(&e.column),
                    "column {} outside 1..={} for {:?}", e.column, end, text
                );
            }
            Ok(filter) => runtime().block_on(async {
                let (store, _dir) = store().await;
                let c = campaign(&store, "c", 3).await;
                // One call FAILED, one still CREATING (no end, cost or analysis), one contact
                // never called: the columns a filter reads are NULL in most ways they can be.
                let instance = store.instance_id().await.unwrap();
                for fail in [true, false] {
                    let (job, attempt) = store
                        .claim_call_at(c, &instance, "e", chrono::Utc::now())
                        .await
                        .unwrap()
                        .unwrap();
                    if fail {
                        let refused = switchboard::store::attempts::AttemptResult {
                            outcome: AttemptOutcome::Rejected,
                            http_status: Some(400),
                            error: Some("assistant not found".into()),
                            retry_delay_ms: None,
                        };
                        store.fail_call(job.call_id, Some((attempt, &refused)), "rejected (400)").await.unwrap();
                    }
                }
                let resolved = store.resolve_filter(&filter).await.unwrap();
                // Its negation must be accepted too, and the two split the rows between them
                // (two-valued even where a contact's latest call is missing).
                let negated = parse(&format!("not ({text})")).unwrap();
                let negated = store.resolve_filter(&negated).await.unwrap();
                for scope in [Scope::Calls, Scope::Contacts] {
                    let selection = Selection { scope, query: CallQuery::default() };
                    let count = |r| store.bulk_count(&selection, Some(r));
                    let (yes, no) = (count(&resolved).await, count(&negated).await);
                    prop_assert!(yes.is_ok() && no.is_ok(), "{text:?} over {scope:?}: {yes:?} {no:?}");
                    let all = store.bulk_count(&selection, None).await.unwrap();
                    prop_assert_eq!(yes.unwrap() + no.unwrap(), all, "{:?} over {:?}", text, scope);
                }
                Ok(())
            })?,
        }
    }
}
