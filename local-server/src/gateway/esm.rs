//! Event source mappings, as Lambda runs them: the presence table's stream
//! feeds `fanout`, the push FIFO queue feeds `push` (several pollers at
//! once, as Lambda scales; the FIFO queue hands out one message group at a
//! time, so each shard stays in order), the settle queue feeds `settle`.
//! Each batch is handed over in the event shape Lambda uses, and the
//! function's partial batch response decides what is retried: queue
//! messages not reported as failures are deleted; a stream record reported
//! is read again, with those after it.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use lambda_http::{Context, LambdaEvent};
use rollcall::store::LogCursor;
use rollcall::store::dynamodb::DynamoStore;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::stats::FUNCTION;

/// Stream records per `fanout` invocation (Lambda's batch size).
const STREAM_BATCH: usize = 100;
/// Messages per `push`/`settle` invocation (SQS's most per receive).
const QUEUE_BATCH: i32 = 10;
/// How long an idle queue poller waits before asking again. Lambda long-
/// polls; the stand-in asks again (short polls), because the tests' moto
/// serves one request at a time and a long poll would hold it.
const QUEUE_IDLE: Duration = Duration::from_millis(100);
/// How often the stream is read when it had nothing.
const STREAM_POLL: Duration = Duration::from_millis(200);

/// Where the event source mappings read from.
#[derive(Debug, Clone)]
pub struct EventSources {
    /// SQS (the emulator's).
    pub sqs: Sqs,
    /// The push FIFO queue.
    pub push_url: String,
    /// The settle queue.
    pub settle_url: String,
    /// The presence table whose stream feeds `fanout` (DynamoDB only).
    pub stream: Option<DynamoStore>,
    /// `push` pollers at once.
    pub push_pollers: usize,
}

/// How long a received message stays hidden (the template's: 360 s for
/// `push.fifo`, 180 s for `settle`). A failed message comes back sooner
/// anyway (the functions' `retry_later`); this applies when that call
/// fails too, and is shorter here so a test then waits seconds, not
/// minutes. Long enough for the benches' largest batch.
const VISIBILITY_SECS: &str = "10";

/// Creates (or finds) the two queues named after `prefix` and returns
/// their URLs: `{prefix}push.fifo` (FIFO, no content-based deduplication:
/// the functions give ids) and `{prefix}settle`.
pub async fn create_queues(sqs: &Sqs, prefix: &str) -> Result<(String, String), String> {
    let fifo = sqs
        .create_queue()
        .queue_name(format!("{prefix}push.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::VisibilityTimeout, VISIBILITY_SECS)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    let settle = sqs
        .create_queue()
        .queue_name(format!("{prefix}settle"))
        .attributes(QueueAttributeName::VisibilityTimeout, VISIBILITY_SECS)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    Ok((
        fifo.queue_url().unwrap_or_default().to_owned(),
        settle.queue_url().unwrap_or_default().to_owned(),
    ))
}

/// Starts the mappings until `stop` (the stream's from its end now).
pub(super) async fn start(gw: &Arc<Gateway>, sources: &EventSources, stop: &CancellationToken) {
    for _ in 0..sources.push_pollers.max(1) {
        let (gw, sqs, url, stop) = (
            gw.clone(),
            sources.sqs.clone(),
            sources.push_url.clone(),
            stop.clone(),
        );
        tokio::spawn(async move { poll_queue(gw, sqs, url, Kind::Push, stop).await });
    }
    let (g, sqs, url, s) = (
        gw.clone(),
        sources.sqs.clone(),
        sources.settle_url.clone(),
        stop.clone(),
    );
    tokio::spawn(async move { poll_queue(g, sqs, url, Kind::Settle, s).await });
    if let Some(store) = sources.stream.clone() {
        let start = match store.stream_position().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "stream: no position yet");
                None
            }
        };
        let (g, s) = (gw.clone(), stop.clone());
        tokio::spawn(async move { poll_stream(g, store, start, s).await });
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Push,
    Settle,
}

/// The SQS event of received messages.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message], arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The ids a partial batch response reports as failed.
fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|i| i["itemIdentifier"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn poll_queue(gw: Arc<Gateway>, sqs: Sqs, url: String, kind: Kind, stop: CancellationToken) {
    let arn = format!(
        "arn:aws:sqs:us-east-1:000000000000:{}",
        url.rsplit('/').next().unwrap_or_default()
    );
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            r = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(QUEUE_BATCH)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send() => r,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "queue poll failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(QUEUE_IDLE) => {}
            }
            continue;
        }
        let event = LambdaEvent::new(sqs_event(&messages, &arn), Context::default());
        let ctx = &gw.ctx;
        let response = match kind {
            Kind::Push => {
                let r = FUNCTION
                    .scope("push", rollcall::lambda::push(ctx, event))
                    .await;
                gw.stats.count(|c| &c.push, 1);
                r
            }
            Kind::Settle => {
                let r = FUNCTION
                    .scope("settle", rollcall::lambda::settle(ctx, event))
                    .await;
                gw.stats.count(|c| &c.settle, 1);
                r
            }
        };
        let failed = match response {
            Ok(r) => failures(&r),
            // The whole batch failed: everything comes back.
            Err(e) => {
                tracing::error!(error = %e, "a queue batch failed");
                continue;
            }
        };
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
            .filter_map(|m| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(m.message_id().unwrap_or_default())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        if !done.is_empty()
            && let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(done))
                .send()
                .await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not delete handled messages");
        }
    }
}

async fn poll_stream(
    gw: Arc<Gateway>,
    store: DynamoStore,
    start: Option<LogCursor>,
    stop: CancellationToken,
) {
    let mut cursor = start;
    // Records handed over but reported failed: tried again first.
    let mut pending: Vec<Value> = Vec::new();
    loop {
        let position = match &cursor {
            Some(c) => c.clone(),
            None => match store.stream_position().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "stream: no position yet");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let read = store.stream_records(&position, STREAM_BATCH).await;
        match read {
            Ok(Some((records, next))) => {
                tracing::debug!(records = records.len(), "stream read");
                pending.extend(records);
                cursor = Some(next);
            }
            Ok(None) => {
                tracing::warn!("stream: records trimmed past the reader; starting at the end");
                cursor = None;
            }
            Err(e) => tracing::warn!(error = %e, "stream read failed"),
        }
        if pending.is_empty() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(STREAM_POLL) => {}
            }
            continue;
        }
        let batch: Vec<Value> = pending.drain(..pending.len().min(STREAM_BATCH)).collect();
        let event = LambdaEvent::new(json!({ "Records": batch.clone() }), Context::default());
        let response = FUNCTION
            .scope("fanout", rollcall::lambda::fanout(&gw.ctx, event))
            .await;
        gw.stats.count(|c| &c.fanout, 1);
        tracing::debug!(records = batch.len(), response = ?response.as_ref().ok(), "fanout");
        let failed = match response {
            Ok(r) => failures(&r).into_iter().next(),
            Err(e) => {
                tracing::error!(error = %e, "fanout failed");
                batch[0]["dynamodb"]["SequenceNumber"]
                    .as_str()
                    .map(str::to_owned)
            }
        };
        if let Some(seq) = failed {
            // That record and those after it, again (Lambda's bisect-free
            // retry with a partial batch response).
            let from = batch
                .iter()
                .position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(&seq))
                .unwrap_or(0);
            let mut again: Vec<Value> = batch[from..].to_vec();
            again.append(&mut pending);
            pending = again;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
