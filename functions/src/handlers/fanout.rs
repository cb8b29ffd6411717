//! The cloud's fan-out, outside any request: the three functions behind the
//! presence table's stream and the two queues.
//!
//! * [`queue_log`] — `fanout`: a batch of the presence table's stream
//!   (the event log) becomes one push message per group shard and event.
//! * [`push`] — `push`: one such message is posted to its shard's
//!   connections.
//! * [`settle`] — `settle`: a grace period's delayed message arrives; the
//!   user goes offline unless a connection of theirs came back.
//!
//! A user's events are logged in order (one stream shard per key); each
//! becomes a message in every group shard's FIFO message group, so every
//! socket gets them in that order, once: a resent batch is dropped by the
//! queue's deduplication, and a push never fails after it started posting.

use crate::context::AppContext;
use crate::domain::{LogEvent, Timestamp};
use crate::error::AppError;
use crate::queue::{PushMessage, SettleMessage};

/// The log entries in order; `Err` with the index of the first one that
/// could not be queued (it and the later ones are to be retried).
pub async fn queue_log(ctx: &AppContext, events: &[LogEvent]) -> Result<(), (usize, AppError)> {
    let Some(queues) = &ctx.queues else {
        return Err((0, AppError::Internal("no push queue configured".into())));
    };
    let shards = ctx.store.group_shards();
    for (i, e) in events.iter().enumerate() {
        if let Err(err) = queues.fan_out(&e.to_presence(), shards).await {
            return Err((i, err.into()));
        }
    }
    Ok(())
}

/// Posts one message's event to its shard's connections.
#[tracing::instrument(skip_all, fields(shard = msg.shard, user = %msg.event.username, seq = msg.event.seq))]
pub async fn push(ctx: &AppContext, msg: &PushMessage) -> Result<(), AppError> {
    ctx.pusher.post_to_shard(msg.shard, &msg.event).await?;
    Ok(())
}

/// Ends a grace period: the user goes offline if it is due and nobody came
/// back. A message that arrived early (clocks) is queued again for what is
/// left.
#[tracing::instrument(skip_all, fields(user = %msg.username))]
pub async fn settle(ctx: &AppContext, msg: &SettleMessage) -> Result<(), AppError> {
    let now = Timestamp::now();
    let due = Timestamp::from_millis(msg.due);
    if due > now {
        ctx.grace_started(&msg.username, due).await?;
        return Ok(());
    }
    if let Some(offline) = ctx.store.settle_user(&msg.username, now).await? {
        ctx.announce(&offline).await?;
    }
    Ok(())
}
