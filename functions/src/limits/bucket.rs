//! [`TokenBucket`]: a connection's allowance of client messages, in
//! process, and [`MessageBuckets`], one per connection id in a bounded map.
//!
//! A rule `N/WINDOW` is a bucket of `N` tokens refilled at `N` per
//! `WINDOW`: a client may send `N` messages at once, then one every
//! `WINDOW / N`. On the local server one socket's messages are only ever
//! seen by its own task, so its bucket is a plain value: no lock, no store
//! call. On Lambda every message is an invocation of `$default`, which API
//! Gateway hands to any instance of the function: each instance keeps
//! [`MessageBuckets`] for the connections it has seen, so a well-behaved
//! page's pings cost no store write at all, and a connection flooding its
//! messages is closed by whichever instance sees it exceed the rule (a
//! flood spread over `k` warm instances gets up to `k` times the rule
//! before one of them closes it; the WebSocket stage's throttle bounds the
//! total).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::Rule;
use crate::domain::ConnectionId;

/// A socket's message allowance.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_sec: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rule`; `None` if the rule is off.
    pub fn new(rule: Rule, now: Instant) -> Option<Self> {
        if rule.is_off() {
            return None;
        }
        let capacity = f64::from(rule.limit);
        Some(Self {
            capacity,
            tokens: capacity,
            per_sec: capacity / rule.window.as_secs_f64().max(0.001),
            last: now,
        })
    }

    /// Whether the bucket would be full at `now` (its connection idle long
    /// enough that forgetting it changes nothing).
    fn is_full_at(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.per_sec >= self.capacity
    }

    /// Takes a token for a message at `now`; `false` if there is none.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Connections an instance keeps buckets for at most: beyond, buckets
/// full again (idle a whole window) are dropped, and if that is not enough
/// every bucket is (those connections start again with a full allowance).
pub const MAX_TRACKED: usize = 10_000;

/// Per-connection buckets of one process (a Lambda instance's `$default`).
#[derive(Debug, Default)]
pub struct MessageBuckets {
    buckets: Mutex<HashMap<ConnectionId, TokenBucket>>,
}

impl MessageBuckets {
    /// Takes a token of connection `id` under `rule` at `now`; `false` if
    /// it has none left. A rule that is off always allows.
    pub fn take(&self, id: &ConnectionId, rule: Rule, now: Instant) -> bool {
        let Some(fresh) = TokenBucket::new(rule, now) else {
            return true;
        };
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(id) {
            map.retain(|_, b| !b.is_full_at(now));
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        map.entry(id.clone()).or_insert(fresh).take(now)
    }

    /// Forgets connection `id` (it was closed).
    pub fn forget(&self, id: &ConnectionId) {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// How many connections have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no connection has a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_are_per_connection_and_bounded() {
        let t0 = Instant::now();
        let rule = Rule::per(3, Duration::from_secs(60));
        let m = MessageBuckets::default();
        let (a, b) = (ConnectionId::generate(), ConnectionId::generate());
        assert!((0..3).all(|_| m.take(&a, rule, t0)));
        assert!(!m.take(&a, rule, t0), "a's fourth");
        assert!(m.take(&b, rule, t0), "b has its own");
        assert!(m.take(&a, Rule::OFF, t0), "off allows");
        for _ in 0..MAX_TRACKED + 10 {
            m.take(&ConnectionId::generate(), rule, t0);
        }
        assert!(m.len() <= MAX_TRACKED, "{}", m.len());
        m.forget(&b);
        assert!(m.len() <= MAX_TRACKED);
    }

    #[test]
    fn a_burst_of_n_passes_then_one_per_window_over_n() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rule::per(5, Duration::from_secs(10)), t0).unwrap();
        assert!((0..5).all(|_| b.take(t0)), "the first five at once");
        assert!(!b.take(t0), "the sixth at once is over");
        assert!(!b.take(t0 + Duration::from_millis(1900)));
        assert!(b.take(t0 + Duration::from_secs(2)), "one token per 2 s");
        assert!(!b.take(t0 + Duration::from_secs(2)));
        // A long pause refills to the capacity, never beyond.
        let later = t0 + Duration::from_secs(3600);
        assert!((0..5).all(|_| b.take(later)));
        assert!(!b.take(later));
    }

    #[test]
    fn the_page_pinging_every_30_s_never_runs_dry_at_the_default() {
        let t0 = Instant::now();
        let rule = crate::limits::SocketLimits::defaults(Duration::from_secs(30)).messages;
        let mut b = TokenBucket::new(rule, t0).unwrap();
        // A snapshot request and a ping at once, then a ping every 30 s
        // (sometimes two together, a late timer) for a day.
        assert!(b.take(t0) && b.take(t0));
        for i in 1..2880u64 {
            let at = t0 + Duration::from_secs(30 * i);
            assert!(b.take(at), "ping {i}");
            if i % 7 == 0 {
                assert!(b.take(at), "a doubled ping {i}");
            }
        }
        assert!(TokenBucket::new(Rule::OFF, t0).is_none());
    }
}
