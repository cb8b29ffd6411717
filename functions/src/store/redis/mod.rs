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

/// Renewals per script call: bounds how long one call blocks Redis.
const RENEW_BATCH: usize = 500;

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
        let seq: u64 = self
            .scripts
            .add_connection
            .key(self.key(&["conn:", c.id.as_str()]))
            .key(self.key(&["leases"]))
            .key(self.key(&["presence"]))
            .key(self.key(&["seq"]))
            .key(self.key(&["sconns:", c.session.as_str()]))
            .key(self.key(&["group:users"]))
            .arg(c.id.as_str())
            .arg(c.username.as_str())
            .arg(c.session.as_str())
            .arg(c.lease_until.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        Ok((seq > 0).then(|| PresenceEvent {
            username: c.username.clone(),
            is_logged_in: true,
            seq,
        }))
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
    ) -> StoreResult<Option<Removed>> {
        let when = match condition {
            RemoveIf::Always => String::new(),
            RemoveIf::ExpiredAt(t) => t.as_millis().to_string(),
        };
        let at = self.key(&["conn:", id.as_str()]);
        let out: Option<(String, String, u64)> = self
            .scripts
            .remove_connection
            .key(&at)
            .key(self.key(&["leases"]))
            .key(self.key(&["presence"]))
            .key(self.key(&["seq"]))
            .key(self.key(&["group:users"]))
            .arg(id.as_str())
            .arg(&self.prefix)
            .arg(when)
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        let Some((user, session, seq)) = out else {
            return Ok(None);
        };
        let username = username(&user, &at)?;
        let session =
            SessionKey::parse(&session).ok_or_else(|| StoreError::backend(Corrupt(at)))?;
        let went_offline = (seq > 0).then(|| PresenceEvent {
            username: username.clone(),
            is_logged_in: false,
            seq,
        });
        Ok(Some(Removed {
            username,
            session,
            went_offline,
        }))
    }

    async fn renew_leases(
        &self,
        ids: &[ConnectionId],
        until: Timestamp,
    ) -> StoreResult<Vec<ConnectionId>> {
        let mut missing = Vec::new();
        for chunk in ids.chunks(RENEW_BATCH) {
            let mut call = self.scripts.renew_leases.key(self.key(&["leases"]));
            call.arg(until.as_millis());
            for id in chunk {
                call.arg(id.as_str());
            }
            let gone: Vec<String> = call.invoke_async(&mut self.conn()).await.map_err(backend)?;
            missing.extend(gone.iter().filter_map(|g| ConnectionId::parse(g).ok()));
        }
        Ok(missing)
    }

    async fn session_connections(&self, key: &SessionKey) -> StoreResult<Vec<ConnectionId>> {
        let ids: Vec<String> = self
            .conn()
            .smembers(self.key(&["sconns:", key.as_str()]))
            .await
            .map_err(backend)?;
        let mut ids: Vec<ConnectionId> = ids
            .iter()
            .filter_map(|i| ConnectionId::parse(i).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn group_connections(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        let min = cursor.map_or_else(|| "-".to_owned(), |c| format!("({c}"));
        let mut items: Vec<String> = self
            .conn()
            .zrangebylex_limit(
                self.key(&["group:users"]),
                min,
                "+",
                0,
                isize::try_from(limit.saturating_add(1)).unwrap_or(isize::MAX),
            )
            .await
            .map_err(backend)?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().cloned()
        } else {
            None
        };
        let items = items
            .iter()
            .filter_map(|i| ConnectionId::parse(i).ok())
            .collect();
        Ok(Page { items, next })
    }

    async fn expired_connections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        let ids: Vec<String> = self
            .conn()
            .zrangebyscore_limit(
                self.key(&["leases"]),
                "-inf",
                now.as_millis(),
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
            .map_err(backend)?;
        Ok(ids
            .iter()
            .filter_map(|i| ConnectionId::parse(i).ok())
            .collect())
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn())
            .await
            .map_err(backend)?;
        Ok(())
    }
}
