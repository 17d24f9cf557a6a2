//! Imports: numbers by the numbering plan (normalised and de-duplicated), a long import
//! committed in chunks that the claim cannot see until it is complete, nothing left of an
//! import that failed or died, finished campaigns re-opened and cancelled ones refused.

use crate::common;

use common::*;
use switchboard::config::ImportConfig;
use switchboard::import::{ImportError, import_contacts};
use switchboard::model::CampaignStatus;
use switchboard::store::contacts::NewContact;

fn rules(country: Option<&str>) -> ImportConfig {
    ImportConfig {
        default_country_code: country.map(str::to_string),
        ..ImportConfig::default()
    }
}

fn contact(phone: &str) -> NewContact {
    NewContact {
        name: None,
        phone: phone.into(),
        extension: None,
        variables: "{}".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn numbers_are_normalised_by_the_plan_and_deduplicated_on_the_result() {
    let (store, _dir) = store().await;
    let c = store.create_campaign("c", "a", "p").await.unwrap();
    let csv = "phone,name\n\
               +44 (0)20 7946 0958,A\n\
               +44 20 7946 0958,B\n\
               1 (415) 555-0101,C\n\
               +1 415 555 0101,D\n\
               +1 415 000 0000,E\n\
               +1 415 555,F\n\
               +14155550102,G\n";
    let report = import_contacts(&store, c.id, csv.as_bytes(), &rules(Some("1")), |_| {})
        .await
        .unwrap();
    assert_eq!(report.imported, 4, "{report:?}");
    assert_eq!(
        report.duplicates, 2,
        "the (0) spelling and the leading 1 are the same numbers"
    );
    assert_eq!(
        report.unverified, 1,
        "+1 415 000 0000: possible length, no such exchange"
    );
    assert_eq!(
        report.length_checked_only, 1,
        "+14155550102 took the E.164 fast path"
    );
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 7);
    assert!(report.rejected[0].reason.contains("cannot be a number"));

    // Strict: the unverified number is refused with its line.
    let c2 = store.create_campaign("strict", "a", "p").await.unwrap();
    let strict = ImportConfig {
        strict: true,
        ..rules(Some("1"))
    };
    let report = import_contacts(&store, c2.id, csv.as_bytes(), &strict, |_| {})
        .await
        .unwrap();
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.line == 6 && r.reason.contains("import.strict")),
        "{report:?}"
    );
}

#[tokio::test]
async fn oversized_fields_reject_their_row() {
    let (store, _dir) = store().await;
    let c = store.create_campaign("c", "a", "p").await.unwrap();
    let csv = format!(
        "phone,notes\n+442079460958,{}\n+442079460959,short\n",
        "x".repeat(5_000)
    );
    let report = import_contacts(&store, c.id, csv.as_bytes(), &rules(None), |_| {})
        .await
        .unwrap();
    assert_eq!(report.imported, 1);
    assert_eq!(report.rejected[0].line, 2);
    assert!(report.rejected[0].reason.contains("max_field_bytes"));
}

/// A NUL byte (which PostgreSQL's text refuses and SQLite would store into a name or a
/// variable sent to the assistant) rejects its row, naming the field; the rest import, on
/// both backends.
#[tokio::test]
async fn a_nul_byte_rejects_its_row() {
    let (store, _dir) = store().await;
    let c = store.create_campaign("c", "a", "p").await.unwrap();
    let csv = "phone,name,notes\n+442079460958,A\0da,x\n+442079460959,Bo,y\0\n+442079460960,Cy,z\n";
    let report = import_contacts(&store, c.id, csv.as_bytes(), &rules(None), |_| {})
        .await
        .unwrap();
    assert_eq!(report.imported, 1, "{:?}", report.rejected);
    let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3]);
    assert!(
        report.rejected[0].reason.contains("\"name\""),
        "{:?}",
        report.rejected
    );
    assert!(
        report.rejected[1].reason.contains("\"notes\""),
        "{:?}",
        report.rejected
    );
    assert!(
        report.rejected[1].reason.contains("NUL"),
        "{:?}",
        report.rejected
    );
}

