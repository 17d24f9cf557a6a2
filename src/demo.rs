//! The demo: a fresh local database, the embedded simulator on a random loopback port with a
//! little fault injection, and a demo campaign imported from assets/, started at once. It is
//! what `cargo run --release` shows with no configuration.

use std::path::{Path, PathBuf};

use crate::config::{Config, Secret};
use crate::import::{ImportError, import_contacts};
use crate::simulator::{SimConfig, Simulator};
use crate::store::{Store, StoreError};
use crate::vapi::{VapiClient, VapiError};

/// The bundled demo contacts (300 rows).
pub const DEMO_CONTACTS: &str = include_str!("../assets/demo_contacts.csv");
pub const DEMO_CAMPAIGN: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the embedded simulator: {0}")]
    Simulator(std::io::Error),
    #[error("a demo is already running on {path} ({holder}): use its console, or stop it first")]
    Running { path: PathBuf, holder: String },
    #[error("cannot reset the demo database {path}: {source}")]
    Reset {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Vapi(#[from] VapiError),
}

pub struct Demo {
    pub config: Config,
    pub store: Store,
    pub vapi: VapiClient,
    pub simulator: Simulator,
}

/// The simulator's knobs in the demo: real-looking call lengths, a few faults of each kind.
pub fn demo_simulator_config() -> SimConfig {
    SimConfig {
        api_key: "demo-key".into(),
        fault_429: 0.03,
        fault_503: 0.02,
        fault_504: 0.01,
        fault_timeout: 0.02,
        hang_ms: 3_000,
        latency_ms: 30,
        queue_ms: 400,
        ring_ms: 1_500,
        talk_min_ms: 3_000,
        talk_max_ms: 15_000,
        concurrency_limit: 10,
        ..SimConfig::default()
    }
}

/// Builds the demo from scratch: `db_path` is deleted and recreated.
pub async fn prepare(db_path: &Path, contacts: Option<usize>) -> Result<Demo, DemoError> {
    // Never pull the database out from under a demo that is running here.
    if db_path.exists() {
        let existing = Store::open(db_path).await?;
        let holder = existing
            .lease_holder(crate::config::VapiConfig::default().lease_timeout_ms as i64)
            .await?;
        existing.close().await;
        if let Some(holder) = holder {
            return Err(DemoError::Running {
                path: db_path.to_path_buf(),
                holder: holder.name(),
            });
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db_path.display()));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(DemoError::Reset { path, source }),
        }
    }
    let sim_config = demo_simulator_config();
    let key = Secret::from(sim_config.api_key.clone());
    let simulator = Simulator::start(sim_config, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(DemoError::Simulator)?;
    let mut config = Config::default();
    config.database.path = db_path.to_path_buf();
    config.vapi.base_url = simulator.base_url();
    config.vapi.request_timeout_ms = 1_500;
    config.dispatch.rate_per_second = 3.0;
    config.dispatch.breaker_cooldown_ms = 10_000;
    config.tracking.poll_interval_ms = 1_000;
    config.tracking.poll_requests_per_second = 20.0;
    let store = Store::open(db_path).await?;
    let campaign = store
        .create_campaign(DEMO_CAMPAIGN, "asst-demo", "pn-demo")
        .await?;
    match contacts {
        None => {
            import_contacts(
                &store,
                campaign.id,
                DEMO_CONTACTS.as_bytes(),
                &Default::default(),
                |_| {},
            )
            .await?;
        }
        Some(n) => {
            let csv = generated_contacts(n);
            import_contacts(
                &store,
                campaign.id,
                csv.as_bytes(),
                &Default::default(),
                |_| {},
            )
            .await?;
        }
    }
    store.start_campaign(campaign.id).await?;
    let vapi = VapiClient::new(&config.vapi.base_url, key, config.request_timeout())?
        .with_monitor_key(config.public_key());
    Ok(Demo {
        config,
        store,
        vapi,
        simulator,
    })
}

/// A contacts CSV of `n` distinct numbers (+1 415 2xx xxxx), for demos and load tests.
pub fn generated_contacts(n: usize) -> String {
    let mut csv = String::with_capacity(32 * (n + 1));
    csv.push_str("name,phone\n");
    for i in 0..n {
        csv.push_str(&format!("Contact {i},+1415{:07}\n", 2_000_000 + i));
    }
    csv
}
