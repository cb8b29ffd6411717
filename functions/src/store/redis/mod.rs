//! [`RedisStore`]: the store on a Redis server, shared by many processes.
//!
//! Keys (all under a configurable prefix `P`, default `rollcall:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P user:{name}` | hash | `hash` (Argon2id PHC), `created` |
//! | `P users` | sorted set (score 0) | every name, listed in order and searched by prefix (`ZRANGEBYLEX`); `ZCARD`: how many |
//! | `P users:joined` | sorted set | name → creation time (ms) |
//! | `P session:{key}` | hash, `PEXPIREAT` | `user`, `exp` |
//! | `P ticket:{hash}` | hash, `PEXPIREAT` | a socket ticket's `session` (key), `exp`; taken by a script |
//! | `P conn:{id}` | hash | `user`, `session`, `ends` (the session's end, ms: renewals stop there) |
//! | `P leases` | sorted set | connection id → lease end (ms), for the sweep |
//! | `P group:users` | sorted set (score 0) | the `users` group, paged by id |
//! | `P sconns:{session}` | set | a session's connections (log out) |
//! | `P presence` | hash | user → open connections |
//! | `P seq` | hash | user → presence transitions so far (odd: online) |
//! | `P online` | hash | online user → transition number |
//! | `P seen` | hash | user → when they last went offline (ms; "last seen"), set by the transition's script |
//! | `P pending` | sorted set | user → grace deadline (ms) of a pending offline |
//! | `P log` | stream | the event log: `n` (entry number), `k` (`p` presence, `j` joined), `u` user, `s` seq (and `t`, when, on an offline one) or `c` created |
//! | `P log:n` | string | entries appended so far |
//!
//! Every change of presence or of the user list is one Lua script
//! (`*.lua`, each prefixed with `prelude.lua`) that updates the state and
//! `XADD`s its event to the log in the same atomic step, so concurrent
//! processes see exactly one 0→1 and one 1→0, a process dying mid-way loses
//! nothing, and the log is in transition order. The log is trimmed to about
//! `log_max` entries (`MAXLEN ~`). Readers ([`log`]) notice a gap or a
//! rewind (Redis restarted empty or from an older file) through the entry
//! numbers. Scripts build keys from the prefix, so on Redis Cluster use a
//! hash-tagged prefix such as `{rollcall}:` to keep every key in one slot.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{
    ConnectionRecord, LogCursor, LogRead, Offline, OnlineCut, Page, RemoveIf, Removed,
    SessionRecord, Store, StoreError, StoreResult, UserRecord,
};
use crate::domain::{
    ConnectionId, NamePrefix, PageStart, PresenceEvent, SessionKey, Timestamp, UserPresence,
    Username,
};

mod connections;
mod log;

/// Default approximate length the event log is trimmed to.
pub const DEFAULT_LOG_MAX: usize = 100_000;

/// How long a command may take before the call fails (the client then
/// reconnects): long enough for the largest reads (a page of users, an
/// online cut), short enough to notice a dead server.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The self-reconnecting connection's settings: [`RESPONSE_TIMEOUT`] for
/// connecting and answering, and one quick retry of a failed reconnection.
/// (The client's default, six retries backing off to 3.2 s, made every call
/// made while Redis was down wait for the whole series — about 9 s — before
/// failing: a 503 with `Retry-After: 1` should not take that long. Each
/// call after a failed reconnection starts a new one, so the connection
/// comes back with the first call after Redis does.)
pub(crate) fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200))
}

/// The Redis store. Cheap to clone (one multiplexed, self-reconnecting
/// connection underneath, plus one for blocking log reads).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    client: redis::Client,
    prefix: String,
    log_max: usize,
    scripts: &'static Scripts,
    tail: std::sync::Arc<tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>>,
}

struct Scripts {
    create_user: Script,
    add_connection: Script,
    remove_connection: Script,
    settle_offline: Script,
    settle_user: Script,
    offline_now: Script,
    online_users: Script,
    list_users: Script,
    renew_leases: Script,
    take_ticket: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    let with_prelude =
        |body: &str| Script::new(&format!("{}\n{body}", include_str!("prelude.lua")));
    SCRIPTS.get_or_init(|| Scripts {
        create_user: with_prelude(include_str!("create_user.lua")),
        add_connection: with_prelude(include_str!("add_connection.lua")),
        remove_connection: with_prelude(include_str!("remove_connection.lua")),
        settle_offline: with_prelude(include_str!("settle_offline.lua")),
        settle_user: with_prelude(include_str!("settle_user.lua")),
        offline_now: with_prelude(include_str!("offline_now.lua")),
        online_users: with_prelude(include_str!("online_users.lua")),
        list_users: with_prelude(include_str!("list_users.lua")),
        renew_leases: Script::new(include_str!("renew_leases.lua")),
        take_ticket: Script::new(include_str!("take_ticket.lua")),
    })
}

