//! [`TokenBucket`]: a socket's allowance of client messages, in process.
//!
//! A rule `N/WINDOW` is a bucket of `N` tokens refilled at `N` per
//! `WINDOW`: a client may send `N` messages at once, then one every
//! `WINDOW / N`. One socket's messages are only ever seen by its own task,
//! so the bucket is a plain value: no lock, no store call.

use std::time::Instant;

use rollcall::limits::Rule;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let rule = rollcall::limits::SocketLimits::defaults(Duration::from_secs(30)).messages;
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
