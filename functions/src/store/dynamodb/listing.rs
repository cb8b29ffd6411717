//! Connection listings on DynamoDB: always Queries of the connections
//! table's indexes (paginated), never a Scan.
//!
//! * a session's connections: `by_session`;
//! * the `users` group, a page at a time: `by_group`, shard after shard, the
//!   cursor being `"{shard}:{last id}"` (ids never contain `:`);
//! * expired leases: `by_lease`, shard after shard, `lease_until <= now`;
//! * the online users: the presence table's sparse `by_online`, shard
//!   after shard.
//!
//! Index reads are eventually consistent on DynamoDB: a listing may lag a
//! write by a moment. Nothing depends on it being exact — a pusher meeting a
//! gone connection removes it, and the sweep's removal re-checks the lease
//! on the item itself.

use super::DynamoStore;
use super::attrs::{Item, connection_id, limit, n, s, sdk};
use super::attrs::{opt_n, username};
use super::schema::{
    CONN_ID, CONN_LEASE_UNTIL, CONN_SESSION, CONN_SHARD, GROUP_SHARDS, INDEX_BY_GROUP,
    INDEX_BY_LEASE, INDEX_BY_ONLINE, INDEX_BY_SESSION, PRESENCE_NAME, PRESENCE_ONLINE,
    PRESENCE_SEQ, PRESENCE_SHARDS, shard_value,
};
use crate::domain::{ConnectionId, SessionKey, Timestamp, UserPresence};
use crate::store::{Page, StoreError, StoreResult};

/// A group cursor this backend did not make.
#[derive(Debug, thiserror::Error)]
#[error("malformed group cursor {0:?}")]
struct BadCursor(String);

/// Parses a group cursor `"{shard}:{last id}"`.
fn parse_cursor(cursor: &str) -> StoreResult<(u32, ConnectionId)> {
    let bad = || StoreError::backend(BadCursor(cursor.to_owned()));
    let (raw, id) = cursor.split_once(':').ok_or_else(bad)?;
    let shard: u32 = raw.parse().map_err(|_| bad())?;
    // Only the canonical form this backend writes ("3", not "+3" or "03").
    if shard >= GROUP_SHARDS || shard.to_string() != raw {
        return Err(bad());
    }
    let id = ConnectionId::parse(id).map_err(|_| bad())?;
    Ok((shard, id))
}

/// Makes a group cursor.
fn make_cursor(shard: u32, id: &ConnectionId) -> String {
    format!("{shard}:{id}")
}

/// The key, present and non-empty, to continue a paginated request from.
fn continue_from(key: Option<&Item>) -> Option<Item> {
    key.filter(|k| !k.is_empty()).cloned()
}

