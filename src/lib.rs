//! switchboard: an operations console and dispatcher for outbound AI-voice call campaigns
//! on Vapi. The engine (`dispatch`, `store`, `vapi`) knows nothing of the console; the
//! console, headless mode and the CLI are all clients of its snapshot and command interface.

pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod dispatch;
pub mod export;
pub mod import;
pub mod model;
pub mod ops;
pub mod policy;
pub mod shutdown;
pub mod simulator;
pub mod store;
pub mod vapi;
