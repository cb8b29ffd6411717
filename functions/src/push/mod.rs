//! Delivering events to open sockets.
//!
//! A [`Pusher`] reaches sockets: one connection (a reply, a snapshot), a
//! list of them (close), or every connection of one shard of the `users`
//! group (the cloud's fan-out, behind its push queue). The local server's
//! presence events never go through it: each process's feed fans them out
//! to its own sockets; its pusher carries closes and sends over the control
//! bus. The cloud posts through the API Gateway Management API.
//!
//! * [`recording::RecordingPusher`] — remembers what it was asked (tests).
//! * [`apigw::ApiGwPusher`] — `PostToConnection` / `DeleteConnection`
//!   (feature `lambda`).

use async_trait::async_trait;

use crate::domain::{ConnectionId, PresenceEvent};

#[cfg(feature = "lambda")]
pub mod apigw;
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
    /// The client sent messages faster than `ROLLCALL_WS_MESSAGE_RATE`.
    TooManyMessages,
}

/// Delivers events to the `users` group and closes connections.
#[async_trait]
pub trait Pusher: Send + Sync + 'static {
    /// Sends `event` to every connection of group shard `shard` (see
    /// [`crate::store::Store::group_shards`]). Connections found dead on the
    /// way are the pusher's to clean up (their users go offline now).
    async fn post_to_shard(&self, shard: u32, event: &PresenceEvent) -> Result<(), PushError>;

    /// Sends one text message to one connection. `Ok(false)` if that
    /// connection is gone (the pusher unregisters it, announcing its user
    /// offline if it was their last).
    async fn send(&self, to: &ConnectionId, text: &str) -> Result<bool, PushError>;

    /// Closes these connections wherever they are (log out, expired lease).
    /// Ids that are not open are ignored.
    async fn close(&self, ids: &[ConnectionId], reason: CloseReason) -> Result<(), PushError>;
}
