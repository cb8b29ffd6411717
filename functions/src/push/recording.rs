//! [`RecordingPusher`]: a pusher that only records, for handler unit tests.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{CloseReason, PushError, Pusher};
use crate::domain::{ConnectionId, PresenceEvent};

/// What a [`RecordingPusher`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// An event posted to a group shard.
    Shard(u32, PresenceEvent),
    /// A message to one connection.
    Send(ConnectionId, String),
    /// A close.
    Close(Vec<ConnectionId>, CloseReason),
}

/// Records every call, in order.
#[derive(Debug, Default)]
pub struct RecordingPusher {
    calls: Mutex<Vec<Pushed>>,
}

impl RecordingPusher {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the calls recorded so far.
    pub fn take(&self) -> Vec<Pushed> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn record(&self, p: Pushed) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(p);
    }
}

#[async_trait]
impl Pusher for RecordingPusher {
    async fn post_to_shard(&self, shard: u32, event: &PresenceEvent) -> Result<(), PushError> {
        self.record(Pushed::Shard(shard, event.clone()));
        Ok(())
    }

    async fn send(&self, to: &ConnectionId, text: &str) -> Result<bool, PushError> {
        self.record(Pushed::Send(to.clone(), text.to_owned()));
        Ok(true)
    }

    async fn close(&self, ids: &[ConnectionId], reason: CloseReason) -> Result<(), PushError> {
        self.record(Pushed::Close(ids.to_vec(), reason));
        Ok(())
    }
}
