//! [`RedisProcess`]: a `redis-server` of the test's own, with its
//! append-only file in a directory of its own, that the test can SIGKILL
//! and start again on the same port from the same directory (or from an
//! older copy of its file).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A `redis-server` child on a fixed loopback port with an append-only
/// file (`appendfsync` as asked: `everysec` as deployed, or `always`).
///
/// A SIGKILL loses only what Redis had not yet written to the file: Redis
/// writes the AOF buffer before it sends the replies, and a killed process's
/// writes stay in the kernel's page cache, so with either policy the file
/// holds every acknowledged write (`everysec` loses up to a second only when
/// the machine itself goes down, or when Redis postponed a write behind a
/// slow fsync — tests wait a second and a half before killing to be clear of
/// that). Losing acknowledged writes is simulated with
/// [`RedisProcess::copy_files`] and [`RedisProcess::restore_copy`].
pub struct RedisProcess {
    port: u16,
    dir: PathBuf,
    fsync: &'static str,
    child: Option<Child>,
}

impl RedisProcess {
    /// Starts one on a free port, its data in a fresh directory,
    /// `appendfsync everysec`.
    pub async fn start() -> Self {
        Self::start_with("everysec").await
    }

    /// [`RedisProcess::start`] with `appendfsync` set to `fsync`
    /// (`"always"`, `"everysec"`).
    pub async fn start_with(fsync: &'static str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(crate::unique_name("rollcall-aof-"));
        std::fs::create_dir_all(&dir).expect("data dir");
        let mut r = Self {
            port,
            dir,
            fsync,
            child: None,
        };
        r.spawn().await;
        r
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Where its append-only files are.
    pub fn aof_dir(&self) -> PathBuf {
        self.dir.join("appendonlydir")
    }

    /// SIGKILL: no chance to write anything out.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("SIGKILL redis-server");
        }
    }

    /// Starts it again on the same port and directory and waits until it
    /// answers (its file loaded).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn().await;
    }

    /// Copies the append-only files aside (to restore an older state later
    /// with [`RedisProcess::restore_copy`]). Safe while it runs: the files
    /// hold every acknowledged write (see the type's docs), and a command
    /// cut short at the end of the copy is dropped on loading
    /// (`aof-load-truncated`, on by default).
    pub fn copy_files(&self) {
        let to = self.dir.join("aof-copy");
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(&self.aof_dir(), &to);
    }

    /// Whether the server process is running (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Replaces the append-only files with the copy (it must be stopped):
    /// as if the writes since the copy had never reached the disk.
    pub fn restore_copy(&self) {
        assert!(self.child.is_none(), "kill it first");
        std::fs::remove_dir_all(self.aof_dir()).expect("remove the files");
        copy_dir(&self.dir.join("aof-copy"), &self.aof_dir());
    }

    async fn spawn(&mut self) {
        let mut std_cmd = std::process::Command::new("redis-server");
        std_cmd
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
            ])
            .args(["--loglevel", "warning", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        rollcall_local_server::process::die_with_parent(&mut std_cmd);
        let mut cmd = Command::from(std_cmd);
        cmd.kill_on_drop(true);
        self.child = Some(cmd.spawn().expect("spawn redis-server"));
        wait_ready(&self.url()).await;
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

async fn wait_ready(url: &str) {
    let client = redis::Client::open(url).expect("url");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = async {
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        match tokio::time::timeout(Duration::from_secs(1), attempt).await {
            Ok(Ok(_)) => return,
            _ if Instant::now() > deadline => panic!("redis-server at {url} does not answer"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
