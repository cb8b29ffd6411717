//! The benchmarks behind the README's figures (`bash scripts/bench.sh`,
//! which runs the `rollcall-bench` binary): `fanout` (this module), `users`
//! ([`users`]: cost against the number of registered users), `churn`
//! ([`churn`]: blips within the offline grace period; with `--kill-redis`,
//! [`crash`]: churn through a Redis SIGKILL and restart, its recovery time
//! and events lost) and `cloud` ([`cloud`]: the Lambda handlers behind the
//! API Gateway stand-in).
//!
//! The fan-out bench: for each scenario and each size N it starts real `rollcall-node`
//! processes (release builds of the local server's own `main`), opens N
//! observer sockets on node 1 (tabs of one signed-in user), and measures:
//!
//! * **idle memory**: node 1's RSS growth per open socket;
//! * **fan-out**: a second user's tab opens and closes, `rounds` times (on
//!   node 1, or on node 2 so the event crosses Redis pub/sub); for each of
//!   those events, the time from the cause (the upgrade request, the close
//!   frame) until the first and the last of the N observers has the frame;
//! * **CPU per frame**: node 1's CPU time (user + system, from `/proc`)
//!   during the rounds, and this process's, divided by the frames delivered.
//!
//! The observers run in this process on the same cores as the server, so the
//! latencies include the clients' own work; on loopback the kernel also
//! charges much of the receiving side's TCP work to the sender.

pub mod churn;
mod cli;
pub mod cloud;
pub mod crash;
mod observers;
pub mod users;

use std::path::Path;
use std::time::Duration;

use crate::client::{Socket, Visitor};
use crate::node_process::{NodeProcess, cpu_time_of};
use crate::redis_server::{redis_url, unique_prefix};
use crate::unique_name;
pub use cli::run;
pub use observers::{Arrival, Observers};

/// The bench's clients all come from one address and its observers are
/// thousands of tabs of one user: the log-in, sign-up and socket limits
/// would stop them, so its nodes run without.
pub const NO_RATE_LIMITS: [(&str, &str); 10] = [
    ("ROLLCALL_LOGIN_RATE_PER_ADDR", "off"),
    ("ROLLCALL_LOGIN_FAILURES_PER_USER", "off"),
    ("ROLLCALL_SIGNUP_RATE_PER_ADDR", "off"),
    ("ROLLCALL_SIGNUP_RATE_PER_USER", "off"),
    ("ROLLCALL_WS_UPGRADES_PER_SESSION", "off"),
    ("ROLLCALL_WS_UPGRADES_PER_ADDR", "off"),
    ("ROLLCALL_WS_TICKETS_PER_SESSION", "off"),
    ("ROLLCALL_WS_TICKETS_PER_ADDR", "off"),
    ("ROLLCALL_WS_MAX_PER_USER", "off"),
    ("ROLLCALL_WS_MESSAGE_RATE", "off"),
];

/// How long one event may take to reach every observer before the bench
/// gives up.
const EVENT_DEADLINE: Duration = Duration::from_secs(30);

/// Where the nodes keep their state and where the event is caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// One node, in-memory store.
    Memory,
    /// One node on Redis (the event goes through PUBLISH and back).
    Redis,
    /// Two nodes on one Redis; the event is caused on the other node.
    RedisTwoNodes,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 3] = [Self::Memory, Self::Redis, Self::RedisTwoNodes];

    /// Its name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::RedisTwoNodes => "redis-2-nodes",
        }
    }

    /// Parses [`Scenario::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// One scenario at one size.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Which scenario.
    pub scenario: Scenario,
    /// Observer sockets.
    pub observers: usize,
    /// Node 1's RSS growth per open socket, in bytes (`None` without `/proc`).
    pub bytes_per_socket: Option<u64>,
    /// One arrival per event (two per round: online, then offline).
    pub arrivals: Vec<Arrival>,
    /// CPU time node 1 spent per frame delivered during the rounds.
    pub server_cpu_per_frame: Option<Duration>,
    /// CPU time this process (the observers and the mover) spent per frame.
    pub bench_cpu_per_frame: Option<Duration>,
}

impl Measurement {
    /// The `q` quantile (0..=1) of the time until the last observer had it.
    pub fn last(&self, q: f64) -> Duration {
        quantile(self.arrivals.iter().map(|a| a.last).collect(), q)
    }

    /// The `q` quantile of the time until the first observer had it.
    pub fn first(&self, q: f64) -> Duration {
        quantile(self.arrivals.iter().map(|a| a.first).collect(), q)
    }
}

