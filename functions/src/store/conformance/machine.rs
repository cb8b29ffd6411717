//! The presence state machine across processes, for property tests
//! (`functions/src/proptests.rs` on memory, `tests/it/conformance.rs` on a
//! real Redis): any interleaving of [`Step`]s — connects and closes on
//! several simulated server processes, lease renewals, the clock moving,
//! sweeps, crashes and graceful restarts — run against one store, with
//! each process keeping a [`PresenceView`] fed by the store's log (reloaded
//! from a cut when it restarts), as the local server's processes do.
//!
//! A model mirrors the registrations (which connection of which user, its
//! lease) and predicts every transition. After every step, with every view
//! caught up on the log:
//!
//! * a user is online in the store iff they have a registered connection
//!   (no grace period here: closes go offline at once);
//! * every process's view shows exactly the store's online users and
//!   transition numbers;
//!
//! and at the end, of the whole log: each user's events are numbered
//! 1, 2, 3… (odd: online), one per predicted transition — none for a no-op
//! (a second tab, a close of a swept connection, a renewal) — and the last
//! one is the store's state.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::log::read_all;
use super::{list_all, open_session, t0, user};
use crate::domain::{ConnectionId, LogEvent, Timestamp, Username};
use crate::presence::PresenceView;
use crate::store::{ConnectionRecord, LogCursor, Offline, RemoveIf, SessionRecord, Store};

/// Simulated server processes.
pub const PROCESSES: u8 = 3;
/// Users whose tabs come and go.
pub const USERS: u8 = 3;
/// The lease a connect or renewal asks for.
const LEASE: Duration = Duration::from_secs(30);

/// One step of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A tab of `user` opens on `process`.
    Connect {
        /// Which process (modulo [`PROCESSES`]).
        process: u8,
        /// Which user (modulo [`USERS`]).
        user: u8,
    },
    /// One of `process`'s sockets (the `pick`th, modulo how many) closes.
    Close {
        /// Which process.
        process: u8,
        /// Which of its sockets.
        pick: u8,
    },
    /// `process` renews its sockets' leases; those no longer registered
    /// (swept) it closes, as the local server does.
    Renew {
        /// Which process.
        process: u8,
    },
    /// The clock moves on.
    Advance {
        /// By this many seconds.
        secs: u8,
    },
    /// A sweep: expired connections removed (offline at once).
    Sweep,
    /// `process` dies (SIGKILL) and starts again: its sockets are gone
    /// without a close, their registrations stay until their leases end.
    Crash {
        /// Which process.
        process: u8,
    },
    /// `process` stops gracefully (SIGTERM: every socket closed and
    /// unregistered) and starts again.
    Restart {
        /// Which process.
        process: u8,
    },
}

impl Step {
    /// A step from three arbitrary numbers (what a property test draws):
    /// connects and closes are the most frequent.
    pub fn from_code((kind, a, b): (u8, u8, u8)) -> Self {
        match kind % 10 {
            0..=2 => Self::Connect {
                process: a,
                user: b,
            },
            3..=4 => Self::Close {
                process: a,
                pick: b,
            },
            5 => Self::Renew { process: a },
            6 => Self::Advance { secs: b % 40 },
            7 => Self::Sweep,
            8 => Self::Crash { process: a },
            _ => Self::Restart { process: a },
        }
    }
}

/// A simulated server process: its sockets and its view.
struct Process {
    sockets: Vec<ConnectionId>,
    view: PresenceView,
    cursor: LogCursor,
}

impl Process {
    /// Starts (or restarts): a view loaded from a cut and the user list.
    async fn start(store: &dyn Store, now: Timestamp) -> Self {
        let cut = store.online_users().await.expect("cut");
        let view = PresenceView::new();
        view.load(cut.users, list_all(store).await, now, |_| ());
        Self {
            sockets: Vec::new(),
            view,
            cursor: cut.cursor,
        }
    }

