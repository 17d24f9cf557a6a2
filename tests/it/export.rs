//! `switchboard export`: a 100,000-contact campaign exported as CSV and as JSON lines, every
//! row matching the database (outcome, attempts, ended reason, cost, analysis flattened).

use crate::common;

use std::collections::HashMap;

use common::*;
use switchboard::export::{Format, export};
use switchboard::model::{AttemptOutcome, CallStatus};
use switchboard::store::analysis::CallAnalysis;
use switchboard::store::calls::CallUpdate;
use switchboard::store::contacts::NewContact;

#[tokio::test]
async fn an_export_of_100000_contacts_matches_the_database() {
    let (store, _dir) = store().await;
    let c = store.create_campaign("big", "a", "p").await.unwrap();
    let contacts: Vec<NewContact> = (0..100_000)
        .map(|i| NewContact {
            name: Some(format!("Person {i}")),
            phone: format!("+1415{:07}", i),
            ..Default::default()
        })
        .collect();
    store.insert_contacts(c.id, &contacts).await.unwrap();
    store.start_campaign(c.id).await.unwrap();
    // 300 calls made: ended with a reason, a cost, and an analysis for every other one.
    let mut expected: HashMap<i64, (String, f64)> = HashMap::new();
    for n in 0..300 {
        let (job, attempt) = store.claim_call(c.id, "i", "e").await.unwrap().unwrap();
        let id = format!("v-{n}");
        store
            .record_created(
                job.call_id,
                attempt,
                AttemptOutcome::Created,
                &id,
                &CallUpdate::default(),
            )
            .await
            .unwrap();
        let reason = if n % 3 == 0 {
            "customer-busy"
        } else {
            "customer-ended-call"
        };
        let cost = 0.01 * n as f64;
        store
            .apply_call_update(
                &id,
                &CallUpdate {
                    status: Some(CallStatus::Ended),
                    ended_reason: Some(reason.into()),
                    cost_usd: Some(cost),
                    started_at: Some("2026-01-14T12:00:00.000Z".into()),
                    ended_at: Some("2026-01-14T12:01:30.000Z".into()),
                },
            )
            .await
            .unwrap();
        if n % 2 == 0 {
            let analysis = CallAnalysis {
                summary: Some(format!("summary, \"{n}\"\nsecond line")),
                success_evaluation: Some("true".into()),
                structured_data: Some(format!(
                    r#"{{"interested": {}, "plan": "p{n}"}}"#,
                    n % 4 == 0
                )),
                recording_url: Some(format!("https://r.example/{n}.wav")),
                tool_calls: None,
            };
            assert!(store.record_analysis(&id, &analysis).await.unwrap());
        }
        expected.insert(job.contact_id, (reason.to_string(), cost));
    }

    let started = std::time::Instant::now();
    let mut csv_bytes = Vec::new();
    let n = export(&store, c.id, Format::Csv, &mut csv_bytes, None, |_| {})
        .await
        .unwrap();
    let csv_time = started.elapsed();
    assert_eq!(n, 100_000);
    let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert!(
        header.ends_with(&["data.interested".to_string(), "data.plan".to_string()]),
        "{header:?}"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut rows = 0;
    for record in reader.records() {
        let r = record.unwrap();
        rows += 1;
        let contact_id: i64 = r[col("contact_id")].parse().unwrap();
        let contact = if contact_id % 997 == 0 || expected.contains_key(&contact_id) {
            Some(store.contact(contact_id).await.unwrap())
        } else {
            None
        };
        if let Some(k) = &contact {
            assert_eq!(&r[col("phone")], k.phone);
            assert_eq!(&r[col("status")], k.status.as_str());
            assert_eq!(r[col("attempts")].parse::<i64>().unwrap(), k.sequence);
        }
        match expected.get(&contact_id) {
            Some((reason, cost)) => {
                assert_eq!(&r[col("ended_reason")], reason);
                let got: f64 = r[col("cost_usd")].parse().unwrap();
                assert!((got - cost).abs() < 1e-6);
                assert_eq!(&r[col("duration_s")], "90.000");
                assert_eq!(&r[col("call_status")], "ENDED");
            }
            None => {
                assert_eq!(&r[col("status")], "PENDING");
                assert_eq!(&r[col("ended_reason")], "");
            }
        }
    }
    assert_eq!(rows, 100_000);
    // The analysed calls: summary (quotes and new lines survive), flattened fields.
    let analysed: Vec<_> = csv::Reader::from_reader(csv_bytes.as_slice())
        .records()
        .map(Result::unwrap)
        .filter(|r| !r[col("summary")].is_empty())
        .collect();
    assert_eq!(analysed.len(), 150);
    for r in &analysed {
        assert!(r[col("summary")].contains("\nsecond line"));
        assert!(r[col("data.plan")].starts_with('p'));
        assert!(["true", "false"].contains(&&r[col("data.interested")]));
    }

    let mut jsonl = Vec::new();
    let n = export(&store, c.id, Format::Jsonl, &mut jsonl, None, |_| {})
        .await
        .unwrap();
    assert_eq!(n, 100_000);
    let lines: Vec<serde_json::Value> = jsonl
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 100_000);
    let with_data = lines
        .iter()
        .filter(|v| v["structured_data"]["plan"].is_string())
        .count();
    assert_eq!(with_data, 150);
    eprintln!(
        "export: 100,000 contacts as CSV in {:.2}s ({} bytes)",
        csv_time.as_secs_f64(),
        csv_bytes.len()
    );
}