impl RedisStore {
    /// Writes hash `key` with `field` and `exp` (epoch ms), expiring at
    /// `expires_at`, in one atomic step (sessions and socket tickets).
    async fn put_expiring(
        &self,
        key: &str,
        field: (&str, &str),
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let exp = expires_at.as_millis();
        let () = redis::pipe()
            .atomic()
            .hset_multiple(key, &[field, ("exp", &exp.to_string())])
            .ignore()
            .cmd("PEXPIREAT")
            .arg(key)
            .arg(exp)
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(backend)?;
        Ok(())
    }
    /// Connects to `url` (`redis://host:port[/db]`); every key starts with
    /// `prefix`; the log keeps about [`DEFAULT_LOG_MAX`] entries.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        Self::connect_with(url, prefix, DEFAULT_LOG_MAX).await
    }

    /// [`RedisStore::connect`] with the log trimmed to about `log_max` entries.
    pub async fn connect_with(url: &str, prefix: &str, log_max: usize) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(StoreError::backend)?;
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config())
            .await
            .map_err(StoreError::backend)?;
        Ok(Self {
            conn,
            client,
            prefix: prefix.to_owned(),
            log_max: log_max.max(1),
            scripts: scripts(),
            tail: std::sync::Arc::default(),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push_str(p);
        }
        k
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A call of `script` with the prelude's keys and arguments filled in.
    fn invocation<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut call = script.key(self.key(&["log"]));
        call.arg(&self.prefix).arg(self.log_max);
        call
    }
}

fn backend(e: redis::RedisError) -> StoreError {
    store_error(e)
}

/// A Redis error as a [`StoreError`]: [`StoreError::Unavailable`] when
/// Redis could not answer now, else [`StoreError::Backend`] (the rate
/// limiter on Redis classifies its errors the same way).
pub(crate) fn store_error(e: redis::RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    let down = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
            )
        );
    if down {
        StoreError::unavailable(e)
    } else {
        StoreError::backend(e)
    }
}

/// A value read back from Redis is not what this code writes.
#[derive(Debug, thiserror::Error)]
#[error("corrupt value in Redis at {0}")]
struct Corrupt(String);

fn username(raw: &str, at: &str) -> StoreResult<Username> {
    Username::parse(raw).map_err(|_| StoreError::backend(Corrupt(at.to_owned())))
}

/// `[name1, n1, name2, n2, …]` as `(name, n)` pairs.
fn pairs(flat: Vec<String>, at: &str) -> StoreResult<Vec<(Username, u64)>> {
    flat.chunks(2)
        .map(|c| match c {
            [name, n] => Ok((
                username(name, at)?,
                n.parse()
                    .map_err(|_| StoreError::backend(Corrupt(at.to_owned())))?,
            )),
            _ => Err(StoreError::backend(Corrupt(at.to_owned()))),
        })
        .collect()
}