fn quantile(mut v: Vec<Duration>, q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    // Nearest rank; the index is small and non-negative.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Measures `scenario` with `observers` sockets and `rounds` open/close
/// rounds, running `node_exe` (a `rollcall-node` binary) as the server.
pub async fn measure(
    node_exe: &Path,
    scenario: Scenario,
    observers: usize,
    rounds: usize,
) -> Measurement {
    let prefix = unique_prefix();
    let store = match scenario {
        Scenario::Memory => "memory",
        Scenario::Redis | Scenario::RedisTwoNodes => redis_url(),
    };
    let mut settings = vec![
        ("ROLLCALL_STORE", store),
        ("ROLLCALL_REDIS_PREFIX", prefix.as_str()),
        // The offline is timed from the close: no grace period here.
        ("ROLLCALL_OFFLINE_GRACE_SECS", "0"),
    ];
    settings.extend(NO_RATE_LIMITS);
    let node1 = NodeProcess::start(node_exe, &settings).await;
    let node2 = match scenario {
        Scenario::RedisTwoNodes => Some(NodeProcess::start(node_exe, &settings).await),
        _ => None,
    };
    let cause_node = node2.as_ref().unwrap_or(&node1);

    let watcher = Visitor::new(&node1.base);
    watcher.register(&unique_name("watcher")).await;
    let mover = Visitor::new(&cause_node.base);
    mover.register(&unique_name("mover")).await;
    // The mover's tab, opening when awaited (futures are lazy, so the
    // clock can start between building and awaiting it).
    let cause = || {
        let cookie = mover.cookie_header();
        let (url, origin) = (cause_node.ws_url(), cause_node.base.clone());
        async move {
            Socket::connect(&url, Some(&cookie), Some(&origin))
                .await
                .expect("the mover's socket opens")
        }
    };
    // Warm up: one round with a single observer.
    let one = Observers::open(&node1.ws_url(), &watcher.cookie_header(), &node1.base, 1).await;
    one_round(&one, cause()).await;
    drop(one);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = node1.rss_kib();
    let sockets = Observers::open(
        &node1.ws_url(),
        &watcher.cookie_header(),
        &node1.base,
        observers,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = node1.rss_kib();
    let bytes_per_socket = before
        .zip(after)
        .map(|(b, a)| a.saturating_sub(b) * 1024 / observers.max(1) as u64);

    let mut arrivals = Vec::with_capacity(rounds * 2);
    let cpu = || (node1.cpu_time(), cpu_time_of("self"));
    let (server_before, bench_before) = cpu();
    for _ in 0..rounds {
        arrivals.extend(one_round(&sockets, cause()).await);
    }
    let (server_after, bench_after) = cpu();
    assert_eq!(sockets.wrong(), 0, "observers got frames they should not");
    let frames = u32::try_from(arrivals.len() * observers).unwrap_or(u32::MAX);
    let per_frame = |b: Option<Duration>, a: Option<Duration>| {
        b.zip(a).map(|(b, a)| a.saturating_sub(b) / frames.max(1))
    };
    let server_cpu_per_frame = per_frame(server_before, server_after);
    let bench_cpu_per_frame = per_frame(bench_before, bench_after);
    Measurement {
        scenario,
        observers,
        bytes_per_socket,
        arrivals,
        server_cpu_per_frame,
        bench_cpu_per_frame,
    }
}

/// The mover's tab opens (`open`), then closes; returns both events'
/// arrivals.
async fn one_round(sockets: &Observers, open: impl Future<Output = Socket>) -> [Arrival; 2] {
    sockets.expect(true);
    let t = sockets.now();
    let tab = open.await;
    let online = sockets
        .arrival(t, EVENT_DEADLINE)
        .await
        .expect("every observer sees the mover come online");
    sockets.expect(false);
    let t = sockets.now();
    tab.close().await;
    let offline = sockets
        .arrival(t, EVENT_DEADLINE)
        .await
        .expect("every observer sees the mover go offline");
    [online, offline]
}

/// The report: a Markdown table, one row per measurement.
pub fn table(rows: &[Measurement]) -> String {
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
    let mut out = String::from(
        "| scenario | observers | events | to last, median ms | to last, p90 ms | to last, p99 ms | to last, max ms | to first, median ms | server CPU µs/frame | bench CPU µs/frame | idle KiB/socket |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in rows {
        let kib = m
            .bytes_per_socket
            .map_or_else(|| "n/a".into(), |b| format!("{:.1}", b as f64 / 1024.0));
        let us = |d: Option<Duration>| {
            d.map_or_else(|| "n/a".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e6))
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.scenario.name(),
            m.observers,
            m.arrivals.len(),
            ms(m.last(0.5)),
            ms(m.last(0.9)),
            ms(m.last(0.99)),
            ms(m.last(1.0)),
            ms(m.first(0.5)),
            us(m.server_cpu_per_frame),
            us(m.bench_cpu_per_frame),
            kib,
        ));
    }
    out
}
