//! [`DynamoStore`]: the store on DynamoDB, shared by any number of Lambdas
//! (or local processes).
//!
//! Three tables — users (with each user's presence counters), sessions and
//! connections — whose exact schema is in [`schema`] (the AWS templates
//! copy it). Presence transitions are optimistic TransactWriteItems that
//! change a connection item and its user's counters together, conditioned on
//! the counters read just before, and retried on conflict: exactly one
//! `true` per 0→1 and one `false` per 1→0, with consecutive per-user numbers,
//! across any number of clients (see `presence.rs`). Listings are Queries of
//! the connections table's indexes, never Scans of it (see `listing.rs`).
//!
//! Module layout: `accounts.rs` (users, sessions), `presence.rs`
//! (transitions), `txn.rs` (their transaction and retries), `leases.rs`
//! (connection reads, lease extension and renewal), `listing.rs` (session,
//! group and sweep listings), `attrs.rs` (item helpers, error mapping),
//! [`schema`].

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::BehaviorVersion;

use super::{
    ConnectionRecord, Page, RemoveIf, Removed, SessionRecord, Store, StoreResult, UserRecord,
};
use crate::config::Tables;
use crate::domain::{ConnectionId, PresenceEvent, SessionKey, Timestamp, UserPresence, Username};

mod accounts;
mod attrs;
mod leases;
mod listing;
mod presence;
pub mod schema;
mod txn;

/// Key of the item [`Store::ping`] reads: `#` is never in a username, so it
/// never exists.
const PING_KEY: &str = "#ping";

/// The DynamoDB store. Cheap to clone (the SDK client is shared).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
}

impl DynamoStore {
    /// A store on `tables` through `client`.
    pub fn new(client: Client, tables: Tables) -> Self {
        Self { client, tables }
    }

    /// A store with the SDK's default configuration from the environment
    /// (region, credentials, and `AWS_ENDPOINT_URL` /
    /// `AWS_ENDPOINT_URL_DYNAMODB` for an emulator).
    pub async fn from_env(tables: Tables) -> Self {
        let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
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

    async fn list_presence(&self) -> StoreResult<Vec<UserPresence>> {
        self.scan_presence().await
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

    async fn add_connection(&self, conn: &ConnectionRecord) -> StoreResult<Option<PresenceEvent>> {
        self.register(conn).await
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
    ) -> StoreResult<Option<Removed>> {
        self.unregister(id, condition).await
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

    async fn expired_connections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        self.expired(now, limit).await
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
