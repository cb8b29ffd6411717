//! [`MemoryLimiter`]: counts in this process (the memory store, or any
//! single process).
//!
//! Not governor: its GCRA cannot answer "would this be over?" without
//! counting (which "failed log-ins per name" needs before checking a
//! password), and its sliding semantics differ from the fixed windows the
//! shared backends count in one `INCR`/`UpdateItem`; one semantics lets one
//! conformance suite check every backend to the same numbers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Decision, LimitError, RateLimiter, Rule, decide, window};
use crate::domain::Timestamp;

/// Counts kept past this many are pruned of ended windows.
const PRUNE_ABOVE: usize = 10_000;

/// One counter per key, window length and window index.
type Counters = HashMap<(String, Duration, u64), (u64, Timestamp)>;

/// An in-process limiter.
#[derive(Default)]
pub struct MemoryLimiter {
    counts: Mutex<Counters>,
}

impl MemoryLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn count(&self, key: &str, rule: Rule, add: u64) -> Decision {
        let now = Timestamp::now();
        let (index, left) = window(now, rule);
        let Ok(mut counts) = self.counts.lock() else {
            return Decision::Allowed;
        };
        if counts.len() > PRUNE_ABOVE {
            counts.retain(|_, (_, ends)| *ends > now);
        }
        let entry = counts
            .entry((key.to_owned(), rule.window, index))
            .or_insert((0, now.plus(left)));
        entry.0 = entry.0.saturating_add(add);
        decide(entry.0, rule, left, add > 0)
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn check(&self, key: &str, rule: Rule) -> Result<Decision, LimitError> {
        if rule.is_off() {
            return Ok(Decision::Allowed);
        }
        Ok(self.count(key, rule, 1))
    }

    async fn peek(&self, key: &str, rule: Rule) -> Result<Decision, LimitError> {
        if rule.is_off() {
            return Ok(Decision::Allowed);
        }
        Ok(self.count(key, rule, 0))
    }
}

#[cfg(test)]
mod tests {
    crate::limiter_conformance_suite!(async { Box::new(super::MemoryLimiter::new()) });
}
