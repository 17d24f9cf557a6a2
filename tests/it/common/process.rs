//! The real binary as a separate process: for tests that kill it, restart it, or run several.

use std::process::{Child, Command};

use switchboard::simulator::SimStats;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// `campaign create` arguments for dispatch tests: calls at any hour, no caps, no redials
/// (the compliance rules have tests of their own).
pub const ANY_HOUR: [&str; 8] = [
    "--window",
    "all",
    "--days",
    "all",
    "--caps",
    "off",
    "--redial-count",
    "0",
];

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `switchboard` run in `dir` with `key` as its Vapi key.
pub fn sb(dir: &std::path::Path, key: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("VAPI_API_KEY", key)
        .env("RUST_LOG", "warn")
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// Runs `cmd`, failing the test with its stderr unless it succeeds.
pub fn ok(cmd: &mut Command) {
    let out = cmd.output().expect("run switchboard");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The simulator's record, from its `/_sim/stats`.
pub async fn stats(base: &str) -> SimStats {
    switchboard::vapi::http::client()
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .expect("simulator stats")
        .json()
        .await
        .expect("stats JSON")
}
