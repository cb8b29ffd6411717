//! [`RecordingQueues`]: remembers what it was asked, for tests.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{PushMessage, QueueName, Queues, RetryLater, SettleMessage};
use crate::domain::{PresenceEvent, Timestamp, Username};
use crate::push::PushError;

/// Records every message instead of sending it.
#[derive(Default)]
pub struct RecordingQueues {
    pushed: Mutex<Vec<PushMessage>>,
    settles: Mutex<Vec<SettleMessage>>,
    retries: Mutex<Vec<(QueueName, RetryLater)>>,
}

impl RecordingQueues {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The push messages so far, taken.
    pub fn take_pushed(&self) -> Vec<PushMessage> {
        std::mem::take(&mut self.pushed.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The messages asked to be retried sooner so far, taken.
    pub fn take_retries(&self) -> Vec<(QueueName, RetryLater)> {
        std::mem::take(&mut self.retries.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The settle messages so far, taken.
    pub fn take_settles(&self) -> Vec<SettleMessage> {
        std::mem::take(&mut self.settles.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl Queues for RecordingQueues {
    async fn fan_out(&self, event: &PresenceEvent, shards: u32) -> Result<(), PushError> {
        let mut pushed = self.pushed.lock().unwrap_or_else(|p| p.into_inner());
        for shard in 0..shards {
            pushed.push(PushMessage {
                shard,
                event: event.clone(),
            });
        }
        Ok(())
    }

    async fn settle_at(&self, user: &Username, due: Timestamp) -> Result<(), PushError> {
        self.settles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(SettleMessage {
                username: user.clone(),
                due: due.as_millis(),
            });
        Ok(())
    }

    async fn retry_later(
        &self,
        queue: QueueName,
        messages: &[RetryLater],
    ) -> Result<(), PushError> {
        self.retries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(messages.iter().map(|m| (queue, m.clone())));
        Ok(())
    }
}
