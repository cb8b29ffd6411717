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
    /// Warning and error lines it has logged so far (they are also copied
    /// to this process's stderr).
    pub problems: std::sync::Arc<std::sync::atomic::AtomicUsize>,
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
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
        let problems = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stderr = child.stderr.take().expect("stderr");
        let counted = problems.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("WARN") || line.contains("ERROR") {
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                eprintln!("{line}");
            }
        });
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
        Self {
            child,
            base,
            problems,
        }
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

    /// CPU time the process has used so far, user + system (Linux).
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time_of(&self.child.id()?.to_string())
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

/// CPU time (user + system, all threads) of `pid` (`"self"` for this
/// process), from `/proc/PID/stat`.
pub fn cpu_time_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 12th and 13th (fields 14 and 15 of proc(5)).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second() as f64,
    ))
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on Linux if that fails).
fn clock_ticks_per_second() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|hz| *hz > 0)
            .unwrap_or(100)
    })
}
