//! The integration tests, one binary (a change links once). Each module is one suite, run
//! alone with a filter: `cargo test --test it -- never_twice::`.

mod common;

mod bad_input;
mod bulk;
mod cli;
mod console_tmux;
mod core_story;
mod crash;
mod dispatcher;
mod engines_pg;
mod export;
mod filter;
mod follow_up;
mod import;
mod launch;
mod live;
mod never_twice;
mod nothing_lost;
mod number_health;
mod policy;
mod webhook;
