//! [`spawn_app`]: a real rollcall server, in this process, on a free port.

use std::net::SocketAddr;
use std::time::Duration;

use rollcall::config::Config;
use rollcall_local_server::node::{Backend, Node};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::redis_server::{redis_url, unique_prefix};

/// Timings short enough for tests: pings every 200 ms (the page's every
/// 500 ms), a silent socket is reaped after 1 s, leases last 1.5 s, the
/// sweep runs every 250 ms, and a last socket closing announces its user
/// offline at once (no grace period; the grace tests set their own).
/// Log-in, sign-up, socket upgrade and socket ticket rate limits are off (tests about them
/// set their own); the cap on sockets per user and the message rate keep
/// their defaults, which the page and the test clients must live with.
pub const FAST: &[(&str, &str)] = &[
    ("ROLLCALL_OFFLINE_GRACE_SECS", "0"),
    ("ROLLCALL_WS_PING_SECS", "0.2"),
    ("ROLLCALL_CLIENT_PING_SECS", "0.5"),
    ("ROLLCALL_WS_IDLE_TIMEOUT_SECS", "1"),
    ("ROLLCALL_LEASE_SECS", "1.5"),
    ("ROLLCALL_SWEEP_SECS", "0.25"),
    ("ROLLCALL_HASH_CONCURRENCY", "8"),
    ("ROLLCALL_LOGIN_RATE_PER_ADDR", "off"),
    ("ROLLCALL_LOGIN_FAILURES_PER_USER", "off"),
    ("ROLLCALL_SIGNUP_RATE_PER_ADDR", "off"),
    ("ROLLCALL_SIGNUP_RATE_PER_USER", "off"),
    ("ROLLCALL_WS_UPGRADES_PER_SESSION", "off"),
    ("ROLLCALL_WS_UPGRADES_PER_ADDR", "off"),
    ("ROLLCALL_WS_TICKETS_PER_SESSION", "off"),
    ("ROLLCALL_WS_TICKETS_PER_ADDR", "off"),
];

/// A config from `FAST` plus `extra` (later pairs win).
pub fn config(extra: &[(&str, &str)]) -> Config {
    let pairs: Vec<(String, String)> = FAST
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(move |k| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    })
    .expect("test config is valid")
}

/// A running server.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its context (store, config), for assertions.
    pub ctx: rollcall::AppContext,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// `ws://127.0.0.1:PORT/users/`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/users/", self.addr)
    }

    /// Graceful shutdown (closes sockets, announces their users offline).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A server on a fresh Redis key prefix of the shared test Redis.
pub async fn spawn_app() -> TestApp {
    spawn_with(
        &Backend::Redis {
            url: redis_url().to_owned(),
        },
        &[("ROLLCALL_REDIS_PREFIX", &unique_prefix())],
    )
    .await
}

/// A server on `backend` with `FAST` timings plus `extra` settings.
pub async fn spawn_with(backend: &Backend, extra: &[(&str, &str)]) -> TestApp {
    crate::init_tracing();
    let node = Node::start(config(extra), backend)
        .await
        .expect("node starts");
    let ctx = node.ctx.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(rollcall_local_server::app::serve(
        listener,
        node,
        async move {
            let _ = rx.await;
        },
    ));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        ctx,
        stop: Some(tx),
        task: Some(task),
    }
}
