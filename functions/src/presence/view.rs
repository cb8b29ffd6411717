//! [`PresenceView`]: a process's copy of who is online, kept current from
//! the store's event log.
//!
//! One mutex guards the state. Applying log entries and handing a socket its
//! snapshot both happen under it, so a socket registered in the callback of
//! [`PresenceView::join`] gets exactly the events after its snapshot, each
//! once (see the local server's `feed`). Serialised forms (the snapshot
//! frame, the page's rows) are cached until the next change.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::source::ListHead;
use crate::domain::{LogEvent, NamePrefix, ServerMessage, Timestamp, UserPresence, Username};
use crate::store::Page;

/// Largest snapshot part a socket is sent: each socket's send buffer grows
/// to the largest message it sends, so a big snapshot goes in parts.
pub const SNAPSHOT_PART_BYTES: usize = 4 * 1024;

/// Joins remembered for `joined` messages; older `since` values are
/// answered from the store.
const RECENT_JOINS: usize = 10_000;
/// Clocks of different processes differ a little: joins this much before
/// `since` are listed too (a duplicate is harmless to the page).
const CLOCK_SLACK: Duration = Duration::from_secs(5);

/// A process's presence view. See the module docs.
pub struct PresenceView {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// Every user: their transition number (odd: online) and when they
    /// last went offline.
    users: BTreeMap<Username, Known>,
    /// The online users and their (odd) transition numbers.
    online: BTreeMap<Username, u64>,
    /// Joins seen since `loaded_at`, oldest first, at most [`RECENT_JOINS`].
    recent_joins: VecDeque<(Timestamp, Username)>,
    /// When the user list was loaded: joins before it are not in `recent_joins`.
    loaded_at: Option<Timestamp>,
    /// Bumped on every change; the caches below are for one version.
    version: u64,
    snapshot: Option<(u64, Arc<[Bytes]>)>,
    /// The page's rows, for (version, minute): "last seen 5 min ago" moves
    /// with time.
    rows: Option<((u64, u64, usize), Arc<str>)>,
}

/// What the view knows of a user.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    seq: u64,
    last_seen: Option<Timestamp>,
}

impl Known {
    fn row(&self, user: &Username) -> UserPresence {
        UserPresence::at(user.clone(), self.seq).seen(self.last_seen)
    }
}

/// Figures for operators and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewStats {
    /// Users known.
    pub users: usize,
    /// Users online.
    pub online: usize,
    /// Changes applied since the start.
    pub version: u64,
}

/// Whether [`PresenceView::joined_since`] could answer from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// The names, oldest first, at most `limit`; `true` if there were more.
    Known(Vec<Username>, bool),
    /// `since` is older than what this view remembers: ask the store.
    Unknown,
}

impl Default for PresenceView {
    fn default() -> Self {
        Self::new()
    }
}

impl PresenceView {
    /// An empty view (nothing loaded yet).
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces everything with a fresh load: `online` from a cut, `users`
    /// (the whole user list, read after the cut, so possibly newer) merged
    /// in by transition number. Returns the snapshot frame every socket must
    /// now be sent, computed under the same lock as `then` is called with
    /// it (register or resynchronise sockets there).
    pub fn load<T>(
        &self,
        online: Vec<UserPresence>,
        users: Vec<UserPresence>,
        loaded_at: Timestamp,
        then: impl FnOnce(&[Bytes]) -> T,
    ) -> T {
        let mut s = self.state();
        let version = s.version + 1;
        *s = State {
            version,
            loaded_at: Some(loaded_at),
            ..State::default()
        };
        for u in online.into_iter().chain(users) {
            s.set(u.username, u.seq, u.last_seen);
        }
        let frames = s.snapshot_frame();
        let out = then(&frames);
        drop(s);
        self.changed.notify_waiters();
        out
    }

