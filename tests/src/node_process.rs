//! [`NodeProcess`]: a real `rollcall-node` server process (the local
//! server's own `main`) on a free loopback port, killed when dropped.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `rollcall-node` process.
pub struct NodeProcess {
    /// The process (tests wait on it after a signal).
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl NodeProcess {
    /// Starts `exe` (a `rollcall-node` binary) with `settings` on
    /// `127.0.0.1:0` and waits for the URL it prints first.
    pub async fn start(exe: &Path, settings: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(exe);
        cmd.env("ROLLCALL_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server starts")
            .expect("read")
            .expect("a line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        let base = format!("http://{addr}");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, base }
    }

    /// `ws://127.0.0.1:PORT/users/`.
    pub fn ws_url(&self) -> String {
        format!("{}/users/", self.base.replacen("http", "ws", 1))
    }

    /// Sends a signal (`"-TERM"`, `"-KILL"`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// The process's resident set size in KiB (`VmRSS`, Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}