#[async_trait]
impl Store for RedisStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let created: i64 = self
            .invocation(&self.scripts.create_user)
            .arg(user.username.as_str())
            .arg(&user.password_hash)
            .arg(user.created_at.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn find_user(&self, name: &Username) -> StoreResult<Option<UserRecord>> {
        let (hash, created): (Option<String>, Option<u64>) = self
            .conn()
            .hmget(self.key(&["user:", name.as_str()]), &["hash", "created"])
            .await
            .map_err(backend)?;
        Ok(hash.map(|password_hash| UserRecord {
            username: name.clone(),
            password_hash,
            created_at: Timestamp::from_millis(created.unwrap_or(0)),
        }))
    }

    async fn list_users(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>> {
        let bound = |mark: u8, name: &str| {
            let mut b = vec![mark];
            b.extend_from_slice(name.as_bytes());
            b
        };
        let (from, to) = match prefix {
            None => (
                after.map_or_else(|| b"-".to_vec(), |a| bound(b'(', a.as_str())),
                b"+".to_vec(),
            ),
            Some(p) => {
                let from = match p.start_after(after) {
                    None => {
                        return Ok(Page {
                            items: Vec::new(),
                            next: None,
                        });
                    }
                    Some(PageStart::From(n)) => bound(b'[', n.as_str()),
                    Some(PageStart::After(n)) => bound(b'(', n.as_str()),
                };
                let mut to = bound(b'(', p.as_str());
                to.push(0xff);
                (from, to)
            }
        };
        let flat: Vec<String> = self
            .invocation(&self.scripts.list_users)
            .arg(from)
            .arg(limit.saturating_add(1))
            .arg(to)
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        let mut items: Vec<UserPresence> = flat
            .chunks(3)
            .map(|c| match c {
                [name, seq, seen] => Ok(UserPresence::at(
                    username(name, "users")?,
                    seq.parse()
                        .map_err(|_| StoreError::backend(Corrupt("seq".into())))?,
                )
                .seen(seen.parse().ok().map(Timestamp::from_millis))),
                _ => Err(StoreError::backend(Corrupt("users".into()))),
            })
            .collect::<StoreResult<_>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|u| u.username.as_str().to_owned())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.conn()
            .zcard(self.key(&["users"]))
            .await
            .map_err(backend)
    }

    async fn joined_since(&self, since: Timestamp, limit: usize) -> StoreResult<Vec<Username>> {
        let names: Vec<String> = self
            .conn()
            .zrangebyscore_limit(
                self.key(&["users:joined"]),
                format!("({}", since.as_millis()),
                "+inf",
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
            .map_err(backend)?;
        names.iter().map(|n| username(n, "users:joined")).collect()
    }

    async fn create_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let key = self.key(&["session:", s.key.as_str()]);
        self.put_expiring(&key, ("user", s.username.as_str()), s.expires_at)
            .await
    }

    async fn find_session(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let at = self.key(&["session:", key.as_str()]);
        let (user, exp): (Option<String>, Option<u64>) = self
            .conn()
            .hmget(&at, &["user", "exp"])
            .await
            .map_err(backend)?;
        let (Some(user), Some(exp)) = (user, exp) else {
            return Ok(None);
        };
        let expires_at = Timestamp::from_millis(exp);
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(SessionRecord {
            key: key.clone(),
            username: username(&user, &at)?,
            expires_at,
        }))
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        let n: i64 = self
            .conn()
            .del(self.key(&["session:", key.as_str()]))
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn create_ticket(
        &self,
        ticket: &SessionKey,
        session: &SessionKey,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let key = self.key(&["ticket:", ticket.as_str()]);
        self.put_expiring(&key, ("session", session.as_str()), expires_at)
            .await
    }

    async fn take_ticket(
        &self,
        ticket: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionKey>> {
        let at = self.key(&["ticket:", ticket.as_str()]);
        let got: Option<(String, u64)> = self
            .scripts
            .take_ticket
            .key(&at)
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        let Some((session, exp)) = got else {
            return Ok(None);
        };
        if Timestamp::from_millis(exp) <= now {
            return Ok(None);
        }
        SessionKey::parse(&session)
            .map(Some)
            .ok_or_else(|| StoreError::backend(Corrupt(at)))
    }

    async fn add_connection(
        &self,
        c: &ConnectionRecord,
        max_per_user: Option<u32>,
    ) -> StoreResult<Option<PresenceEvent>> {
        self.insert_connection(c, max_per_user).await
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
        offline: Offline,
    ) -> StoreResult<Option<Removed>> {
        self.delete_connection(id, condition, offline).await
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
        self.settle_one(user, now).await
    }

    async fn offline_now(&self, user: &Username) -> StoreResult<Option<PresenceEvent>> {
        self.take_offline(user).await
    }

    async fn renew_leases(
        &self,
        ids: &[ConnectionId],
        until: Timestamp,
    ) -> StoreResult<Vec<ConnectionId>> {
        self.extend_leases(ids, until).await
    }

    async fn session_connections(&self, key: &SessionKey) -> StoreResult<Vec<ConnectionId>> {
        self.connections_of_session(key).await
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

    async fn online_users(&self) -> StoreResult<OnlineCut> {
        self.cut().await
    }

    async fn read_log(
        &self,
        after: &LogCursor,
        max: usize,
        wait: Duration,
    ) -> StoreResult<LogRead> {
        self.tail_log(after, max, wait).await
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn())
            .await
            .map_err(backend)?;
        Ok(())
    }
}