    /// Applies everything the log has after its cursor.
    async fn catch_up(&mut self, store: &dyn Store) {
        let (events, cursor) = read_all(store, &self.cursor).await;
        self.view.apply(&events, |_| ());
        self.cursor = cursor;
    }
}

/// The model: every registered connection (user, lease end), and each
/// user's predicted transition number.
#[derive(Default)]
struct Model {
    registered: HashMap<ConnectionId, (u8, Timestamp)>,
    seq: BTreeMap<u8, u64>,
}

impl Model {
    fn conns_of(&self, u: u8) -> usize {
        self.registered.values().filter(|(w, _)| *w == u).count()
    }

    fn register(&mut self, id: ConnectionId, u: u8, until: Timestamp) {
        let first = self.conns_of(u) == 0;
        self.registered.insert(id, (u, until));
        if first {
            *self.seq.entry(u).or_default() += 1;
        }
    }

    fn unregister(&mut self, id: &ConnectionId) {
        if let Some((u, _)) = self.registered.remove(id)
            && self.conns_of(u) == 0
        {
            *self.seq.entry(u).or_default() += 1;
        }
    }
}

fn username(u: u8) -> Username {
    super::name(&format!("m{u}"))
}

/// Runs `steps` against `store` (fresh and empty), checking the invariants
/// above after each; panics on the first that fails.
pub async fn run(store: &dyn Store, steps: &[Step]) {
    let start = store.online_users().await.expect("cut").cursor;
    let mut sessions: Vec<SessionRecord> = Vec::new();
    for u in 0..USERS {
        store
            .create_user(&user(username(u).as_str()))
            .await
            .expect("create");
        sessions.push(open_session(store, username(u).as_str(), t0().plus(LEASE * 1000)).await);
    }
    let mut now = t0();
    let mut processes = Vec::new();
    for _ in 0..PROCESSES {
        processes.push(Process::start(store, now).await);
    }
    let mut model = Model::default();
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Connect { process, user } => {
                let (p, u) = (usize::from(process % PROCESSES), user % USERS);
                let s = &sessions[usize::from(u)];
                let record = ConnectionRecord {
                    id: ConnectionId::generate(),
                    username: s.username.clone(),
                    session: s.key.clone(),
                    lease_until: now.plus(LEASE),
                    session_expires_at: s.expires_at,
                };
                store.add_connection(&record, None).await.expect("add");
                model.register(record.id.clone(), u, record.lease_until);
                processes[p].sockets.push(record.id);
            }
            Step::Close { process, pick } => {
                let p = &mut processes[usize::from(process % PROCESSES)];
                if !p.sockets.is_empty() {
                    let id = p.sockets.remove(usize::from(pick) % p.sockets.len());
                    store
                        .remove_connection(&id, RemoveIf::Always, Offline::Now)
                        .await
                        .expect("remove");
                    model.unregister(&id);
                }
            }
            Step::Renew { process } => {
                let p = &mut processes[usize::from(process % PROCESSES)];
                let until = now.plus(LEASE);
                let missing = store.renew_leases(&p.sockets, until).await.expect("renew");
                for id in &p.sockets {
                    if let Some((_, lease)) = model.registered.get_mut(id) {
                        *lease = (*lease).max(until);
                    }
                }
                let gone: Vec<&ConnectionId> = p
                    .sockets
                    .iter()
                    .filter(|id| !model.registered.contains_key(*id))
                    .collect();
                let mut missing_sorted = missing.clone();
                missing_sorted.sort();
                let mut gone_sorted: Vec<ConnectionId> = gone.into_iter().cloned().collect();
                gone_sorted.sort();
                assert_eq!(
                    missing_sorted, gone_sorted,
                    "step {i}: renewal finds exactly the swept sockets"
                );
                // The process closes them; their unregistering finds nothing.
                for id in &missing {
                    let r = store
                        .remove_connection(id, RemoveIf::Always, Offline::Now)
                        .await
                        .expect("remove");
                    assert_eq!(r, None, "step {i}: {id} was swept already");
                }
                p.sockets.retain(|id| !missing.contains(id));
            }
            Step::Advance { secs } => now = now.plus(Duration::from_secs(u64::from(secs))),
            Step::Sweep => {
                let expired = store.expired_connections(now, 1000).await.expect("expired");
                for id in &expired {
                    store
                        .remove_connection(id, RemoveIf::ExpiredAt(now), Offline::Now)
                        .await
                        .expect("sweep");
                }
                let mut want: Vec<ConnectionId> = model
                    .registered
                    .iter()
                    .filter(|(_, (_, lease))| *lease <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                let mut got = expired.clone();
                want.sort();
                got.sort();
                assert_eq!(got, want, "step {i}: the sweep finds the expired leases");
                for id in &expired {
                    model.unregister(id);
                }
            }
            Step::Crash { process } => {
                let p = usize::from(process % PROCESSES);
                processes[p] = Process::start(store, now).await;
            }
            Step::Restart { process } => {
                let p = usize::from(process % PROCESSES);
                for id in std::mem::take(&mut processes[p].sockets) {
                    store
                        .remove_connection(&id, RemoveIf::Always, Offline::Now)
                        .await
                        .expect("remove");
                    model.unregister(&id);
                }
                processes[p] = Process::start(store, now).await;
            }
        }
        check(store, &mut processes, &model, i, step).await;
    }

    // The whole log: consecutive, alternating, one per transition, ending
    // at the store's state.
    let (events, _) = read_all(store, &start).await;
    let mut per_user: BTreeMap<String, Vec<(bool, u64)>> = BTreeMap::new();
    for e in &events {
        if let LogEvent::Presence(p) = e {
            per_user
                .entry(p.username.as_str().to_owned())
                .or_default()
                .push((p.is_logged_in, p.seq));
        }
    }
    let users = list_all(store).await;
    for u in 0..USERS {
        let name = username(u);
        let seen = per_user.remove(name.as_str()).unwrap_or_default();
        let want: Vec<(bool, u64)> = (1..=model.seq.get(&u).copied().unwrap_or(0))
            .map(|s| (s % 2 == 1, s))
            .collect();
        assert_eq!(
            seen, want,
            "{name}: one event per transition, numbered 1, 2, 3…"
        );
        let stored = users
            .iter()
            .find(|p| p.username == name)
            .map(|p| (p.is_logged_in, p.seq));
        assert_eq!(
            seen.last().copied().or(Some((false, 0))),
            stored,
            "{name}: the last event is the store's state"
        );
    }
    assert!(per_user.is_empty(), "events of nobody: {per_user:?}");
}

/// The invariants after step `i`.
async fn check(store: &dyn Store, processes: &mut [Process], model: &Model, i: usize, step: &Step) {
    let users = list_all(store).await;
    let online: Vec<(Username, u64)> = users
        .iter()
        .filter(|u| u.is_logged_in)
        .map(|u| (u.username.clone(), u.seq))
        .collect();
    for u in 0..USERS {
        let name = username(u);
        let stored = users.iter().find(|p| p.username == name).expect("listed");
        assert_eq!(
            stored.is_logged_in,
            model.conns_of(u) > 0,
            "after step {i} ({step:?}): {name} online iff a connection is registered"
        );
        assert_eq!(
            stored.seq,
            model.seq.get(&u).copied().unwrap_or(0),
            "after step {i} ({step:?}): {name}'s transition number"
        );
    }
    for (n, p) in processes.iter_mut().enumerate() {
        p.catch_up(store).await;
        let shown: Vec<(Username, u64)> = p
            .view
            .online()
            .into_iter()
            .map(|u| (u.username, u.seq))
            .collect();
        assert_eq!(
            shown, online,
            "after step {i} ({step:?}): process {n}'s view is the store"
        );
    }
}
