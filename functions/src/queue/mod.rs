//! Work handed to queues, for the Lambda functions: fanning an event out to
//! the group's shards, and settling a grace period later.
//!
//! The cloud path never fans out inside a request. An event (from the
//! presence table's stream, or from the handler that caused it on a store
//! without one) becomes one [`PushMessage`] per group shard on a FIFO queue
//! whose message group is the shard: the `push` function posts each to its
//! shard's connections, in order per shard, so a socket never gets an older
//! event after a newer one, and the queue's deduplication (by user,
//! transition and shard) drops a message sent twice. A last connection
//! closing with a grace period sends a [`SettleMessage`] delayed by the
//! grace (AWS's delay queue is the timer); the `settle` function then takes
//! the user offline unless they came back.
//!
//! * [`sqs::SqsQueues`] — Amazon SQS (feature `lambda`).
//! * [`recording::RecordingQueues`] — remembers what it was asked (tests).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{PresenceEvent, Timestamp, Username};
use crate::push::PushError;

pub mod recording;
#[cfg(feature = "lambda")]
pub mod sqs;

/// An event for the connections of one group shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushMessage {
    /// The shard (`0..Store::group_shards()`).
    pub shard: u32,
    /// The event to post.
    pub event: PresenceEvent,
}

/// A grace period to settle once `due` has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleMessage {
    /// Whose last connection closed.
    pub username: Username,
    /// When the grace ends (ms since the epoch).
    pub due: u64,
}

/// Which of the two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueName {
    /// The push FIFO queue.
    Push,
    /// The settle queue.
    Settle,
}

/// A received message to hand out again sooner than its queue's visibility
/// timeout: its receipt handle and how long until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryLater {
    /// The receipt handle of this receive.
    pub receipt: String,
    /// When it should be handed out again.
    pub after: std::time::Duration,
}

/// How long a message that failed its `receive_count`-th delivery waits
/// before the next: 1, 2, 4, 8, 16 s … at most 60 s. (The queues' visibility
/// timeout, 360 s for `push.fifo`, would otherwise hold a FIFO shard's
/// later events back that long after one failure.)
pub fn retry_backoff(receive_count: u32) -> std::time::Duration {
    let exp = receive_count.saturating_sub(1).min(6);
    std::time::Duration::from_secs((1u64 << exp).min(60))
}

/// Where the Lambda functions hand work over.
#[async_trait]
pub trait Queues: Send + Sync + 'static {
    /// Queues `event` for each of `shards` group shards (one message each).
    async fn fan_out(&self, event: &PresenceEvent, shards: u32) -> Result<(), PushError>;

    /// Asks for `user`'s grace period to be settled at `due`.
    async fn settle_at(&self, user: &Username, due: Timestamp) -> Result<(), PushError>;

    /// Makes failed messages of `queue` visible again after their
    /// `after` (`ChangeMessageVisibility`), instead of the queue's timeout.
    async fn retry_later(&self, queue: QueueName, messages: &[RetryLater])
    -> Result<(), PushError>;
}
