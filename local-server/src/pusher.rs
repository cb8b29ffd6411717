//! [`LocalPusher`]: the local server's [`Pusher`]: one bus message per send
//! or close, acted on by whichever process holds the sockets.

use std::sync::Arc;

use async_trait::async_trait;
use rollcall::domain::{ConnectionId, PresenceEvent};
use rollcall::push::{CloseReason, PushError, Pusher};

use crate::bus::{Bus, BusMessage};
use crate::hub::close;

/// Pushes through the control bus.
pub struct LocalPusher {
    bus: Arc<dyn Bus>,
}

impl LocalPusher {
    /// A pusher over `bus`.
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }
}

/// The local server's presence events reach sockets through each
/// process's feed, never through the pusher.
#[derive(Debug, thiserror::Error)]
#[error("the local server fans presence out through its feed, not the pusher")]
struct NoBroadcast;

#[async_trait]
impl Pusher for LocalPusher {
    async fn post_to_shard(&self, _shard: u32, _event: &PresenceEvent) -> Result<(), PushError> {
        Err(PushError::new(NoBroadcast))
    }

    async fn send(&self, to: &ConnectionId, text: &str) -> Result<bool, PushError> {
        // Wherever that socket is open, its process queues the text.
        self.bus
            .publish(BusMessage::Send {
                id: to.clone(),
                text: text.to_owned(),
            })
            .await?;
        Ok(true)
    }

    async fn close(&self, ids: &[ConnectionId], reason: CloseReason) -> Result<(), PushError> {
        let code = match reason {
            CloseReason::LoggedOut => close::LOGGED_OUT,
            CloseReason::Expired => close::EXPIRED,
            CloseReason::TooManyMessages => close::TOO_MANY_MESSAGES,
        };
        self.bus
            .publish(BusMessage::Close {
                ids: ids.to_vec(),
                code,
            })
            .await
    }
}
