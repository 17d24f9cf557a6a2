//! `switchboard dispatch status`: what the engine-wide controls say, read from the store.
//! A struct with named fields, so that more (engine alive, breaker, cap) are one field each.

use std::fmt;

use serde::Serialize;

use crate::config::Config;
use crate::store::control::EngineControl;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DispatchStatus {
    pub paused: bool,
    pub pause_reason: Option<String>,
    /// The create rate in force: the override if one is set, else the config's.
    pub rate_per_second: f64,
    /// Whether `rate_per_second` is a runtime override (`dispatch rate N`).
    pub rate_is_override: bool,
    /// `dispatch.rate_per_second` from the config.
    pub config_rate_per_second: f64,
}

impl DispatchStatus {
    pub fn new(control: &EngineControl, config: &Config) -> DispatchStatus {
        let config_rate = config.dispatch.rate_per_second;
        DispatchStatus {
            paused: control.dispatch_paused,
            pause_reason: control
                .dispatch_paused
                .then(|| control.pause_reason.clone())
                .flatten(),
            rate_per_second: control.rate_per_second.unwrap_or(config_rate),
            rate_is_override: control.rate_per_second.is_some(),
            config_rate_per_second: config_rate,
        }
    }
}

impl fmt::Display for DispatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.paused, &self.pause_reason) {
            (false, _) => writeln!(f, "dispatch: running")?,
            (true, Some(reason)) => writeln!(f, "dispatch: PAUSED ({reason})")?,
            (true, None) => writeln!(f, "dispatch: PAUSED")?,
        }
        if self.rate_is_override {
            writeln!(
                f,
                "rate:     {}/s (override; config {}/s, `dispatch rate --reset` to return)",
                self.rate_per_second, self.config_rate_per_second
            )
        } else {
            writeln!(f, "rate:     {}/s (config)", self.rate_per_second)
        }
    }
}
