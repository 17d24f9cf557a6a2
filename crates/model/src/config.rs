//! TOML configuration: every key has a default, unknown keys and bad values are errors that
//! name the key and the file. The API key is never read from the file: only from the
//! environment variable the file names, and it lives in a [`Secret`] that never prints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::location::Location;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key `{key}`: {reason}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
    #[error(
        "the Vapi API key is missing: set the environment variable {var} (switchboard never reads the key from a file)"
    )]
    MissingApiKey { var: String },
}

/// A value that must never be printed: Debug and Display show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The only way to see the value: used when building the Authorization header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub vapi: VapiConfig,
    pub dispatch: DispatchConfig,
    pub tracking: TrackingConfig,
    pub webhook: WebhookConfig,
    pub import: ImportConfig,
    pub predial: PredialConfig,
    /// Console key remapping: action name → key (see `switchboard console --help`).
    pub keys: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    /// `postgres://user:password@host:5432/db` selects PostgreSQL (several engines may share
    /// it); a `sqlite:` URL or a path keeps SQLite. When set it wins over `path`.
    pub url: Option<String>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("switchboard.db"),
            url: None,
        }
    }
}

impl DatabaseConfig {
    /// Where the state lives: `url` if set, else the SQLite file at `path`.
    pub fn location(&self) -> Location {
        match self.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Location::parse(url),
            None => Location::Sqlite(self.path.clone()),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VapiConfig {
    pub base_url: String,
    /// Name of the environment variable holding the private API key.
    pub api_key_env: String,
    pub request_timeout_ms: u64,
    /// Clock skew allowed between us and Vapi: a look-up searches createdAt from an attempt's
    /// send time minus this, to its settle deadline plus this. (`lookup_margin_ms`, its old
    /// name, is still read.)
    #[serde(alias = "lookup_margin_ms")]
    pub lookup_skew_ms: u64,
    /// How long after an ambiguous request was sent Vapi may still create its call (longer
    /// than Vapi's proxy keeps a request alive). An unknown outcome is re-sent only after a
    /// complete look-up made after this found nothing.
    pub settle_after_ms: u64,
    /// An engine whose lease heartbeat is older than this is taken for dead and its lease
    /// taken over (a process gone from this host is taken over at once).
    pub lease_timeout_ms: u64,
    /// Ceiling of the request budget shared by every request to Vapi (creates, reads,
    /// look-ups). The engine learns the gateway's real limit below it from 429s.
    pub max_requests_per_second: f64,
}

impl Default for VapiConfig {
    fn default() -> Self {
        VapiConfig {
            base_url: "https://api.vapi.ai".into(),
            api_key_env: "VAPI_API_KEY".into(),
            request_timeout_ms: 10_000,
            lookup_skew_ms: 10_000,
            settle_after_ms: 120_000,
            lease_timeout_ms: 15_000,
            max_requests_per_second: 20.0,
        }
    }
}

/// HTTP statuses sent again by default: refusals (429, 503) and every status after which the
/// call may exist (408, 500, 502, 504, the proxy's 520-524), which are settled first.
pub const DEFAULT_RETRY_ON_STATUS: &[u16] =
    &[408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    pub rate_per_second: f64,
    /// GCRA burst: how many creates may go back to back; 1 = evenly spaced.
    pub burst: u32,
    pub max_concurrent_calls: u32,
    pub max_retries: u32,
    pub backoff_ms: Vec<u64>,
    pub retry_on_status: Vec<u16>,
    /// Consecutive transient failures that open the circuit breaker.
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
    /// Calls created per UTC day across all campaigns; none = no limit.
    pub daily_call_limit: Option<u64>,
    /// The time zone whose midnight starts a new day for the daily call limit (IANA name).
    pub daily_limit_time_zone: String,
    /// Vapi's concurrent call slots left free for inbound and other calls of the account.
    pub reserved_slots: u32,
    /// This many identical rejections in a row pause the campaign (its settings are the
    /// likely cause) and give those contacts back; 0 turns it off.
    pub pause_after_identical_rejections: u32,
    /// A campaign whose assistant fails more than this share of the last
    /// `assistant_failure_window` answered calls (pipeline errors, hang-ups within
    /// `quick_hangup_ms` of answer) is paused: each such call burns a contact and a person's
    /// patience.
    pub assistant_failure_share: f64,
    pub assistant_failure_window: u32,
    /// An answered call the person hangs up within this many milliseconds counts as the
    /// assistant failing them (0: only pipeline errors count).
    pub quick_hangup_ms: u64,
    /// Total spend (USD) across all campaigns; none = no limit.
    pub budget_usd: Option<f64>,
    /// Used for the budget estimate until real costs are known.
    pub estimated_cost_per_call: Option<f64>,
    /// How often the claim loop looks for work and publishes a snapshot.
    pub tick_ms: u64,
    /// A pool number whose calls fail this many times in a row before ringing (start
    /// errors, refusals naming it) is benched for `number_cooldown_s`.
    pub bench_number_after_failures: u32,
    pub number_cooldown_s: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            rate_per_second: 2.0,
            burst: 1,
            max_concurrent_calls: 10,
            max_retries: 3,
            backoff_ms: vec![1_000, 4_000, 10_000],
            retry_on_status: DEFAULT_RETRY_ON_STATUS.to_vec(),
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            daily_call_limit: None,
            daily_limit_time_zone: "UTC".into(),
            reserved_slots: 0,
            pause_after_identical_rejections: 3,
            assistant_failure_share: 0.2,
            assistant_failure_window: 20,
            quick_hangup_ms: 3_000,
            budget_usd: None,
            estimated_cost_per_call: None,
            tick_ms: 200,
            bench_number_after_failures: 3,
            number_cooldown_s: 3_600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingConfig {
    /// How often the calls changed at Vapi are read in bulk (one `GET /call?updatedAtGe=…`
    /// per assistant/phone-number pair with calls to follow).
    pub poll_interval_ms: u64,
    /// At most this many per-call `GET /call/{id}` a second (the fallback for a call the bulk
    /// read has not returned for `fallback_after_ms`).
    pub poll_requests_per_second: f64,
    /// A call not seen changed for this long is read on its own.
    pub fallback_after_ms: u64,
    /// Longest a call can last (Vapi's maxDurationSeconds ceiling is 43200): a call still
    /// active 10 minutes past it is closed as overdue and its slot freed.
    pub max_call_duration_s: u64,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            poll_interval_ms: 1_000,
            poll_requests_per_second: 5.0,
            fallback_after_ms: 60_000,
            max_call_duration_s: 43_200,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Address for the webhook listener, e.g. "0.0.0.0:8090"; none = polling only.
    pub listen: Option<String>,
    /// Environment variable with the shared secret (never the file itself).
    pub secret_env: String,
    /// How Vapi proves a message is its own; `secret` (legacy `X-Vapi-Secret`) by default.
    pub auth: WebhookAuth,
    /// Header carrying the credential when `auth = "header"`, e.g. "x-my-token".
    pub header_name: Option<String>,
    /// HMAC only: a message whose `x-timestamp` is further than this from now is refused.
    pub replay_window_s: u64,
}

/// Webhook authentication modes, as configured in Vapi's server credentials.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookAuth {
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// The secret verbatim in the header named by `header_name`.
    Header,
    /// `x-signature` = hex HMAC-SHA256 of "{x-timestamp}.{raw body}".
    Hmac,
    /// Legacy `X-Vapi-Secret: <secret>`.
    #[default]
    Secret,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            listen: None,
            secret_env: "VAPI_WEBHOOK_SECRET".into(),
            auth: WebhookAuth::Secret,
            header_name: None,
            replay_window_s: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// Country calling code for numbers written without one, e.g. "1" or "44"; none = such
    /// numbers are rejected.
    pub default_country_code: Option<String>,
    /// Reject numbers outside the numbering plan's known ranges (else imported and counted
    /// as unverified).
    pub strict: bool,
    /// A CSV field longer than this (bytes) rejects its row: nothing that large is sent to an
    /// assistant on every call.
    pub max_field_bytes: usize,
    /// Rows per chunk of a long import: each is parsed while the last is written and
    /// committed on its own, so this bounds how long the import holds the write lock
    /// (~0.1-0.3 s at the default) and how much it holds in memory.
    pub rows_per_commit: usize,
}

/// The optional pre-dial hook: before a call is first sent, its contact is POSTed to `url`,
/// which may answer `{"allow": false, "reason": "…"}` (the contact is then SKIPPED).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PredialConfig {
    /// None: no hook.
    pub url: Option<String>,
    pub timeout_ms: u64,
    /// What a timeout, an error or an unreadable answer means.
    pub on_error: PredialOnError,
    /// Environment variable holding a bearer token sent to the hook (never the file).
    pub token_env: Option<String>,
    /// This many hook errors in a row pause the campaign instead of skipping more contacts
    /// (a hook that is down must not burn the list); 0 turns it off.
    pub pause_after_errors: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PredialOnError {
    /// The contact is SKIPPED with the error as its reason.
    #[default]
    Skip,
    /// The call goes ahead.
    Allow,
}

impl Default for PredialConfig {
    fn default() -> Self {
        PredialConfig {
            url: None,
            timeout_ms: 2_000,
            on_error: PredialOnError::Skip,
            token_env: None,
            pause_after_errors: 3,
        }
    }
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            default_country_code: None,
            strict: false,
            max_field_bytes: 4_096,
            rows_per_commit: 25_000,
        }
    }
}

