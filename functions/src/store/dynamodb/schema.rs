//! The DynamoDB schema: table keys, attribute names, indexes, streams and
//! TTL, as constants the code and the AWS templates share, and
//! [`create_tables`].
//!
//! | table | key | attributes | indexes | TTL |
//! |---|---|---|---|---|
//! | users | `username` (S) | `password_hash` (S), `created_at` (N, ms); the item `#count`: `users` (N, how many accounts) | — | — |
//! | presence | `username` (S) | `conns` (N, open connections), `seq` (N, transitions so far; odd: online), `online` (S, `online#N`, only while online), `offline_at` (N, ms) and `pending` (S, `pending#N`), only while an offline waits for its grace, `last_seen` (N, ms, when they last went offline), `dir` (S, `users`) and `created_at` (N, ms), once the account exists | `by_name` (`dir`, `username`; + `seq`, `last_seen`), `by_created` (`dir`, `created_at`), `by_online` (`online`, `username`; + `seq`), `by_pending` (`pending`, `offline_at`) | — |
//! | sessions | `key` (S, the [`SessionKey`](crate::domain::SessionKey) hex; a socket ticket's: `ticket#` and the ticket's hash) | `username` (S), `expires_at` (N, ms), `ttl` (N, epoch s); a ticket: `session` (S), `expires_at`, `ttl` | — | `ttl` |
//! | connections | `id` (S) | `username` (S), `session` (S), `lease_until` (N, ms), `shard` (S, `users#N`), `ttl` (N, epoch s) | `by_group` (`shard` S, `id` S), `by_session` (`session` S, `id` S), `by_lease` (`shard` S, `lease_until` N) | `ttl` |
//!
//! Every table is on-demand (`PAY_PER_REQUEST`); indexes project keys only
//! unless a `+` above says which attribute they add. The presence table
//! keeps no secret: its **stream** (new and old images) is the event log —
//! a change of `seq` is a presence transition, `dir` appearing is a
//! sign-up. The `online` and `pending` attributes exist only while they
//! mean something, so those indexes hold the online users and the pending
//! offlines only (sparse indexes): listing who is online costs O(online),
//! never a read of every user. Both are spread over [`PRESENCE_SHARDS`]
//! partitions by [`user_shard`].
//!
//! The `users` group is spread over [`GROUP_SHARDS`] index partitions:
//! `shard` is `users#N` with `N` = [`shard_of`] the connection id, so no
//! single index partition takes every write; group listing and the sweep
//! query each shard in turn (never a Scan of the connections table).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::attrs::{build, sdk};
use crate::config::Tables;
use crate::domain::{ConnectionId, Username};
use crate::store::{StoreError, StoreResult};

/// Users table: partition key (S), the normalised username.
pub const USER_NAME: &str = "username";
/// Users table: Argon2id PHC string (S).
pub const USER_PASSWORD_HASH: &str = "password_hash";
/// Users table: account creation time (N, ms since the epoch).
pub const USER_CREATED_AT: &str = "created_at";
/// Users table: the key of the one item that counts the accounts (no
/// username has a `#`), with [`USER_COUNT`].
pub const USER_COUNT_KEY: &str = "#count";
/// Users table, the count's item: how many accounts exist (N), added to in
/// each sign-up's own transaction.
pub const USER_COUNT: &str = "users";

/// Presence table: partition key (S), the normalised username.
pub const PRESENCE_NAME: &str = "username";
/// Presence table: the user's open connections (N).
pub const PRESENCE_CONNS: &str = "conns";
/// Presence table: the user's presence transitions so far (N; odd: online).
pub const PRESENCE_SEQ: &str = "seq";
/// Presence table: `online#N` (S) while the user is online (index `by_online`).
pub const PRESENCE_ONLINE: &str = "online";
/// Presence table: `pending#N` (S) while an offline waits for its grace
/// (index `by_pending`).
pub const PRESENCE_PENDING: &str = "pending";
/// Presence table: when the pending offline is due (N, ms).
pub const PRESENCE_OFFLINE_AT: &str = "offline_at";
/// Presence table: when the user last went offline (N, ms; "last seen"),
/// set by the offline transition's own write.
pub const PRESENCE_LAST_SEEN: &str = "last_seen";
/// Presence table: [`DIRECTORY`] (S) once the account exists (indexes
/// `by_name`, `by_created`).
pub const PRESENCE_DIR: &str = "dir";
/// Presence table: account creation time (N, ms), with `dir`.
pub const PRESENCE_CREATED_AT: &str = "created_at";
/// The one value of `dir`.
pub const DIRECTORY: &str = "users";

