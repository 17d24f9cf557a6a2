//! TOML configuration: every key has a default, unknown keys and bad values are errors that
//! name the key and the file. The API key is never read from the file: only from the
//! environment variable the file names, and it lives in a [`Secret`] that never prints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    /// Console key remapping: action name → key (see `switchboard console --help`).
    pub keys: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub path: PathBuf,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("switchboard.db"),
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
    /// How far before an ambiguous attempt's start the look-up searches (clock skew margin).
    pub lookup_margin_ms: u64,
}

impl Default for VapiConfig {
    fn default() -> Self {
        VapiConfig {
            base_url: "https://api.vapi.ai".into(),
            api_key_env: "VAPI_API_KEY".into(),
            request_timeout_ms: 10_000,
            lookup_margin_ms: 120_000,
        }
    }
}

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
    /// Total spend (USD) across all campaigns; none = no limit.
    pub budget_usd: Option<f64>,
    /// Used for the budget estimate until real costs are known.
    pub estimated_cost_per_call: Option<f64>,
    /// How often the claim loop looks for work and publishes a snapshot.
    pub tick_ms: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            rate_per_second: 2.0,
            burst: 1,
            max_concurrent_calls: 10,
            max_retries: 3,
            backoff_ms: vec![1_000, 4_000, 10_000],
            retry_on_status: vec![429, 503, 504],
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            daily_call_limit: None,
            budget_usd: None,
            estimated_cost_per_call: None,
            tick_ms: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingConfig {
    /// How often each active call is polled with GET /call/{id}.
    pub poll_interval_ms: u64,
    /// Request budget for polling: at most this many GETs per second.
    pub poll_requests_per_second: f64,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            poll_interval_ms: 2_000,
            poll_requests_per_second: 5.0,
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

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// Country calling code for numbers written without one, e.g. "1" or "44"; none = such
    /// numbers are rejected.
    pub default_country_code: Option<String>,
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
        let d = &self.dispatch;
        if !(d.rate_per_second.is_finite()
            && d.rate_per_second > 0.0
            && d.rate_per_second <= 1000.0)
        {
            return Err(bad(
                "dispatch.rate_per_second",
                format!("must be > 0 and <= 1000, got {}", d.rate_per_second),
            ));
        }
        if d.burst == 0 {
            return Err(bad("dispatch.burst", "must be at least 1".into()));
        }
        if d.max_concurrent_calls == 0 {
            return Err(bad(
                "dispatch.max_concurrent_calls",
                "must be at least 1".into(),
            ));
        }
        if d.max_retries > 0 && d.backoff_ms.is_empty() {
            return Err(bad(
                "dispatch.backoff_ms",
                "must list at least one delay when max_retries > 0".into(),
            ));
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
        if d.breaker_failures == 0 {
            return Err(bad(
                "dispatch.breaker_failures",
                "must be at least 1".into(),
            ));
        }
        if d.tick_ms == 0 || d.tick_ms > 10_000 {
            return Err(bad(
                "dispatch.tick_ms",
                "must be between 1 and 10000".into(),
            ));
        }
        if let Some(b) = d.budget_usd
            && !(b.is_finite() && b >= 0.0)
        {
            return Err(bad("dispatch.budget_usd", format!("must be >= 0, got {b}")));
        }
        if let Some(c) = d.estimated_cost_per_call
            && !(c.is_finite() && c >= 0.0)
        {
            return Err(bad(
                "dispatch.estimated_cost_per_call",
                format!("must be >= 0, got {c}"),
            ));
        }
        let v = &self.vapi;
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
        if v.request_timeout_ms == 0 {
            return Err(bad("vapi.request_timeout_ms", "must be at least 1".into()));
        }
        let t = &self.tracking;
        if t.poll_interval_ms == 0 {
            return Err(bad(
                "tracking.poll_interval_ms",
                "must be at least 1".into(),
            ));
        }
        if !(t.poll_requests_per_second.is_finite() && t.poll_requests_per_second > 0.0) {
            return Err(bad(
                "tracking.poll_requests_per_second",
                "must be greater than 0".into(),
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

/// The highest create rate accepted anywhere (config, console, CLI), calls per second.
pub const MAX_RATE: f64 = 100_000.0;

/// Checks a create rate (config key, throttle command or CLI).
pub fn check_rate(per_second: f64) -> Result<(), String> {
    if per_second.is_finite() && per_second > 0.0 && per_second <= MAX_RATE {
        Ok(())
    } else {
        Err(format!(
            "must be > 0 and <= {MAX_RATE} calls/s, got {per_second}"
        ))
    }
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
        crate::dispatch::retry::retry_delay(&self.dispatch.backoff_ms, retry, None, None)
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
        assert_eq!(c.dispatch.retry_on_status, vec![429, 503, 504]);
        assert_eq!(c.vapi.api_key_env, "VAPI_API_KEY");
    }

    #[test]
    fn the_example_config_parses_to_the_defaults() {
        let text = include_str!("../config.example.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.dispatch, DispatchConfig::default());
        assert_eq!(c.vapi, VapiConfig::default());
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
