//! TOML configuration: every key has a default, unknown keys and bad values are errors that
//! name the key and the file. Each key is declared once, in its section's [`section!`]: its
//! field, default, range and unit, and its help (the doc comment). Durations are a number in
//! the key's unit (`settle_after_ms = 120000`) or a humantime text (`settle_after_ms =
//! "2m"`). The API key is never read from the file: only from the environment variable the
//! file names, and it lives in a [`Secret`] that never prints.

use std::collections::BTreeMap;
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

/// A value that must never be printed (the API key, the webhook secret, a hook's token):
/// `secrecy`'s string, whose Debug shows `[REDACTED]` and which has no Display.
pub type Secret = secrecy::SecretString;
pub use secrecy::ExposeSecret;

/// Declares a config section once: for each key its field, its default, its range and unit
/// when it has one, and its help (the doc comment). Makes the struct (serde reads it, unknown
/// keys refused), its `Default`, one [`Bound`] per ranged key as an associated constant named
/// like the key (`DispatchConfig::rate_per_second`, shared with the CLI's value parsers),
/// `BOUNDS` listing them, and `check_ranges`.
macro_rules! section {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident in $section:literal {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident: $ty:ty = $default:expr
                    $(, range($min:expr, $max:expr, $unit:literal))?;
            )*
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone, Deserialize, PartialEq)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        #[allow(non_upper_case_globals)]
        impl $name {
            $($(
                #[doc = concat!("The range of `", $section, ".", stringify!($field), "`.")]
                pub const $field: Bound = Bound {
                    key: concat!($section, ".", stringify!($field)),
                    min: $min as f64,
                    max: $max as f64,
                    unit: $unit,
                };
            )?)*

            /// Every ranged key of the section.
            pub const BOUNDS: &'static [Bound] = &[ $($( { let _ = $min; Self::$field }, )?)* ];

            /// The first value outside its key's range: the key and why.
            fn check_ranges(&self) -> Result<(), (&'static str, String)> {
                $($(
                    let _ = $min;
                    for value in Ranged::values(&self.$field) {
                        Self::$field.check(value).map_err(|reason| (Self::$field.key, reason))?;
                    }
                )?)*
                Ok(())
            }
        }
    };
}

/// The numbers a setting holds, for its range check: none for an unset option, each entry
/// of a list.
trait Ranged {
    fn values(&self) -> Vec<f64>;
}

macro_rules! ranged_number {
    ($($t:ty),*) => {$(
        impl Ranged for $t {
            fn values(&self) -> Vec<f64> {
                vec![*self as f64]
            }
        }
    )*};
}
ranged_number!(f64, u32, u64, usize);

impl<T: Ranged> Ranged for Option<T> {
    fn values(&self) -> Vec<f64> {
        self.as_ref().map(Ranged::values).unwrap_or_default()
    }
}

impl<T: Ranged> Ranged for Vec<T> {
    fn values(&self) -> Vec<f64> {
        self.iter().flat_map(Ranged::values).collect()
    }
}

/// Durations read as a number in the key's unit or as a humantime text ("120s", "2m").
mod duration {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    struct Amount {
        /// Milliseconds in the key's unit.
        unit_ms: u64,
    }

    impl Visitor<'_> for Amount {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            let unit = if self.unit_ms == 1 { "ms" } else { "s" };
            write!(
                f,
                "a whole number of {unit} or a duration such as \"90s\" or \"2m\""
            )
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            let d = humantime_serde::re::humantime::parse_duration(v.trim())
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))?;
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            if ms % self.unit_ms != 0 {
                return Err(E::invalid_value(de::Unexpected::Str(v), &self));
            }
            Ok(ms / self.unit_ms)
        }
    }

    pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Amount { unit_ms: 1 })
    }

    pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Amount { unit_ms: 1000 })
    }

    /// A list of durations in milliseconds (the backoff schedule).
    pub fn millis_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        struct Entry(u64);
        impl<'de> serde::Deserialize<'de> for Entry {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
                millis(d).map(Entry)
            }
        }
        let entries: Vec<Entry> = serde::Deserialize::deserialize(d)?;
        Ok(entries.into_iter().map(|e| e.0).collect())
    }
}

