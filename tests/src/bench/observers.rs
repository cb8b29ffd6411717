//! [`Observers`]: N open `/users/` sockets of one user, each read by a small
//! task that only notes when a frame arrives, so the bench measures the
//! server's fan-out and not the client's JSON parsing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use http::HeaderValue;
use http::header::{COOKIE, ORIGIN};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Sockets opened at once while connecting.
const OPENING_AT_ONCE: usize = 64;

/// What the readers record for the current event.
struct Tally {
    origin: Instant,
    /// Frames received since [`Observers::expect`].
    count: AtomicUsize,
    /// Earliest and latest arrival, in ns since `origin`.
    first: AtomicU64,
    last: AtomicU64,
    /// The `is_logged_in` value the current event must carry.
    online: AtomicBool,
    /// Frames that were not the expected event.
    wrong: AtomicUsize,
    /// Number of observers: the count that means every one has the event.
    n: usize,
    all_in: Notify,
}

/// When one event reached the observers, measured from its cause.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Until the first observer had it.
    pub first: Duration,
    /// Until the last observer had it.
    pub last: Duration,
}

/// N sockets held open, all tabs of one signed-in user.
pub struct Observers {
    tally: Arc<Tally>,
    n: usize,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Observers {
    /// Opens `n` sockets to `ws_url` with `cookie` and `origin`, and reads
    /// each one's opening snapshot.
    pub async fn open(ws_url: &str, cookie: &str, origin: &str, n: usize) -> Self {
        let tally = Arc::new(Tally {
            origin: Instant::now(),
            count: AtomicUsize::new(0),
            first: AtomicU64::new(u64::MAX),
            last: AtomicU64::new(0),
            online: AtomicBool::new(true),
            wrong: AtomicUsize::new(0),
            n,
            all_in: Notify::new(),
        });
        let readers = stream::iter(0..n)
            .map(|_| open_one(ws_url, cookie, origin, tally.clone()))
            .buffer_unordered(OPENING_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        Self { tally, n, readers }
    }

    /// Arms the tally for the next event, which must say `online`. Call it
    /// before causing the event, then [`Observers::now`].
    pub fn expect(&self, online: bool) {
        let t = &self.tally;
        t.count.store(0, Ordering::SeqCst);
        t.first.store(u64::MAX, Ordering::SeqCst);
        t.last.store(0, Ordering::SeqCst);
        t.online.store(online, Ordering::SeqCst);
    }

    /// Nanoseconds since the tally's origin (the clock arrivals use).
    pub fn now(&self) -> u64 {
        nanos(self.tally.origin)
    }

    /// Waits until every observer has the event caused at `cause` (from
    /// [`Observers::now`]); `None` if they do not all get it within `wait`.
    pub async fn arrival(&self, cause: u64, wait: Duration) -> Option<Arrival> {
        let t = &self.tally;
        tokio::time::timeout(wait, async {
            while t.count.load(Ordering::SeqCst) < self.n {
                t.all_in.notified().await;
            }
        })
        .await
        .ok()?;
        let since = |ns: u64| Duration::from_nanos(ns.saturating_sub(cause));
        Some(Arrival {
            first: since(t.first.load(Ordering::SeqCst)),
            last: since(t.last.load(Ordering::SeqCst)),
        })
    }

    /// Frames so far that were not the event expected at the time.
    pub fn wrong(&self) -> usize {
        self.tally.wrong.load(Ordering::SeqCst)
    }
}

impl Drop for Observers {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

fn nanos(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

async fn open_one(
    ws_url: &str,
    cookie: &str,
    origin: &str,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<()> {
    let mut req = ws_url.into_client_request().expect("ws url");
    let headers = req.headers_mut();
    headers.insert(COOKIE, HeaderValue::from_str(cookie).expect("cookie"));
    headers.insert(ORIGIN, HeaderValue::from_str(origin).expect("origin"));
    // Small buffers: ten thousand clients live in this one process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .unwrap_or_else(|e| panic!("open an observer socket: {e}"));
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains(r#""type":"snapshot""#) => break,
            Some(Ok(_)) => {}
            other => panic!("no snapshot on an observer socket: {other:?}"),
        }
    }
    tokio::spawn(async move {
        // Reading also answers the server's pings.
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(text) = m {
                let at = nanos(tally.origin);
                let online = tally.online.load(Ordering::Relaxed);
                let want = if online {
                    r#""is_logged_in":true"#
                } else {
                    r#""is_logged_in":false"#
                };
                if !text.contains(want) {
                    tally.wrong.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                tally.first.fetch_min(at, Ordering::Relaxed);
                tally.last.fetch_max(at, Ordering::Relaxed);
                let n = tally.count.fetch_add(1, Ordering::AcqRel) + 1;
                if n == tally.n {
                    tally.all_in.notify_one();
                }
            }
        }
    })
}