    /// Applies log entries in order. For each one that changes the view,
    /// `send` gets its serialised event (once) while the lock is held, so
    /// it is ordered with every snapshot. Entries at or below what the view
    /// knows (duplicates, or already merged by a load) are skipped.
    pub fn apply(&self, events: &[LogEvent], mut send: impl FnMut(Bytes)) {
        if events.is_empty() {
            return;
        }
        let mut s = self.state();
        for e in events {
            let changed = match e {
                LogEvent::Presence(p) => s.set(p.username.clone(), p.seq, p.last_seen),
                LogEvent::Joined {
                    username,
                    created_at,
                } => {
                    let new = !s.users.contains_key(username);
                    if new {
                        s.users.insert(username.clone(), Known::default());
                        s.version += 1;
                        s.recent_joins.push_back((*created_at, username.clone()));
                        if s.recent_joins.len() > RECENT_JOINS {
                            s.recent_joins.pop_front();
                            // What fell off is now unknown to `joined_since`.
                            s.loaded_at = s.recent_joins.front().map(|(t, _)| *t);
                        }
                    }
                    new
                }
            };
            if changed {
                send(Bytes::from(e.to_presence().to_json()));
            }
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// Calls `then` with the current snapshot's frames (its parts, see
    /// [`SNAPSHOT_PART_BYTES`]), under the lock that orders snapshots with
    /// [`PresenceView::apply`].
    pub fn join<T>(&self, then: impl FnOnce(&[Bytes]) -> T) -> T {
        let mut s = self.state();
        let frames = s.snapshot_frame();
        then(&frames)
    }

    /// Waits until the view has seen `user` at transition `seq` or later,
    /// at most `wait`; `false` if it has not by then.
    pub async fn wait_for(&self, user: &Username, seq: u64, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            if self.state().users.get(user).is_some_and(|k| k.seq >= seq) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }

    /// The online users, sorted by name.
    pub fn online(&self) -> Vec<UserPresence> {
        self.state()
            .online
            .iter()
            .map(|(u, seq)| UserPresence::at(u.clone(), *seq))
            .collect()
    }

    /// Users by name after `after` (starting with `prefix`, if given), at
    /// most `limit`.
    pub fn users_page(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> Page<UserPresence> {
        let s = self.state();
        crate::store::names_page(&s.users, after, prefix, limit, |u, k| k.row(u))
    }

    /// The users who joined after `since`, if this view remembers that far.
    pub fn joined_since(&self, since: Timestamp, limit: usize) -> Joined {
        let s = self.state();
        let Some(loaded_at) = s.loaded_at else {
            return Joined::Unknown;
        };
        let from = Timestamp::from_millis(
            since
                .as_millis()
                .saturating_sub(CLOCK_SLACK.as_millis() as u64),
        );
        if from < loaded_at {
            return Joined::Unknown;
        }
        let mut names: Vec<Username> = s
            .recent_joins
            .iter()
            .filter(|(t, _)| *t > from)
            .map(|(_, u)| u.clone())
            .take(limit.saturating_add(1))
            .collect();
        let more = names.len() > limit;
        names.truncate(limit);
        Joined::Known(names, more)
    }

    /// The page's rows — every online user and the first `first` users by
    /// name — rendered by `render` (as of `now`) once per change and
    /// minute, and shared.
    pub fn rows(
        &self,
        now: Timestamp,
        first: usize,
        render: impl FnOnce(&ListHead, Timestamp) -> String,
    ) -> Arc<str> {
        let mut s = self.state();
        let key = (s.version, now.as_millis() / 60_000, first);
        if let Some((k, rows)) = &s.rows
            && *k == key
        {
            return rows.clone();
        }
        let online = s
            .online
            .iter()
            .map(|(u, seq)| UserPresence::at(u.clone(), *seq))
            .collect();
        let page = crate::store::names_page(&s.users, None, None, first, |u, k| k.row(u));
        let head = ListHead {
            online,
            first: page.items,
            next: page.next,
            total: s.users.len() as u64,
        };
        let rows: Arc<str> = Arc::from(render(&head, now));
        s.rows = Some((key, rows.clone()));
        rows
    }

    /// Sizes and the change counter.
    pub fn stats(&self) -> ViewStats {
        let s = self.state();
        ViewStats {
            users: s.users.len(),
            online: s.online.len(),
            version: s.version,
        }
    }
}

impl State {
    /// Moves `user` to `seq` (and, offline, `last_seen`) if that is newer;
    /// whether anything changed.
    fn set(&mut self, user: Username, seq: u64, last_seen: Option<Timestamp>) -> bool {
        let known = self.users.get(&user).copied();
        if known.is_some_and(|k| k.seq >= seq) {
            return false;
        }
        if seq % 2 == 1 {
            self.online.insert(user.clone(), seq);
        } else {
            self.online.remove(&user);
        }
        // An online transition keeps the last time they left.
        let last_seen = if seq % 2 == 1 {
            known.and_then(|k| k.last_seen)
        } else {
            last_seen.or(known.and_then(|k| k.last_seen))
        };
        self.users.insert(user, Known { seq, last_seen });
        self.version += 1;
        true
    }

    /// The snapshot frames of the current version (cached).
    fn snapshot_frame(&mut self) -> Arc<[Bytes]> {
        if let Some((v, frames)) = &self.snapshot
            && *v == self.version
        {
            return frames.clone();
        }
        let users = self
            .online
            .iter()
            .map(|(u, seq)| UserPresence::at(u.clone(), *seq))
            .collect();
        let at = Timestamp::now().as_millis();
        let frames: Arc<[Bytes]> = ServerMessage::snapshot_parts(
            true,
            at,
            users,
            Some(self.users.len() as u64),
            SNAPSHOT_PART_BYTES,
        )
        .iter()
        .map(|m| Bytes::from(m.to_json()))
        .collect();
        self.snapshot = Some((self.version, frames.clone()));
        frames
    }
}

#[cfg(test)]
mod tests;
