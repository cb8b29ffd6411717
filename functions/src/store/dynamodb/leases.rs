//! Connection items and their leases: the consistent read of one, lease
//! extension (never shortening) and batch renewal.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use futures_util::{StreamExt, TryStreamExt, stream};

use super::DynamoStore;
use super::attrs::{Item, n, s, sdk, ttl_secs};
use super::schema::{CONN_ID, CONN_LEASE_UNTIL, CONN_TTL_BACKSTOP, TTL};
use crate::domain::{ConnectionId, Timestamp};
use crate::store::StoreResult;

/// Lease renewals in flight at once.
const RENEW_CONCURRENCY: usize = 16;

/// A connection's TTL: its lease end plus [`CONN_TTL_BACKSTOP`], in seconds.
pub(super) fn conn_ttl(lease_until: Timestamp) -> u64 {
    ttl_secs(lease_until.plus(CONN_TTL_BACKSTOP))
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

    /// Moves a registered connection's lease to `until` if that is later.
    /// Returns `false` if `id` is not registered.
    pub(super) async fn extend_lease(
        &self,
        id: &ConnectionId,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key(CONN_ID, s(id.as_str()))
            .update_expression("SET #lease = :until, #ttl = :ttl")
            .condition_expression("attribute_exists(#id) AND #lease < :until")
            .expression_attribute_names("#id", CONN_ID)
            .expression_attribute_names("#lease", CONN_LEASE_UNTIL)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":until", n(until.as_millis()))
            .expression_attribute_values(":ttl", n(conn_ttl(until)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                // Registered with a later lease (the old item comes back), or
                // not registered at all (no item).
                Some(UpdateItemError::ConditionalCheckFailedException(f)) => {
                    Ok(f.item().is_some_and(|i| !i.is_empty()))
                }
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
