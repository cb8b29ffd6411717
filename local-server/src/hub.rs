//! [`Hub`]: this process's open sockets, and the fan-out to them.
//!
//! Every event reaches the hub once per process (straight from the handler
//! with the memory store, through Redis pub/sub otherwise). The hub
//! serialises it once and hands each socket a clone of the same bytes
//! (`Utf8Bytes` is reference-counted): no per-socket allocation beyond the
//! queue slot, no per-socket Redis traffic, and the registry lock is a plain
//! `RwLock` never held across an `.await`.
//!
//! Events for one user carry the store's transition number (consecutive per
//! user). Publishes from two processes can cross on the way, so the hub puts
//! each user's events back in order: it delivers transition *n + 1* right
//! after *n*, holds one that arrives early until the gap fills (or
//! [`REORDER_HOLD`] passes: a publish that failed), and drops duplicates and
//! stale ones. Every socket thus sees a user's transitions once, in order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
#[cfg(test)]
use rollcall::domain::PresenceEvent;
use rollcall::domain::{ConnectionId, Username};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bus::{Announcement, BusMessage};

/// Events a socket may have queued before it counts as too slow and is
/// closed (it reconnects and resynchronises from a snapshot).
pub const QUEUE_CAPACITY: usize = 256;

/// How long an early event waits for the ones before it.
pub const REORDER_HOLD: Duration = Duration::from_millis(500);

/// WebSocket close codes rollcall uses.
pub mod close {
    /// The server is shutting down; reconnect.
    pub const GOING_AWAY: u16 = 1001;
    /// A client message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed.
    pub const INTERNAL: u16 = 1011;
    /// The session was logged out: do not reconnect.
    pub const LOGGED_OUT: u16 = 4001;
    /// The connection's lease expired (it was swept): reconnect.
    pub const EXPIRED: u16 = 4002;
    /// The socket fell too far behind: reconnect.
    pub const LAGGING: u16 = 4008;
}

/// What a socket's send loop is asked to send.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A ready text frame.
    Frame(Utf8Bytes),
    /// Read a snapshot now and send it (ordered with the frames around it).
    Snapshot,
}

/// The hub's handle on one socket.
struct Slot {
    tx: mpsc::Sender<Outbound>,
    cancel: CancellationToken,
    code: Arc<AtomicU16>,
}

/// What a socket gets when it registers.
pub struct Registration {
    /// Its queue.
    pub rx: mpsc::Receiver<Outbound>,
    /// For queueing its own replies behind the events already queued.
    pub tx: mpsc::Sender<Outbound>,
    /// Cancelled when the socket must close; [`Registration::close_code`] says why.
    pub cancel: CancellationToken,
    code: Arc<AtomicU16>,
}

impl Registration {
    /// The close code set by whoever cancelled this socket.
    pub fn close_code(&self) -> u16 {
        self.code.load(Ordering::Relaxed)
    }

    /// Asks this socket to close with `code`.
    pub fn close(&self, code: u16) {
        self.code.store(code, Ordering::Relaxed);
        self.cancel.cancel();
    }
}

/// This process's sockets.
#[derive(Default)]
pub struct Hub {
    sockets: RwLock<HashMap<ConnectionId, Slot>>,
    order: Mutex<Order>,
    /// Parent of every socket's token: cancelling it closes them all.
    shutdown: CancellationToken,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds a socket; from now on it receives every event.
    pub fn register(&self, id: &ConnectionId) -> Registration {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let cancel = self.shutdown.child_token();
        let code = Arc::new(AtomicU16::new(close::GOING_AWAY));
        let slot = Slot {
            tx: tx.clone(),
            cancel: cancel.clone(),
            code: code.clone(),
        };
        self.write().insert(id.clone(), slot);
        Registration {
            rx,
            tx,
            cancel,
            code,
        }
    }

    /// Removes a socket.
    pub fn unregister(&self, id: &ConnectionId) {
        self.write().remove(id);
    }

    /// Number of open sockets.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of the open sockets (for lease renewal).
    pub fn ids(&self) -> Vec<ConnectionId> {
        self.read().keys().cloned().collect()
    }

    /// Closes every socket (server shutdown).
    pub fn close_all(&self) {
        self.shutdown.cancel();
    }

