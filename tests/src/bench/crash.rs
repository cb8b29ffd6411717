//! Churn through a Redis crash (`rollcall-bench churn --kill-redis`, and
//! `tests/it/hardening/redis_crash.rs` at a small size): two `rollcall-node`
//! processes on one `redis-server` with an append-only file
//! ([`RedisProcess`]), watching pages on both (tabs of one user per node,
//! each a [`Watcher`] applying the page's rules), and subjects on both
//! nodes opening and closing their one tab continuously (no grace period:
//! every open and close is a transition). In the middle Redis is SIGKILLed
//! and, after `down`, started again from its file; the churn goes on
//! throughout (upgrades are refused while Redis is down, closes made then
//! are retried by the servers until it is back).
//!
//! It measures how long recovery takes, from the restarted Redis answering
//! to each node's `/readyz` saying ready and to the first event every
//! watcher has, and audits every watcher's events against the store's
//! transitions ([`Seen::audit`]): after the churn has stopped and settled,
//! each user's events since the watcher's last complete snapshot must be
//! every transition the store made, each once, in order, and each model
//! must equal the store's truth.
//!
//! What a SIGKILL of Redis can and cannot lose: Redis writes each command
//! to its append-only file before it replies, so the file of a killed
//! Redis holds every acknowledged change (see [`RedisProcess`]) — with
//! `appendfsync always`, unconditionally; with `everysec` unless a write
//! was postponed behind a slow fsync, in which case the log's counter goes
//! back and every node resynchronises its sockets with a reset snapshot
//! (the audit then counts from that snapshot, and `resets` says so). A
//! change whose reply the kill cut off may or may not have happened (an
//! upgrade then answered 503 may still have registered its connection, as
//! its event says; the lease ends such a registration). A machine crash,
//! which loses what was not fsynced, is the rewind of
//! `redis_crash.rs`'s other test.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rollcall::store::redis::RedisStore;
use tokio_util::sync::CancellationToken;

use crate::client::{Audit, Seen, Visitor, Watcher};
use crate::node_process::NodeProcess;
use crate::redis_process::RedisProcess;
use crate::redis_server::unique_prefix;
use crate::{all_users, unique_name};

/// The shape of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashOptions {
    /// Watching sockets per node (two nodes).
    pub watchers: usize,
    /// Users churning (half on each node).
    pub subjects: usize,
    /// How long the churn runs before the kill, and again after Redis is
    /// back.
    pub churn: Duration,
    /// How long Redis stays down.
    pub down: Duration,
    /// `appendfsync`: `"always"` or `"everysec"` (as deployed).
    pub fsync: &'static str,
}

/// What one run gave.
#[derive(Debug, Clone)]
pub struct CrashMeasurement {
    /// The run's shape.
    pub options: CrashOptions,
    /// Tabs the subjects opened (all along).
    pub opened: usize,
    /// Upgrades refused (while Redis was down, or as it went).
    pub refused: usize,
    /// Per node: from the restarted Redis answering to its `/readyz` 200.
    pub ready: Vec<Duration>,
    /// From the restarted Redis answering to the first event after it that
    /// every watcher has (`None`: no such event).
    pub first_event: Option<Duration>,
    /// From the restarted Redis answering to the first tab a subject
    /// opened after it.
    pub first_open: Option<Duration>,
    /// Reset snapshots the watchers got (0 unless the restarted Redis had
    /// lost acknowledged changes).
    pub resets: usize,
    /// Every watcher's audit, summed.
    pub audit: Audit,
    /// Watchers whose model ended at the store's truth.
    pub converged: usize,
    /// Watchers whose socket the server closed.
    pub closed: usize,
    /// Anything else that broke the page's rules, per watcher.
    pub problems: Vec<String>,
}

impl CrashMeasurement {
    /// Watchers in all (both nodes).
    pub fn watchers(&self) -> usize {
        self.options.watchers * 2
    }
}