impl Config {
    /// Loads `path`, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses TOML text; `path` only names the file in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // The message and line only: toml's Display quotes the source line, which could
        // echo a secret someone pasted into the file.
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let mut message = match line {
                Some(line) => match key_at_line(text, line) {
                    Some(key) => format!("line {line}, key `{key}`: {}", e.message()),
                    None => format!("line {line}: {}", e.message()),
                },
                None => e.message().to_string(),
            };
            if e.message().contains("`api_key`") {
                message.push_str(
                    " (the API key is never read from a file: set the variable named by vapi.api_key_env)",
                );
            }
            ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            reason,
        };
        let in_range =
            |bound: &Bound, value: f64| bound.check(value).map_err(|reason| bad(bound.key, reason));
        let d = &self.dispatch;
        let v = &self.vapi;
        let t = &self.tracking;
        for (bound, value) in [
            (&bounds::RATE, d.rate_per_second),
            (&bounds::BURST, f64::from(d.burst)),
            (
                &bounds::MAX_CONCURRENT_CALLS,
                f64::from(d.max_concurrent_calls),
            ),
            (&bounds::MAX_RETRIES, f64::from(d.max_retries)),
            (&bounds::BREAKER_FAILURES, f64::from(d.breaker_failures)),
            (&bounds::BREAKER_COOLDOWN_MS, d.breaker_cooldown_ms as f64),
            (&bounds::TICK_MS, d.tick_ms as f64),
            (&bounds::REQUEST_TIMEOUT_MS, v.request_timeout_ms as f64),
            (&bounds::LOOKUP_SKEW_MS, v.lookup_skew_ms as f64),
            (&bounds::SETTLE_AFTER_MS, v.settle_after_ms as f64),
            (&bounds::LEASE_TIMEOUT_MS, v.lease_timeout_ms as f64),
            (&bounds::MAX_REQUESTS_PER_SECOND, v.max_requests_per_second),
            (&bounds::FALLBACK_AFTER_MS, t.fallback_after_ms as f64),
            (&bounds::MAX_CALL_DURATION_S, t.max_call_duration_s as f64),
            (
                &bounds::PAUSE_AFTER_IDENTICAL_REJECTIONS,
                f64::from(d.pause_after_identical_rejections),
            ),
            (&bounds::ASSISTANT_FAILURE_SHARE, d.assistant_failure_share),
            (
                &bounds::ASSISTANT_FAILURE_WINDOW,
                f64::from(d.assistant_failure_window),
            ),
            (&bounds::QUICK_HANGUP_MS, d.quick_hangup_ms as f64),
            (&bounds::RESERVED_SLOTS, f64::from(d.reserved_slots)),
            (
                &bounds::BENCH_NUMBER_AFTER_FAILURES,
                f64::from(d.bench_number_after_failures),
            ),
            (&bounds::NUMBER_COOLDOWN_S, d.number_cooldown_s as f64),
            (&bounds::PREDIAL_TIMEOUT_MS, self.predial.timeout_ms as f64),
            (
                &bounds::PREDIAL_PAUSE_AFTER_ERRORS,
                f64::from(self.predial.pause_after_errors),
            ),
            (&bounds::POLL_INTERVAL_MS, t.poll_interval_ms as f64),
            (&bounds::MAX_FIELD_BYTES, self.import.max_field_bytes as f64),
            (&bounds::ROWS_PER_COMMIT, self.import.rows_per_commit as f64),
            (
                &bounds::POLL_REQUESTS_PER_SECOND,
                t.poll_requests_per_second,
            ),
        ] {
            in_range(bound, value)?;
        }
        for (bound, value) in [
            (
                &bounds::DAILY_CALL_LIMIT,
                d.daily_call_limit.map(|n| n as f64),
            ),
            (&bounds::BUDGET_USD, d.budget_usd),
            (&bounds::ESTIMATED_COST_PER_CALL, d.estimated_cost_per_call),
        ] {
            if let Some(value) = value {
                in_range(bound, value)?;
            }
        }
        if d.max_retries > 0 && d.backoff_ms.is_empty() {
            return Err(bad(
                "dispatch.backoff_ms",
                "must list at least one delay when max_retries > 0".into(),
            ));
        }
        if d.backoff_ms.len() > MAX_BACKOFF_STEPS {
            return Err(bad(
                "dispatch.backoff_ms",
                format!(
                    "lists {} delays, at most {MAX_BACKOFF_STEPS} are allowed (the last one repeats)",
                    d.backoff_ms.len()
                ),
            ));
        }
        for delay in &d.backoff_ms {
            in_range(&bounds::BACKOFF_MS, *delay as f64)?;
        }
        if let Some(code) = d.retry_on_status.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(bad(
                "dispatch.retry_on_status",
                format!("{code} is not an HTTP status code"),
            ));
        }
        if d.retry_on_status
            .iter()
            .any(|c| matches!(c, 400 | 401 | 403))
        {
            return Err(bad(
                "dispatch.retry_on_status",
                "400, 401 and 403 are never retried: the same request fails the same way".into(),
            ));
        }
        if d.daily_limit_time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(bad(
                "dispatch.daily_limit_time_zone",
                format!(
                    "{:?} is not an IANA time zone (e.g. \"UTC\", \"America/New_York\")",
                    d.daily_limit_time_zone
                ),
            ));
        }
        if !(v.base_url.starts_with("http://") || v.base_url.starts_with("https://")) {
            return Err(bad(
                "vapi.base_url",
                format!("must start with http:// or https://, got {:?}", v.base_url),
            ));
        }
        if v.api_key_env.trim().is_empty() {
            return Err(bad(
                "vapi.api_key_env",
                "must name an environment variable".into(),
            ));
        }
        if let Some(listen) = &self.webhook.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(bad(
                "webhook.listen",
                format!("{listen:?} is not an address like 127.0.0.1:8090"),
            ));
        }
        if let Some(url) = &self.predial.url
            && url::Url::parse(url)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
        {
            return Err(bad(
                "predial.url",
                "must be an http:// or https:// URL".into(),
            ));
        }
        if let Some(cc) = &self.import.default_country_code {
            let digits_only = cc.bytes().all(|b| b.is_ascii_digit());
            if !((1..=3).contains(&cc.len()) && digits_only && !cc.starts_with('0')) {
                return Err(bad(
                    "import.default_country_code",
                    "must be 1 to 3 digits without + or leading 0, e.g. \"1\" or \"44\"".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The range of one numeric setting. The ONE definition shared by config validation, the
/// CLI's value parsers and the engine's command checks, so that no path accepts what another
/// refuses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The config key (`section.name`).
    pub key: &'static str,
    pub min: f64,
    pub max: f64,
    pub unit: &'static str,
}

impl Bound {
    /// `Ok` when `value` is a finite number within `min..=max`; else why not, in one line.
    pub fn check(&self, value: f64) -> Result<(), String> {
        if value.is_finite() && value >= self.min && value <= self.max {
            Ok(())
        } else {
            Err(format!(
                "must be between {} and {} {}, got {value}",
                self.min, self.max, self.unit
            ))
        }
    }

    /// Parses and checks a command-line value (for clap's `value_parser`).
    pub fn parse(&self, text: &str) -> Result<f64, String> {
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?;
        self.check(value)?;
        Ok(value)
    }
}

/// Every numeric setting's range. Zero is allowed only where it means something (no retries,
/// no look-up margin, a free budget).
pub mod bounds {
    use super::Bound;

    const fn bound(key: &'static str, min: f64, max: f64, unit: &'static str) -> Bound {
        Bound {
            key,
            min,
            max,
            unit,
        }
    }

    const DAY_MS: f64 = 86_400_000.0;

    /// Call creations per second: config, `dispatch rate`, the console and `SetRate`.
    pub const RATE: Bound = bound("dispatch.rate_per_second", 0.01, 1000.0, "calls/s");
    pub const BURST: Bound = bound("dispatch.burst", 1.0, 1000.0, "calls");
    pub const MAX_CONCURRENT_CALLS: Bound =
        bound("dispatch.max_concurrent_calls", 1.0, 10_000.0, "calls");
    pub const MAX_RETRIES: Bound = bound("dispatch.max_retries", 0.0, 100.0, "retries");
    /// Each entry of `dispatch.backoff_ms`.
    pub const BACKOFF_MS: Bound = bound("dispatch.backoff_ms", 1.0, DAY_MS, "ms");
    pub const BREAKER_FAILURES: Bound =
        bound("dispatch.breaker_failures", 1.0, 1_000_000.0, "failures");
    pub const BREAKER_COOLDOWN_MS: Bound =
        bound("dispatch.breaker_cooldown_ms", 10.0, DAY_MS, "ms");
    pub const DAILY_CALL_LIMIT: Bound =
        bound("dispatch.daily_call_limit", 1.0, 100_000_000.0, "calls");
    pub const BUDGET_USD: Bound = bound("dispatch.budget_usd", 0.0, 1e9, "USD");
    pub const ESTIMATED_COST_PER_CALL: Bound =
        bound("dispatch.estimated_cost_per_call", 0.0, 1000.0, "USD");
    pub const TICK_MS: Bound = bound("dispatch.tick_ms", 1.0, 10_000.0, "ms");
    pub const REQUEST_TIMEOUT_MS: Bound = bound("vapi.request_timeout_ms", 10.0, 600_000.0, "ms");
    pub const LOOKUP_SKEW_MS: Bound = bound("vapi.lookup_skew_ms", 0.0, 600_000.0, "ms");
    pub const SETTLE_AFTER_MS: Bound = bound("vapi.settle_after_ms", 1000.0, 3_600_000.0, "ms");
    pub const LEASE_TIMEOUT_MS: Bound = bound("vapi.lease_timeout_ms", 1000.0, 3_600_000.0, "ms");
    pub const MAX_REQUESTS_PER_SECOND: Bound =
        bound("vapi.max_requests_per_second", 0.5, 1000.0, "requests/s");
    pub const FALLBACK_AFTER_MS: Bound = bound("tracking.fallback_after_ms", 100.0, DAY_MS, "ms");
    pub const MAX_CALL_DURATION_S: Bound =
        bound("tracking.max_call_duration_s", 10.0, 43_200.0, "s");
    pub const PAUSE_AFTER_IDENTICAL_REJECTIONS: Bound = bound(
        "dispatch.pause_after_identical_rejections",
        0.0,
        1000.0,
        "rejections",
    );
    pub const ASSISTANT_FAILURE_SHARE: Bound =
        bound("dispatch.assistant_failure_share", 0.0, 1.0, "(share)");
    pub const ASSISTANT_FAILURE_WINDOW: Bound =
        bound("dispatch.assistant_failure_window", 1.0, 10_000.0, "calls");
    pub const QUICK_HANGUP_MS: Bound = bound("dispatch.quick_hangup_ms", 0.0, 600_000.0, "ms");
    pub const RESERVED_SLOTS: Bound = bound("dispatch.reserved_slots", 0.0, 10_000.0, "slots");
    pub const POLL_INTERVAL_MS: Bound = bound("tracking.poll_interval_ms", 10.0, DAY_MS, "ms");
    pub const MAX_FIELD_BYTES: Bound = bound("import.max_field_bytes", 1.0, 1_048_576.0, "bytes");
    pub const ROWS_PER_COMMIT: Bound = bound("import.rows_per_commit", 1.0, 200_000.0, "rows");
    pub const POLL_REQUESTS_PER_SECOND: Bound = bound(
        "tracking.poll_requests_per_second",
        0.01,
        1000.0,
        "requests/s",
    );

    pub const BENCH_NUMBER_AFTER_FAILURES: Bound = bound(
        "dispatch.bench_number_after_failures",
        1.0,
        1000.0,
        "failures",
    );
    pub const NUMBER_COOLDOWN_S: Bound = bound("dispatch.number_cooldown_s", 10.0, 604_800.0, "s");
    pub const PREDIAL_TIMEOUT_MS: Bound = bound("predial.timeout_ms", 10.0, 60_000.0, "ms");
    pub const PREDIAL_PAUSE_AFTER_ERRORS: Bound =
        bound("predial.pause_after_errors", 0.0, 1000.0, "errors");

    /// Every bound, for documentation and tests.
    pub const ALL: [Bound; 31] = [
        RATE,
        BURST,
        MAX_CONCURRENT_CALLS,
        MAX_RETRIES,
        BACKOFF_MS,
        BREAKER_FAILURES,
        BREAKER_COOLDOWN_MS,
        DAILY_CALL_LIMIT,
        BUDGET_USD,
        ESTIMATED_COST_PER_CALL,
        TICK_MS,
        REQUEST_TIMEOUT_MS,
        LOOKUP_SKEW_MS,
        SETTLE_AFTER_MS,
        LEASE_TIMEOUT_MS,
        MAX_REQUESTS_PER_SECOND,
        FALLBACK_AFTER_MS,
        MAX_CALL_DURATION_S,
        PAUSE_AFTER_IDENTICAL_REJECTIONS,
        ASSISTANT_FAILURE_SHARE,
        ASSISTANT_FAILURE_WINDOW,
        QUICK_HANGUP_MS,
        RESERVED_SLOTS,
        POLL_INTERVAL_MS,
        POLL_REQUESTS_PER_SECOND,
        BENCH_NUMBER_AFTER_FAILURES,
        NUMBER_COOLDOWN_S,
        PREDIAL_TIMEOUT_MS,
        PREDIAL_PAUSE_AFTER_ERRORS,
        MAX_FIELD_BYTES,
        ROWS_PER_COMMIT,
    ];
}

/// The most delays `dispatch.backoff_ms` may list (the last one repeats anyway).
pub const MAX_BACKOFF_STEPS: usize = 20;

/// The highest create rate accepted anywhere (config, console, CLI), calls per second.
pub const MAX_RATE: f64 = bounds::RATE.max;

/// Checks a create rate (config key, throttle command or CLI).
pub fn check_rate(per_second: f64) -> Result<(), String> {
    bounds::RATE.check(per_second)
}

/// clap value parser for a create rate.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    bounds::RATE.parse(text)
}

/// The dotted key defined on a 1-based line of a TOML text (`dispatch.max_retries`), so that
/// a type error names the key without quoting the value.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (key, _) = lines.get(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let section = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_string(),
    })
}

