//! [`Hub`]: this process's open sockets, and the fan-out to them.
//!
//! The hub only knows sockets. Every presence event reaches this process
//! once, from its log follower ([`crate::feed`]), already serialised by the
//! presence view; the hub hands each socket a clone of the same bytes
//! (`Utf8Bytes` is reference-counted): no per-socket allocation beyond the
//! queue slot, no per-socket store traffic, and the registry lock is a plain
//! `RwLock` never held across an `.await`. Order per user is the log's
//! order, so the hub does no reordering of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use prometheus_client::metrics::counter::Counter;
use rollcall::domain::ConnectionId;
use tokio_util::sync::CancellationToken;

use crate::bus::BusMessage;

pub mod queue;

/// Events a socket may have queued before it counts as too slow and is
/// closed (it reconnects and resynchronises from a snapshot).
pub const QUEUE_CAPACITY: usize = 256;

/// WebSocket close codes rollcall uses.
pub mod close {
    /// The server is shutting down; reconnect.
    pub const GOING_AWAY: u16 = 1001;
    /// A client message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed.
    pub const INTERNAL: u16 = 1011;
    /// The session was logged out, or has expired: do not reconnect (the
    /// page goes to the log-in form).
    pub const LOGGED_OUT: u16 = 4001;
    /// The connection's lease expired (it was swept): reconnect.
    pub const EXPIRED: u16 = 4002;
    /// The socket fell too far behind: reconnect.
    pub const LAGGING: u16 = 4008;
    /// The client sent messages faster than `ROLLCALL_WS_MESSAGE_RATE`:
    /// reconnect, more slowly.
    pub const TOO_MANY_MESSAGES: u16 = 4029;
}

/// What a socket's send loop is asked to send: ready text frames, in order
/// (one event; or the parts of a snapshot, which take one queue slot).
#[derive(Debug, Clone)]
pub struct Outbound(pub Arc<[Utf8Bytes]>);

impl Outbound {
    /// One frame.
    pub fn one(frame: Utf8Bytes) -> Self {
        Self(Arc::from([frame]))
    }
}

/// The hub's handle on one socket.
struct Slot {
    tx: queue::Sender<Outbound>,
    cancel: CancellationToken,
    code: Arc<AtomicU16>,
}

/// What a socket gets when it registers.
pub struct Registration {
    /// Its queue.
    pub rx: queue::Receiver<Outbound>,
    /// For queueing its own replies behind the events already queued.
    pub tx: queue::Sender<Outbound>,
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
    /// Parent of every socket's token: cancelling it closes them all.
    shutdown: CancellationToken,
    /// Frames queued by [`Hub::fan_out`] (one per socket per event).
    frames_queued: Counter,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// An empty hub counting the frames it queues in `frames_queued`.
    pub fn counting(frames_queued: Counter) -> Arc<Self> {
        Arc::new(Self {
            frames_queued,
            ..Self::default()
        })
    }

    /// Adds a socket whose queue starts with `first` (its snapshot); from
    /// now on it receives every event.
    pub fn register(&self, id: &ConnectionId, first: Outbound) -> Registration {
        let (tx, rx) = queue::channel(QUEUE_CAPACITY);
        let _ = tx.try_send(first);
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

    /// Queues `frames` on every socket; a socket whose queue is full is
    /// closed as lagging rather than silently missing events.
    pub fn fan_out(&self, frames: &Outbound) {
        let sockets = self.read();
        let mut queued = 0u64;
        for slot in sockets.values() {
            match slot.tx.try_send(frames.clone()) {
                Ok(()) => queued += 1,
                Err(queue::TrySendError::Full) => {
                    slot.code.store(close::LAGGING, Ordering::Relaxed);
                    slot.cancel.cancel();
                }
                Err(queue::TrySendError::Closed) => {}
            }
        }
        drop(sockets);
        // One atomic add per event, whatever the number of sockets.
        self.frames_queued.inc_by(queued);
    }

    /// Acts on a bus message (one socket's text, or closes).
    pub fn deliver(&self, msg: BusMessage) {
        match msg {
            BusMessage::Send { id, text } => {
                if let Some(slot) = self.read().get(&id) {
                    let _ = slot.tx.try_send(Outbound::one(Utf8Bytes::from(text)));
                }
            }
            BusMessage::Close { ids, code } => self.close(&ids, code),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ConnectionId, Slot>> {
        self.sockets.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ConnectionId, Slot>> {
        self.sockets.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
