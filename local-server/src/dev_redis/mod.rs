//! A private Redis for development and tests, started with no setup:
//! through testcontainers when a Docker engine is reachable, otherwise as a
//! `redis-server` child process on a free loopback port.
//!
//! The child is killed when the [`DevRedis`] is dropped and, on Linux, also
//! when the thread that watches it ends with the process (`PR_SET_PDEATHSIG`),
//! so an interrupted run leaves no stray server behind.
//!
//! Started with a data directory ([`DevRedis::start_in`], what the program
//! does), Redis keeps an append-only file there (`--appendonly yes
//! --appendfsync everysec`: at most a second of writes lost on a crash), so
//! accounts survive a restart; the container gets the directory
//! bind-mounted. A lock file keeps two servers off one directory. Without
//! one (tests), nothing is kept.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testcontainers_modules::redis::{REDIS_PORT, Redis};
use testcontainers_modules::testcontainers::core::Mount;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt as _};

mod data;

pub use data::default_data_dir;
use data::{DataLock, redis_args};

/// Where the data directory is mounted in the container.
const CONTAINER_DATA: &str = "/data";

/// A running private Redis; stops when dropped.
pub struct DevRedis {
    url: String,
    how: How,
    // Dropped after the server (fields drop in order): the directory stays
    // locked until Redis has stopped writing to it.
    _guard: Guard,
    _lock: Option<DataLock>,
}

/// How the Redis was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A container through testcontainers.
    Container,
    /// A `redis-server` child process.
    Process,
}

/// Held only so that dropping it stops the server.
#[allow(dead_code)]
enum Guard {
    Container(Box<ContainerAsync<Redis>>),
    Process(ChildGuard),
}