impl Config {
    /// Reads the API key from the environment variable named by `vapi.api_key_env`.
    pub fn api_key(&self) -> Result<Secret, ConfigError> {
        match std::env::var(&self.vapi.api_key_env) {
            Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
            _ => Err(ConfigError::MissingApiKey {
                var: self.vapi.api_key_env.clone(),
            }),
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.vapi.request_timeout_ms)
    }

    /// The backoff delay before retry number `retry` (1-based); the last entry repeats.
    pub fn backoff(&self, retry: u32) -> Duration {
        crate::backoff::retry_delay(&self.dispatch.backoff_ms, retry, None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.dispatch.backoff_ms, vec![1000, 4000, 10000]);
        assert_eq!(c.dispatch.retry_on_status, DEFAULT_RETRY_ON_STATUS);
        assert_eq!(c.vapi.api_key_env, "VAPI_API_KEY");
    }

    #[test]
    fn the_example_config_parses_to_the_defaults() {
        let text = include_str!("../../../config.example.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.dispatch, DispatchConfig::default());
        assert_eq!(c.vapi, VapiConfig::default());
        assert_eq!(c.import, ImportConfig::default());
    }

    #[test]
    fn unknown_keys_name_the_key_and_file() {
        let err = parse("[dispatch]\nrate_per_secnd = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("rate_per_secnd"), "{err}");
        let err = parse("[vapi]\napi_key = \"sk-123\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_key"), "{err}");
        assert!(
            !err.contains("sk-123"),
            "a key typed into the file must not echo: {err}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = parse("[dispatch]\nrate_per_second = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("dispatch.rate_per_second"), "{err}");
        let err = parse("[dispatch]\nretry_on_status = [401]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retry_on_status"), "{err}");
        let err = parse("[vapi]\nbase_url = \"ftp://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("vapi.base_url"), "{err}");
        let err = parse("[import]\ndefault_country_code = \"+1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("import.default_country_code"), "{err}");
        let err = parse("[dispatch]\nmax_retries = \"three\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_retries"), "{err}");
    }

    #[test]
    fn extremes_are_refused_naming_the_key_and_file() {
        let cases = [
            (
                "[vapi]\nlookup_margin_ms = 9000000000000000000\n",
                "vapi.lookup_skew_ms",
            ),
            (
                "[tracking]\npoll_requests_per_second = 1e-20\n",
                "tracking.poll_requests_per_second",
            ),
            (
                "[tracking]\npoll_requests_per_second = nan\n",
                "tracking.poll_requests_per_second",
            ),
            (
                "[dispatch]\nrate_per_second = 100000.0\n",
                "dispatch.rate_per_second",
            ),
            (
                "[dispatch]\nrate_per_second = inf\n",
                "dispatch.rate_per_second",
            ),
            ("[dispatch]\nbudget_usd = -1.0\n", "dispatch.budget_usd"),
            ("[dispatch]\nbackoff_ms = []\n", "dispatch.backoff_ms"),
            ("[dispatch]\nbackoff_ms = [0]\n", "dispatch.backoff_ms"),
            (
                "[dispatch]\nbackoff_ms = [1000, 99999999999]\n",
                "dispatch.backoff_ms",
            ),
            (
                "[dispatch]\ndaily_call_limit = 0\n",
                "dispatch.daily_call_limit",
            ),
            (
                "[dispatch]\nmax_concurrent_calls = 0\n",
                "dispatch.max_concurrent_calls",
            ),
            ("[vapi]\nsettle_after_ms = 10\n", "vapi.settle_after_ms"),
            (
                "[vapi]\nrequest_timeout_ms = 0\n",
                "vapi.request_timeout_ms",
            ),
            ("[import]\nrows_per_commit = 0\n", "import.rows_per_commit"),
            (
                "[import]\nrows_per_commit = 5000000\n",
                "import.rows_per_commit",
            ),
            ("[import]\nmax_field_bytes = 0\n", "import.max_field_bytes"),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?}: {err}");
            assert!(err.contains("test.toml"), "{text:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{text:?}: {err}");
        }
        let long: Vec<String> = (0..=MAX_BACKOFF_STEPS).map(|_| "1000".into()).collect();
        let err = parse(&format!("[dispatch]\nbackoff_ms = [{}]\n", long.join(",")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dispatch.backoff_ms"), "{err}");
    }

    #[test]
    fn defaults_lie_within_every_bound_and_the_cli_shares_the_rate_bound() {
        for bound in bounds::ALL {
            assert!(bound.min <= bound.max, "{bound:?}");
            assert!(bound.min >= 0.0, "{bound:?}");
        }
        let c = Config::default();
        assert_eq!(c.vapi.settle_after_ms, 120_000);
        assert_eq!(c.vapi.lookup_skew_ms, 10_000);
        assert!(parse("[dispatch]\nrate_per_second = 1000.0\n").is_ok());
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        assert!(parse_rate("1000.5").is_err());
        assert!(parse_rate("100000").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").unwrap_err().contains("not a number"));
        assert!(check_rate(f64::INFINITY).is_err());
    }

    #[test]
    fn backoff_schedule_repeats_its_last_delay() {
        let c = Config::default();
        assert_eq!(c.backoff(1), Duration::from_secs(1));
        assert_eq!(c.backoff(2), Duration::from_secs(4));
        assert_eq!(c.backoff(3), Duration::from_secs(10));
        assert_eq!(c.backoff(7), Duration::from_secs(10));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-live-abc");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "sk-live-abc");
    }
}
