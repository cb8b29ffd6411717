//! The transaction and retry machinery of presence transitions: a two-item
//! TransactWriteItems whose cancellation is told apart from failure, and a
//! jittered backoff between optimistic attempts.

use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::TransactWriteItemBuilder;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::DynamoStore;
use super::attrs::sdk;
use crate::store::StoreError;

/// Attempts of one transition before giving up with a backend error.
pub(super) const MAX_ATTEMPTS: u32 = 100;

/// The optimistic retries ran out (sustained contention on one user).
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {0}: still contended after {MAX_ATTEMPTS} attempts")]
pub(super) struct Contended(pub(super) &'static str);

/// How a transaction ended, when it did not succeed.
pub(super) enum TxError {
    /// Cancelled: one code per item (`None`, `ConditionalCheckFailed`,
    /// `TransactionConflict`, …), or empty if the service gave none.
    Cancelled(Vec<String>),
    /// Any other failure.
    Failed(StoreError),
}

impl DynamoStore {
    /// Runs a transaction of `first` (the connection's or the account's
    /// write), the presence item's update `counters`, and `also` (a
    /// condition check, e.g. that the session still exists).
    ///
    /// The request carries its own idempotency token. If DynamoDB says a
    /// request with that token is still in progress (the SDK retried one
    /// whose first try had not finished), the identical request is sent
    /// again until DynamoDB reports that first try's real outcome — so a
    /// transition that happened is never mistaken for one that did not.
    pub(super) async fn transact(
        &self,
        first: TransactWriteItemBuilder,
        counters: Update,
        also: Option<TransactWriteItem>,
    ) -> Result<(), TxError> {
        let mut items = vec![
            first.build(),
            TransactWriteItem::builder().update(counters).build(),
        ];
        items.extend(also);
        let request = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(request_token());
        let mut waits = 0;
        loop {
            let Err(e) = request.clone().send().await else {
                return Ok(());
            };
            match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let codes: Vec<String> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_owned())
                        .collect();
                    return if codes.iter().any(|c| c == "ValidationError") {
                        Err(TxError::Failed(sdk("TransactWriteItems", e)))
                    } else {
                        Err(TxError::Cancelled(codes))
                    };
                }
                Some(TransactWriteItemsError::TransactionInProgressException(_))
                    if waits < IN_PROGRESS_WAITS =>
                {
                    waits += 1;
                    tokio::time::sleep(IN_PROGRESS_WAIT).await;
                }
                _ => return Err(TxError::Failed(sdk("TransactWriteItems", e))),
            }
        }
    }
}

/// How often, and how long apart, a transaction still in progress is asked
/// for again (10 s in all; a transaction takes milliseconds).
const IN_PROGRESS_WAITS: u32 = 100;
const IN_PROGRESS_WAIT: Duration = Duration::from_millis(100);

/// A fresh idempotency token (128 random bits, hex; at most 36 characters).
fn request_token() -> String {
    let mut bytes = [0u8; 16];
    crate::security::random::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sleeps a random time in `[0, min(4 ms · 2^attempt, 250 ms)]` (full jitter).
pub(super) async fn backoff(attempt: u32) {
    let cap_ms: u64 = (4u64 << attempt.min(6)).min(250);
    let mut bytes = [0u8; 8];
    crate::security::random::fill(&mut bytes);
    let ms = u64::from_le_bytes(bytes) % (cap_ms + 1);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tokens_are_fresh_and_short_enough() {
        let (a, b) = (request_token(), request_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_bounded() {
        for attempt in [0, 1, 5, 50, u32::MAX] {
            let t = tokio::time::Instant::now();
            backoff(attempt).await;
            assert!(t.elapsed() <= Duration::from_millis(250));
        }
    }
}