/// Every user's transition number in the store (on a connection of its
/// own: the kill breaks any older one).
async fn seqs((url, prefix): (&str, &str)) -> HashMap<String, u64> {
    let store = RedisStore::connect(url, prefix).await.expect("connect");
    all_users(&store)
        .await
        .into_iter()
        .map(|u| (u.username.as_str().to_owned(), u.seq))
        .collect()
}

fn online(all: &HashMap<String, u64>) -> BTreeMap<String, u64> {
    all.iter()
        .filter(|(_, s)| *s % 2 == 1)
        .map(|(n, s)| (n.clone(), *s))
        .collect()
}

/// Polls `/readyz` of `base` until 200; how long that took (`wait` at most).
async fn ready_after(base: &str, wait: Duration) -> Duration {
    let started = Instant::now();
    let v = Visitor::new(base);
    while v.get("/readyz").await.status != 200 && started.elapsed() < wait {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Runs one measurement: `node_exe` (a `rollcall-node`) twice with
/// `settings` (plus the store, a fresh key prefix and no grace period).
pub async fn measure(
    node_exe: &Path,
    settings: &[(&str, &str)],
    options: CrashOptions,
) -> CrashMeasurement {
    let mut redis = RedisProcess::start_with(options.fsync).await;
    let prefix = unique_prefix();
    let url = redis.url();
    let mut all: Vec<(&str, &str)> = settings.to_vec();
    all.extend([
        ("ROLLCALL_STORE", url.as_str()),
        ("ROLLCALL_REDIS_PREFIX", prefix.as_str()),
        ("ROLLCALL_OFFLINE_GRACE_SECS", "0"),
    ]);
    let nodes = [
        NodeProcess::start(node_exe, &all).await,
        NodeProcess::start(node_exe, &all).await,
    ];
    let store = (url.as_str(), prefix.as_str());

    // One watching user per node, each with a first tab open before
    // anything is read, so the watchers' snapshots and `start` agree.
    let watching: Vec<Visitor> = join_all(nodes.iter().map(|n| async {
        let v = Visitor::new(&n.base);
        v.register(&unique_name("watch")).await;
        v
    }))
    .await;
    let subjects: Vec<Visitor> = join_all((0..options.subjects).map(|i| {
        let base = nodes[i % 2].base.clone();
        async move {
            let v = Visitor::new(&base);
            v.register(&unique_name("churn")).await;
            v
        }
    }))
    .await;
    let _anchors = join_all(watching.iter().map(Visitor::socket)).await;
    let quiet = Instant::now() + Duration::from_secs(10);
    while online(&seqs(store).await).len() < 2 && Instant::now() < quiet {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = seqs(store).await;
    let mut watchers = Vec::with_capacity(options.watchers * 2);
    for v in &watching {
        for _ in 0..options.watchers {
            watchers.push(Watcher::new(v.socket().await));
        }
    }
    let mut problems = Vec::new();
    for (i, w) in watchers.iter().enumerate() {
        let s = w.seen();
        if s.last_snapshot.1 != online(&start) {
            problems.push(format!(
                "watcher {i}: first snapshot {:?}, store {:?}",
                s.last_snapshot.1,
                online(&start)
            ));
        }
    }

    // The churn: each subject opens its tab, keeps it a moment, closes it,
    // waits a moment, again, until stopped.
    let stop = CancellationToken::new();
    let opens: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let refusals: Arc<Mutex<usize>> = Arc::default();
    let churn: Vec<_> = subjects
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let (stop, opens, refusals) = (stop.clone(), opens.clone(), refusals.clone());
            // 60–200 ms open, 60–170 ms closed, different per subject.
            let hold = Duration::from_millis(60 + (i as u64 * 37) % 140);
            let gap = Duration::from_millis(60 + (i as u64 * 53) % 110);
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    match v.try_socket().await {
                        Ok(tab) => {
                            opens.lock().expect("opens").push(Instant::now());
                            tokio::time::sleep(hold).await;
                            tab.close().await;
                        }
                        Err(_) => *refusals.lock().expect("refusals") += 1,
                    }
                    tokio::time::sleep(gap).await;
                }
            })
        })
        .collect();

    tokio::time::sleep(options.churn).await;
    redis.kill().await;
    tokio::time::sleep(options.down).await;
    redis.restart().await;
    let back = Instant::now();
    let ready = join_all(
        nodes
            .iter()
            .map(|n| ready_after(&n.base, Duration::from_secs(30))),
    )
    .await;
    tokio::time::sleep(options.churn.saturating_sub(back.elapsed())).await;
    stop.cancel();
    join_all(churn).await;

    // Settled: the store stops moving and every page shows it (or 20 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut end = seqs(store).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = seqs(store).await;
        let want = online(&now);
        let settled = now == end && watchers.iter().all(|w| w.seen().online() == want);
        end = now;
        if settled || Instant::now() > deadline {
            break;
        }
    }

    let seen: Vec<Seen> = watchers.iter().map(Watcher::seen).collect();
    let want = online(&end);
    let mut audit = Audit::default();
    for (i, s) in seen.iter().enumerate() {
        let a = s.audit(&start, &end);
        if !a.exact() {
            problems.push(format!("watcher {i}: {a:?}"));
        }
        audit = audit.plus(a);
        problems.extend(s.problems.iter().map(|p| format!("watcher {i}: {p}")));
    }
    let opens = opens.lock().expect("opens").clone();
    let refused = *refusals.lock().expect("refusals");
    CrashMeasurement {
        options,
        opened: opens.len(),
        refused,
        ready,
        first_event: first_event_everywhere(&seen, back),
        first_open: opens.iter().find(|t| **t >= back).map(|t| *t - back),
        resets: seen.iter().map(|s| s.resets).sum(),
        audit,
        converged: seen.iter().filter(|s| s.online() == want).count(),
        closed: seen.iter().filter(|s| s.closed.is_some()).count(),
        problems,
    }
}

