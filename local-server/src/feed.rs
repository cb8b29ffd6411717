//! [`Feed`]: follows the store's event log into this process's presence view
//! and out to its sockets.
//!
//! On start (and after a gap) it loads the view from the store — one
//! consistent cut of who is online plus the user list, whatever the number
//! of sockets — then reads the log from the cut's cursor. Each batch of
//! entries is applied to the view, which serialises each change once; the
//! hub queues those same bytes to every socket. Applying and registering a
//! socket with its snapshot happen under the view's lock, so every socket
//! gets its snapshot followed by exactly the events after it.
//!
//! A read that fails or hangs (the store's connection died half-open) is
//! retried from the same cursor; the store tells a gap (entries trimmed,
//! Redis restarted empty or from an older file), and the feed then reloads
//! and sends every socket a fresh snapshot, and wakes whoever waits on
//! [`Feed::reloaded`] (the node then renews its sockets' leases at once, to
//! find registrations a rewound store lost).
//!
//! [`Feed::following`] says whether reads have been succeeding lately (for
//! `/readyz`): an idle log still answers every [`WAIT`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use rollcall::domain::{ConnectionId, Timestamp, Username};
use rollcall::presence::PresenceView;
use rollcall::store::{LogCursor, LogRead, Store, StoreResult};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, Outbound, Registration, queue};
use crate::metrics::{Failure, Metrics};

/// Entries read per call.
const BATCH: usize = 1000;
/// How long one read waits for new entries; a read that has not answered
/// this much later counts as a dead connection.
const WAIT: Duration = Duration::from_secs(1);
const HUNG: Duration = Duration::from_secs(4);
/// Users read per store call while loading.
const LOAD_PAGE: usize = 5000;

/// The feed counts as stuck when no read has succeeded for this long
/// (a healthy one answers within [`WAIT`] plus a round trip).
const STUCK: Duration = Duration::from_secs(10);

/// This process's view and sockets, kept current from the log.
pub struct Feed {
    /// Who is online, as of the last entry applied.
    pub view: Arc<PresenceView>,
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// When the feed started, for [`Feed::last_read`].
    started: Instant,
    /// Milliseconds since `started` at the end of the last good read.
    last_read: AtomicU64,
    /// Notified (one permit) after each reload.
    reloaded: Notify,
}

fn utf8(b: &Bytes) -> Utf8Bytes {
    // The view only serialises strings.
    Utf8Bytes::try_from(b.clone()).unwrap_or_else(|_| Utf8Bytes::from_static(""))
}

/// The view's frames as one queue item.
fn outbound(frames: &[Bytes]) -> Outbound {
    Outbound(frames.iter().map(utf8).collect())
}

impl Feed {
    /// Loads the view from `store` and starts following the log until `stop`.
    pub async fn start(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> StoreResult<(Arc<Self>, JoinHandle<()>)> {
        let feed = Arc::new(Self {
            view: Arc::new(PresenceView::new()),
            hub,
            store,
            metrics,
            started: Instant::now(),
            last_read: AtomicU64::new(0),
            reloaded: Notify::new(),
        });
        let cursor = feed.load().await?;
        let task = tokio::spawn(feed.clone().follow(cursor, stop));
        Ok((feed, task))
    }

    /// Registers socket `id` with the hub, its queue starting with the
    /// current snapshot.
    pub fn join(&self, id: &ConnectionId) -> Registration {
        self.view
            .join(|frames| self.hub.register(id, outbound(frames)))
    }

    /// Whether log reads have been succeeding lately: not stuck on a dead
    /// store or a hung connection.
    pub fn following(&self) -> bool {
        self.since_last_read() < STUCK
    }

    /// How long since a log read last succeeded.
    pub fn since_last_read(&self) -> Duration {
        let last = Duration::from_millis(self.last_read.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Resolves after the next reload of the view (or at once if one
    /// happened since the last call).
    pub async fn reloaded(&self) {
        self.reloaded.notified().await;
    }

    fn read_ok(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_read.store(ms, Ordering::Relaxed);
    }

    /// Queues a fresh snapshot on one socket, in order with the events.
    pub fn snapshot_to(&self, tx: &queue::Sender<Outbound>) {
        self.view.join(|frames| {
            let _ = tx.try_send(outbound(frames));
        });
    }

    /// Loads the view (cut, then the user list) and sends every socket the
    /// new snapshot; returns the cursor to follow from.
    async fn load(&self) -> StoreResult<LogCursor> {
        let started = std::time::Instant::now();
        let cut = self.store.online_users().await?;
        let loaded_at = Timestamp::now();
        let mut users = Vec::new();
        let mut after: Option<Username> = None;
        loop {
            let page = self
                .store
                .list_users(after.as_ref(), None, LOAD_PAGE)
                .await?;
            users.extend(page.items);
            if page.next.is_none() {
                break;
            }
            after = users.last().map(|u| u.username.clone());
        }
        let (online, known) = (cut.users.len(), users.len());
        self.view.load(cut.users, users, loaded_at, |frames| {
            self.hub.fan_out(&outbound(frames));
        });
        tracing::info!(
            users = known,
            online,
            took_ms = started.elapsed().as_millis() as u64,
            "presence view loaded"
        );
        Ok(cut.cursor)
    }

    async fn follow(self: Arc<Self>, mut cursor: LogCursor, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let read = tokio::select! {
                () = stop.cancelled() => return,
                r = tokio::time::timeout(HUNG, self.store.read_log(&cursor, BATCH, WAIT)) => r,
            };
            let failed = match read {
                Ok(Ok(LogRead::Entries {
                    events,
                    cursor: next,
                })) => {
                    let read_at = Instant::now();
                    self.read_ok();
                    self.view.apply(&events, |frame| {
                        self.hub.fan_out(&Outbound::one(utf8(&frame)));
                        self.metrics
                            .fanout_seconds
                            .observe(read_at.elapsed().as_secs_f64());
                    });
                    self.metrics.log_entries.inc_by(events.len() as u64);
                    cursor = next;
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(Ok(LogRead::Gap)) => {
                    self.read_ok();
                    tracing::warn!("event log gap (trimmed or the store rewound): reloading");
                    match self.load().await {
                        Ok(c) => {
                            self.metrics.view_reloads.inc();
                            self.reloaded.notify_one();
                            cursor = c;
                            continue;
                        }
                        Err(e) => format!("reload failed: {e}"),
                    }
                }
                Ok(Err(e)) => {
                    self.failed("error");
                    format!("read failed: {e}")
                }
                Err(_) => {
                    self.failed("timeout");
                    "read hung: reconnecting".to_owned()
                }
            };
            tracing::warn!(error = %failed, retry_in_ms = backoff.as_millis() as u64, "event log");
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn failed(&self, kind: &'static str) {
        self.metrics
            .log_read_failures
            .get_or_create(&Failure { kind })
            .inc();
    }
}
