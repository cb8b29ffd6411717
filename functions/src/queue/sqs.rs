//! [`SqsQueues`]: the push queue (FIFO, one message group per group shard)
//! and the settle queue (standard, per-message delay) on Amazon SQS.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry, SendMessageBatchRequestEntry,
};
use sha2::{Digest, Sha256};

use super::{PushMessage, QueueName, Queues, RetryLater, SettleMessage};
use crate::domain::{PresenceEvent, Timestamp, Username};
use crate::push::PushError;

/// SQS takes at most ten messages per batch.
const BATCH: usize = 10;
/// The longest delay SQS offers (15 minutes).
const MAX_DELAY: Duration = Duration::from_secs(900);

/// Sends to the two queues.
#[derive(Debug, Clone)]
pub struct SqsQueues {
    client: Client,
    push_url: String,
    settle_url: String,
}

/// SQS refused some messages of a batch.
#[derive(Debug, thiserror::Error)]
#[error("SQS refused {0} message(s): {1}")]
struct Refused(usize, String);

/// The message group of a shard: messages of one shard are posted in order.
pub fn message_group(shard: u32) -> String {
    format!("users#{shard}")
}

/// The deduplication id of an event for a shard: the same event sent twice
/// (a retried stream batch) is queued once.
pub fn dedup_id(event: &PresenceEvent, shard: u32) -> String {
    let mut h = Sha256::new();
    h.update(event.username.as_str().as_bytes());
    h.update(format!("\n{}\n{}", event.seq, shard).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// How long SQS should hold a settle message for `due`: rounded up to a
/// whole second, at most [`MAX_DELAY`].
pub fn delay_for(due: Timestamp, now: Timestamp) -> i32 {
    let ms = due.as_millis().saturating_sub(now.as_millis());
    let secs = ms.div_ceil(1000).min(MAX_DELAY.as_secs());
    i32::try_from(secs).unwrap_or(900)
}

impl SqsQueues {
    /// Queues at `push_url` (FIFO) and `settle_url` (standard).
    pub fn new(client: Client, push_url: String, settle_url: String) -> Self {
        Self {
            client,
            push_url,
            settle_url,
        }
    }
}

#[async_trait]
impl Queues for SqsQueues {
    async fn fan_out(&self, event: &PresenceEvent, shards: u32) -> Result<(), PushError> {
        let shards: Vec<u32> = (0..shards.max(1)).collect();
        for chunk in shards.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for &shard in chunk {
                let body = serde_json::to_string(&PushMessage {
                    shard,
                    event: event.clone(),
                })
                .map_err(PushError::new)?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(shard.to_string())
                        .message_body(body)
                        .message_group_id(message_group(shard))
                        .message_deduplication_id(dedup_id(event, shard))
                        .build()
                        .map_err(PushError::new)?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.push_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(failed)?;
            refused(out.failed())?;
        }
        Ok(())
    }

    async fn settle_at(&self, user: &Username, due: Timestamp) -> Result<(), PushError> {
        let body = serde_json::to_string(&SettleMessage {
            username: user.clone(),
            due: due.as_millis(),
        })
        .map_err(PushError::new)?;
        self.client
            .send_message()
            .queue_url(&self.settle_url)
            .message_body(body)
            .delay_seconds(delay_for(due, Timestamp::now()))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn retry_later(
        &self,
        queue: QueueName,
        messages: &[RetryLater],
    ) -> Result<(), PushError> {
        let url = match queue {
            QueueName::Push => &self.push_url,
            QueueName::Settle => &self.settle_url,
        };
        for chunk in messages.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, m) in chunk.iter().enumerate() {
                entries.push(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .visibility_timeout(i32::try_from(m.after.as_secs()).unwrap_or(60))
                        .build()
                        .map_err(PushError::new)?,
                );
            }
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(failed)?;
            refused(out.failed())?;
        }
        Ok(())
    }
}

/// An error naming the entries of a batch SQS refused, if any.
fn refused(failed: &[BatchResultErrorEntry]) -> Result<(), PushError> {
    if failed.is_empty() {
        return Ok(());
    }
    let why = failed
        .iter()
        .map(|f| f.code().to_owned())
        .collect::<Vec<_>>()
        .join(", ");
    Err(PushError::new(Refused(failed.len(), why)))
}

/// An SQS call failed.
#[derive(Debug, thiserror::Error)]
#[error("SQS: {0}")]
struct SqsFailed(String);

/// An SDK error as a [`PushError`], with the SDK's whole error chain.
fn failed<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_sqs::error::SdkError<E, R>,
) -> PushError {
    PushError::new(SqsFailed(
        aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_and_stop_at_fifteen_minutes() {
        let now = Timestamp::from_millis(1_000_000);
        assert_eq!(delay_for(Timestamp::from_millis(1_000_000), now), 0);
        assert_eq!(delay_for(Timestamp::from_millis(1_000_001), now), 1);
        assert_eq!(delay_for(Timestamp::from_millis(1_005_000), now), 5);
        assert_eq!(delay_for(Timestamp::from_millis(999_000), now), 0);
        assert_eq!(delay_for(Timestamp::from_millis(u64::MAX), now), 900);
    }

    #[test]
    fn dedup_ids_name_user_transition_and_shard() {
        let e = |seq| PresenceEvent::transition(Username::parse("amy").unwrap(), seq, None);
        let id = dedup_id(&e(1), 0);
        assert_eq!(id.len(), 64, "within SQS's 128 characters");
        assert_eq!(id, dedup_id(&e(1), 0));
        assert_ne!(id, dedup_id(&e(1), 1));
        assert_ne!(id, dedup_id(&e(3), 0));
        assert_eq!(message_group(3), "users#3");
    }
}
