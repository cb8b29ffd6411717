//! [`Watcher`]: a page's model of who is online, fed by its socket in a
//! task of its own, for tests that check convergence against the store.
//!
//! It keeps, per user, the status and transition number, as the page does:
//! an event applies unless older than what is shown; a local snapshot
//! (`reset: true`, delivered in order with the events) is the truth — the
//! users it lists as given, everyone else offline with no known transition
//! number, so that any later event of theirs applies (after a store that
//! rewound, transition numbers go back).
//!
//! Next to that model it keeps [`Seen::page_js`]: the same messages applied
//! by the rules `templates/rollcall.js` has today, line for line, so a test
//! can tell whether the real page would end where the model does.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use super::socket::Socket;

/// What a watching page has seen.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Per user: online, transition number (the model: a reset snapshot
    /// forgets every transition number it does not list).
    pub users: HashMap<String, (bool, u64)>,
    /// Per user: online, transition number, as `templates/rollcall.js`
    /// applies the same messages (see [`Seen::page_js_online`]).
    pub page_js: HashMap<String, (bool, u64)>,
    /// Complete snapshots received with `reset: true` after the first.
    pub resets: usize,
    /// Every presence event received, in order: name, online, seq.
    pub events: Vec<(String, bool, u64)>,
    /// When each of [`Seen::events`] arrived (same index).
    pub arrived: Vec<Instant>,
    /// Where the last complete snapshot (the first one, or the last reset)
    /// left off: the number of [`Seen::events`] before it, and the users
    /// it listed online with their transition numbers.
    pub last_snapshot: (usize, BTreeMap<String, u64>),
    /// The events the model ignored as older than what it showed.
    pub dropped: Vec<(String, bool, u64)>,
    /// The events the page's JS rules would have ignored.
    pub page_js_dropped: Vec<(String, bool, u64)>,
    /// Messages that broke the wire format's rules (a local snapshot
    /// without `reset`, an event without its fields).
    pub problems: Vec<String>,
    /// The close code, once closed (`Some(None)`: closed without a code).
    pub closed: Option<Option<u16>>,
}

fn online_of(users: &HashMap<String, (bool, u64)>) -> BTreeMap<String, u64> {
    users
        .iter()
        .filter(|(_, (on, _))| *on)
        .map(|(n, (_, s))| (n.clone(), *s))
        .collect()
}

impl Seen {
    /// The online users and their transition numbers (the model).
    pub fn online(&self) -> BTreeMap<String, u64> {
        online_of(&self.users)
    }

    /// The online users and their transition numbers as the page's JS
    /// would show them.
    pub fn page_js_online(&self) -> BTreeMap<String, u64> {
        online_of(&self.page_js)
    }

    /// The events received about `name`: online, seq.
    pub fn events_of(&self, name: &str) -> Vec<(bool, u64)> {
        self.events
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, on, seq)| (*on, *seq))
            .collect()
    }

    /// A complete reset snapshot listing `listed` (the online users).
    fn snapshot(&mut self, listed: &[(String, bool, u64)]) {
        self.last_snapshot = (
            self.events.len(),
            listed
                .iter()
                .filter(|(_, on, _)| *on)
                .map(|(n, _, seq)| (n.clone(), *seq))
                .collect(),
        );
        // The model: everyone unlisted is offline with no known number.
        for (on, seq) in self.users.values_mut() {
            *on = false;
            *seq = 0;
        }
        for (n, on, seq) in listed {
            self.users.insert(n.clone(), (*on, *seq));
        }
        // rollcall.js `snapshot()` with `reset`: listed rows exact; then
        // `if (listed.has(name)) continue;` and `show(r, name, false, 0)`
        // for every other row, offline ones too.
        for (n, on, seq) in listed {
            self.page_js.insert(n.clone(), (*on, *seq));
        }
        for (n, (on, seq)) in self.page_js.iter_mut() {
            if !listed.iter().any(|(l, _, _)| l == n) {
                *on = false;
                *seq = 0;
            }
        }
    }

    fn event(&mut self, name: &str, online: bool, seq: u64) {
        self.events.push((name.to_owned(), online, seq));
        self.arrived.push(Instant::now());
        // Both: `if (!exact && seq < r.seq) return;`
        for (users, dropped) in [
            (&mut self.users, &mut self.dropped),
            (&mut self.page_js, &mut self.page_js_dropped),
        ] {
            match users.get(name) {
                Some((_, known)) if seq < *known => {
                    dropped.push((name.to_owned(), online, seq));
                }
                _ => {
                    users.insert(name.to_owned(), (online, seq));
                }
            }
        }
    }
}

