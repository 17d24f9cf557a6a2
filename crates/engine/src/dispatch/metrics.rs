//! Prometheus metrics through the `metrics` facade and `metrics-exporter-prometheus` (its
//! recorder only: `/metrics` is served by the engine's own health listener). Installed
//! when `metrics.listen` is set; otherwise the macros record into no recorder and cost a
//! branch. Names follow Prometheus conventions (`_total` counters, `_seconds` units); the
//! only labels are bounded sets (an outcome, a class, a status, a campaign's name), never a
//! contact's or a call's id.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::snapshot::{BreakerState, Snapshot};

/// Claim and store latencies, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Every series this module records (assets/grafana/switchboard.json uses no other).
pub const SERIES: &[&str] = &[
    "switchboard_creates_total",
    "switchboard_vapi_rate_limited_total",
    "switchboard_lookups_total",
    "switchboard_webhook_messages_total",
    "switchboard_calls",
    "switchboard_concurrency_cap",
    "switchboard_vapi_concurrency_limit",
    "switchboard_request_budget_per_second",
    "switchboard_breaker_open",
    "switchboard_dispatch_paused",
    "switchboard_lease_held",
    "switchboard_contacts",
    "switchboard_campaign_cost_usd",
    "switchboard_claim_seconds",
    "switchboard_store_wait_seconds",
    "switchboard_store_write_seconds",
    "switchboard_attempts_total",
    "switchboard_request_ceiling_per_second",
];

/// Installs the process's recorder once; the handle renders `/metrics`. None when another
/// recorder was installed first (then this process's metrics go there).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS).ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "switchboard_creates_total",
        "Create requests (POST /call) by outcome: created, rejected, retried, unknown"
    );
    describe_counter!(
        "switchboard_vapi_rate_limited_total",
        "Requests Vapi answered 429"
    );
    describe_counter!(
        "switchboard_lookups_total",
        "Look-ups of an ambiguous create by result: found, not_found, incomplete"
    );
    describe_counter!(
        "switchboard_webhook_messages_total",
        "Webhook messages by result: accepted, refused, malformed, failed"
    );
    describe_gauge!(
        "switchboard_calls",
        "Calls by state: live (at Vapi), creating, waiting (contacts to call)"
    );
    describe_gauge!(
        "switchboard_concurrency_cap",
        "Calls allowed at once (ours and Vapi's, the lower)"
    );
    describe_gauge!(
        "switchboard_vapi_concurrency_limit",
        "Vapi's concurrency limit as last reported"
    );
    describe_gauge!(
        "switchboard_request_budget_per_second",
        "Requests per second the learnt budget lets through"
    );
    describe_gauge!(
        "switchboard_breaker_open",
        "1 while the circuit breaker is open or half-open"
    );
    describe_gauge!("switchboard_dispatch_paused", "1 while dispatch is paused");
    describe_gauge!(
        "switchboard_lease_held",
        "1 while this engine holds its lease"
    );
    describe_gauge!(
        "switchboard_contacts",
        "A campaign's contacts by status: done, pending, creating, active"
    );
    describe_gauge!(
        "switchboard_campaign_cost_usd",
        "A campaign's cost so far, in US dollars"
    );
    describe_histogram!(
        "switchboard_claim_seconds",
        metrics::Unit::Seconds,
        "One claim's transaction"
    );
    describe_histogram!(
        "switchboard_store_wait_seconds",
        metrics::Unit::Seconds,
        "Waiting for the database's writer before a write transaction begins"
    );
    describe_histogram!(
        "switchboard_store_write_seconds",
        metrics::Unit::Seconds,
        "One write transaction, from asking for the writer to its commit"
    );
    describe_counter!(
        "switchboard_attempts_total",
        "Create attempts by class: created, refused (429, 503, no connection), ambiguous \
         (settled by look-up), rejected (400, 404, 422), auth (401, 403)"
    );
    describe_gauge!(
        "switchboard_request_ceiling_per_second",
        "The operator's ceiling on requests per second (the budget learns below it)"
    );
}

