//! [`DynamoStore`]: the store on DynamoDB, shared by any number of Lambdas
//! (or local processes).
//!
//! Four tables — users (accounts), presence (each user's counters and
//! transition number, whose stream is the event log), sessions and
//! connections — whose exact schema is in [`schema`] (the AWS templates
//! copy it). Presence transitions are optimistic TransactWriteItems that
//! change a connection item and its user's presence item together,
//! conditioned on the counters read just before, and retried on conflict:
//! exactly one `true` per 0→1 and one `false` per 1→0, with consecutive
//! per-user numbers, across any number of clients (see `presence.rs`).
//! Every listing is a Query of an index, never a Scan (see `listing.rs`,
//! `accounts.rs`, `pending.rs`): who is online costs O(online users).
//!
//! Module layout: `accounts.rs` (users, sessions, the user list), `presence.rs`
//! (transitions), `pending.rs` (offlines after a grace period), `txn.rs`
//! (transactions and retries), `leases.rs` (connection reads, lease
//! extension and renewal), `listing.rs` (session, group, sweep and online
//! listings), [`stream`] (the event log; feature `dynamodb-log`), `attrs.rs`
//! (item helpers, error mapping), [`schema`].

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::BehaviorVersion;

use super::{
    ConnectionRecord, LogCursor, LogRead, Offline, OnlineCut, Page, RemoveIf, Removed,
    SessionRecord, Store, StoreError, StoreResult, UserRecord,
};
use crate::config::Tables;
use crate::domain::{
    ConnectionId, NamePrefix, PresenceEvent, SessionKey, Timestamp, UserPresence, Username,
};

mod accounts;
mod attrs;
pub(crate) use attrs::sdk;
mod leases;
mod listing;
mod pending;
mod presence;
pub mod records;
pub mod schema;
#[cfg(feature = "dynamodb-log")]
pub mod stream;
mod txn;

/// This store was made without a stream reader ([`DynamoStore::new`]).
#[derive(Debug, thiserror::Error)]
#[error("this DynamoDB store cannot read the event log (made without a stream client)")]
struct NoLog;

/// Key of the item [`Store::ping`] reads: `#` is never in a username, so it
/// never exists.
const PING_KEY: &str = "#ping";

/// The DynamoDB store. Cheap to clone (the SDK clients are shared).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    #[cfg(feature = "dynamodb-log")]
    streams: Option<aws_sdk_dynamodbstreams::Client>,
    tables: Tables,
}

impl DynamoStore {
    /// A store on `tables` through `client`, which cannot read the event
    /// log (a Lambda function: the fan-out gets the stream from its event
    /// source mapping).
    pub fn new(client: Client, tables: Tables) -> Self {
        Self {
            client,
            #[cfg(feature = "dynamodb-log")]
            streams: None,
            tables,
        }
    }

    /// A store that also reads the event log through `streams`.
    #[cfg(feature = "dynamodb-log")]
    pub fn with_streams(
        client: Client,
        streams: aws_sdk_dynamodbstreams::Client,
        tables: Tables,
    ) -> Self {
        Self {
            client,
            streams: Some(streams),
            tables,
        }
    }

    /// A store with the SDK's default configuration from the environment
    /// (region, credentials, and `AWS_ENDPOINT_URL` /
    /// `AWS_ENDPOINT_URL_DYNAMODB` for an emulator), reading the log if
    /// this build can.
    pub async fn from_env(tables: Tables) -> Self {
        let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
        #[cfg(feature = "dynamodb-log")]
        return Self::with_streams(
            Client::new(&config),
            aws_sdk_dynamodbstreams::Client::new(&config),
            tables,
        );
        #[cfg(not(feature = "dynamodb-log"))]
        Self::new(Client::new(&config), tables)
    }

    /// Creates the tables (see [`schema`]) unless they exist, waits until
    /// they are active and enables TTL. Idempotent.
    pub async fn create_tables(&self) -> StoreResult<()> {
        schema::create_tables(&self.client, &self.tables).await
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table names.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.put_user(user).await
    }

    async fn find_user(&self, username: &Username) -> StoreResult<Option<UserRecord>> {
        self.get_user(username).await
    }

    async fn list_users(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>> {
        self.users_page(after, prefix, limit).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.user_count().await
    }

    async fn joined_since(&self, since: Timestamp, limit: usize) -> StoreResult<Vec<Username>> {
        self.joined_after(since, limit).await
    }

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.put_session(session).await
    }

    async fn find_session(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        self.get_session(key, now).await
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        self.drop_session(key).await
    }

    async fn create_ticket(
        &self,
        ticket: &SessionKey,
        session: &SessionKey,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        self.put_ticket(ticket, session, expires_at).await
    }

    async fn take_ticket(
        &self,
        ticket: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionKey>> {
        self.consume_ticket(ticket, now).await
    }

    async fn add_connection(
        &self,
        conn: &ConnectionRecord,
        max_per_user: Option<u32>,
    ) -> StoreResult<Option<PresenceEvent>> {
        self.register(conn, max_per_user).await
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
        offline: Offline,
    ) -> StoreResult<Option<Removed>> {
        self.unregister(id, condition, offline).await
    }

    async fn settle_offline(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<PresenceEvent>> {
        self.settle(now, limit).await
    }

    async fn settle_user(
        &self,
        user: &Username,
        now: Timestamp,
    ) -> StoreResult<Option<PresenceEvent>> {
        self.take_offline(user, Some(now)).await
    }

    async fn offline_now(&self, user: &Username) -> StoreResult<Option<PresenceEvent>> {
        self.take_offline(user, None).await
    }

    async fn renew_leases(
        &self,
        ids: &[ConnectionId],
        until: Timestamp,
    ) -> StoreResult<Vec<ConnectionId>> {
        self.renew(ids, until).await
    }

    async fn session_connections(&self, key: &SessionKey) -> StoreResult<Vec<ConnectionId>> {
        self.by_session(key).await
    }

    async fn group_connections(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        self.group_page(cursor, limit).await
    }

    fn group_shards(&self) -> u32 {
        schema::GROUP_SHARDS
    }

    async fn group_shard(
        &self,
        shard: u32,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        self.shard_page(shard, cursor, limit).await
    }

    async fn expired_connections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        self.expired(now, limit).await
    }

    async fn online_users(&self) -> StoreResult<OnlineCut> {
        // The log position first: what happens between it and the query is
        // in both, and the view keeps the newer of each (by `seq`).
        #[cfg(feature = "dynamodb-log")]
        let cursor = match self.streams {
            Some(_) => self.stream_end().await?,
            None => LogCursor(String::new()),
        };
        #[cfg(not(feature = "dynamodb-log"))]
        let cursor = LogCursor(String::new());
        Ok(OnlineCut {
            users: self.online().await?,
            cursor,
        })
    }

    async fn read_log(
        &self,
        after: &LogCursor,
        max: usize,
        wait: std::time::Duration,
    ) -> StoreResult<LogRead> {
        #[cfg(feature = "dynamodb-log")]
        if self.streams.is_some() {
            return self.stream_read(after, max, wait).await;
        }
        let _ = (after, max, wait);
        Err(StoreError::backend(NoLog))
    }

    async fn ping(&self) -> StoreResult<()> {
        // A GetItem needs only the permissions the store uses anyway, and
        // fails if the table is missing or the service unreachable.
        self.client
            .get_item()
            .table_name(&self.tables.users)
            .key(schema::USER_NAME, attrs::s(PING_KEY))
            .send()
            .await
            .map_err(|e| attrs::sdk("GetItem", e))?;
        Ok(())
    }
}