    /// Closes the listed sockets that are open here.
    pub fn close(&self, ids: &[ConnectionId], code: u16) {
        let sockets = self.read();
        for id in ids {
            if let Some(slot) = sockets.get(id) {
                slot.code.store(code, Ordering::Relaxed);
                slot.cancel.cancel();
            }
        }
    }

    /// Asks every socket for a fresh snapshot (after events may have been
    /// missed, e.g. the pub/sub connection dropped).
    pub fn resync(&self) {
        self.each(|| Outbound::Snapshot);
    }

    /// Acts on a bus message.
    pub fn deliver(&self, msg: BusMessage) {
        match msg {
            BusMessage::Presence(announcement) => {
                let ready = self.order().accept(announcement, Instant::now());
                self.fan_out(ready);
            }
            BusMessage::Send { id, text } => {
                if let Some(slot) = self.read().get(&id) {
                    let _ = slot.tx.try_send(Outbound::Frame(Utf8Bytes::from(text)));
                }
            }
            BusMessage::Close { ids, code } => self.close(&ids, code),
        }
    }

    /// Delivers events held longer than [`REORDER_HOLD`] (their
    /// predecessors are not coming). Called periodically by the node.
    pub fn flush_overdue(&self) {
        let ready = self.order().overdue(Instant::now());
        self.fan_out(ready);
    }

    fn fan_out(&self, announcements: Vec<Announcement>) {
        for a in announcements {
            let frame = Utf8Bytes::from(a.event.to_json());
            self.each_but(a.except.as_ref(), || Outbound::Frame(frame.clone()));
        }
    }

    fn order(&self) -> std::sync::MutexGuard<'_, Order> {
        self.order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `make()` on every socket; a socket whose queue is full is
    /// closed as lagging rather than silently missing events.
    fn each(&self, make: impl Fn() -> Outbound) {
        self.each_but(None, make);
    }