/// A long import commits in chunks (another writer is never kept waiting) that the claim
/// cannot see until the import is complete.
#[tokio::test]
async fn an_import_in_progress_is_invisible_to_the_claim_and_blocks_no_writer() {
    let (store, _dir) = store().await;
    let id = campaign(&store, "c", 1).await;
    let instance = store.instance_id().await.unwrap();
    // Its one visible contact is claimed: only the import's rows are left.
    assert!(
        store
            .claim_call(id, &instance, "e")
            .await
            .unwrap()
            .is_some()
    );
    let c = store.campaign(id).await.unwrap();
    let mut session = store.import_session(c.id).await.unwrap();
    session
        .add(&[contact("+442079460958"), contact("+442079460959")])
        .await
        .unwrap();
    // Between batches no lock is held: another write goes through at once.
    tokio::time::timeout(std::time::Duration::from_millis(500), store.set_rate(3.0))
        .await
        .expect("the writer was free")
        .unwrap();
    assert!(
        store
            .claim_call(c.id, &instance, "e")
            .await
            .unwrap()
            .is_none(),
        "rows of an import in progress are not claimed"
    );
    assert!(store.verify_counters().await.unwrap().is_empty());
    let (inserted, _) = session.commit().await.unwrap();
    assert_eq!(inserted, 2);
    assert!(
        store
            .claim_call(c.id, &instance, "e")
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_or_dead_import_leaves_nothing() {
    let (store, dir) = store().await;
    let c = store.create_campaign("c", "a", "p").await.unwrap();
    let mut session = store.import_session(c.id).await.unwrap();
    session.add(&[contact("+442079460958")]).await.unwrap();
    session.abort().await.unwrap();
    assert_eq!(store.contact_count(c.id).await.unwrap(), 0);
    if dir.is_postgres() {
        println!("SQLite only from here: the dead import is faked through the SQLite file");
        return;
    }

    // A process that died mid-import (its pid is gone): its rows go at the next open.
    let session = store.import_session(c.id).await.unwrap();
    let mut session = session;
    session.add(&[contact("+442079460959")]).await.unwrap();
    std::mem::forget(session);
    {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            dir.path().join("switchboard.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("UPDATE imports SET pid = 999999999")
            .execute(&mut db)
            .await
            .unwrap();
    }
    let reopened = switchboard::store::Store::open_in(dir.path())
        .await
        .unwrap();
    assert_eq!(reopened.contact_count(c.id).await.unwrap(), 0);
}

/// An import's rows are found by id from the first it wrote (no index on import_id): an
/// aborted import removes its own rows, in chunks, and none of another import whose batches
/// were written between its own, nor of an earlier one.
#[tokio::test]
async fn an_aborted_import_removes_its_rows_only() {
    let (store, _dir) = store().await;
    let c = store.create_campaign("c", "a", "p").await.unwrap();
    let d = store.create_campaign("d", "a", "p").await.unwrap();
    store.insert_contacts(d.id, &numbers(0, 3)).await.unwrap();
    let mut kept = store.import_session(d.id).await.unwrap();
    let mut aborted = store.import_session(c.id).await.unwrap();
    // A first batch of duplicates only writes nothing (the import has no rows yet).
    aborted.add(&numbers(0, 0)).await.unwrap();
    for round in 0..3u64 {
        kept.add(&numbers(100_000 + round * 10, 10)).await.unwrap();
        // More than one deletion chunk (10,000 rows) over the three rounds.
        aborted.add(&numbers(round * 6_000, 6_000)).await.unwrap();
    }
    kept.add(&numbers(200_000, 10)).await.unwrap();
    assert_eq!(store.contact_count(c.id).await.unwrap(), 18_000);
    aborted.abort().await.unwrap();
    assert_eq!(store.contact_count(c.id).await.unwrap(), 0);
    assert_eq!(
        store.contact_count(d.id).await.unwrap(),
        43,
        "the earlier import's 3 rows and the interleaved import's 40 are kept"
    );
    let (inserted, _) = kept.commit().await.unwrap();
    assert_eq!(inserted, 40);
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn imports_reopen_completed_campaigns_and_refuse_cancelled_ones() {
    let (store, _dir) = store().await;
    let id = campaign(&store, "done", 1).await;
    // Finish the campaign: its one contact's call ends.
    let instance = store.instance_id().await.unwrap();
    let (job, attempt) = store.claim_call(id, &instance, "e").await.unwrap().unwrap();
    let ended = switchboard::store::calls::CallUpdate {
        status: Some(switchboard::model::CallStatus::Ended),
        ended_reason: Some("customer-ended-call".into()),
        ..Default::default()
    };
    store
        .record_created(
            job.call_id,
            attempt,
            switchboard::model::AttemptOutcome::Created,
            "p-1",
            &ended,
        )
        .await
        .unwrap();
    assert_eq!(
        store.campaign(id).await.unwrap().status,
        CampaignStatus::Completed
    );
    let report = import_contacts(
        &store,
        id,
        "phone\n+442079460958\n".as_bytes(),
        &rules(None),
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.reopened);
    assert_eq!(
        store.campaign(id).await.unwrap().status,
        CampaignStatus::Dialing
    );
    assert!(
        store
            .claim_call(id, &instance, "e")
            .await
            .unwrap()
            .is_some(),
        "dialled"
    );

    let c = store.create_campaign("gone", "a", "p").await.unwrap();
    store.cancel_campaign(c.id).await.unwrap();
    let err = import_contacts(
        &store,
        c.id,
        "phone\n+442079460958\n".as_bytes(),
        &rules(None),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImportError::Cancelled(_)), "{err}");
    assert_eq!(store.contact_count(c.id).await.unwrap(), 0);
}

/// A CSV of `rows` E.164 rows over several batches (10,000 rows each, see
/// `import.rows_per_commit` below): a bad number every
/// 7,000 rows, row 15,000 repeating row 3's number (a duplicate in another batch), and
/// the last row a number imported before (a duplicate of an existing contact).
fn many_rows(rows: usize) -> (String, Vec<u64>) {
    let mut csv = String::from("name,phone\n");
    let mut bad_lines = Vec::new();
    for i in 1..=rows {
        let line = i as u64 + 1;
        if i % 7_000 == 0 {
            csv.push_str(&format!("Bad {i},+1 415 555\n"));
            bad_lines.push(line);
        } else if i == 15_000 {
            csv.push_str("Again,+14152000003\n");
        } else if i == rows {
            csv.push_str("Before,+442079460958\n");
        } else {
            csv.push_str(&format!("Contact {i},+1415{:07}\n", 2_000_000 + i));
        }
    }
    (csv, bad_lines)
}

/// Parsing overlaps writing (a writer task receives the batches): rejected rows keep their
/// lines, duplicates across batches and against existing contacts are caught, progress is
/// reported per batch.
async fn pipelined_import_keeps_lines_and_duplicates() {
    let (store, _dir) = store().await;
    let c = store.create_campaign("c", "a", "p").await.unwrap();
    import_contacts(
        &store,
        c.id,
        "phone\n+442079460958\n".as_bytes(),
        &rules(None),
        |_| {},
    )
    .await
    .unwrap();
    let rows = 25_000;
    let (csv, bad_lines) = many_rows(rows);
    let mut progress = Vec::new();
    let batches = ImportConfig {
        rows_per_commit: 10_000,
        ..rules(None)
    };
    let report = import_contacts(&store, c.id, csv.as_bytes(), &batches, |n| progress.push(n))
        .await
        .unwrap();
    let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, bad_lines, "{:?}", report.rejected);
    assert_eq!(report.rows, rows as u64);
    assert_eq!(
        report.duplicates, 2,
        "row 15,000 and the number imported before"
    );
    assert_eq!(report.imported, (rows - bad_lines.len() - 2) as u64);
    assert_eq!(
        store.contact_count(c.id).await.unwrap(),
        report.imported as i64 + 1
    );
    assert_eq!(
        store.campaign(c.id).await.unwrap().contacts_total,
        report.imported as i64 + 1
    );
    assert_eq!(progress.len(), 2, "one call per full batch: {progress:?}");
    assert!(store.verify_counters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_pipelined_import_on_one_thread_keeps_lines_and_duplicates() {
    pipelined_import_keeps_lines_and_duplicates().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_import_on_two_threads_keeps_lines_and_duplicates() {
    pipelined_import_keeps_lines_and_duplicates().await;
}

/// An import's transaction spans batches up to `rows_per_commit` rows (fewer commits write
/// each index page fewer times), but is committed when it is flushed (the writer waits for
/// input) or has been open for half a second: other writers are not held off for long.
#[tokio::test]
async fn an_import_s_open_transaction_is_let_go_when_flushed_or_old() {
    let (store, _dir) = store().await;
    let c = store.create_campaign("c", "a", "p").await.unwrap();
    let d = store.create_campaign("d", "a", "p").await.unwrap();
    let mut session = store.import_session(c.id).await.unwrap();
    session.commit_every(1_000_000);
    session.add(&numbers(0, 10)).await.unwrap();
    // The session holds the write lock: another write waits...
    let other = store.clone();
    let waiting = tokio::spawn(async move { other.insert_contacts(d.id, &numbers(500, 1)).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "the open transaction holds the lock"
    );
    // ...until the session lets go.
    session.flush().await.unwrap();
    let inserted = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("the other write goes through once flushed")
        .unwrap()
        .unwrap();
    assert_eq!(inserted, 1);
    // Half a second open: the next batch commits however few rows it holds.
    session.add(&numbers(10, 10)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    session.add(&numbers(20, 10)).await.unwrap();
    let other = store.clone();
    let quick = tokio::time::timeout(std::time::Duration::from_secs(2), async move {
        other.insert_contacts(d.id, &numbers(501, 1)).await
    })
    .await
    .expect("not held past half a second");
    assert_eq!(quick.unwrap(), 1);
    let (inserted, _) = session.commit().await.unwrap();
    assert_eq!(inserted, 30);
    assert_eq!(store.contact_count(c.id).await.unwrap(), 30);
}

/// `n` contacts numbered from `from` (+1415 numbers).
fn numbers(from: u64, n: u64) -> Vec<NewContact> {
    (from..from + n)
        .map(|i| contact(&format!("+1415{i:07}")))
        .collect()
}
