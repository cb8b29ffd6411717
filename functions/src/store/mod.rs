//! The storage interface and its backends.
//!
//! One trait, [`Store`], holds users, sessions, connections, the `users`
//! group's membership, per-user connection counts and transition numbers,
//! and **the ordered event log** of presence transitions and sign-ups.
//! Presence transitions are the store's job because only the store can make
//! them atomic: [`Store::add_connection`] reports the 0→1 transition,
//! [`Store::remove_connection`], [`Store::settle_offline`] and
//! [`Store::offline_now`] the 1→0 one, each exactly once however many
//! processes or Lambdas race, and each appends its event to the log **in the
//! same atomic step**, so a process dying right after a change loses nothing.
//!
//! The log is what every process's presence view tails
//! ([`Store::read_log`]), starting from a consistent cut
//! ([`Store::online_users`]); a backend that lost or rewound entries (trimmed
//! past a slow reader, restarted empty or from an older file) answers
//! [`LogRead::Gap`] and the reader starts again from a new cut.
//!
//! Backends: [`memory::MemoryStore`] (always), [`redis::RedisStore`]
//! (feature `redis`), [`dynamodb::DynamoStore`] (feature `dynamodb`). Every
//! backend passes the [`conformance`] suite.

use async_trait::async_trait;

use crate::domain::{
    ConnectionId, LogEvent, NamePrefix, PageStart, PresenceEvent, SessionKey, Timestamp,
    UserPresence, Username,
};

pub mod conformance;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod open;
pub use open::open;
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
    /// When its session ends: its lease is never renewed past it, so once
    /// the session is over the sweep removes the connection and closes it
    /// (on the cloud path nothing else would; the local server closes its
    /// sockets itself at that moment).
    pub session_expires_at: Timestamp,
}

/// What [`Store::remove_connection`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The connection's user.
    pub username: Username,
    /// The connection's session.
    pub session: SessionKey,
    /// `Some` when this was the user's last connection and they went
    /// offline at once (the 1→0 transition).
    pub went_offline: Option<PresenceEvent>,
    /// This was the user's last connection and their offline announcement
    /// waits for the grace period ([`Offline::After`]).
    pub grace_started: bool,
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

/// What happens when a user's last connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offline {
    /// They go offline now (log out, an expired lease, a dead connection).
    Now,
    /// They stay online until this deadline, and go offline then
    /// ([`Store::settle_offline`]) unless a connection of theirs opened
    /// meanwhile (a refresh, a blip, a rolling restart).
    After(Timestamp),
}

/// A position in the event log, opaque outside the backend that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor(pub String);

/// Who is online, and the log position they are as of: nothing before the
/// cursor is missing from `users`, nothing after it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineCut {
    /// Every online user with their (odd) transition number, sorted by name.
    pub users: Vec<UserPresence>,
    /// Read the log from here.
    pub cursor: LogCursor,
}

/// What [`Store::read_log`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRead {
    /// The entries after the cursor, in log order (possibly none), and the
    /// cursor to read from next.
    Entries {
        /// The entries.
        events: Vec<LogEvent>,
        /// Where the next read starts.
        cursor: LogCursor,
    },
    /// Entries after the cursor are gone (trimmed, or the backend restarted
    /// empty or rewound): take a new [`Store::online_users`] cut.
    Gap,
}

/// One page of a listing; `next` is the cursor for the following page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in a stable order.
    pub items: Vec<T>,
    /// Pass to the next call; `None` on the last page.
    pub next: Option<String>,
}