/// A create's outcome.
pub fn create(outcome: &'static str) {
    metrics::counter!("switchboard_creates_total", "outcome" => outcome).increment(1);
}

/// One create attempt's class (`created`, or the error's).
pub fn attempt(class: Option<crate::vapi::ErrorClass>) {
    use crate::vapi::ErrorClass;
    let class = match class {
        None => "created",
        Some(ErrorClass::Refused) => "refused",
        Some(ErrorClass::Ambiguous) => "ambiguous",
        Some(ErrorClass::Rejected) => "rejected",
        Some(ErrorClass::Auth) => "auth",
    };
    metrics::counter!("switchboard_attempts_total", "class" => class).increment(1);
}

pub fn rate_limited() {
    metrics::counter!("switchboard_vapi_rate_limited_total").increment(1);
}

pub fn lookup(result: &'static str) {
    metrics::counter!("switchboard_lookups_total", "result" => result).increment(1);
}

pub fn webhook(result: &'static str) {
    metrics::counter!("switchboard_webhook_messages_total", "result" => result).increment(1);
}

pub fn claim_took(seconds: f64) {
    metrics::histogram!("switchboard_claim_seconds").record(seconds);
}

/// The gauges, from the snapshot the control loop publishes.
pub fn snapshot(s: &Snapshot) {
    use metrics::gauge;
    gauge!("switchboard_calls", "state" => "live").set(s.active as f64);
    gauge!("switchboard_calls", "state" => "creating").set(s.creating as f64);
    gauge!("switchboard_calls", "state" => "waiting").set(s.pending as f64);
    gauge!("switchboard_concurrency_cap").set(f64::from(s.quota.concurrency_cap));
    if let Some(limit) = s.quota.vapi_concurrency_limit {
        gauge!("switchboard_vapi_concurrency_limit").set(f64::from(limit));
    }
    gauge!("switchboard_request_budget_per_second").set(s.quota.budget.learnt_per_second);
    gauge!("switchboard_request_ceiling_per_second").set(s.quota.budget.configured_per_second);
    let open = !matches!(s.breaker.state, BreakerState::Closed);
    gauge!("switchboard_breaker_open").set(if open { 1.0 } else { 0.0 });
    let paused = s.dispatch_paused.is_some();
    gauge!("switchboard_dispatch_paused").set(if paused { 1.0 } else { 0.0 });
    gauge!("switchboard_lease_held").set(if s.stopped { 0.0 } else { 1.0 });
    for c in &s.campaigns {
        let campaign = c.name.clone();
        for (status, n) in [
            ("done", c.contacts_done),
            ("pending", c.pending),
            ("creating", c.creating),
            ("active", c.active),
        ] {
            gauge!("switchboard_contacts", "campaign" => campaign.clone(), "status" => status)
                .set(n as f64);
        }
        gauge!("switchboard_campaign_cost_usd", "campaign" => campaign).set(c.cost_usd);
    }
}

#[cfg(test)]
mod tests {
    use super::SERIES;

    /// The Grafana dashboard in assets/ queries only series that exist (a histogram by its
    /// `_bucket`s), and shows every one of them somewhere.
    #[test]
    fn the_dashboard_queries_the_series_recorded_here() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../assets/grafana/switchboard.json"
        ));
        let dashboard: serde_json::Value = serde_json::from_str(text).expect("JSON");
        let mut used = std::collections::BTreeSet::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                let mut rest = expr;
                while let Some(at) = rest.find("switchboard_") {
                    let name: String = rest[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    rest = &rest[at + name.len()..];
                    used.insert(name.trim_end_matches("_bucket").to_string());
                }
            }
        }
        for name in &used {
            assert!(SERIES.contains(&name.as_str()), "{name} is not recorded");
        }
        for name in SERIES {
            assert!(used.contains(*name), "{name} is on no panel");
        }
    }
}
