//! Connection items and their leases: the consistent read of one, lease
//! extension (never shortening) and batch renewal.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use futures_util::{StreamExt, TryStreamExt, stream};

use super::DynamoStore;
use super::attrs::{Item, n, s, sdk, ttl_secs};
use super::schema::{CONN_ID, CONN_LEASE_UNTIL, CONN_SESSION_ENDS, CONN_TTL_BACKSTOP, TTL};
use crate::domain::{ConnectionId, Timestamp};
use crate::store::StoreResult;

/// Lease renewals in flight at once.
const RENEW_CONCURRENCY: usize = 16;

/// A connection's TTL: its lease end plus [`CONN_TTL_BACKSTOP`], in seconds.
pub(super) fn conn_ttl(lease_until: Timestamp) -> u64 {
    ttl_secs(lease_until.plus(CONN_TTL_BACKSTOP))
}

/// What one conditional lease write did.
enum Extended {
    Done,
    Missing,
    /// Its condition failed on this item.
    Refused(Item),
}

impl DynamoStore {
    /// The connection item, read consistently.
    pub(super) async fn connection(&self, id: &ConnectionId) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.connections)
            .key(CONN_ID, s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        Ok(out.item.filter(|i| !i.is_empty()))
    }

    /// Moves a registered connection's lease to `until` if that is later,
    /// but not past its session's end: one conditional write, and a second
    /// only in the last lease before the session ends (the first's
    /// condition fails and returns the item, whose end it then moves the
    /// lease to). Returns `false` if `id` is not registered.
    pub(super) async fn extend_lease(
        &self,
        id: &ConnectionId,
        until: Timestamp,
    ) -> StoreResult<bool> {
        match self.try_extend_lease(id, until).await? {
            Extended::Done => Ok(true),
            Extended::Missing => Ok(false),
            Extended::Refused(item) => {
                let millis = |name| {
                    item.get(name)
                        .and_then(|v: &aws_sdk_dynamodb::types::AttributeValue| v.as_n().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Timestamp::from_millis)
                };
                let (ends, lease) = (millis(CONN_SESSION_ENDS), millis(CONN_LEASE_UNTIL));
                match ends {
                    // The session ends first: up to its end, unless the
                    // lease is there already.
                    Some(ends) if ends < until && lease.is_none_or(|l| l < ends) => Ok(!matches!(
                        self.try_extend_lease(id, ends).await?,
                        Extended::Missing
                    )),
                    // A later lease already (or an item from before session
                    // ends were kept).
                    _ => Ok(true),
                }
            }
        }
    }

    async fn try_extend_lease(&self, id: &ConnectionId, until: Timestamp) -> StoreResult<Extended> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key(CONN_ID, s(id.as_str()))
            .update_expression("SET #lease = :until, #ttl = :ttl")
            .condition_expression(
                "attribute_exists(#id) AND #lease < :until \
                 AND (attribute_not_exists(#ends) OR #ends >= :until)",
            )
            .expression_attribute_names("#id", CONN_ID)
            .expression_attribute_names("#lease", CONN_LEASE_UNTIL)
            .expression_attribute_names("#ends", CONN_SESSION_ENDS)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":until", n(until.as_millis()))
            .expression_attribute_values(":ttl", n(conn_ttl(until)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Extended::Done),
            Err(e) => match e.as_service_error() {
                // Registered with a later lease or a session ending first
                // (the old item comes back), or not registered at all (no
                // item).
                Some(UpdateItemError::ConditionalCheckFailedException(f)) => Ok(match f.item() {
                    Some(i) if !i.is_empty() => Extended::Refused(i.clone()),
                    _ => Extended::Missing,
                }),
                _ => Err(sdk("UpdateItem", e)),
            },
        }
    }

    /// One conditional UpdateItem per id, [`RENEW_CONCURRENCY`] at a time.
    pub(super) async fn renew(
        &self,
        ids: &[ConnectionId],
        until: Timestamp,
    ) -> StoreResult<Vec<ConnectionId>> {
        // The futures are made up front: a closure inside the stream would
        // make the future returned through `async_trait` not `Send`-general.
        let renewals: Vec<_> = ids.iter().map(|id| self.extend_lease(id, until)).collect();
        let found: Vec<bool> = stream::iter(renewals)
            .buffered(RENEW_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(ids
            .iter()
            .zip(found)
            .filter(|(_, found)| !found)
            .map(|(id, _)| id.clone())
            .collect())
    }
}
