//! Per-user ordering of presence events: deliver transition *n + 1* right
//! after *n*, hold early arrivals until the gap fills or [`REORDER_HOLD`]
//! passes, drop duplicates and stale ones.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use rollcall::domain::Username;

use super::REORDER_HOLD;
use crate::bus::Announcement;

/// Per-user ordering of presence events.
#[derive(Default)]
pub(super) struct Order {
    users: HashMap<Username, Line>,
    /// Users with held events.
    waiting: HashSet<Username>,
}

struct Line {
    /// Last transition delivered.
    last: u64,
    /// Early arrivals by transition number, and since when the oldest waits.
    held: BTreeMap<u64, Announcement>,
    since: Option<Instant>,
}

impl Order {
    /// Takes one event; returns those now deliverable, in order.
    pub(super) fn accept(&mut self, a: Announcement, now: Instant) -> Vec<Announcement> {
        let event = &a.event;
        let Some(line) = self.users.get_mut(&event.username) else {
            // First sight of this user: whatever comes first is the baseline.
            let line = Line {
                last: event.seq,
                held: BTreeMap::new(),
                since: None,
            };
            self.users.insert(event.username.clone(), line);
            return vec![a];
        };
        if event.seq <= line.last {
            return Vec::new(); // a duplicate or older than what was shown
        }
        let user = event.username.clone();
        if event.seq > line.last + 1 {
            line.held.insert(event.seq, a);
            line.since.get_or_insert(now);
            self.waiting.insert(user);
            return Vec::new();
        }
        line.last = event.seq;
        let mut ready = vec![a];
        while let Some(next) = line.held.remove(&(line.last + 1)) {
            line.last = next.event.seq;
            ready.push(next);
        }
        if line.held.is_empty() {
            line.since = None;
            self.waiting.remove(&user);
        }
        ready
    }

    /// Releases everything held longer than [`REORDER_HOLD`], in order.
    pub(super) fn overdue(&mut self, now: Instant) -> Vec<Announcement> {
        let mut ready = Vec::new();
        let users = &mut self.users;
        self.waiting.retain(|user| {
            let Some(line) = users.get_mut(user) else {
                return false;
            };
            if line
                .since
                .is_some_and(|t| now.duration_since(t) >= REORDER_HOLD)
            {
                for (seq, e) in std::mem::take(&mut line.held) {
                    line.last = seq;
                    ready.push(e);
                }
                line.since = None;
                return false;
            }
            true
        });
        ready
    }
}