/// Presence index: every user by name, with `seq` and `last_seen`.
pub const INDEX_BY_NAME: &str = "by_name";
/// Presence index: every user by creation time.
pub const INDEX_BY_CREATED: &str = "by_created";
/// Presence index: the online users by shard then name, with `seq`.
pub const INDEX_BY_ONLINE: &str = "by_online";
/// Presence index: the pending offlines by shard then due time.
pub const INDEX_BY_PENDING: &str = "by_pending";
/// Partitions the online and pending indexes are spread over.
pub const PRESENCE_SHARDS: u32 = 8;

/// Sessions table: partition key (S), the session key (hash of the token) in hex.
pub const SESSION_KEY: &str = "key";
/// Sessions table: whose session (S).
pub const SESSION_USERNAME: &str = "username";
/// Sessions table: end of validity (N, ms); checked on every read.
pub const SESSION_EXPIRES_AT: &str = "expires_at";
/// Sessions table: a socket ticket's item is [`SESSION_KEY`] = this prefix
/// and the ticket's hash (hex), with [`TICKET_SESSION`],
/// [`SESSION_EXPIRES_AT`] and [`TTL`]; no session key has a `#`.
pub const TICKET_PREFIX: &str = "ticket#";
/// Sessions table, a ticket's item: the session key it opens a socket for (S).
pub const TICKET_SESSION: &str = "session";

/// Connections table: partition key (S), the connection id.
pub const CONN_ID: &str = "id";
/// Connections table: the connection's user (S).
pub const CONN_USERNAME: &str = "username";
/// Connections table: the session it authenticated with (S).
pub const CONN_SESSION: &str = "session";
/// Connections table: lease end (N, ms).
pub const CONN_LEASE_UNTIL: &str = "lease_until";
/// Connections table: when its session ends (N, ms): renewals stop there.
pub const CONN_SESSION_ENDS: &str = "session_ends";
/// Connections table: group shard (S), `users#N`; see [`shard_of`].
pub const CONN_SHARD: &str = "shard";

/// Sessions and connections tables: TTL attribute (N, epoch seconds).
pub const TTL: &str = "ttl";
/// How long after its lease end a connection item's TTL falls: a backstop
/// only — the sweep removes expired connections (and uncounts them) long
/// before.
pub const CONN_TTL_BACKSTOP: Duration = Duration::from_secs(24 * 3600);

/// Connections index: the `users` group, by shard then id.
pub const INDEX_BY_GROUP: &str = "by_group";
/// Connections index: connections of one session, by id.
pub const INDEX_BY_SESSION: &str = "by_session";
/// Connections index: by shard then lease end, for the sweep.
pub const INDEX_BY_LEASE: &str = "by_lease";

/// The group every connection belongs to.
pub const GROUP: &str = "users";
/// Index partitions the group is spread over.
pub const GROUP_SHARDS: u32 = 8;

/// How long [`create_tables`] waits for the tables to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// 32-bit FNV-1a: stable across processes, builds and versions (shards
/// are stored), unlike `std`'s hasher.
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The shard (`0..GROUP_SHARDS`) of a connection: FNV-1a of the id's bytes
/// modulo [`GROUP_SHARDS`].
pub fn shard_of(id: &ConnectionId) -> u32 {
    fnv1a(id.as_str().as_bytes()) % GROUP_SHARDS
}

/// The shard (`0..PRESENCE_SHARDS`) of a user in the online and pending
/// indexes: FNV-1a of the name modulo [`PRESENCE_SHARDS`].
pub fn user_shard(user: &Username) -> u32 {
    fnv1a(user.as_str().as_bytes()) % PRESENCE_SHARDS
}

/// The stored `online` value of a user, e.g. `online#3`.
pub fn online_value(user: &Username) -> String {
    format!("online#{}", user_shard(user))
}

/// The stored `pending` value of a user, e.g. `pending#3`.
pub fn pending_value(user: &Username) -> String {
    format!("pending#{}", user_shard(user))
}

/// The stored `shard` value of shard number `n`, e.g. `users#3`.
pub fn shard_value(n: u32) -> String {
    format!("{GROUP}#{n}")
}

fn attr(name: &str, kind: ScalarAttributeType) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(build)
}

fn key(name: &str, kind: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(build)
}

fn keys_only_index(name: &str, hash: &str, range: &str) -> StoreResult<GlobalSecondaryIndex> {
    index(name, hash, range, &[])
}

/// An index projecting its keys and the attributes in `include`.
fn index(
    name: &str,
    hash: &str,
    range: &str,
    include: &[&str],
) -> StoreResult<GlobalSecondaryIndex> {
    let projection = if include.is_empty() {
        Projection::builder().projection_type(ProjectionType::KeysOnly)
    } else {
        Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(include.iter().map(|a| (*a).to_owned()).collect()))
    };
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash)?)
        .key_schema(key(range, KeyType::Range)?)
        .projection(projection.build())
        .build()
        .map_err(build)
}

