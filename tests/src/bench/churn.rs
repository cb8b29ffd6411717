//! The churn benchmark (`rollcall-bench churn`): subjects whose single tab
//! closes and reopens within the offline grace period (refreshes, blips)
//! should cost watchers nothing; without a grace each blip is two events to
//! every watcher.
//!
//! A release `rollcall-node` on Redis with `ROLLCALL_OFFLINE_GRACE_SECS` =
//! `grace`; `observers` sockets of one watcher count every frame after
//! their snapshot; `subjects` users open a tab each (their arrivals are not
//! counted), then `rounds` times each closes its tab and opens a new one
//! `gap` later; after the grace has passed, the frames counted are the
//! events the churn cost.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use http::HeaderValue;
use http::header::{COOKIE, ORIGIN};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::{Socket, Visitor};
use crate::node_process::NodeProcess;
use crate::redis_server::{redis_url, unique_prefix};
use crate::unique_name;

/// What one run gave.
#[derive(Debug, Clone)]
pub struct ChurnMeasurement {
    /// The grace period.
    pub grace: Duration,
    /// Watching sockets.
    pub observers: usize,
    /// Users blipping.
    pub subjects: usize,
    /// Blips per subject.
    pub rounds: usize,
    /// Time a tab stays closed.
    pub gap: Duration,
    /// Frames every observer received because of the blips (total / observers).
    pub events_per_observer: f64,
    /// How long the churn took.
    pub took: Duration,
}

/// Runs one churn measurement.
pub async fn measure(
    node_exe: &Path,
    grace: Duration,
    observers: usize,
    subjects: usize,
    rounds: usize,
    gap: Duration,
) -> ChurnMeasurement {
    let prefix = unique_prefix();
    let grace_secs = format!("{}", grace.as_secs_f64());
    let mut settings = vec![
        ("ROLLCALL_STORE", redis_url()),
        ("ROLLCALL_REDIS_PREFIX", prefix.as_str()),
        ("ROLLCALL_OFFLINE_GRACE_SECS", grace_secs.as_str()),
    ];
    settings.extend(super::NO_RATE_LIMITS);
    let node = NodeProcess::start(node_exe, &settings).await;
    let watcher = Visitor::new(&node.base);
    watcher.register(&unique_name("watcher")).await;
    let visitors = join_all((0..subjects).map(|_| async {
        let v = Visitor::new(&node.base);
        v.register(&unique_name("subject")).await;
        v
    }))
    .await;
    let mut tabs = join_all(visitors.iter().map(Visitor::socket)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let frames = Arc::new(AtomicUsize::new(0));
    let cookie = watcher.cookie_header();
    let readers = stream::iter(0..observers)
        .map(|_| count_frames(&node, &cookie, frames.clone()))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    // Only the churn counts (not, say, the watcher's own arrival reaching
    // the observers that opened first).
    tokio::time::sleep(Duration::from_millis(300)).await;
    frames.store(0, Ordering::SeqCst);
    let started = Instant::now();
    for _ in 0..rounds {
        join_all(tabs.drain(..).map(Socket::close)).await;
        tokio::time::sleep(gap).await;
        tabs = join_all(visitors.iter().map(Visitor::socket)).await;
    }
    let took = started.elapsed();
    // Long enough for any offline the grace let through to arrive.
    tokio::time::sleep(grace + Duration::from_secs(1)).await;
    let total = frames.load(Ordering::SeqCst);
    for r in readers {
        r.abort();
    }
    ChurnMeasurement {
        grace,
        observers,
        subjects,
        rounds,
        gap,
        events_per_observer: total as f64 / observers.max(1) as f64,
        took,
    }
}

/// An observer socket counting every text frame after its snapshot.
async fn count_frames(
    node: &NodeProcess,
    cookie: &str,
    frames: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let mut req = node.ws_url().into_client_request().expect("ws url");
    req.headers_mut()
        .insert(COOKIE, HeaderValue::from_str(cookie).expect("cookie"));
    req.headers_mut()
        .insert(ORIGIN, HeaderValue::from_str(&node.base).expect("origin"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("an observer opens");
    while let Some(Ok(m)) = ws.next().await {
        if matches!(&m, Message::Text(t) if t.contains(r#""type":"snapshot""#)) {
            break;
        }
    }
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m
                && !t.contains(r#""type""#)
            {
                frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// The report: a Markdown table, one row per run.
pub fn table(rows: &[ChurnMeasurement]) -> String {
    let mut out = String::from(
        "| grace s | observers | subjects | blips each | closed for ms | events per observer | blips took s |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} |\n",
            m.grace.as_secs_f64(),
            m.observers,
            m.subjects,
            m.rounds,
            m.gap.as_millis(),
            m.events_per_observer,
            m.took.as_secs_f64(),
        ));
    }
    out
}
