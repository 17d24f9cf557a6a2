//! Webhook authentication against the engine's listener on 127.0.0.1, messages signed here.

mod common;

use std::time::Duration;

use common::*;
use hmac::{KeyInit, Mac};
use serde_json::json;
use switchboard::config::WebhookAuth;
use switchboard::model::CallStatus;

fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn hmac_mode_accepts_signed_messages_and_refuses_forged_stale_and_unsigned() {
    let vapi = Scripted::start(vec![]).await;
    let (store, _dir) = store().await;
    campaign(&store, "c", 1).await;
    let mut cfg = config(&vapi.base_url);
    cfg.tracking.poll_interval_ms = 600_000; // only the webhook moves calls here
    cfg.webhook.listen = Some("127.0.0.1:0".into());
    cfg.webhook.secret_env = "SWITCHBOARD_TEST_WEBHOOK_HMAC_SECRET".into();
    cfg.webhook.auth = WebhookAuth::Hmac;
    // SAFETY: this variable is read by this test only, and set before any thread reads it.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_WEBHOOK_HMAC_SECRET", "s3cret") };
    let engine = engine(cfg, &store, KEY).await;
    let url = format!("http://{}/webhook", engine.webhook_addr.expect("listening"));
    wait_for(&engine, Duration::from_secs(10), |s| s.active == 1).await;
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, headers: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let mut request = http.post(url).header("content-type", "application/json");
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request
                .body(body)
                .send()
                .await
                .expect("posted")
                .status()
                .as_u16()
        }
    };
    let now = chrono::Utc::now().timestamp().to_string();
    let stale = (chrono::Utc::now().timestamp() - 3_600).to_string();
    let ringing = serde_json::to_vec(
        &json!({"message": {"type": "status-update", "status": "ringing", "call": {"id": "call-0"}}}),
    )
    .expect("json");
    let forged = sign("guess", &now, &ringing);
    assert_eq!(
        post(
            ringing.clone(),
            vec![("x-signature", forged), ("x-timestamp", now.clone())]
        )
        .await,
        401
    );
    let old = sign("s3cret", &stale, &ringing);
    assert_eq!(
        post(
            ringing.clone(),
            vec![("x-signature", old), ("x-timestamp", stale)]
        )
        .await,
        401
    );
    assert_eq!(post(ringing.clone(), vec![]).await, 401);
    assert_eq!(
        store.call(1).await.expect("call").status,
        CallStatus::Queued
    );

    let good = sign("s3cret", &now, &ringing);
    assert_eq!(
        post(
            ringing.clone(),
            vec![
                ("x-signature", format!("sha256={good}")),
                ("x-timestamp", now.clone())
            ]
        )
        .await,
        200
    );
    assert_eq!(
        store.call(1).await.expect("call").status,
        CallStatus::Ringing
    );

    // A 10 MB end-of-call report (a long transcript) is accepted.
    let transcript = "a".repeat(10 * 1024 * 1024);
    let end = serde_json::to_vec(&json!({"message": {"type": "end-of-call-report",
        "call": {"id": "call-0"}, "endedReason": "customer-ended-call", "cost": 0.25,
        "analysis": {"summary": "Booked a demo for Tuesday.", "successEvaluation": false,
                     "structuredData": {"do_not_call": false, "slot": "tue"}},
        "artifact": {"transcript": transcript, "recordingUrl": "https://storage.vapi.ai/r.wav"}}}))
    .expect("json");
    assert!(end.len() > 10 * 1024 * 1024);
    let signature = sign("s3cret", &now, &end);
    assert_eq!(
        post(
            end,
            vec![("x-signature", signature), ("x-timestamp", now.clone())]
        )
        .await,
        200
    );
    assert_eq!(store.call(1).await.expect("call").status, CallStatus::Ended);
    // The report's analysis and recording are kept, and the success rate follows Vapi's
    // evaluation (false) rather than the ended reason (a normal hang-up).
    let analysis = store
        .call_analysis(1)
        .await
        .unwrap()
        .expect("analysis stored");
    assert_eq!(
        analysis.summary.as_deref(),
        Some("Booked a demo for Tuesday.")
    );
    assert_eq!(analysis.success_evaluation.as_deref(), Some("false"));
    assert!(
        analysis
            .structured_data
            .unwrap()
            .contains("\"slot\":\"tue\"")
    );
    assert_eq!(
        analysis.recording_url.as_deref(),
        Some("https://storage.vapi.ai/r.wav")
    );
    assert_eq!(store.success_rate(1).await.unwrap(), Some(0.0));

    let s = wait_for(&engine, Duration::from_secs(10), |s| s.webhook_refused == 3).await;
    assert!(s.webhook_last_refusal.is_some());
    engine.shutdown().await;
}
