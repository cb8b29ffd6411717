//! [`CountingStore`]: a [`Store`] that counts its backend's failures per
//! operation (`rollcall_store_errors_total{op}`) and otherwise passes every
//! call through unchanged.
//!
//! Only backend failures count ([`StoreError::Backend`],
//! [`StoreError::Unavailable`]): `NotFound`, `Conflict` and
//! `LimitReached` are answers, not failures.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rollcall::domain::{
    ConnectionId, NamePrefix, PresenceEvent, SessionKey, Timestamp, UserPresence, Username,
};
use rollcall::store::{
    ConnectionRecord, LogCursor, LogRead, Offline, OnlineCut, Page, RemoveIf, Removed,
    SessionRecord, Store, StoreError, StoreResult, UserRecord,
};

use super::Op;

/// Counts the failures of the store it wraps.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    errors: Family<Op, Counter>,
}

impl CountingStore {
    /// `inner`, its failures counted in `errors`.
    pub fn new(inner: Arc<dyn Store>, errors: Family<Op, Counter>) -> Self {
        Self { inner, errors }
    }

    fn seen<T>(&self, op: &'static str, r: StoreResult<T>) -> StoreResult<T> {
        if r.as_ref().err().is_some_and(StoreError::is_failure) {
            self.errors.get_or_create(&Op { op }).inc();
        }
        r
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.seen("create_user", self.inner.create_user(user).await)
    }

    async fn find_user(&self, username: &Username) -> StoreResult<Option<UserRecord>> {
        self.seen("find_user", self.inner.find_user(username).await)
    }

    async fn list_users(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>> {
        self.seen(
            "list_users",
            self.inner.list_users(after, prefix, limit).await,
        )
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.seen("count_users", self.inner.count_users().await)
    }

    async fn joined_since(&self, since: Timestamp, limit: usize) -> StoreResult<Vec<Username>> {
        self.seen("joined_since", self.inner.joined_since(since, limit).await)
    }

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.seen("create_session", self.inner.create_session(session).await)
    }

    async fn find_session(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        self.seen("find_session", self.inner.find_session(key, now).await)
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        self.seen("delete_session", self.inner.delete_session(key).await)
    }

    async fn create_ticket(
        &self,
        ticket: &SessionKey,
        session: &SessionKey,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let r = self.inner.create_ticket(ticket, session, expires_at).await;
        self.seen("create_ticket", r)
    }

    async fn take_ticket(
        &self,
        ticket: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionKey>> {
        self.seen("take_ticket", self.inner.take_ticket(ticket, now).await)
    }

    async fn add_connection(
        &self,
        conn: &ConnectionRecord,
        max_per_user: Option<u32>,
    ) -> StoreResult<Option<PresenceEvent>> {
        let r = self.inner.add_connection(conn, max_per_user).await;
        self.seen("add_connection", r)
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
        offline: Offline,
    ) -> StoreResult<Option<Removed>> {
        let r = self.inner.remove_connection(id, condition, offline).await;
        self.seen("remove_connection", r)
    }

    async fn settle_offline(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<PresenceEvent>> {
        self.seen(
            "settle_offline",
            self.inner.settle_offline(now, limit).await,
        )
    }

    async fn settle_user(
        &self,
        user: &Username,
        now: Timestamp,
    ) -> StoreResult<Option<PresenceEvent>> {
        self.seen("settle_user", self.inner.settle_user(user, now).await)
    }

    async fn offline_now(&self, user: &Username) -> StoreResult<Option<PresenceEvent>> {
        self.seen("offline_now", self.inner.offline_now(user).await)
    }

    async fn renew_leases(
        &self,
        ids: &[ConnectionId],
        until: Timestamp,
    ) -> StoreResult<Vec<ConnectionId>> {
        self.seen("renew_leases", self.inner.renew_leases(ids, until).await)
    }

    async fn session_connections(&self, key: &SessionKey) -> StoreResult<Vec<ConnectionId>> {
        self.seen(
            "session_connections",
            self.inner.session_connections(key).await,
        )
    }

    async fn group_connections(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        let r = self.inner.group_connections(cursor, limit).await;
        self.seen("group_connections", r)
    }

    fn group_shards(&self) -> u32 {
        self.inner.group_shards()
    }

    async fn group_shard(
        &self,
        shard: u32,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        let r = self.inner.group_shard(shard, cursor, limit).await;
        self.seen("group_shard", r)
    }

    async fn expired_connections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        let r = self.inner.expired_connections(now, limit).await;
        self.seen("expired_connections", r)
    }

    async fn online_users(&self) -> StoreResult<OnlineCut> {
        self.seen("online_users", self.inner.online_users().await)
    }

    async fn read_log(
        &self,
        after: &LogCursor,
        max: usize,
        wait: Duration,
    ) -> StoreResult<LogRead> {
        self.seen("read_log", self.inner.read_log(after, max, wait).await)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.seen("ping", self.inner.ping().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall::store::memory::MemoryStore;

    #[tokio::test]
    async fn answers_pass_through_and_are_not_failures() {
        let errors = Family::<Op, Counter>::default();
        let store = CountingStore::new(Arc::new(MemoryStore::new()), errors.clone());
        let user = UserRecord {
            username: Username::parse("amy").unwrap(),
            password_hash: "x".into(),
            created_at: Timestamp::now(),
        };
        store.create_user(&user).await.unwrap();
        assert!(matches!(
            store.create_user(&user).await,
            Err(StoreError::Conflict)
        ));
        assert!(store.find_user(&user.username).await.unwrap().is_some());
        store.ping().await.unwrap();
        assert_eq!(errors.get_or_create(&Op { op: "create_user" }).get(), 0);
    }
}
