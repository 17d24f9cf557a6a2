//! Command-line interface: argument definitions (clap) and the subcommands that act on the
//! store directly. Every subcommand is a client of the library; nothing here is engine logic.

pub mod args;
pub mod bulk;
pub mod commands;
pub mod headless;
pub mod live;
pub mod status;

pub use args::{Cli, Commands};

/// An error a user caused (unknown campaign, missing key, unreadable file...): printed as one
/// line, exit code 1, nothing changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Longest message the CLI prints from data it was given (a CSV header, a row's field).
pub const MAX_PRINTED: usize = 200;

pub use crate::model::text::bounded;