/// A page of `names` (a name-ordered map) after `after`, matching
/// `prefix`, at most `limit`, each made a row by `row`: the memory store's
/// and the presence view's listing.
pub(crate) fn names_page<V>(
    names: &std::collections::BTreeMap<Username, V>,
    after: Option<&Username>,
    prefix: Option<&NamePrefix>,
    limit: usize,
    row: impl Fn(&Username, &V) -> UserPresence,
) -> Page<UserPresence> {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let start = match prefix.map(|p| p.start_after(after)) {
        None => after.map_or(Unbounded, |a| Excluded(a.clone())),
        Some(None) => {
            return Page {
                items: Vec::new(),
                next: None,
            };
        }
        Some(Some(PageStart::From(n))) => Included(n.clone()),
        Some(Some(PageStart::After(n))) => Excluded(n.clone()),
    };
    let mut items: Vec<UserPresence> = names
        .range((start, Unbounded))
        .take_while(|(u, _)| prefix.is_none_or(|p| p.matches(u)))
        .take(limit.saturating_add(1))
        .map(|(u, v)| row(u, v))
        .collect();
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|u| u.username.as_str().to_owned())
    } else {
        None
    };
    Page { items, next }
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
    /// A cap was reached (a user's open connections; 429 where it surfaces).
    #[error("limit reached")]
    LimitReached,
    /// The backend failed (500; details logged, never shown).
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend cannot answer now: unreachable, timed out, loading,
    /// throttling (503 with `Retry-After` where it surfaces; details
    /// logged). Whether the operation took effect is unknown, as with
    /// [`StoreError::Backend`].
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }

    /// Wraps a backend error that says the backend cannot answer now.
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }

    /// Whether this is a backend failure ([`StoreError::Backend`] or
    /// [`StoreError::Unavailable`]), not an answer about the data.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Backend(_) | Self::Unavailable(_))
    }
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything rollcall keeps. Implementations must be linearizable per
/// operation; the presence operations must be atomic across processes, and
/// each must append its event to the log in the same atomic step.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Adds a user and logs [`LogEvent::Joined`]; [`StoreError::Conflict`]
    /// if the name is taken.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;

    /// Looks a user up by (normalised) name.
    async fn find_user(&self, username: &Username) -> StoreResult<Option<UserRecord>>;

    /// Users by name after `after` (and, with `prefix`, whose name starts
    /// with it: a range of the name order, never a scan), at most `limit`,
    /// with their presence and last seen (no password hashes). `next` is
    /// the last name when more follow.
    async fn list_users(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>>;

    /// How many users are registered (one read, whatever the number).
    async fn count_users(&self) -> StoreResult<u64>;

    /// Up to `limit` users created after `since`, oldest first.
    async fn joined_since(&self, since: Timestamp, limit: usize) -> StoreResult<Vec<Username>>;

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

    /// Saves a socket ticket: `ticket` is the SHA-256 of the ticket the
    /// client holds (as a [`SessionKey`] is of a session token; the ticket
    /// itself is never stored), valid for one [`Store::take_ticket`] before
    /// `expires_at`, for the session `session`.
    async fn create_ticket(
        &self,
        ticket: &SessionKey,
        session: &SessionKey,
        expires_at: Timestamp,
    ) -> StoreResult<()>;

    /// Consumes a socket ticket: its session if it exists and
    /// `expires_at > now`, and it is gone afterwards (in the same atomic
    /// step: of any number of racing takes, exactly one gets it). `None`
    /// if unknown, already taken or expired.
    async fn take_ticket(
        &self,
        ticket: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionKey>>;

    /// Registers a connection in the `users` group and cancels any pending
    /// offline of its user, if its session still exists and has not
    /// expired (else [`StoreError::NotFound`], and nothing changes: a log
    /// out racing a connect wins) and the user has fewer than
    /// `max_per_user` connections (else [`StoreError::LimitReached`], and
    /// nothing changes; `None`: no cap). Both are checked in the same
    /// atomic step as the registration, so racing connects on any number
    /// of processes never exceed the cap. Returns (and logs) the "online"
    /// event iff the user was offline (0→1). Adding an id that is already
    /// registered only renews its lease.
    async fn add_connection(
        &self,
        conn: &ConnectionRecord,
        max_per_user: Option<u32>,
    ) -> StoreResult<Option<PresenceEvent>>;

    /// Unregisters a connection. `None` if it was not registered (or, with
    /// [`RemoveIf::ExpiredAt`], its lease is still running); otherwise what
    /// was removed. If it was the user's last connection, they go offline
    /// as `offline` says: now (the event is returned and logged) or after a
    /// grace period.
    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
        offline: Offline,
    ) -> StoreResult<Option<Removed>>;

    /// Takes offline (and logs) up to `limit` users whose grace period
    /// ended at or before `now` with no connection back.
    async fn settle_offline(&self, now: Timestamp, limit: usize)
    -> StoreResult<Vec<PresenceEvent>>;

    /// Takes `user` offline (and logs it) if their pending offline is due
    /// at or before `now` and no connection of theirs came back; `None`
    /// otherwise (nothing pending, not yet due, back online). The cloud's
    /// settle function calls it when the grace's delayed message arrives.
    async fn settle_user(
        &self,
        user: &Username,
        now: Timestamp,
    ) -> StoreResult<Option<PresenceEvent>>;

    /// Takes `user` offline now (and logs it) if they have no connection
    /// left but are still shown online (a pending grace period): log out
    /// is immediate.
    async fn offline_now(&self, user: &Username) -> StoreResult<Option<PresenceEvent>>;

    /// Extends the leases of `ids` to `until`, or to their session's end
    /// ([`ConnectionRecord::session_expires_at`]) if that comes first
    /// (never shortens one). Returns the ids that are not registered
    /// (already swept or removed).
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

    /// How many shards the group is spread over (1 unless the backend
    /// shards it): the cloud's fan-out posts each shard's connections in
    /// parallel.
    fn group_shards(&self) -> u32 {
        1
    }

    /// The members of group shard `shard` (`0..group_shards()`), `limit` at
    /// a time, by key; together the shards are [`Store::group_connections`].
    async fn group_shard(
        &self,
        shard: u32,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        if shard == 0 {
            self.group_connections(cursor, limit).await
        } else {
            Ok(Page {
                items: Vec::new(),
                next: None,
            })
        }
    }

    /// Up to `limit` connections whose lease ended at or before `now`.
    async fn expired_connections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>>;

    /// Who is online now, and the log position that is as of (one
    /// consistent read, O(online users)).
    async fn online_users(&self) -> StoreResult<OnlineCut>;

    /// Up to `max` log entries after `after`, waiting up to `wait` for the
    /// first if there is none yet.
    async fn read_log(
        &self,
        after: &LogCursor,
        max: usize,
        wait: std::time::Duration,
    ) -> StoreResult<LogRead>;

    /// Cheap liveness check of the backend (for `/healthz`).
    async fn ping(&self) -> StoreResult<()>;
}
