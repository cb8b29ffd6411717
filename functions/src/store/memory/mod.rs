//! [`MemoryStore`]: everything in one process's memory, behind one mutex.
//!
//! For quick tries (`ROLLCALL_STORE=memory`) and unit tests. No lock is held
//! across an `.await`: every operation is a short synchronous critical
//! section, which also makes each one atomic — a transition and its log
//! entry included. The log ([`log`]) is a bounded queue; readers wait for
//! new entries on a [`Notify`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{
    ConnectionRecord, LogCursor, LogRead, Offline, OnlineCut, Page, RemoveIf, Removed,
    SessionRecord, Store, StoreError, StoreResult, UserRecord,
};
use crate::domain::{
    ConnectionId, LogEvent, NamePrefix, PresenceEvent, SessionKey, Timestamp, UserPresence,
    Username,
};

mod log;
use log::Log;

/// Log entries kept by default.
pub const DEFAULT_LOG_CAPACITY: usize = 100_000;

/// The in-memory store.
pub struct MemoryStore {
    state: Mutex<State>,
    appended: Notify,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_log_capacity(DEFAULT_LOG_CAPACITY)
    }
}

struct State {
    users: BTreeMap<Username, UserRecord>,
    /// Names by creation time: the users who joined after a time.
    joined: BTreeMap<Timestamp, BTreeSet<Username>>,
    sessions: HashMap<SessionKey, SessionRecord>,
    /// Socket tickets (by hash): their session and expiry.
    tickets: HashMap<SessionKey, (SessionKey, Timestamp)>,
    /// Ordered by id: the `users` group, paginated by id.
    connections: BTreeMap<ConnectionId, ConnectionRecord>,
    /// (lease end, id), for the sweep.
    leases: BTreeSet<(Timestamp, ConnectionId)>,
    session_connections: HashMap<SessionKey, BTreeSet<ConnectionId>>,
    /// Per user: open connections and transition counter.
    presence: HashMap<Username, Presence>,
    /// Online users (odd transition number) and that number.
    online: BTreeMap<Username, u64>,
    /// (deadline, user) of pending offline announcements, and back.
    pending: BTreeSet<(Timestamp, Username)>,
    pending_of: HashMap<Username, Timestamp>,
    log: Log,
}

#[derive(Default, Clone, Copy)]
struct Presence {
    connections: u64,
    seq: u64,
    /// When they last went offline.
    last_seen: Option<Timestamp>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose log keeps at most `capacity` entries.
    pub fn with_log_capacity(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                users: BTreeMap::new(),
                joined: BTreeMap::new(),
                sessions: HashMap::new(),
                tickets: HashMap::new(),
                connections: BTreeMap::new(),
                leases: BTreeSet::new(),
                session_connections: HashMap::new(),
                presence: HashMap::new(),
                online: BTreeMap::new(),
                pending: BTreeSet::new(),
                pending_of: HashMap::new(),
                log: Log::new(capacity),
            }),
            appended: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated in
        // a way later calls could not handle, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state, waking log readers if it appended.
    fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.state());
        self.appended.notify_waiters();
        out
    }
}

impl State {
    /// Moves `user` to transition `seq + 1` and logs it; going offline,
    /// records when (last seen).
    fn transition(&mut self, user: &Username) -> PresenceEvent {
        let p = self.presence.entry(user.clone()).or_default();
        p.seq += 1;
        if p.seq.is_multiple_of(2) {
            p.last_seen = Some(Timestamp::now());
        }
        let event = PresenceEvent::transition(user.clone(), p.seq, p.last_seen);
        if event.is_logged_in {
            self.online.insert(user.clone(), event.seq);
        } else {
            self.online.remove(user);
        }
        self.log.append(LogEvent::Presence(event.clone()));
        event
    }

    fn cancel_pending(&mut self, user: &Username) {
        if let Some(at) = self.pending_of.remove(user) {
            self.pending.remove(&(at, user.clone()));
        }
    }

    fn seq(&self, user: &Username) -> u64 {
        self.presence.get(user).map_or(0, |p| p.seq)
    }

    /// The user's row: transition number and last seen.
    fn row(&self, user: &Username) -> UserPresence {
        let p = self.presence.get(user).copied().unwrap_or_default();
        UserPresence::at(user.clone(), p.seq).seen(p.last_seen)
    }

    fn connections(&self, user: &Username) -> u64 {
        self.presence.get(user).map_or(0, |p| p.connections)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.change(|s| {
            if s.users.contains_key(&user.username) {
                return Err(StoreError::Conflict);
            }
            s.users.insert(user.username.clone(), user.clone());
            s.joined
                .entry(user.created_at)
                .or_default()
                .insert(user.username.clone());
            s.log.append(LogEvent::Joined {
                username: user.username.clone(),
                created_at: user.created_at,
            });
            Ok(())
        })
    }

    async fn find_user(&self, username: &Username) -> StoreResult<Option<UserRecord>> {
        Ok(self.state().users.get(username).cloned())
    }