/// From `back` to the first event received after it that every watcher
/// has: the earliest, over such events, of the last watcher's arrival.
fn first_event_everywhere(seen: &[Seen], back: Instant) -> Option<Duration> {
    let after = |s: &Seen| -> HashMap<(String, u64), Instant> {
        s.events
            .iter()
            .zip(&s.arrived)
            .filter(|(_, at)| **at >= back)
            .map(|((n, _, seq), at)| ((n.clone(), *seq), *at))
            .collect()
    };
    let maps: Vec<_> = seen.iter().map(after).collect();
    let first = maps.first()?;
    first
        .keys()
        .filter_map(|k| {
            maps.iter()
                .map(|m| m.get(k).copied())
                .collect::<Option<Vec<Instant>>>()
                .and_then(|v| v.into_iter().max())
        })
        .min()
        .map(|t| t - back)
}

/// The report: a Markdown table, one row per run.
pub fn table(rows: &[CrashMeasurement]) -> String {
    let ms = |d: Option<Duration>| {
        d.map_or_else(|| "n/a".into(), |d| format!("{:.0}", d.as_secs_f64() * 1e3))
    };
    let mut out = String::from(
        "| fsync | watchers | subjects | Redis down ms | tabs opened | refused | nodes ready ms | first event to all ms | first tab ms | events checked | lost | duplicated | out of order | resets | pages at the truth |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in rows {
        let ready = m
            .ready
            .iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |\n",
            m.options.fsync,
            m.watchers(),
            m.options.subjects,
            m.options.down.as_millis(),
            m.opened,
            m.refused,
            ready,
            ms(m.first_event),
            ms(m.first_open),
            m.audit.received,
            m.audit.lost,
            m.audit.duplicates,
            m.audit.out_of_order,
            m.resets,
            m.converged,
            m.watchers(),
        ));
    }
    out
}
