//! Attribute-value helpers and error mapping shared by the DynamoDB modules.
//!
//! Items are `HashMap<String, AttributeValue>`; these helpers build the
//! values this backend writes (`S` strings, `N` whole numbers) and read them
//! back, turning anything unexpected into a [`StoreError::Backend`] that
//! names the table and attribute.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{ConnectionId, SessionKey, Timestamp, Username};
use crate::store::{StoreError, StoreResult};

/// One DynamoDB item.
pub(super) type Item = HashMap<String, AttributeValue>;

/// A string attribute value.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute value.
pub(super) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A DynamoDB call failed (network, throttling, validation, a missing
/// table…). The text carries the SDK's whole error chain.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {op} failed: {detail}")]
pub(super) struct SdkFailure {
    op: &'static str,
    detail: String,
}

/// Service error codes that mean "not now" rather than "no".
const NOT_NOW: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
];

/// Maps an SDK error of operation `op` to [`StoreError::Unavailable`] when
/// DynamoDB could not be reached or answered in time, or throttled (after
/// the SDK's own retries), else to [`StoreError::Backend`].
pub(crate) fn sdk<E, R>(op: &'static str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let down = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(s) => s.err().code().is_some_and(|c| NOT_NOW.contains(&c)),
        _ => false,
    };
    let failure = SdkFailure {
        op,
        detail: DisplayErrorContext(&e).to_string(),
    };
    if down {
        StoreError::unavailable(failure)
    } else {
        StoreError::backend(failure)
    }
}

/// A request could not be built (a required field is missing: a bug).
pub(super) fn build(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::backend(e)
}

/// An item holds something this backend never writes.
#[derive(Debug, thiserror::Error)]
#[error("unexpected item in DynamoDB table {table}: {what}")]
pub(super) struct Corrupt {
    table: String,
    what: String,
}

/// [`Corrupt`] as a store error.
pub(super) fn corrupt(table: &str, what: impl Into<String>) -> StoreError {
    StoreError::backend(Corrupt {
        table: table.to_owned(),
        what: what.into(),
    })
}

/// The string attribute `name`, if present (and a string).
pub(super) fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// The string attribute `name`; an error naming `table` if absent.
pub(super) fn req_s<'a>(item: &'a Item, name: &str, table: &str) -> StoreResult<&'a str> {
    opt_s(item, name).ok_or_else(|| corrupt(table, format!("no string attribute {name:?}")))
}

/// The whole-number attribute `name`, if present; an error if it is not one.
pub(super) fn opt_n(item: &Item, name: &str, table: &str) -> StoreResult<Option<u64>> {
    match item.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|raw| raw.parse().ok())
            .map(Some)
            .ok_or_else(|| corrupt(table, format!("{name:?} is not a whole number"))),
    }
}

/// The whole-number attribute `name`; an error if absent.
pub(super) fn req_n(item: &Item, name: &str, table: &str) -> StoreResult<u64> {
    opt_n(item, name, table)?.ok_or_else(|| corrupt(table, format!("no number attribute {name:?}")))
}

/// A stored username.
pub(super) fn username(item: &Item, name: &str, table: &str) -> StoreResult<Username> {
    let raw = req_s(item, name, table)?;
    Username::parse(raw).map_err(|_| corrupt(table, format!("{name:?} is not a username")))
}

/// A stored session key.
pub(super) fn session_key(item: &Item, name: &str, table: &str) -> StoreResult<SessionKey> {
    let raw = req_s(item, name, table)?;
    SessionKey::parse(raw).ok_or_else(|| corrupt(table, format!("{name:?} is not a session key")))
}

/// A stored connection id.
pub(super) fn connection_id(item: &Item, name: &str, table: &str) -> StoreResult<ConnectionId> {
    let raw = req_s(item, name, table)?;
    ConnectionId::parse(raw).map_err(|_| corrupt(table, format!("{name:?} is not a connection id")))
}

/// A stored millisecond timestamp.
pub(super) fn timestamp(item: &Item, name: &str, table: &str) -> StoreResult<Timestamp> {
    req_n(item, name, table).map(Timestamp::from_millis)
}

/// Epoch seconds for a TTL attribute, rounded up so an item is never
/// eligible for deletion before `t`.
pub(super) fn ttl_secs(t: Timestamp) -> u64 {
    t.as_millis().div_ceil(1000)
}

/// A limit for a DynamoDB request (`i32`), saturating.
pub(super) fn limit(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_junk_is_an_error() {
        let mut item = Item::new();
        item.insert("a".into(), n(42));
        item.insert("b".into(), s("x"));
        item.insert("c".into(), AttributeValue::N("1.5".into()));
        assert_eq!(opt_n(&item, "a", "t").unwrap(), Some(42));
        assert_eq!(opt_n(&item, "missing", "t").unwrap(), None);
        assert!(opt_n(&item, "b", "t").is_err());
        assert!(opt_n(&item, "c", "t").is_err());
        assert!(req_n(&item, "missing", "t").is_err());
        assert_eq!(opt_s(&item, "b"), Some("x"));
        assert_eq!(opt_s(&item, "a"), None);
    }

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_secs(Timestamp::from_millis(1_000)), 1);
        assert_eq!(ttl_secs(Timestamp::from_millis(1_001)), 2);
        assert_eq!(limit(0), 1);
        assert_eq!(limit(usize::MAX), i32::MAX);
    }
}
