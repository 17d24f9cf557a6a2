//! Command-line interface: argument definitions (clap) and the subcommands that act on the
//! store directly. Every subcommand is a client of the library; nothing here is engine logic.

pub mod args;
pub mod commands;
pub mod headless;
pub mod status;

pub use args::{Cli, Commands};

/// An error a user caused (unknown campaign, missing key, unreadable file...): printed as one
/// line, exit code 1, nothing changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Longest message the CLI prints from data it was given (a CSV header, a row's field).
pub const MAX_PRINTED: usize = 200;

/// `text` on one line, cut to `max` characters with an ellipsis: a 10 MB header line must
/// not become a 10 MB error.
pub fn bounded(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            return out;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_with_an_ellipsis_and_kept_on_one_line() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("abcdef", 3), "abc…");
        assert_eq!(bounded("a\nb", 10), "a b");
        let huge = "x".repeat(10_000_000);
        assert_eq!(bounded(&huge, MAX_PRINTED).chars().count(), MAX_PRINTED + 1);
    }
}
