//! Pending offlines on DynamoDB: the sparse `by_pending` index lists the
//! users whose last connection closed with a grace period, by due time;
//! settling takes each one offline with a conditional update (a connection
//! back, or another process settling first, makes it a no-op).

use super::DynamoStore;
use super::attrs::{Item, limit, n, s, sdk, username};
use super::schema::{
    INDEX_BY_PENDING, PRESENCE_NAME, PRESENCE_OFFLINE_AT, PRESENCE_PENDING, PRESENCE_SHARDS,
};
use crate::domain::{PresenceEvent, Timestamp, Username};
use crate::store::StoreResult;

impl DynamoStore {
    /// Takes offline up to `max` users whose grace ended at or before `now`.
    pub(super) async fn settle(
        &self,
        now: Timestamp,
        max: usize,
    ) -> StoreResult<Vec<PresenceEvent>> {
        let mut events = Vec::new();
        for user in self.due(now, max).await? {
            // The index lags the table a little: the update re-checks.
            events.extend(self.take_offline(&user, Some(now)).await?);
        }
        Ok(events)
    }

    /// Up to `max` users of `by_pending` due at or before `now`.
    async fn due(&self, now: Timestamp, max: usize) -> StoreResult<Vec<Username>> {
        let table = &self.tables.presence;
        let mut users = Vec::new();
        for shard in 0..PRESENCE_SHARDS {
            let mut start: Option<Item> = None;
            while users.len() < max {
                let out = self
                    .client
                    .query()
                    .table_name(table)
                    .index_name(INDEX_BY_PENDING)
                    .key_condition_expression("#pending = :pending AND #at <= :now")
                    .expression_attribute_names("#pending", PRESENCE_PENDING)
                    .expression_attribute_names("#at", PRESENCE_OFFLINE_AT)
                    .expression_attribute_values(":pending", s(format!("pending#{shard}")))
                    .expression_attribute_values(":now", n(now.as_millis()))
                    .limit(limit(max - users.len()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| sdk("Query", e))?;
                for item in out.items() {
                    users.push(username(item, PRESENCE_NAME, table)?);
                }
                start = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
                if start.is_none() {
                    break;
                }
            }
        }
        users.truncate(max);
        Ok(users)
    }
}