/// Creates the four tables (on demand; the presence table with its stream)
/// unless they exist, waits until they and their indexes are active, and
/// enables TTL on sessions and connections. Idempotent.
pub async fn create_tables(client: &Client, tables: &Tables) -> StoreResult<()> {
    use ScalarAttributeType::{N, S};
    let users = client
        .create_table()
        .table_name(&tables.users)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(USER_NAME, S)?)
        .key_schema(key(USER_NAME, KeyType::Hash)?);
    let presence = client
        .create_table()
        .table_name(&tables.presence)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(PRESENCE_NAME, S)?)
        .attribute_definitions(attr(PRESENCE_DIR, S)?)
        .attribute_definitions(attr(PRESENCE_CREATED_AT, N)?)
        .attribute_definitions(attr(PRESENCE_ONLINE, S)?)
        .attribute_definitions(attr(PRESENCE_PENDING, S)?)
        .attribute_definitions(attr(PRESENCE_OFFLINE_AT, N)?)
        .key_schema(key(PRESENCE_NAME, KeyType::Hash)?)
        .global_secondary_indexes(index(
            INDEX_BY_NAME,
            PRESENCE_DIR,
            PRESENCE_NAME,
            &[PRESENCE_SEQ, PRESENCE_LAST_SEEN],
        )?)
        .global_secondary_indexes(keys_only_index(
            INDEX_BY_CREATED,
            PRESENCE_DIR,
            PRESENCE_CREATED_AT,
        )?)
        .global_secondary_indexes(index(
            INDEX_BY_ONLINE,
            PRESENCE_ONLINE,
            PRESENCE_NAME,
            &[PRESENCE_SEQ],
        )?)
        .global_secondary_indexes(keys_only_index(
            INDEX_BY_PENDING,
            PRESENCE_PENDING,
            PRESENCE_OFFLINE_AT,
        )?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(build)?,
        );
    let sessions = client
        .create_table()
        .table_name(&tables.sessions)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(SESSION_KEY, S)?)
        .key_schema(key(SESSION_KEY, KeyType::Hash)?);
    let connections = client
        .create_table()
        .table_name(&tables.connections)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(CONN_ID, S)?)
        .attribute_definitions(attr(CONN_SHARD, S)?)
        .attribute_definitions(attr(CONN_SESSION, S)?)
        .attribute_definitions(attr(CONN_LEASE_UNTIL, N)?)
        .key_schema(key(CONN_ID, KeyType::Hash)?)
        .global_secondary_indexes(keys_only_index(INDEX_BY_GROUP, CONN_SHARD, CONN_ID)?)
        .global_secondary_indexes(keys_only_index(INDEX_BY_SESSION, CONN_SESSION, CONN_ID)?)
        .global_secondary_indexes(keys_only_index(
            INDEX_BY_LEASE,
            CONN_SHARD,
            CONN_LEASE_UNTIL,
        )?);
    for request in [users, presence, sessions, connections] {
        match request.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(sdk("CreateTable", e)),
        }
    }
    for table in [
        &tables.users,
        &tables.presence,
        &tables.sessions,
        &tables.connections,
    ] {
        wait_active(client, table).await?;
    }
    for table in [&tables.sessions, &tables.connections] {
        enable_ttl(client, table).await?;
    }
    Ok(())
}

/// Polls until the table and all its indexes are `ACTIVE`.
async fn wait_active(client: &Client, table: &str) -> StoreResult<()> {
    let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk("DescribeTable", e))?;
        let active = out.table().is_some_and(|t| {
            t.table_status() == Some(&TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active))
        });
        if active {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(StoreError::backend(NotActive(table.to_owned())));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A table did not become active in time.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB table {0} did not become ACTIVE within 5 minutes")]
struct NotActive(String);

/// Enables TTL on attribute [`TTL`] unless it already is.
async fn enable_ttl(client: &Client, table: &str) -> StoreResult<()> {
    let enabled = || async {
        let out = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk("DescribeTimeToLive", e))?;
        let status = out
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        Ok::<_, StoreError>(matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ))
    };
    if enabled().await? {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(TTL)
        .enabled(true)
        .build()
        .map_err(build)?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Another creator enabled it between our look and our update.
        Err(_) if enabled().await? => Ok(()),
        Err(e) => Err(sdk("UpdateTimeToLive", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        let id = ConnectionId::parse("L0SM9cOFvHcCIhw=").unwrap();
        // Stored in items: must never change between versions.
        assert_eq!(shard_of(&id), shard_of(&id.clone()));
        assert_eq!(
            shard_of(&ConnectionId::parse("a").unwrap()),
            0xe40c_292c % 8
        );
        assert_eq!(shard_value(3), "users#3");
        for _ in 0..200 {
            assert!(shard_of(&ConnectionId::generate()) < GROUP_SHARDS);
        }
    }

    #[test]
    fn random_ids_spread_over_every_shard() {
        let mut seen = [0u32; GROUP_SHARDS as usize];
        for _ in 0..800 {
            seen[shard_of(&ConnectionId::generate()) as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 40), "{seen:?}");
    }
}
