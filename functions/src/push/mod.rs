//! Delivering events to open sockets.
//!
//! Handlers decide *what* to announce; a [`Pusher`] decides *how* it reaches
//! every socket of the `users` group. The local server publishes one message
//! on its event bus (in-process, or Redis pub/sub between processes); the
//! cloud posts to each connection through the API Gateway Management API.
//!
//! * [`recording::RecordingPusher`] — remembers what it was asked (tests).

use async_trait::async_trait;

use crate::domain::{ConnectionId, PresenceEvent};

pub mod recording;

/// Delivery failed for a reason other than a closed connection.
#[derive(Debug, thiserror::Error)]
#[error("push failed: {0}")]
pub struct PushError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl PushError {
    /// Wraps any error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(e))
    }
}

/// Why connections are being closed (the client acts differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Their session was logged out: the page goes to the log-in form.
    LoggedOut,
    /// Their registration expired (swept): the client should reconnect.
    Expired,
}

/// Delivers events to the `users` group and closes connections.
#[async_trait]
pub trait Pusher: Send + Sync + 'static {
    /// Sends `event` to every connection in the group. Connections found dead
    /// on the way are the pusher's to clean up.
    async fn broadcast(&self, event: &PresenceEvent) -> Result<(), PushError>;

    /// Closes these connections wherever they are (log out, expired lease).
    /// Ids that are not open are ignored.
    async fn close(&self, ids: &[ConnectionId], reason: CloseReason) -> Result<(), PushError>;
}
