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
    /// `host:pid` of the engine dispatching from this database, if one is alive.
    pub engine: Option<String>,
    /// What that engine published with its last heartbeat (breaker, cap, rates).
    pub engine_status: Option<crate::dispatch::EngineStatus>,
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
            engine: None,
            engine_status: None,
        }
    }

    /// Adds the live engine, if one holds the database's lease.
    pub fn with_engine(mut self, live: Option<(crate::store::lease::LeaseHolder, String)>) -> Self {
        if let Some((holder, status)) = live {
            self.engine = Some(holder.name());
            self.engine_status = serde_json::from_str(&status).ok();
        }
        self
    }
}

impl fmt::Display for DispatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.engine, &self.engine_status) {
            (Some(engine), Some(s)) => writeln!(
                f,
                "engine:   {engine} · breaker {} · cap {} · creating {} · active {} · requests {:.1}/s learnt of {:.1}/s · {} 429s",
                s.breaker,
                s.concurrency_cap,
                s.creating,
                s.active,
                s.learnt_requests_per_second,
                s.max_requests_per_second,
                s.rate_limited
            )?,
            (Some(engine), None) => writeln!(f, "engine:   {engine}")?,
            (None, _) => writeln!(f, "engine:   none running on this database")?,
        }
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
