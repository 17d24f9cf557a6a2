//! Server messages: with `--webhook-url`, every created call's `status-update`s and its
//! `end-of-call-report` are posted the way Vapi posts them to a server URL, authenticated
//! as `--webhook-auth` says. `--webhook-late-ms` posts each one up to that long after the
//! change it reports (so close changes arrive out of order), `--webhook-duplicate` posts
//! some twice. A 5xx or a failed connection is retried a few times, as Vapi does.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use super::api::Shared;
use super::state::MessageKind;
use super::{SimConfig, WebhookSigning};

/// Attempts per message (the first post and its retries).
const ATTEMPTS: u32 = 4;
/// Wait before retry `n` is `RETRY_BASE * n`.
const RETRY_BASE: Duration = Duration::from_millis(250);

/// Reads created calls' ids and schedules their messages until the simulator stops.
pub(super) async fn post_messages(
    shared: Arc<Shared>,
    mut created: UnboundedReceiver<String>,
    stop: watch::Receiver<bool>,
) {
    let http = match switchboard_vapi::http::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!("simulator: no HTTP client for webhooks: {e}");
            return;
        }
    };
    let seed = shared.config().seed.map(|s| s ^ 0x005e_ed0f_bee5);
    let rng = Arc::new(Mutex::new(match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_rng(&mut rand::rng()),
    }));
    while let Some(id) = created.recv().await {
        let config = shared.config();
        let Some(url) = config.webhook_url.clone() else {
            continue;
        };
        let schedule = shared.with_state(|state| state.message_schedule(&id));
        for (at, kind) in schedule {
            // Drawn now, in creation order, so a seeded run posts the same way each time.
            let (late, copies) = {
                let mut rng = rng.lock().unwrap_or_else(PoisonError::into_inner);
                let late = rng.random_range(0..=config.webhook_late_ms);
                let twice = rng.random::<f64>() < config.webhook_duplicate;
                (late, if twice { 2 } else { 1 })
            };
            for copy in 0..copies {
                let post = Post {
                    shared: Arc::clone(&shared),
                    http: http.clone(),
                    url: url.clone(),
                    id: id.clone(),
                    at,
                    kind,
                    send_at: at + Duration::from_millis(late + copy * 50),
                };
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = post.run() => {}
                        _ = stop.wait_for(|stopping| *stopping) => {}
                    }
                });
            }
        }
    }
}

/// One message to post.
struct Post {
    shared: Arc<Shared>,
    http: reqwest::Client,
    url: String,
    id: String,
    /// The instant of the change the message reports.
    at: Instant,
    kind: MessageKind,
    send_at: Instant,
}

enum Delivery {
    Delivered,
    Refused,
    Failed,
}

impl Post {
    async fn run(self) {
        tokio::time::sleep_until(self.send_at).await;
        let Some(message) = self
            .shared
            .with_state(|state| state.message(&self.id, self.at, self.kind))
        else {
            return;
        };
        let body = serde_json::to_vec(&message).unwrap_or_default();
        let mut outcome = Delivery::Failed;
        for attempt in 1..=ATTEMPTS {
            let config = self.shared.config();
            let request = sign(
                self.http.post(&self.url),
                &config,
                &body,
                chrono::Utc::now().timestamp_millis(),
            );
            match request.body(body.clone()).send().await {
                Ok(response) if response.status().is_success() => {
                    outcome = Delivery::Delivered;
                    break;
                }
                Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                    outcome = Delivery::Refused;
                    break;
                }
                // A 4xx other than auth will not change on a retry either.
                Ok(response) if response.status().is_client_error() => break,
                Ok(_) | Err(_) => tokio::time::sleep(RETRY_BASE * attempt).await,
            }
        }
        self.shared.with_state(|state| {
            let stats = state.counters();
            match outcome {
                Delivery::Delivered => stats.webhooks_delivered += 1,
                Delivery::Refused => stats.webhooks_refused += 1,
                Delivery::Failed => stats.webhooks_failed += 1,
            }
        });
    }
}

/// Adds the headers `--webhook-auth` asks for.
fn sign(
    request: reqwest::RequestBuilder,
    config: &SimConfig,
    body: &[u8],
    now_ms: i64,
) -> reqwest::RequestBuilder {
    let request = request.header("content-type", "application/json");
    let secret = config.webhook_secret.as_str();
    match config.webhook_auth {
        WebhookSigning::Bearer => request.bearer_auth(secret),
        WebhookSigning::Header => request.header(config.webhook_header_name.as_str(), secret),
        WebhookSigning::Secret => request.header("x-vapi-secret", secret),
        WebhookSigning::Hmac => {
            let timestamp = now_ms.to_string();
            let signature = switchboard_vapi::webhook_signature(secret, &timestamp, body);
            request
                .header("x-timestamp", timestamp)
                .header("x-signature", signature)
        }
    }
}