const DAY_MS: f64 = 86_400_000.0;

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
    pub console: ConsoleConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    /// Console key remapping: action name → key (see `switchboard console --help`).
    pub keys: BTreeMap<String, String>,
}

section! {
    pub struct ConsoleConfig in "console" {
        /// The player the console's listen key pipes a call's audio into (WAV on its
        /// stdin), e.g. "ffplay -nodisp -autoexit -" or "aplay -q"; none: the key says so.
        pub listen_command: Option<String> = None;
    }
}

section! {
    /// The engine's service endpoints: `/metrics` (Prometheus), `/healthz` (alive) and
    /// `/readyz` (ready to dispatch).
    pub struct MetricsConfig in "metrics" {
        /// Where they are served, e.g. "127.0.0.1:9187"; none (the default): not served.
        /// Keep it on loopback unless a scraper elsewhere must reach it.
        pub listen: Option<String> = None;
    }
}

section! {
    pub struct LogConfig in "log" {
        /// `text` (the default) or `json`: one JSON object per line, for log collectors
        /// (the global `--log-format` flag wins over it).
        pub format: LogFormat = LogFormat::Text;
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line: level, target, message and the call's ids as fields.
    Json,
}

section! {
    pub struct DatabaseConfig in "database" {
        pub path: PathBuf = PathBuf::from("switchboard.db");
        /// `postgres://user:password@host:5432/db` selects PostgreSQL (several engines may
        /// share it); a `sqlite:` URL or a path keeps SQLite. When set it wins over `path`.
        pub url: Option<String> = None;
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

section! {
    pub struct VapiConfig in "vapi" {
        pub base_url: String = "https://api.vapi.ai".into();
        /// Name of the environment variable holding the private API key.
        pub api_key_env: String = "VAPI_API_KEY".into();
        /// Environment variable with the public key, sent to a call's control and listen
        /// URLs when the assistant turns their authentication on; unset: sent without.
        pub public_key_env: String = "VAPI_PUBLIC_KEY".into();
        #[serde(deserialize_with = "duration::millis")]
        pub request_timeout_ms: u64 = 10_000, range(10, 600_000, "ms");
        /// Clock skew allowed between us and Vapi: a look-up searches createdAt from an
        /// attempt's send time minus this, to its settle deadline plus this.
        /// (`lookup_margin_ms`, its old name, is still read.)
        #[serde(alias = "lookup_margin_ms", deserialize_with = "duration::millis")]
        pub lookup_skew_ms: u64 = 10_000, range(0, 600_000, "ms");
        /// How long after an ambiguous request was sent Vapi may still create its call
        /// (longer than Vapi's proxy keeps a request alive). An unknown outcome is re-sent
        /// only after a complete look-up made after this found nothing.
        #[serde(deserialize_with = "duration::millis")]
        pub settle_after_ms: u64 = 120_000, range(1000, 3_600_000, "ms");
        /// An engine whose lease heartbeat is older than this is taken for dead and its
        /// lease taken over (a process gone from this host is taken over at once).
        #[serde(deserialize_with = "duration::millis")]
        pub lease_timeout_ms: u64 = 15_000, range(1000, 3_600_000, "ms");
        /// Ceiling of the request budget shared by every request to Vapi (creates, reads,
        /// look-ups). The engine learns the gateway's real limit below it from 429s.
        pub max_requests_per_second: f64 = 20.0, range(0.5, 1000.0, "requests/s");
    }
}

/// HTTP statuses sent again by default: refusals (429, 503) and every status after which the
/// call may exist (408, 500, 502, 504, the proxy's 520-524), which are settled first.
pub const DEFAULT_RETRY_ON_STATUS: &[u16] =
    &[408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524];

section! {
    pub struct DispatchConfig in "dispatch" {
        /// Call creations per second: config, `dispatch rate`, the console and `SetRate`.
        pub rate_per_second: f64 = 2.0, range(0.01, 1000.0, "calls/s");
        /// GCRA burst: how many creates may go back to back; 1 = evenly spaced.
        pub burst: u32 = 1, range(1, 1000, "calls");
        pub max_concurrent_calls: u32 = 10, range(1, 10_000, "calls");
        pub max_retries: u32 = 3, range(0, 100, "retries");
        /// The waits before each retry; the last one repeats.
        #[serde(deserialize_with = "duration::millis_list")]
        pub backoff_ms: Vec<u64> = vec![1_000, 4_000, 10_000], range(1, DAY_MS, "ms");
        pub retry_on_status: Vec<u16> = DEFAULT_RETRY_ON_STATUS.to_vec();
        /// Consecutive transient failures that open the circuit breaker.
        pub breaker_failures: u32 = 5, range(1, 1_000_000, "failures");
        #[serde(deserialize_with = "duration::millis")]
        pub breaker_cooldown_ms: u64 = 30_000, range(10, DAY_MS, "ms");
        /// Calls created per UTC day across all campaigns; none = no limit.
        pub daily_call_limit: Option<u64> = None, range(1, 100_000_000, "calls");
        /// The time zone whose midnight starts a new day for the daily call limit (IANA name).
        pub daily_limit_time_zone: String = "UTC".into();
        /// Vapi's concurrent call slots left free for inbound and other calls of the account.
        pub reserved_slots: u32 = 0, range(0, 10_000, "slots");
        /// This many identical rejections in a row pause the campaign (its settings are the
        /// likely cause) and give those contacts back; 0 turns it off.
        pub pause_after_identical_rejections: u32 = 3, range(0, 1000, "rejections");
        /// A campaign whose assistant fails more than this share of the last
        /// `assistant_failure_window` answered calls (pipeline and provider errors after the
        /// answer: the ended-reason table's assistant faults) is paused: each such call burns
        /// a contact and a person's patience. A person hanging up is never counted here.
        pub assistant_failure_share: f64 = 0.2, range(0.0, 1.0, "(share)");
        pub assistant_failure_window: u32 = 20, range(1, 10_000, "calls");
        /// An answered call the person ends within this many milliseconds is a quick hang-up,
        /// a signal of its own (0 turns it off).
        #[serde(deserialize_with = "duration::millis")]
        pub quick_hangup_ms: u64 = 3_000, range(0, 600_000, "ms");
        /// The campaign's first this-many answered calls set its baseline share of quick
        /// hang-ups (what is normal for its list).
        pub quick_hangup_baseline_calls: u32 = 20, range(1, 10_000, "calls");
        /// The campaign pauses when quick hang-ups in the last `quick_hangup_window` answered
        /// calls rise above its baseline share by more than this (share points)…
        pub quick_hangup_rise: f64 = 0.3, range(0.0, 1.0, "(share)");
        /// …or, when set, above this share whatever the baseline.
        pub quick_hangup_ceiling: Option<f64> = None, range(0.0, 1.0, "(share)");
        pub quick_hangup_window: u32 = 20, range(1, 10_000, "calls");
        /// Total spend (USD) across all campaigns; none = no limit.
        pub budget_usd: Option<f64> = None, range(0.0, 1e9, "USD");
        /// Used for the budget estimate until real costs are known.
        pub estimated_cost_per_call: Option<f64> = None, range(0.0, 1000.0, "USD");
        /// How often the claim loop looks for work and publishes a snapshot.
        #[serde(deserialize_with = "duration::millis")]
        pub tick_ms: u64 = 200, range(1, 10_000, "ms");
        /// A pool number whose calls fail this many times in a row before ringing (start
        /// errors, refusals naming it) is benched for `number_cooldown_s`.
        pub bench_number_after_failures: u32 = 3, range(1, 1000, "failures");
        #[serde(deserialize_with = "duration::seconds")]
        pub number_cooldown_s: u64 = 3_600, range(10, 604_800, "s");
    }
}

section! {
    pub struct TrackingConfig in "tracking" {
        /// How often the calls changed at Vapi are read in bulk (one `GET
        /// /call?updatedAtGe=…` per assistant/phone-number pair with calls to follow).
        #[serde(deserialize_with = "duration::millis")]
        pub poll_interval_ms: u64 = 1_000, range(10, DAY_MS, "ms");
        /// At most this many per-call `GET /call/{id}` a second (the fallback for a call the
        /// bulk read has not returned for `fallback_after_ms`).
        pub poll_requests_per_second: f64 = 5.0, range(0.01, 1000.0, "requests/s");
        /// A call not seen changed for this long is read on its own.
        #[serde(deserialize_with = "duration::millis")]
        pub fallback_after_ms: u64 = 60_000, range(100, DAY_MS, "ms");
        /// Longest a call can last (Vapi's maxDurationSeconds ceiling is 43200): a call still
        /// active 10 minutes past it is closed as overdue and its slot freed.
        #[serde(deserialize_with = "duration::seconds")]
        pub max_call_duration_s: u64 = 43_200, range(10, 43_200, "s");
    }
}

section! {
    pub struct WebhookConfig in "webhook" {
        /// Address for the webhook listener, e.g. "0.0.0.0:8090"; none = polling only.
        pub listen: Option<String> = None;
        /// Environment variable with the shared secret (never the file itself).
        pub secret_env: String = "VAPI_WEBHOOK_SECRET".into();
        /// How Vapi proves a message is its own; `secret` (legacy `X-Vapi-Secret`) by default.
        pub auth: WebhookAuth = WebhookAuth::Secret;
        /// Header carrying the credential when `auth = "header"`, e.g. "x-my-token".
        pub header_name: Option<String> = None;
        /// HMAC only: a message whose `x-timestamp` is further than this from now is refused.
        #[serde(deserialize_with = "duration::seconds")]
        pub replay_window_s: u64 = 300;
    }
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

section! {
    pub struct ImportConfig in "import" {
        /// Country calling code for numbers written without one, e.g. "1" or "44"; none =
        /// such numbers are rejected.
        pub default_country_code: Option<String> = None;
        /// Reject numbers outside the numbering plan's known ranges (else imported and
        /// counted as unverified).
        pub strict: bool = false;
        /// A CSV field longer than this (bytes) rejects its row: nothing that large is sent
        /// to an assistant on every call.
        pub max_field_bytes: usize = 4_096, range(1, 1_048_576, "bytes");
        /// Rows per commit of a long import (parsed in batches of at most 25,000 while the
        /// last is written): this bounds how long the import holds the write lock (~0.3-0.5 s
        /// at the default). Fewer, larger commits write each page of the phone index fewer
        /// times: input in no particular order imports ~1.6x as fast as at 25,000.
        pub rows_per_commit: usize = 100_000, range(1, 200_000, "rows");
    }
}

section! {
    /// The optional pre-dial hook: before a call is first sent, its contact is POSTed to
    /// `url`, which may answer `{"allow": false, "reason": "…"}` (the contact is then
    /// SKIPPED).
    pub struct PredialConfig in "predial" {
        /// None: no hook.
        pub url: Option<String> = None;
        #[serde(deserialize_with = "duration::millis")]
        pub timeout_ms: u64 = 2_000, range(10, 60_000, "ms");
        /// What a timeout, an error or an unreadable answer means.
        pub on_error: PredialOnError = PredialOnError::Skip;
        /// Environment variable holding a bearer token sent to the hook (never the file).
        pub token_env: Option<String> = None;
        /// This many hook errors in a row pause the campaign instead of skipping more
        /// contacts (a hook that is down must not burn the list); 0 turns it off.
        pub pause_after_errors: u32 = 3, range(0, 1000, "errors");
    }
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

impl Config {
    /// Every ranged key of every section, for documentation and tests.
    pub fn bounds() -> impl Iterator<Item = &'static Bound> {
        [
            DatabaseConfig::BOUNDS,
            VapiConfig::BOUNDS,
            DispatchConfig::BOUNDS,
            TrackingConfig::BOUNDS,
            WebhookConfig::BOUNDS,
            ImportConfig::BOUNDS,
            PredialConfig::BOUNDS,
            ConsoleConfig::BOUNDS,
            LogConfig::BOUNDS,
            MetricsConfig::BOUNDS,
        ]
        .into_iter()
        .flatten()
    }

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
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let document =
            toml::Deserializer::parse(text).map_err(|e| parse_error(describe(text, &e, None)))?;
        let config: Config = serde_path_to_error::deserialize(document).map_err(|e| {
            let key = e.path().to_string();
            parse_error(describe(text, e.inner(), Some(&key)))
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
        let ranges = [
            self.database.check_ranges(),
            self.vapi.check_ranges(),
            self.dispatch.check_ranges(),
            self.tracking.check_ranges(),
            self.webhook.check_ranges(),
            self.import.check_ranges(),
            self.predial.check_ranges(),
            self.console.check_ranges(),
            self.log.check_ranges(),
            self.metrics.check_ranges(),
        ];
        for checked in ranges {
            checked.map_err(|(key, reason)| bad(key, reason))?;
        }
        self.dispatch
            .validate()
            .map_err(|(key, reason)| bad(key, reason))?;
        self.vapi
            .validate()
            .map_err(|(key, reason)| bad(key, reason))?;
        self.check_addresses()
            .map_err(|(key, reason)| bad(key, reason))
    }

    /// The listener, hook and country code, each a text that must say one thing.
    fn check_addresses(&self) -> Result<(), (&'static str, String)> {
        if let Some(listen) = &self.webhook.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err((
                "webhook.listen",
                format!("{listen:?} is not an address like 127.0.0.1:8090"),
            ));
        }
        if let Some(url) = &self.predial.url
            && url::Url::parse(url)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
        {
            return Err(("predial.url", "must be an http:// or https:// URL".into()));
        }
        if let Some(cc) = &self.import.default_country_code {
            let digits_only = cc.bytes().all(|b| b.is_ascii_digit());
            if !((1..=3).contains(&cc.len()) && digits_only && !cc.starts_with('0')) {
                return Err((
                    "import.default_country_code",
                    "must be 1 to 3 digits without + or leading 0, e.g. \"1\" or \"44\"".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A TOML error in one line: where and (when known) which key, never the source line, which
/// could echo a secret someone pasted into the file.
fn describe(text: &str, e: &toml::de::Error, key: Option<&str>) -> String {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let key = key.filter(|k| !k.is_empty() && *k != ".");
    let what = without_quoted_value(e.message());
    let mut message = match (line, key) {
        (Some(line), Some(key)) => format!("line {line}, key `{key}`: {what}"),
        (Some(line), None) => format!("line {line}: {what}"),
        (None, Some(key)) => format!("key `{key}`: {what}"),
        (None, None) => what,
    };
    if e.message().contains("`api_key`") {
        message.push_str(
            " (the API key is never read from a file: set the variable named by vapi.api_key_env)",
        );
    }
    message.replace('\n', " ")
}

/// serde's `invalid type: string "…", expected …` without the string, which may be a
/// secret typed into the wrong key.
fn without_quoted_value(message: &str) -> String {
    match message.split_once("string \"") {
        Some((head, rest)) => match rest.rsplit_once("\", expected") {
            Some((_, tail)) => format!("{head}a string, expected{tail}"),
            None => format!("{head}a string"),
        },
        None => message.to_string(),
    }
}

impl DispatchConfig {
    /// What a range cannot say: the schedule's length, the statuses, the zone.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_retries > 0 && self.backoff_ms.is_empty() {
            return Err((
                "dispatch.backoff_ms",
                "must list at least one delay when max_retries > 0".into(),
            ));
        }
        if self.backoff_ms.len() > MAX_BACKOFF_STEPS {
            return Err((
                "dispatch.backoff_ms",
                format!(
                    "lists {} delays, at most {MAX_BACKOFF_STEPS} are allowed (the last one repeats)",
                    self.backoff_ms.len()
                ),
            ));
        }
        if let Some(code) = self
            .retry_on_status
            .iter()
            .find(|c| !(100..=599).contains(*c))
        {
            return Err((
                "dispatch.retry_on_status",
                format!("{code} is not an HTTP status code"),
            ));
        }
        if self
            .retry_on_status
            .iter()
            .any(|c| matches!(c, 400 | 401 | 403))
        {
            return Err((
                "dispatch.retry_on_status",
                "400, 401 and 403 are never retried: the same request fails the same way".into(),
            ));
        }
        if self.daily_limit_time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err((
                "dispatch.daily_limit_time_zone",
                format!(
                    "{:?} is not an IANA time zone (e.g. \"UTC\", \"America/New_York\")",
                    self.daily_limit_time_zone
                ),
            ));
        }
        Ok(())
    }
}

impl VapiConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if url::Url::parse(&self.base_url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            return Err((
                "vapi.base_url",
                format!(
                    "must be an http:// or https:// URL, got {:?}",
                    self.base_url
                ),
            ));
        }
        if self.api_key_env.trim().is_empty() {
            return Err((
                "vapi.api_key_env",
                "must name an environment variable".into(),
            ));
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

    /// Parses and checks a whole number (for clap's `value_parser`).
    pub fn parse_whole(&self, text: &str) -> Result<i64, String> {
        let value: i64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a whole number"))?;
        self.check(value as f64)?;
        Ok(value)
    }
}

/// The most delays `dispatch.backoff_ms` may list (the last one repeats anyway).
pub const MAX_BACKOFF_STEPS: usize = 20;

/// The highest create rate accepted anywhere (config, console, CLI), calls per second.
pub const MAX_RATE: f64 = DispatchConfig::rate_per_second.max;

/// Checks a create rate (config key, throttle command or CLI).
pub fn check_rate(per_second: f64) -> Result<(), String> {
    DispatchConfig::rate_per_second.check(per_second)
}

/// clap value parser for a create rate.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    DispatchConfig::rate_per_second.parse(text)
}

impl Config {
    /// Reads the API key from the environment variable named by `vapi.api_key_env`.
    pub fn api_key(&self) -> Result<Secret, ConfigError> {
        match std::env::var(&self.vapi.api_key_env) {
            Ok(value) if !value.trim().is_empty() => Ok(Secret::from(value.trim())),
            _ => Err(ConfigError::MissingApiKey {
                var: self.vapi.api_key_env.clone(),
            }),
        }
    }

    /// The public key for monitor URLs, when its variable is set.
    pub fn public_key(&self) -> Option<Secret> {
        std::env::var(&self.vapi.public_key_env)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(Secret::from)
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
        for bound in Config::bounds() {
            assert!(bound.min <= bound.max, "{bound:?}");
            assert!(bound.min >= 0.0, "{bound:?}");
        }
        let c = Config::default();
        c.validate(Path::new("defaults"))
            .expect("every default lies within its range");
        assert_eq!(Config::bounds().count(), 35);
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
    fn durations_read_as_numbers_in_the_keys_unit_or_as_humantime_text() {
        let c = parse(
            "[vapi]\nsettle_after_ms = \"2m\"\nlookup_margin_ms = \"1500ms\"\n\
             [dispatch]\nbackoff_ms = [\"1s\", 4000, \"10s\"]\nnumber_cooldown_s = \"1h\"\n\
             [tracking]\nmax_call_duration_s = 600\n",
        )
        .unwrap();
        assert_eq!(c.vapi.settle_after_ms, 120_000);
        assert_eq!(c.vapi.lookup_skew_ms, 1_500);
        assert_eq!(c.dispatch.backoff_ms, vec![1_000, 4_000, 10_000]);
        assert_eq!(c.dispatch.number_cooldown_s, 3_600);
        assert_eq!(c.tracking.max_call_duration_s, 600);
        for (text, key) in [
            (
                "[vapi]\nsettle_after_ms = \"soon\"\n",
                "vapi.settle_after_ms",
            ),
            ("[vapi]\nsettle_after_ms = -5\n", "vapi.settle_after_ms"),
            // A second-keyed setting cannot hold a fraction of a second.
            (
                "[dispatch]\nnumber_cooldown_s = \"1500ms\"\n",
                "dispatch.number_cooldown_s",
            ),
            (
                "[dispatch]\nbackoff_ms = [1000, \"x\"]\n",
                "dispatch.backoff_ms",
            ),
            // Out of range once read, in either spelling.
            ("[vapi]\nsettle_after_ms = \"2h\"\n", "vapi.settle_after_ms"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{text:?}: {err}");
        }
    }

    #[test]
    fn a_type_error_names_the_full_key_without_echoing_the_value() {
        let err = parse("[dispatch]\nmax_retries = \"sk-live-123\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `dispatch.max_retries`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("sk-live-123"), "{err}");
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
        let s = Secret::from("sk-live-abc");
        let shown = format!("{s:?}");
        assert!(!shown.contains("sk-live"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
        assert_eq!(s.expose_secret(), "sk-live-abc");
    }
}
