//! The storage interface and its backends.
//!
//! One trait, [`Store`], holds users, sessions, connections, the `users`
//! group's membership and per-user connection counts. Presence transitions
//! are the store's job because only the store can make them atomic:
//! [`Store::add_connection`] reports the 0→1 transition and
//! [`Store::remove_connection`] the 1→0 one, each exactly once however many
//! processes or Lambdas race.
//!
//! Backends: [`memory::MemoryStore`] (always), [`redis::RedisStore`]
//! (feature `redis`), [`dynamodb::DynamoStore`] (feature `dynamodb`). Every
//! backend passes the [`conformance`] suite.

use async_trait::async_trait;

use crate::domain::{ConnectionId, PresenceEvent, SessionKey, Timestamp, UserPresence, Username};

pub mod conformance;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The (normalised, unique) name.
    pub username: Username,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When the account was made.
    pub created_at: Timestamp,
}

/// A logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hash of the session token.
    pub key: SessionKey,
    /// Whose session it is.
    pub username: Username,
    /// When it stops being valid (stores filter expired sessions on read).
    pub expires_at: Timestamp,
}

/// An open WebSocket connection, member of the `users` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The connection.
    pub id: ConnectionId,
    /// Its user.
    pub username: Username,
    /// The session it authenticated with (log out closes it).
    pub session: SessionKey,
    /// Until when it counts as alive unless renewed.
    pub lease_until: Timestamp,
}

/// What [`Store::remove_connection`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The connection's user.
    pub username: Username,
    /// The connection's session.
    pub session: SessionKey,
    /// `Some` when this was the user's last connection: the 1→0 transition.
    pub went_offline: Option<PresenceEvent>,
}

/// When [`Store::remove_connection`] may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveIf {
    /// Unconditionally (a close, a log out, a 410 Gone).
    Always,
    /// Only if its lease ended at or before this time (the sweep), so a
    /// renewal that raced the sweep wins.
    ExpiredAt(Timestamp),
}

/// One page of a listing; `next` is the cursor for the following page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in a stable order.
    pub items: Vec<T>,
    /// Pass to the next call; `None` on the last page.
    pub next: Option<String>,
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The item does not exist (404 where it surfaces).
    #[error("not found")]
    NotFound,
    /// The item already exists (e.g. a taken username; 400/409 where it surfaces).
    #[error("already exists")]
    Conflict,
    /// The backend failed (500; details logged, never shown).
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything rollcall keeps. Implementations must be linearizable per
/// operation; the presence operations must be atomic across processes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Adds a user; [`StoreError::Conflict`] if the name is taken.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;

    /// Looks a user up by (normalised) name.
    async fn find_user(&self, username: &Username) -> StoreResult<Option<UserRecord>>;

    /// Every user, sorted by name, each online iff they have a connection.
    async fn list_presence(&self) -> StoreResult<Vec<UserPresence>>;

    /// Saves a new session.
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()>;

    /// The session if it exists and `expires_at > now`.
    async fn find_session(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>>;

    /// Deletes a session; `false` if there was none.
    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool>;

    /// Registers a connection in the `users` group. Returns the "online"
    /// event iff this is the user's first connection (0→1). Adding an id that
    /// is already registered only renews its lease.
    async fn add_connection(&self, conn: &ConnectionRecord) -> StoreResult<Option<PresenceEvent>>;

    /// Unregisters a connection. `None` if it was not registered (or, with
    /// [`RemoveIf::ExpiredAt`], its lease is still running); otherwise what was
    /// removed, with the "offline" event iff it was the user's last (1→0).
    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
    ) -> StoreResult<Option<Removed>>;

    /// Extends the leases of `ids` to `until` (never shortens one). Returns
    /// the ids that are not registered (already swept or removed).
    async fn renew_leases(
        &self,
        ids: &[ConnectionId],
        until: Timestamp,
    ) -> StoreResult<Vec<ConnectionId>>;

    /// The connections opened with one session.
    async fn session_connections(&self, key: &SessionKey) -> StoreResult<Vec<ConnectionId>>;

    /// Members of the `users` group, `limit` at a time, by key (never a full
    /// scan per broadcast). Pass the previous page's `next` as `cursor`.
    async fn group_connections(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>>;

    /// Up to `limit` connections whose lease ended at or before `now`.
    async fn expired_connections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>>;

    /// Cheap liveness check of the backend (for `/healthz`).
    async fn ping(&self) -> StoreResult<()>;
}
