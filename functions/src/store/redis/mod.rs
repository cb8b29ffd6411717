//! [`RedisStore`]: the store on a Redis server, shared by many processes.
//!
//! Keys (all under a configurable prefix `P`, default `rollcall:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P user:{name}` | hash | `hash` (Argon2id PHC), `created` |
//! | `P users` | sorted set (score 0) | every name, listed in order |
//! | `P session:{key}` | hash, `PEXPIREAT` | `user`, `exp` |
//! | `P conn:{id}` | hash | `user`, `session` |
//! | `P leases` | sorted set | connection id → lease end (ms), for the sweep |
//! | `P group:users` | sorted set (score 0) | the `users` group, paged by id |
//! | `P sconns:{session}` | set | a session's connections (log out) |
//! | `P presence` | hash | user → open connections |
//! | `P seq` | hash | user → presence transitions so far |
//!
//! Presence changes run as Lua scripts, so a connect or disconnect and its
//! count update are one atomic step on the server: concurrent processes see
//! exactly one 0→1 and one 1→0. Scripts build the session-set key from the
//! prefix, so on Redis Cluster use a hash-tagged prefix such as `{rollcall}:`
//! to keep every key in one slot.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::{
    ConnectionRecord, Page, RemoveIf, Removed, SessionRecord, Store, StoreError, StoreResult,
    UserRecord,
};
use crate::domain::{ConnectionId, PresenceEvent, SessionKey, Timestamp, UserPresence, Username};

mod connections;

/// The Redis store. Cheap to clone (one multiplexed, self-reconnecting
/// connection underneath).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: &'static Scripts,
}

struct Scripts {
    create_user: Script,
    add_connection: Script,
    remove_connection: Script,
    renew_leases: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        create_user: Script::new(include_str!("create_user.lua")),
        add_connection: Script::new(include_str!("add_connection.lua")),
        remove_connection: Script::new(include_str!("remove_connection.lua")),
        renew_leases: Script::new(include_str!("renew_leases.lua")),
    })
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port[/db]`); every key starts with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(StoreError::backend)?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(StoreError::backend)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            scripts: scripts(),
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
}

fn backend(e: redis::RedisError) -> StoreError {
    StoreError::backend(e)
}

/// A value read back from Redis is not what this code writes.
#[derive(Debug, thiserror::Error)]
#[error("corrupt value in Redis at {0}")]
struct Corrupt(String);

fn username(raw: &str, at: &str) -> StoreResult<Username> {
    Username::parse(raw).map_err(|_| StoreError::backend(Corrupt(at.to_owned())))
}

#[async_trait]
impl Store for RedisStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let created: i64 = self
            .scripts
            .create_user
            .key(self.key(&["user:", user.username.as_str()]))
            .key(self.key(&["users"]))
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

    async fn list_presence(&self) -> StoreResult<Vec<UserPresence>> {
        let (names, online): (Vec<String>, std::collections::HashMap<String, i64>) = redis::pipe()
            .zrange(self.key(&["users"]), 0, -1)
            .hgetall(self.key(&["presence"]))
            .query_async(&mut self.conn())
            .await
            .map_err(backend)?;
        names
            .into_iter()
            .map(|n| {
                let is_logged_in = online.get(&n).is_some_and(|c| *c > 0);
                Ok(UserPresence {
                    username: username(&n, "users")?,
                    is_logged_in,
                })
            })
            .collect()
    }

    async fn create_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let key = self.key(&["session:", s.key.as_str()]);
        let exp = s.expires_at.as_millis();
        let () = redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[("user", s.username.as_str()), ("exp", &exp.to_string())],
            )
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(exp)
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(backend)?;
        Ok(())
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

    async fn add_connection(&self, c: &ConnectionRecord) -> StoreResult<Option<PresenceEvent>> {
        self.insert_connection(c).await
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
    ) -> StoreResult<Option<Removed>> {
        self.delete_connection(id, condition).await
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

    async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn())
            .await
            .map_err(backend)?;
        Ok(())
    }
}
