//! A throw-away PostgreSQL server for the tests: `initdb` into a temporary directory, `pg_ctl`
//! on a free loopback port, stopped and removed on drop. Missing server binaries skip the
//! test with a `SKIPPED:` line, unless `CI` is set (then they are an error: CI installs the
//! Debian `postgresql` package). `initdb` refuses to run as root: as root the server runs as
//! the `postgres` user (or `nobody`), which is given the directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub struct PgServer {
    dir: TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    pub port: u16,
}

/// Where the server binaries are: the newest /usr/lib/postgresql/*/bin (Debian), else the
/// directory on PATH holding `initdb` and `pg_ctl`.
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if let Some(bin) = found.pop() {
        return Some(bin);
    }
    let path = std::env::var("PATH").ok()?;
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

impl PgServer {
    /// Starts a server, or `None` (after printing `SKIPPED: …`) when the binaries are missing
    /// and `CI` is not set.
    pub fn start(test: &str) -> Option<PgServer> {
        PgServer::start_with(test, false)
    }

    /// `durable`: fsync and synchronous commit on (for the benchmark's figures); the tests
    /// run without them.
    pub fn start_with(test: &str, durable: bool) -> Option<PgServer> {
        let Some(bin) = server_bin() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "no PostgreSQL server binaries (initdb, pg_ctl) but CI is set: install the `postgresql` package"
                );
            }
            println!("SKIPPED: no PostgreSQL server binaries (initdb, pg_ctl): {test}");
            eprintln!("SKIPPED: no PostgreSQL server binaries (initdb, pg_ctl): {test}");
            return None;
        };
        let run_as = if is_root() {
            ["postgres", "nobody"]
                .into_iter()
                .find(|u| user_exists(u))
                .map(str::to_string)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("sb-pg-")
            .tempdir()
            .expect("temp dir");
        if let Some(user) = &run_as {
            let ok = Command::new("chown")
                .arg("-R")
                .arg(user)
                .arg(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "cannot give {} to {user}", dir.path().display());
        }
        let server = PgServer {
            dir,
            bin,
            run_as,
            port: 0,
        };
        let data = server.dir.path().join("data");
        server.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // A free loopback port; a clash (another test took it meanwhile) is retried.
        let mut server = server;
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200{}",
                server.dir.path().display(),
                if durable {
                    ""
                } else {
                    " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                }
            );
            let log = server.dir.path().join("log");
            if server.try_run(
                "pg_ctl",
                &[
                    "-D",
                    &data.to_string_lossy(),
                    "-o",
                    &opts,
                    "-l",
                    &log.to_string_lossy(),
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            ) {
                server.port = port;
                return Some(server);
            }
        }
        let log = std::fs::read_to_string(server.dir.path().join("log")).unwrap_or_default();
        panic!("PostgreSQL did not start:\n{log}");
    }

    /// The URL of a fresh database `name` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database and returns its URL.
    pub fn create_db(&self, db: &str) -> String {
        let ok = self.try_run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                db,
            ],
        );
        assert!(ok, "createdb {db} failed");
        self.url(db)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe).args(args);
                c
            }
            None => {
                let mut c = Command::new(exe);
                c.args(args);
                c
            }
        }
    }

    fn try_run(&self, tool: &str, args: &[&str]) -> bool {
        self.command(tool, args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .current_dir(self.dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool, args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self.try_run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