/// A socket whose messages a task applies to a [`Seen`].
pub struct Watcher {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Watcher {
    /// Watches through `socket` (already past its first snapshot, which
    /// starts the model).
    pub fn new(mut socket: Socket) -> Self {
        let mut first = Seen::default();
        let seqs = socket.seqs();
        let listed: Vec<(String, bool, u64)> = socket
            .snapshot
            .iter()
            .map(|(n, on)| (n.clone(), *on, seqs.get(n).copied().unwrap_or(0)))
            .collect();
        first.snapshot(&listed);
        let seen = Arc::new(Mutex::new(first));
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            let mut parts: Vec<(String, bool, u64)> = Vec::new();
            loop {
                match socket.next_or_close(Duration::from_secs(3600)).await {
                    Ok(None) => {}
                    Ok(Some(m)) => {
                        let mut s = shared.lock().expect("seen");
                        apply(&mut s, &mut parts, &m);
                    }
                    Err(code) => {
                        shared.lock().expect("seen").closed = Some(code);
                        return;
                    }
                }
            }
        });
        Self { seen, task }
    }

    /// What it has seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("seen").clone()
    }

    /// Waits up to `wait` until `done` holds of what it has seen; returns
    /// what it has seen then (whether or not `done` holds).
    pub async fn wait_until(&self, wait: Duration, mut done: impl FnMut(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let s = self.seen();
            if done(&s) || tokio::time::Instant::now() >= deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn apply(s: &mut Seen, parts: &mut Vec<(String, bool, u64)>, m: &Value) {
    match m["type"].as_str() {
        Some("snapshot") => {
            for u in m["users"].as_array().into_iter().flatten() {
                if let (Some(n), Some(on), Some(seq)) = (
                    u["username"].as_str(),
                    u["is_logged_in"].as_bool(),
                    u["seq"].as_u64(),
                ) {
                    parts.push((n.to_owned(), on, seq));
                } else {
                    s.problems
                        .push(format!("a snapshot row without its fields: {u}"));
                }
            }
            if m["more"] != true {
                if m["reset"] != true {
                    s.problems
                        .push(format!("a local snapshot without reset: {m}"));
                }
                let listed = std::mem::take(parts);
                s.snapshot(&listed);
                s.resets += 1;
            }
        }
        Some(_) => {}
        None => {
            let (Some(n), Some(on), Some(seq)) = (
                m["username"].as_str(),
                m["is_logged_in"].as_bool(),
                m["seq"].as_u64(),
            ) else {
                s.problems.push(format!("not a presence event: {m}"));
                return;
            };
            s.event(n, on, seq);
        }
    }
}

/// How a watcher's events since its last complete snapshot add up against
/// the store's transitions ([`Seen::audit`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    /// Transitions the store made since the snapshot, as far as the
    /// watcher can know (for a user a reset snapshot showed offline, from
    /// the first event of theirs it received).
    pub expected: usize,
    /// Events received since the snapshot.
    pub received: usize,
    /// Transitions in that range no event announced.
    pub lost: usize,
    /// Events received more than once.
    pub duplicates: usize,
    /// Events that came after one with a higher number for the same user.
    pub out_of_order: usize,
    /// Events numbered at or before the snapshot's number, or beyond the
    /// store's.
    pub stray: usize,
}

impl Audit {
    /// Everything announced once, in order, nothing else.
    pub fn exact(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.out_of_order == 0 && self.stray == 0
    }

    /// The sum of two audits (several watchers).
    pub fn plus(self, o: Audit) -> Audit {
        Audit {
            expected: self.expected + o.expected,
            received: self.received + o.received,
            lost: self.lost + o.lost,
            duplicates: self.duplicates + o.duplicates,
            out_of_order: self.out_of_order + o.out_of_order,
            stray: self.stray + o.stray,
        }
    }
}

impl Seen {
    /// Checks the events since the last complete snapshot against the
    /// store: `start` is every user's transition number when the watcher's
    /// socket opened (read while nothing moved; it stands for the first
    /// snapshot, which lists only online users), `end` every user's now.
    /// After a reset snapshot, a user it listed starts from the listed
    /// number; one it did not (offline, number unknown) from just before
    /// their first event since (an offline event first means the online
    /// one before it was lost).
    pub fn audit(&self, start: &HashMap<String, u64>, end: &HashMap<String, u64>) -> Audit {
        let (from, listed) = &self.last_snapshot;
        let since = &self.events[(*from).min(self.events.len())..];
        let mut names: std::collections::BTreeSet<&str> = end.keys().map(String::as_str).collect();
        names.extend(since.iter().map(|(n, _, _)| n.as_str()));
        let mut a = Audit {
            received: since.len(),
            ..Audit::default()
        };
        for name in names {
            let seqs: Vec<u64> = since
                .iter()
                .filter(|(n, _, _)| n == name)
                .map(|(_, _, s)| *s)
                .collect();
            let base = if self.resets == 0 {
                start.get(name).copied()
            } else {
                listed.get(name).copied()
            };
            let base = match (base, seqs.first()) {
                (Some(b), _) => b,
                (None, None) => continue,
                (None, Some(&f)) => f.saturating_sub(if f % 2 == 1 { 1 } else { 2 }),
            };
            let last = end.get(name).copied().unwrap_or(0);
            a.expected += usize::try_from(last.saturating_sub(base)).unwrap_or(usize::MAX);
            let mut distinct = std::collections::BTreeSet::new();
            for (i, &s) in seqs.iter().enumerate() {
                if !distinct.insert(s) {
                    a.duplicates += 1;
                } else if s <= base || s > last {
                    a.stray += 1;
                }
                if i > 0 && s < seqs[i - 1] {
                    a.out_of_order += 1;
                }
            }
            let announced = distinct
                .iter()
                .filter(|s| **s > base && **s <= last)
                .count();
            a.lost += usize::try_from(last.saturating_sub(base))
                .unwrap_or(usize::MAX)
                .saturating_sub(announced);
        }
        a
    }
}
