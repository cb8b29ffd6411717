//! [`LocalPusher`]: the local server's [`Pusher`]: one bus message per
//! broadcast or close, fanned out by every process's hub.

use std::sync::Arc;

use async_trait::async_trait;
use rollcall::domain::{ConnectionId, PresenceEvent};
use rollcall::push::{CloseReason, PushError, Pusher};

use crate::bus::{Announcement, Bus, BusMessage};
use crate::hub::close;

/// Pushes through the event bus.
pub struct LocalPusher {
    bus: Arc<dyn Bus>,
}

impl LocalPusher {
    /// A pusher over `bus`.
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }
}

#[async_trait]
impl Pusher for LocalPusher {
    async fn broadcast(
        &self,
        event: &PresenceEvent,
        except: Option<&ConnectionId>,
    ) -> Result<(), PushError> {
        let announcement = Announcement {
            event: event.clone(),
            except: except.cloned(),
        };
        self.bus.publish(BusMessage::Presence(announcement)).await
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
        };
        self.bus
            .publish(BusMessage::Close {
                ids: ids.to_vec(),
                code,
            })
            .await
    }
}
