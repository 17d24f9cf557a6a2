//! switchboard: an operations console and dispatcher for outbound AI-voice call campaigns
//! on Vapi. This crate is the binary's wiring: the command line (`cli`) and the demo. The
//! layers live in their own crates (see ARCHITECTURE.md) and are re-exported here under
//! their old paths for the binary, the integration tests and the benchmark.

pub mod cli;
pub mod demo;

pub use switchboard_console as console;
pub use switchboard_engine::{bulk, check, dispatch, export, import, listen, ops, shutdown};
pub use switchboard_model as model;
pub use switchboard_model::{config, policy};
pub use switchboard_sim as simulator;
pub use switchboard_store as store;
pub use switchboard_vapi as vapi;