/// Starting a private Redis failed.
#[derive(Debug, thiserror::Error)]
pub enum DevRedisError {
    /// Neither Docker nor `redis-server` could be used.
    #[error(
        "no Docker engine is reachable and `redis-server` could not be started ({0}). \
         Install it (Debian/Ubuntu: apt-get install -y redis-server), point ROLLCALL_STORE \
         at a Redis (redis://host:port), or use ROLLCALL_STORE=memory"
    )]
    NoRedis(String),
    /// testcontainers failed.
    #[error("testcontainers could not start Redis: {0}")]
    Container(String),
    /// The data directory cannot be created or is in use.
    #[error("data directory {dir} (ROLLCALL_DATA_DIR): {message}")]
    DataDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl DevRedis {
    /// Starts one that keeps nothing: a container if Docker is reachable,
    /// else a child process.
    pub async fn start() -> Result<Self, DevRedisError> {
        Self::start_with(None).await
    }

    /// Starts one keeping its data (an append-only file) in `dir`, created
    /// if missing: a container if Docker is reachable, else a child process.
    pub async fn start_in(dir: &Path) -> Result<Self, DevRedisError> {
        Self::start_with(Some(dir)).await
    }

    async fn start_with(dir: Option<&Path>) -> Result<Self, DevRedisError> {
        if docker_configured() {
            match Self::start_container_with(dir).await {
                Ok(r) => return Ok(r),
                Err(e @ DevRedisError::DataDir { .. }) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "falling back to a redis-server process"),
            }
        }
        Self::start_process_with(dir).await
    }

    /// Starts `redis` through testcontainers, keeping nothing.
    pub async fn start_container() -> Result<Self, DevRedisError> {
        Self::start_container_with(None).await
    }

    /// Starts `redis` through testcontainers with `dir` bind-mounted as its
    /// data directory (`None`: keeps nothing).
    pub async fn start_container_with(dir: Option<&Path>) -> Result<Self, DevRedisError> {
        let lock = dir.map(DataLock::take).transpose()?;
        // Inside the container Redis must listen beyond its loopback (the
        // engine publishes the port on the host's loopback only).
        let cmd = |data: Option<&Path>| {
            let mut args = redis_args(data);
            if data.is_none()
                && let Some(dir) = args.last_mut()
            {
                // The host's temporary directory means nothing in there.
                "/tmp".clone_into(dir);
            }
            args.extend(["--bind", "0.0.0.0", "--protected-mode", "no"].map(String::from));
            args
        };
        let request = match &lock {
            None => Redis::default().with_cmd(cmd(None)),
            Some(lock) => Redis::default()
                .with_mount(Mount::bind_mount(
                    lock.redis_dir.to_string_lossy().into_owned(),
                    CONTAINER_DATA,
                ))
                .with_cmd(cmd(Some(Path::new(CONTAINER_DATA)))),
        };
        let container = request
            .start()
            .await
            .map_err(|e| DevRedisError::Container(e.to_string()))?;
        let host = container
            .get_host()
            .await
            .map_err(|e| DevRedisError::Container(e.to_string()))?;
        let port = container
            .get_host_port_ipv4(REDIS_PORT)
            .await
            .map_err(|e| DevRedisError::Container(e.to_string()))?;
        // testcontainers names the engine's host ("localhost", or the
        // bridge gateway when it believes it runs inside a container); an
        // engine publishing on loopback only (`dockerd --ip 127.0.0.1`) is
        // reached at 127.0.0.1. Try what it says first, then loopback.
        let reported = match host.to_string().as_str() {
            "localhost" => "127.0.0.1".to_owned(),
            other => other.to_owned(),
        };
        let mut candidates = vec![(reported, Duration::from_secs(1))];
        if candidates[0].0 == "127.0.0.1" {
            candidates[0].1 = Duration::from_secs(15);
        } else {
            candidates.push(("127.0.0.1".to_owned(), Duration::from_secs(15)));
        }
        let mut errors = Vec::new();
        let mut ready = None;
        for (host, wait) in candidates {
            let url = format!("redis://{host}:{port}");
            match wait_ready(&url, wait).await {
                Ok(()) => {
                    ready = Some(url);
                    break;
                }
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        let url = ready.ok_or_else(|| DevRedisError::Container(errors.join("; ")))?;
        Ok(Self {
            url,
            how: How::Container,
            _guard: Guard::Container(Box::new(container)),
            _lock: lock,
        })
    }

    /// Starts `redis-server` from `PATH` on a free loopback port, keeping
    /// nothing.
    pub async fn start_process() -> Result<Self, DevRedisError> {
        Self::start_process_with(None).await
    }

    /// Starts `redis-server` from `PATH` on a free loopback port, keeping
    /// its append-only file in `dir` (`None`: keeps nothing).
    pub async fn start_process_with(dir: Option<&Path>) -> Result<Self, DevRedisError> {
        let lock = dir.map(DataLock::take).transpose()?;
        let data = lock.as_ref().map(|l| l.redis_dir.as_path());
        let mut last = String::new();
        // A port found free can be taken before Redis binds it: retry.
        for _ in 0..3 {
            let port = free_port().map_err(|e| DevRedisError::NoRedis(e.to_string()))?;
            let child =
                ChildGuard::spawn(port, data).map_err(|e| DevRedisError::NoRedis(e.to_string()))?;
            let url = format!("redis://127.0.0.1:{port}");
            // Loading a long append-only file takes a while.
            match wait_ready(&url, Duration::from_secs(60)).await {
                Ok(()) => {
                    return Ok(Self {
                        url,
                        how: How::Process,
                        _guard: Guard::Process(child),
                        _lock: lock,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(DevRedisError::NoRedis(last))
    }

    /// `redis://host:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Container or process.
    pub fn how(&self) -> How {
        self.how
    }
}

/// Whether a Docker engine is configured: `DOCKER_HOST` or the default socket.
pub fn docker_configured() -> bool {
    std::env::var_os("DOCKER_HOST").is_some()
        || std::path::Path::new("/var/run/docker.sock").exists()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_ready(url: &str, wait: Duration) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + wait;
    loop {
        let attempt = async {
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if Instant::now() > deadline => return Err(e.to_string()),
            Err(_) if Instant::now() > deadline => return Err("timed out".into()),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A `redis-server` child, watched by a thread of its own.
struct ChildGuard {
    child: Arc<Mutex<Child>>,
}

impl ChildGuard {
    fn spawn(port: u16, data: Option<&Path>) -> std::io::Result<Self> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--protected-mode", "yes", "--loglevel", "warning"])
            .args(redis_args(data).iter().skip(1))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        crate::process::die_with_parent(&mut cmd);
        let child = Arc::new(Mutex::new(cmd.spawn()?));
        // The watcher thread lives exactly as long as the child: PDEATHSIG
        // fires when the *thread* that forked ends, so it must not be a
        // pooled thread that could retire early.
        let watched = child.clone();
        std::thread::Builder::new()
            .name("redis-watch".into())
            .spawn(move || {
                loop {
                    let done = watched
                        .lock()
                        .map(|mut c| !matches!(c.try_wait(), Ok(None)))
                        .unwrap_or(true);
                    if done {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })?;
        Ok(Self { child })
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            // A clean stop: Redis writes out its append-only file.
            crate::process::terminate(&mut c, Duration::from_secs(5));
        }
    }
}