impl DynamoStore {
    /// Query `by_session`, every page; sorted by id.
    pub(super) async fn by_session(&self, key: &SessionKey) -> StoreResult<Vec<ConnectionId>> {
        let table = &self.tables.connections;
        let mut ids = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .index_name(INDEX_BY_SESSION)
                .key_condition_expression("#session = :session")
                .expression_attribute_names("#session", CONN_SESSION)
                .expression_attribute_values(":session", s(key.as_str()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk("Query", e))?;
            for item in out.items() {
                ids.push(connection_id(item, CONN_ID, table)?);
            }
            start = continue_from(out.last_evaluated_key());
            if start.is_none() {
                break;
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Query `by_group` from the cursor on, shard after shard, for one item
    /// more than `max` (to know whether another page follows).
    pub(super) async fn group_page(
        &self,
        cursor: Option<&str>,
        max: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        let (mut shard, mut after) = match cursor {
            Some(c) => {
                let (shard, id) = parse_cursor(c)?;
                (shard, Some(id))
            }
            None => (0, None),
        };
        let want = max.saturating_add(1);
        let mut found: Vec<(u32, ConnectionId)> = Vec::new();
        while shard < GROUP_SHARDS && found.len() < want {
            let ids = self
                .group_members(shard, after.take(), want - found.len())
                .await?;
            found.extend(ids.into_iter().map(|id| (shard, id)));
            shard += 1;
        }
        let next = if found.len() > max {
            found.truncate(max);
            found.last().map(|(shard, id)| make_cursor(*shard, id))
        } else {
            None
        };
        Ok(Page {
            items: found.into_iter().map(|(_, id)| id).collect(),
            next,
        })
    }

    /// Up to `want` members of group shard `shard` after `after`, in id
    /// order: `Query` of `by_group`, following DynamoDB's pages.
    async fn group_members(
        &self,
        shard: u32,
        after: Option<ConnectionId>,
        want: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        let table = &self.tables.connections;
        let value = shard_value(shard);
        let mut start = after.map(|id| {
            Item::from([
                (CONN_SHARD.to_owned(), s(&value)),
                (CONN_ID.to_owned(), s(id.as_str())),
            ])
        });
        let mut found = Vec::new();
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .index_name(INDEX_BY_GROUP)
                .key_condition_expression("#shard = :shard")
                .expression_attribute_names("#shard", CONN_SHARD)
                .expression_attribute_values(":shard", s(&value))
                .limit(limit(want - found.len()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk("Query", e))?;
            for item in out.items() {
                found.push(connection_id(item, CONN_ID, table)?);
            }
            start = continue_from(out.last_evaluated_key());
            if start.is_none() || found.len() >= want {
                return Ok(found);
            }
        }
    }

    /// Query `by_online` shard after shard: every online user, sorted.
    pub(super) async fn online(&self) -> StoreResult<Vec<UserPresence>> {
        let table = &self.tables.presence;
        let mut users = Vec::new();
        for shard in 0..PRESENCE_SHARDS {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(table)
                    .index_name(INDEX_BY_ONLINE)
                    .key_condition_expression("#online = :online")
                    .expression_attribute_names("#online", PRESENCE_ONLINE)
                    .expression_attribute_values(":online", s(format!("online#{shard}")))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| sdk("Query", e))?;
                for item in out.items() {
                    let seq = opt_n(item, PRESENCE_SEQ, table)?.unwrap_or(0);
                    let user = UserPresence::at(username(item, PRESENCE_NAME, table)?, seq);
                    // The index lags the table a little: only the online.
                    if user.is_logged_in {
                        users.push(user);
                    }
                }
                start = continue_from(out.last_evaluated_key());
                if start.is_none() {
                    break;
                }
            }
        }
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    /// Query `by_group` for one shard from the cursor (the last id of the
    /// previous page) on.
    pub(super) async fn shard_page(
        &self,
        shard: u32,
        cursor: Option<&str>,
        max: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        if shard >= GROUP_SHARDS {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let after = match cursor {
            Some(c) => Some(
                ConnectionId::parse(c).map_err(|_| StoreError::backend(BadCursor(c.to_owned())))?,
            ),
            None => None,
        };
        let mut found = self
            .group_members(shard, after, max.saturating_add(1))
            .await?;
        let next = if found.len() > max {
            found.truncate(max);
            found.last().map(|id| id.as_str().to_owned())
        } else {
            None
        };
        Ok(Page { items: found, next })
    }

    /// Query `by_lease` (`lease_until <= now`) shard after shard, up to `max`.
    pub(super) async fn expired(
        &self,
        now: Timestamp,
        max: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        let table = &self.tables.connections;
        let mut ids = Vec::new();
        for shard in 0..GROUP_SHARDS {
            let mut start: Option<Item> = None;
            while ids.len() < max {
                let out = self
                    .client
                    .query()
                    .table_name(table)
                    .index_name(INDEX_BY_LEASE)
                    .key_condition_expression("#shard = :shard AND #lease <= :now")
                    .expression_attribute_names("#shard", CONN_SHARD)
                    .expression_attribute_names("#lease", CONN_LEASE_UNTIL)
                    .expression_attribute_values(":shard", s(shard_value(shard)))
                    .expression_attribute_values(":now", n(now.as_millis()))
                    .limit(limit(max - ids.len()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| sdk("Query", e))?;
                for item in out.items() {
                    ids.push(connection_id(item, CONN_ID, table)?);
                }
                start = continue_from(out.last_evaluated_key());
                if start.is_none() {
                    break;
                }
            }
            if ids.len() >= max {
                break;
            }
        }
        ids.truncate(max);
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let id = ConnectionId::parse("L0SM9cOFvHcCIhw=").unwrap();
        let c = make_cursor(3, &id);
        assert_eq!(c, "3:L0SM9cOFvHcCIhw=");
        assert_eq!(parse_cursor(&c).unwrap(), (3, id));
        let local = ConnectionId::generate();
        assert_eq!(
            parse_cursor(&make_cursor(7, &local)).unwrap(),
            (7, local.clone())
        );
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for bad in [
            "", "3", "3:", ":abc", "8:abc", "-1:abc", "x:abc", "3:a b", "3:a:b", "+3:abc",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
