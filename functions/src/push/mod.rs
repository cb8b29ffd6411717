//! Delivering events to open sockets.
//!
//! Handlers decide *what* to announce; a [`Pusher`] decides *how* it reaches
//! every socket of the `users` group. The local server publishes one message
//! on its event bus (in-process, or Redis pub/sub between processes); the
//! cloud posts to each connection through the API Gateway Management API.
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
}

/// Delivers events to the `users` group and closes connections.
#[async_trait]
pub trait Pusher: Send + Sync + 'static {
    /// Sends `event` to every connection in the group but `except` (the
    /// connection whose arrival or departure this is). Connections found
    /// dead on the way are the pusher's to clean up.
    async fn broadcast(
        &self,
        event: &PresenceEvent,
        except: Option<&ConnectionId>,
    ) -> Result<(), PushError>;

    /// Sends one text message to one connection. `Ok(false)` if that
    /// connection is gone (the pusher unregisters it, announcing its user
    /// offline if it was their last).
    async fn send(&self, to: &ConnectionId, text: &str) -> Result<bool, PushError>;

    /// Closes these connections wherever they are (log out, expired lease).
    /// Ids that are not open are ignored.
    async fn close(&self, ids: &[ConnectionId], reason: CloseReason) -> Result<(), PushError>;
}
