//! The optional pre-dial hook (`[predial]`): before a call's first request goes out, its
//! contact is POSTed to the operator's service, which answers `{"allow": true}` or
//! `{"allow": false, "reason": "…"}` (a last-minute do-not-call check, a CRM's opt-out).
//!
//! The answer is recorded on the call (`predial_at`) before the request is sent, so a call
//! resumed after a crash or settled for a re-send is never sent without one. A timeout, an
//! error or an unreadable answer follows `predial.on_error`; `pause_after_errors` of them in
//! a row pause the campaign instead, so a hook that is down does not skip the whole list.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ExposeSecret, PredialConfig, PredialOnError, Secret};
use crate::store::calls::DialJob;

/// What the hook's answer means for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send the call.
    Allow,
    /// Skip the contact, with the reason (the hook's, or its error's under `on_error = skip`).
    Skip(String),
    /// The hook failed `pause_after_errors` times in a row: pause the campaign (reason).
    Pause(String),
}

/// The hook as configured: its HTTP client, and the errors in a row so far.
#[derive(Debug)]
pub struct PredialHook {
    http: reqwest::Client,
    url: reqwest::Url,
    token: Option<Secret>,
    on_error: PredialOnError,
    pause_after_errors: u32,
    errors_in_row: AtomicU32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ask<'a> {
    call_id: i64,
    campaign_id: i64,
    contact_id: i64,
    phone: &'a str,
    name: Option<&'a str>,
    variables: serde_json::Value,
}

#[derive(Deserialize)]
struct Answer {
    allow: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// Longest reason kept from the hook's answer (it is stored with the contact).
const MAX_REASON: usize = 200;

impl PredialHook {
    /// The hook of `config`, or None when no URL is set. The token is read from the
    /// environment variable `token_env` names.
    pub fn from_config(config: &PredialConfig) -> Result<Option<PredialHook>, String> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(url).map_err(|_| "predial.url is not a URL".to_string())?;
        let token = match &config.token_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(value) if !value.is_empty() => Some(Secret::from(value)),
                _ => {
                    return Err(format!(
                        "predial.token_env names {var}, which is not set in the environment"
                    ));
                }
            },
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = crate::vapi::http::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the pre-dial hook's client: {e}"))?;
        Ok(Some(PredialHook {
            http,
            url,
            token,
            on_error: config.on_error,
            pause_after_errors: config.pause_after_errors,
            errors_in_row: AtomicU32::new(0),
        }))
    }

    /// Asks the hook about one call.
    pub async fn ask(&self, job: &DialJob) -> Verdict {
        match self.request(job).await {
            Ok(answer) => {
                self.errors_in_row.store(0, Ordering::Relaxed);
                if answer.allow {
                    Verdict::Allow
                } else {
                    let reason: String = answer
                        .reason
                        .as_deref()
                        .unwrap_or("no reason given")
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(MAX_REASON)
                        .collect();
                    Verdict::Skip(format!("pre-dial hook: {reason}"))
                }
            }
            Err(error) => {
                let errors = self.errors_in_row.fetch_add(1, Ordering::Relaxed) + 1;
                decide_on_error(self.on_error, self.pause_after_errors, errors, &error)
            }
        }
    }

    async fn request(&self, job: &DialJob) -> Result<Answer, String> {
        let ask = Ask {
            call_id: job.call_id,
            campaign_id: job.campaign_id,
            contact_id: job.contact_id,
            phone: &job.phone,
            name: job.contact_name.as_deref(),
            variables: serde_json::from_str(&job.variables)
                .unwrap_or(serde_json::Value::Object(Default::default())),
        };
        let mut request = self.http.post(self.url.clone()).json(&ask);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                "timed out".to_string()
            } else {
                // reqwest's message names the URL, which may carry a token: say less.
                "unreachable".to_string()
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|_| "the answer was cut".to_string())?;
        serde_json::from_slice::<Answer>(&body)
            .map_err(|_| "unreadable answer (expected {\"allow\": true|false})".to_string())
    }
}

/// What a hook error means (pure): `pause_after` errors in a row pause the campaign; before
/// that, `on_error` decides.
pub fn decide_on_error(
    on_error: PredialOnError,
    pause_after: u32,
    errors_in_row: u32,
    error: &str,
) -> Verdict {
    if pause_after > 0 && errors_in_row >= pause_after {
        return Verdict::Pause(format!(
            "the pre-dial hook failed {errors_in_row} times in a row (latest: {error}): fix the hook, then resume"
        ));
    }
    match on_error {
        PredialOnError::Skip => Verdict::Skip(format!(
            "pre-dial hook error ({error}); skipped under predial.on_error = \"skip\""
        )),
        PredialOnError::Allow => Verdict::Allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_follow_on_error_until_too_many_in_a_row_pause() {
        assert!(matches!(
            decide_on_error(PredialOnError::Skip, 3, 1, "timed out"),
            Verdict::Skip(r) if r.contains("timed out")
        ));
        assert_eq!(
            decide_on_error(PredialOnError::Allow, 3, 2, "HTTP 500"),
            Verdict::Allow
        );
        assert!(matches!(
            decide_on_error(PredialOnError::Allow, 3, 3, "HTTP 500"),
            Verdict::Pause(r) if r.contains("3 times in a row")
        ));
        // 0 never pauses.
        assert!(matches!(
            decide_on_error(PredialOnError::Skip, 0, 50, "x"),
            Verdict::Skip(_)
        ));
    }
}