    async fn list_users(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>> {
        let s = self.state();
        Ok(super::names_page(&s.users, after, prefix, limit, |u, _| {
            s.row(u)
        }))
    }

    async fn count_users(&self) -> StoreResult<u64> {
        Ok(self.state().users.len() as u64)
    }

    async fn joined_since(&self, since: Timestamp, limit: usize) -> StoreResult<Vec<Username>> {
        use std::ops::Bound::{Excluded, Unbounded};
        Ok(self
            .state()
            .joined
            .range((Excluded(since), Unbounded))
            .flat_map(|(_, names)| names.iter().cloned())
            .take(limit)
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

    async fn create_ticket(
        &self,
        ticket: &SessionKey,
        session: &SessionKey,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let mut s = self.state();
        s.tickets.retain(|_, (_, exp)| *exp > Timestamp::now());
        s.tickets
            .insert(ticket.clone(), (session.clone(), expires_at));
        Ok(())
    }

    async fn take_ticket(
        &self,
        ticket: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionKey>> {
        Ok(self
            .state()
            .tickets
            .remove(ticket)
            .filter(|(_, exp)| *exp > now)
            .map(|(session, _)| session))
    }

    async fn add_connection(
        &self,
        conn: &ConnectionRecord,
        max_per_user: Option<u32>,
    ) -> StoreResult<Option<PresenceEvent>> {
        let now = Timestamp::now();
        self.change(|s| {
            if s.sessions
                .get(&conn.session)
                .is_none_or(|r| r.expires_at <= now)
            {
                return Err(StoreError::NotFound);
            }
            if let Some(old) = s.connections.get(&conn.id).map(|c| c.lease_until) {
                let until = old.max(conn.lease_until);
                s.leases.remove(&(old, conn.id.clone()));
                s.leases.insert((until, conn.id.clone()));
                if let Some(c) = s.connections.get_mut(&conn.id) {
                    c.lease_until = until;
                }
                return Ok(None);
            }
            let open = s.presence.get(&conn.username).map_or(0, |p| p.connections);
            if max_per_user.is_some_and(|cap| open >= u64::from(cap)) {
                return Err(StoreError::LimitReached);
            }
            s.connections.insert(conn.id.clone(), conn.clone());
            s.leases.insert((conn.lease_until, conn.id.clone()));
            s.session_connections
                .entry(conn.session.clone())
                .or_default()
                .insert(conn.id.clone());
            s.presence
                .entry(conn.username.clone())
                .or_default()
                .connections += 1;
            s.cancel_pending(&conn.username);
            Ok((s.seq(&conn.username) % 2 == 0).then(|| s.transition(&conn.username)))
        })
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
        offline: Offline,
    ) -> StoreResult<Option<Removed>> {
        Ok(self.change(|s| {
            let conn = s.connections.get(id)?;
            if let RemoveIf::ExpiredAt(now) = condition
                && conn.lease_until > now
            {
                return None;
            }
            let conn = s.connections.remove(id)?;
            s.leases.remove(&(conn.lease_until, conn.id.clone()));
            if let Some(set) = s.session_connections.get_mut(&conn.session) {
                set.remove(id);
                if set.is_empty() {
                    s.session_connections.remove(&conn.session);
                }
            }
            let user = conn.username.clone();
            let p = s.presence.entry(user.clone()).or_default();
            p.connections = p.connections.saturating_sub(1);
            let last = p.connections == 0 && p.seq % 2 == 1;
            let mut removed = Removed {
                username: conn.username,
                session: conn.session,
                went_offline: None,
                grace_started: false,
            };
            if last {
                match offline {
                    Offline::Now => {
                        s.cancel_pending(&user);
                        removed.went_offline = Some(s.transition(&user));
                    }
                    Offline::After(at) => {
                        s.cancel_pending(&user);
                        s.pending.insert((at, user.clone()));
                        s.pending_of.insert(user, at);
                        removed.grace_started = true;
                    }
                }
            }
            Some(removed)
        }))
    }

    async fn settle_offline(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<PresenceEvent>> {
        Ok(self.change(|s| {
            let due: Vec<(Timestamp, Username)> = s
                .pending
                .iter()
                .take_while(|(t, _)| *t <= now)
                .take(limit)
                .cloned()
                .collect();
            let mut events = Vec::new();
            for (_, user) in due {
                s.cancel_pending(&user);
                if s.connections(&user) == 0 && s.seq(&user) % 2 == 1 {
                    events.push(s.transition(&user));
                }
            }
            events
        }))
    }

    async fn settle_user(
        &self,
        user: &Username,
        now: Timestamp,
    ) -> StoreResult<Option<PresenceEvent>> {
        Ok(self.change(|s| {
            let due = *s.pending_of.get(user)?;
            if due > now {
                return None;
            }
            s.cancel_pending(user);
            (s.connections(user) == 0 && s.seq(user) % 2 == 1).then(|| s.transition(user))
        }))
    }

    async fn offline_now(&self, user: &Username) -> StoreResult<Option<PresenceEvent>> {
        Ok(self.change(|s| {
            if s.connections(user) > 0 || s.seq(user) % 2 == 0 {
                return None;
            }
            s.cancel_pending(user);
            Some(s.transition(user))
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
            let Some((old, ends)) = s
                .connections
                .get(id)
                .map(|c| (c.lease_until, c.session_expires_at))
            else {
                missing.push(id.clone());
                continue;
            };
            let until = until.min(ends);
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
        Ok(page_of(&mut items, limit, |id| id.as_str().to_owned()))
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

    async fn online_users(&self) -> StoreResult<OnlineCut> {
        let s = self.state();
        Ok(OnlineCut {
            users: s
                .online
                .iter()
                .map(|(u, seq)| UserPresence::at(u.clone(), *seq))
                .collect(),
            cursor: s.log.end(),
        })
    }

    async fn read_log(
        &self,
        after: &LogCursor,
        max: usize,
        wait: Duration,
    ) -> StoreResult<LogRead> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so an append right after is not missed.
            let appended = self.appended.notified();
            if let Some(read) = self.state().log.read(after, max.max(1)) {
                return Ok(read);
            }
            // No wait asked for: no timer either (it would cost a tick).
            if wait.is_zero() || tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(LogRead::Entries {
                    events: Vec::new(),
                    cursor: after.clone(),
                });
            }
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// Cuts `items` (fetched with one extra) to a page of `limit`.
fn page_of<T>(items: &mut Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page {
        items: std::mem::take(items),
        next,
    }
}