    /// [`Hub::each`], skipping `except`.
    fn each_but(&self, except: Option<&ConnectionId>, make: impl Fn() -> Outbound) {
        let sockets = self.read();
        for (id, slot) in sockets.iter() {
            if Some(id) == except {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = slot.tx.try_send(make()) {
                slot.code.store(close::LAGGING, Ordering::Relaxed);
                slot.cancel.cancel();
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ConnectionId, Slot>> {
        self.sockets.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ConnectionId, Slot>> {
        self.sockets.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Per-user ordering of presence events.
#[derive(Default)]
struct Order {
    users: HashMap<Username, Line>,
    /// Users with held events.
    waiting: HashSet<Username>,
}

struct Line {
    /// Last transition delivered.
    last: u64,
    /// Early arrivals by transition number, and since when the oldest waits.
    held: BTreeMap<u64, Announcement>,
    since: Option<Instant>,
}

impl Order {
    /// Takes one event; returns those now deliverable, in order.
    fn accept(&mut self, a: Announcement, now: Instant) -> Vec<Announcement> {
        let event = &a.event;
        let Some(line) = self.users.get_mut(&event.username) else {
            // First sight of this user: whatever comes first is the baseline.
            let line = Line {
                last: event.seq,
                held: BTreeMap::new(),
                since: None,
            };
            self.users.insert(event.username.clone(), line);
            return vec![a];
        };
        if event.seq <= line.last {
            return Vec::new(); // a duplicate or older than what was shown
        }
        let user = event.username.clone();
        if event.seq > line.last + 1 {
            line.held.insert(event.seq, a);
            line.since.get_or_insert(now);
            self.waiting.insert(user);
            return Vec::new();
        }
        line.last = event.seq;
        let mut ready = vec![a];
        while let Some(next) = line.held.remove(&(line.last + 1)) {
            line.last = next.event.seq;
            ready.push(next);
        }
        if line.held.is_empty() {
            line.since = None;
            self.waiting.remove(&user);
        }
        ready
    }

    /// Releases everything held longer than [`REORDER_HOLD`], in order.
    fn overdue(&mut self, now: Instant) -> Vec<Announcement> {
        let mut ready = Vec::new();
        let users = &mut self.users;
        self.waiting.retain(|user| {
            let Some(line) = users.get_mut(user) else {
                return false;
            };
            if line
                .since
                .is_some_and(|t| now.duration_since(t) >= REORDER_HOLD)
            {
                for (seq, e) in std::mem::take(&mut line.held) {
                    line.last = seq;
                    ready.push(e);
                }
                line.since = None;
                return false;
            }
            true
        });
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, on: bool, seq: u64) -> BusMessage {
        let username = Username::parse(name).unwrap();
        BusMessage::Presence(Announcement::to_all(PresenceEvent {
            username,
            is_logged_in: on,
            seq,
        }))
    }

    fn frame(o: Outbound) -> String {
        match o {
            Outbound::Frame(b) => b.as_str().to_owned(),
            Outbound::Snapshot => "snapshot".into(),
        }
    }

    #[tokio::test]
    async fn every_socket_gets_the_same_frame_once() {
        let hub = Hub::new();
        let (a, b) = (ConnectionId::generate(), ConnectionId::generate());
        let (mut ra, mut rb) = (hub.register(&a), hub.register(&b));
        hub.deliver(event("josé", true, 1));
        let want = r#"{"username":"josé","is_logged_in":true}"#;
        assert_eq!(frame(ra.rx.recv().await.unwrap()), want);
        assert_eq!(frame(rb.rx.recv().await.unwrap()), want);
        assert!(ra.rx.try_recv().is_err());
    }

    fn received(r: &mut Registration) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(o) = r.rx.try_recv() {
            out.push(frame(o));
        }
        out
    }

    #[tokio::test]
    async fn crossed_events_are_put_back_in_order_and_duplicates_dropped() {
        let hub = Hub::new();
        let mut r = hub.register(&ConnectionId::generate());
        hub.deliver(event("ann", false, 0)); // signed up
        hub.deliver(event("ann", false, 2)); // crossed with 1 from another process
        assert_eq!(received(&mut r).len(), 1, "2 waits for 1");
        hub.deliver(event("ann", true, 1));
        hub.deliver(event("ann", true, 1)); // a duplicate
        hub.deliver(event("ann", false, 0)); // a late sign-up announcement
        let got = received(&mut r);
        assert_eq!(got.len(), 2);
        assert!(
            got[0].contains("true") && got[1].contains("false"),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn an_event_whose_predecessor_never_comes_is_released_after_the_hold() {
        let hub = Hub::new();
        let mut r = hub.register(&ConnectionId::generate());
        hub.deliver(event("bo", true, 1));
        hub.deliver(event("bo", true, 3)); // 2 was lost
        hub.flush_overdue();
        assert_eq!(received(&mut r).len(), 1);
        std::thread::sleep(REORDER_HOLD);
        hub.flush_overdue();
        assert_eq!(received(&mut r).len(), 1, "3 released");
        hub.deliver(event("bo", false, 4));
        assert_eq!(received(&mut r).len(), 1, "and the line continues");
    }

    #[tokio::test]
    async fn an_announcement_skips_the_connection_it_is_about() {
        let hub = Hub::new();
        let (me, other) = (ConnectionId::generate(), ConnectionId::generate());
        let (mut rm, mut ro) = (hub.register(&me), hub.register(&other));
        let BusMessage::Presence(mut a) = event("cy", true, 1) else {
            unreachable!()
        };
        a.except = Some(me.clone());
        hub.deliver(BusMessage::Presence(a));
        assert!(received(&mut rm).is_empty());
        assert_eq!(received(&mut ro).len(), 1);
    }

    #[tokio::test]
    async fn a_socket_that_falls_behind_is_closed_not_starved() {
        let hub = Hub::new();
        let id = ConnectionId::generate();
        let r = hub.register(&id);
        for seq in 1..=(QUEUE_CAPACITY as u64 + 1) {
            hub.deliver(event("ann", seq % 2 == 1, seq));
        }
        assert!(r.cancel.is_cancelled());
        assert_eq!(r.close_code(), close::LAGGING);
    }

    #[tokio::test]
    async fn close_messages_close_only_the_listed_sockets() {
        let hub = Hub::new();
        let (a, b) = (ConnectionId::generate(), ConnectionId::generate());
        let (ra, rb) = (hub.register(&a), hub.register(&b));
        hub.deliver(BusMessage::Close {
            ids: vec![a.clone()],
            code: close::LOGGED_OUT,
        });
        assert!(ra.cancel.is_cancelled() && !rb.cancel.is_cancelled());
        assert_eq!(ra.close_code(), close::LOGGED_OUT);
        hub.close_all();
        assert!(rb.cancel.is_cancelled());
        assert_eq!(rb.close_code(), close::GOING_AWAY);
        hub.unregister(&a);
        assert_eq!(hub.len(), 1);
    }
}
