//! Webhook authentication against the engine's listener on 127.0.0.1, messages signed here.

use crate::common;

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
    let http = switchboard::vapi::http::client();
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

/// The simulator's server messages finish a campaign on their own (bulk reads every 10 min),
/// authenticated in each of Vapi's ways, up to 400 ms late (so out of order), a third of them
/// twice: every call ENDED with its final cost and its analysis, nothing refused. With the
/// wrong secret, every message is refused and counted on both sides.
#[tokio::test(flavor = "multi_thread")]
async fn simulator_webhooks_alone_finish_a_campaign_in_every_auth_mode() {
    use switchboard::simulator::{SimConfig, Simulator, WebhookSigning};
    let modes = [
        (WebhookSigning::Bearer, WebhookAuth::Bearer),
        (WebhookSigning::Header, WebhookAuth::Header),
        (WebhookSigning::Hmac, WebhookAuth::Hmac),
        (WebhookSigning::Secret, WebhookAuth::Secret),
    ];
    for (signing, auth) in modes {
        for right_secret in [true, false] {
            let port = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
                listener.local_addr().expect("addr").port()
            };
            let sim = Simulator::start(
                SimConfig {
                    api_key: KEY.into(),
                    queue_ms: 30,
                    ring_ms: 60,
                    talk_min_ms: 200,
                    talk_max_ms: 700,
                    cost_final_ms: 250,
                    seed: Some(7),
                    webhook_url: Some(format!("http://127.0.0.1:{port}/webhook")),
                    webhook_auth: signing,
                    webhook_secret: if right_secret { "wh-secret" } else { "forged" }.into(),
                    webhook_header_name: "x-our-token".into(),
                    webhook_late_ms: 400,
                    webhook_duplicate: 0.33,
                    ..SimConfig::default()
                },
                "127.0.0.1:0".parse().expect("addr"),
            )
            .await
            .expect("simulator");
            let (store, _dir) = store().await;
            campaign(&store, "c", 8).await;
            let mut cfg = config(&sim.base_url());
            cfg.tracking.poll_interval_ms = 600_000;
            cfg.tracking.fallback_after_ms = 600_000;
            cfg.webhook.listen = Some(format!("127.0.0.1:{port}"));
            cfg.webhook.auth = auth;
            cfg.webhook.header_name = Some("x-our-token".into());
            cfg.webhook.secret_env = "SWITCHBOARD_TEST_SIM_WEBHOOK_SECRET".into();
            // SAFETY: read by this test only; every iteration sets the same value.
            unsafe { std::env::set_var("SWITCHBOARD_TEST_SIM_WEBHOOK_SECRET", "wh-secret") };
            let engine = engine(cfg, &store, KEY).await;
            if right_secret {
                let s = wait_for(&engine, Duration::from_secs(20), all_completed).await;
                assert_eq!(s.webhook_refused, 0, "{auth:?}");
                // The campaign completes on `ended`; the report with the final cost may come
                // up to 400 ms later (late delivery): wait for it, bounded.
                for _ in 0..200 {
                    let mut costed = 0;
                    for id in 1..=8 {
                        if store.call(id).await.expect("call").cost_usd.is_some() {
                            costed += 1;
                        }
                    }
                    if costed == 8 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                // Before this test's own reads below.
                let engine_reads = sim.stats().get_requests;
                let http = switchboard::vapi::http::client();
                for id in 1..=8 {
                    let call = store.call(id).await.expect("call");
                    assert_eq!(call.status, CallStatus::Ended, "{auth:?} call {id}");
                    let provider_id = call.provider_call_id.expect("provider id");
                    let at_vapi: serde_json::Value = http
                        .get(format!("{}/call/{provider_id}", sim.base_url()))
                        .bearer_auth(KEY)
                        .send()
                        .await
                        .expect("get")
                        .json()
                        .await
                        .expect("json");
                    assert_eq!(
                        call.ended_reason.as_deref(),
                        at_vapi["endedReason"].as_str()
                    );
                    // The final cost (the report's), never the 70 % shown before it.
                    assert_eq!(
                        call.cost_usd,
                        at_vapi["cost"].as_f64(),
                        "{auth:?} call {id}"
                    );
                    if at_vapi["startedAt"].is_string() {
                        let analysis = store.call_analysis(id).await.expect("read");
                        assert!(
                            analysis.is_some_and(|a| a.summary.is_some()),
                            "{auth:?}: the report's analysis is kept for call {id}"
                        );
                    }
                }
                let stats = sim.stats();
                assert_eq!(stats.webhooks_refused, 0);
                assert!(stats.webhooks_delivered >= 8 * 3, "{stats:?}");
                // At most the first bulk read ran: the ends came by webhook.
                assert!(engine_reads <= 1, "{stats:?}");
            } else {
                let s =
                    wait_for(&engine, Duration::from_secs(20), |s| s.webhook_refused >= 8).await;
                assert!(s.webhook_last_refusal.is_some());
                assert!(sim.stats().webhooks_refused >= 8);
            }
            engine.shutdown().await;
            sim.shutdown().await;
        }
    }
}
