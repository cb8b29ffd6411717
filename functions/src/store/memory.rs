//! [`MemoryStore`]: everything in one process's memory, behind one mutex.
//!
//! For quick tries (`ROLLCALL_STORE=memory`) and unit tests. No lock is held
//! across an `.await`: every operation is a short synchronous critical
//! section, which also makes each one atomic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    ConnectionRecord, Page, RemoveIf, Removed, SessionRecord, Store, StoreError, StoreResult,
    UserRecord,
};
use crate::domain::{ConnectionId, PresenceEvent, SessionKey, Timestamp, UserPresence, Username};

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    users: BTreeMap<Username, UserRecord>,
    sessions: HashMap<SessionKey, SessionRecord>,
    /// Ordered by id: the `users` group, paginated by id.
    connections: BTreeMap<ConnectionId, ConnectionRecord>,
    /// (lease end, id), for the sweep.
    leases: BTreeSet<(Timestamp, ConnectionId)>,
    session_connections: HashMap<SessionKey, BTreeSet<ConnectionId>>,
    /// Per user: open connections and transition counter.
    presence: HashMap<Username, Presence>,
}

#[derive(Default, Clone, Copy)]
struct Presence {
    connections: u64,
    seq: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated in
        // a way later calls could not handle, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let mut s = self.state();
        if s.users.contains_key(&user.username) {
            return Err(StoreError::Conflict);
        }
        s.users.insert(user.username.clone(), user.clone());
        Ok(())
    }

    async fn find_user(&self, username: &Username) -> StoreResult<Option<UserRecord>> {
        Ok(self.state().users.get(username).cloned())
    }

    async fn list_presence(&self) -> StoreResult<Vec<UserPresence>> {
        let s = self.state();
        Ok(s.users
            .keys()
            .map(|u| UserPresence {
                username: u.clone(),
                is_logged_in: s.presence.get(u).is_some_and(|p| p.connections > 0),
            })
            .collect())
    }

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.state()
            .sessions
            .insert(session.key.clone(), session.clone());
        Ok(())
    }

    async fn find_session(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let mut s = self.state();
        match s.sessions.get(key) {
            Some(rec) if rec.expires_at > now => Ok(Some(rec.clone())),
            Some(_) => {
                s.sessions.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        Ok(self.state().sessions.remove(key).is_some())
    }

    async fn add_connection(&self, conn: &ConnectionRecord) -> StoreResult<Option<PresenceEvent>> {
        let mut s = self.state();
        if let Some(old) = s.connections.get(&conn.id).map(|c| c.lease_until) {
            let until = old.max(conn.lease_until);
            s.leases.remove(&(old, conn.id.clone()));
            s.leases.insert((until, conn.id.clone()));
            if let Some(c) = s.connections.get_mut(&conn.id) {
                c.lease_until = until;
            }
            return Ok(None);
        }
        s.connections.insert(conn.id.clone(), conn.clone());
        s.leases.insert((conn.lease_until, conn.id.clone()));
        s.session_connections
            .entry(conn.session.clone())
            .or_default()
            .insert(conn.id.clone());
        let p = s.presence.entry(conn.username.clone()).or_default();
        p.connections += 1;
        if p.connections == 1 {
            p.seq += 1;
            return Ok(Some(PresenceEvent {
                username: conn.username.clone(),
                is_logged_in: true,
                seq: p.seq,
            }));
        }
        Ok(None)
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
    ) -> StoreResult<Option<Removed>> {
        let mut s = self.state();
        let Some(conn) = s.connections.get(id) else {
            return Ok(None);
        };
        if let RemoveIf::ExpiredAt(now) = condition
            && conn.lease_until > now
        {
            return Ok(None);
        }
        let Some(conn) = s.connections.remove(id) else {
            return Ok(None);
        };
        s.leases.remove(&(conn.lease_until, conn.id.clone()));
        if let Some(set) = s.session_connections.get_mut(&conn.session) {
            set.remove(id);
            if set.is_empty() {
                s.session_connections.remove(&conn.session);
            }
        }
        let p = s.presence.entry(conn.username.clone()).or_default();
        p.connections = p.connections.saturating_sub(1);
        let went_offline = (p.connections == 0).then(|| {
            p.seq += 1;
            PresenceEvent {
                username: conn.username.clone(),
                is_logged_in: false,
                seq: p.seq,
            }
        });
        Ok(Some(Removed {
            username: conn.username,
            session: conn.session,
            went_offline,
        }))
    }

    async fn renew_leases(
        &self,
        ids: &[ConnectionId],
        until: Timestamp,
    ) -> StoreResult<Vec<ConnectionId>> {
        let mut s = self.state();
        let mut missing = Vec::new();
        for id in ids {
            let Some(old) = s.connections.get(id).map(|c| c.lease_until) else {
                missing.push(id.clone());
                continue;
            };
            if until > old {
                s.leases.remove(&(old, id.clone()));
                s.leases.insert((until, id.clone()));
                if let Some(c) = s.connections.get_mut(id) {
                    c.lease_until = until;
                }
            }
        }
        Ok(missing)
    }

    async fn session_connections(&self, key: &SessionKey) -> StoreResult<Vec<ConnectionId>> {
        Ok(self
            .state()
            .session_connections
            .get(key)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn group_connections(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let s = self.state();
        let start = match cursor {
            Some(c) => Excluded(ConnectionId::parse(c).map_err(StoreError::backend)?),
            None => Unbounded,
        };
        let mut items: Vec<ConnectionId> = s
            .connections
            .range((start, Unbounded))
            .take(limit.saturating_add(1))
            .map(|(id, _)| id.clone())
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|id| id.as_str().to_owned())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn expired_connections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        Ok(self
            .state()
            .leases
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
