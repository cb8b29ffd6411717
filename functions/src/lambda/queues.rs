//! The adapters of the functions behind event source mappings: `fanout`
//! (the presence table's DynamoDB stream), `push` (the push FIFO queue) and
//! `settle` (the settle queue), in the event shapes Lambda hands over, with
//! partial batch responses (`ReportBatchItemFailures`) so a failed record or
//! message — and only it and what follows it in order — is retried.

use lambda_http::{Error, LambdaEvent};
use serde_json::{Value, json};

use crate::context::AppContext;
use crate::domain::LogEvent;
use crate::handlers::fanout;
use crate::queue::{PushMessage, QueueName, RetryLater, SettleMessage, retry_backoff};
use crate::store::dynamodb::records::stream_entries;

/// `fanout`: queues every transition and sign-up of a stream batch for
/// every group shard. On a failure, the batch item failure names that
/// record, so it and the records after it (in order) are retried.
pub async fn fanout(ctx: &AppContext, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let entries = stream_entries(&event.payload);
    let events: Vec<LogEvent> = entries.iter().map(|(_, e)| e.clone()).collect();
    match fanout::queue_log(ctx, &events).await {
        Ok(()) => Ok(json!({ "batchItemFailures": [] })),
        Err((i, e)) => {
            tracing::error!(error = %e, "could not queue a stream record; it will be retried");
            let id = entries.get(i).and_then(|(seq, _)| seq.clone());
            Ok(json!({ "batchItemFailures": [{ "itemIdentifier": id }] }))
        }
    }
}

/// `push`: posts each message's event to its shard. A message that cannot
/// be read is dropped (logged); one that fails is reported, with the rest
/// of the batch after it (a FIFO queue keeps them in order).
pub async fn push(ctx: &AppContext, event: LambdaEvent<Value>) -> Result<Value, Error> {
    each_message(ctx, QueueName::Push, event.payload, |body| async move {
        let msg: PushMessage = serde_json::from_str(&body)?;
        fanout::push(ctx, &msg).await?;
        Ok(())
    })
    .await
}

/// `settle`: ends the grace period each message names.
pub async fn settle(ctx: &AppContext, event: LambdaEvent<Value>) -> Result<Value, Error> {
    each_message(ctx, QueueName::Settle, event.payload, |body| async move {
        let msg: SettleMessage = serde_json::from_str(&body)?;
        fanout::settle(ctx, &msg).await?;
        Ok(())
    })
    .await
}

/// Runs `handle` on each SQS message body in order; from the first one
/// that fails on, every message is reported as a batch item failure, and
/// made visible again after [`retry_backoff`] of its receive count (1, 2,
/// 4 … s) rather than the queue's visibility timeout, which on the FIFO
/// queue would hold its shard's later events back for minutes. If that
/// call fails the timeout applies: later, never lost.
async fn each_message<F, Fut>(
    ctx: &AppContext,
    queue: QueueName,
    event: Value,
    handle: F,
) -> Result<Value, Error>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    let mut failed = Vec::new();
    let mut retries = Vec::new();
    for r in records {
        let id = r["messageId"].as_str().unwrap_or_default().to_owned();
        let retry = || RetryLater {
            receipt: r["receiptHandle"].as_str().unwrap_or_default().to_owned(),
            after: retry_backoff(
                r["attributes"]["ApproximateReceiveCount"]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            ),
        };
        if !failed.is_empty() {
            failed.push(id);
            retries.push(retry());
            continue;
        }
        let body = r["body"].as_str().unwrap_or_default().to_owned();
        if serde_json::from_str::<Value>(&body).is_err() {
            tracing::warn!(message = %id, "dropping an unreadable message");
            continue;
        }
        if let Err(e) = handle(body).await {
            tracing::error!(message = %id, error = %e, "message failed; it will be retried");
            failed.push(id);
            retries.push(retry());
        }
    }
    if let Some(queues) = &ctx.queues
        && !retries.is_empty()
        && let Err(e) = queues.retry_later(queue, &retries).await
    {
        tracing::warn!(error = %e, "could not shorten the failed messages' visibility");
    }
    let failures: Vec<Value> = failed
        .into_iter()
        .map(|id| json!({ "itemIdentifier": id }))
        .collect();
    Ok(json!({ "batchItemFailures": failures }))
}
