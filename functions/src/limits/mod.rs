//! Rate limits: the [`RateLimiter`] trait, its [`Rule`]s and backends.
//!
//! A rule is "at most N hits per window". Windows are fixed and aligned on
//! the clock (`floor(now / window)`), the same on every backend, so one
//! conformance suite holds them all to the same numbers and any number of
//! processes (or Lambdas) sharing a backend share the counts. A fixed window
//! lets up to 2 × N through around a window's edge; that is the price of one
//! counter per key and window (one Redis `INCR`, one DynamoDB `UpdateItem`).
//!
//! Backends: [`memory::MemoryLimiter`] (one process), `redis::RedisLimiter`
//! (feature `redis`) and `dynamodb::DynamoLimiter` (feature `dynamodb`: a
//! conditional counter item per key and window in the sessions table, expired
//! by its TTL). [`conformance`] is what each must pass.
//!
//! [`RateLimits`] are the rules the handlers apply (log in and sign up, per
//! client address and per username), [`SocketLimits`] those of WebSockets
//! (upgrades per session and address, open sockets per user, messages per
//! socket), read from the configuration.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::Timestamp;

pub mod bucket;
pub mod conformance;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod memory;
mod open;
#[cfg(feature = "redis")]
pub mod redis;
mod rules;

pub use open::open;

pub use rules::{RateLimits, Rule, SocketLimits};

/// What a limiter says about a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within the limit.
    Allowed,
    /// Over the limit until the window ends, `retry_after` from now.
    Limited {
        /// Time left in the current window.
        retry_after: Duration,
    },
}

impl Decision {
    /// Whether the hit is within the limit.
    pub fn is_allowed(self) -> bool {
        self == Self::Allowed
    }
}

/// The backend could not count.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter backend failed: {source}")]
pub struct LimitError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
    unavailable: bool,
}

impl LimitError {
    /// Wraps a backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            source: Box::new(e),
            unavailable: false,
        }
    }

    /// Whether the backend could not answer now (unreachable, timed out,
    /// throttling: 503 where it surfaces) rather than failed.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
}

/// The limiters on a store's backend classify its errors as the store does.
impl From<crate::store::StoreError> for LimitError {
    fn from(e: crate::store::StoreError) -> Self {
        let unavailable = matches!(e, crate::store::StoreError::Unavailable(_));
        Self {
            source: Box::new(e),
            unavailable,
        }
    }
}

/// Counts hits per key and rule.
///
/// `key` names who and what is limited (`login:addr:203.0.113.7`,
/// `ws:session:…`); callers pick keys of a bounded length (hash anything
/// long or client-supplied beyond a username). A disabled rule
/// ([`Rule::is_off`]) always allows and costs no call to the backend.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit for `key` in `rule`'s current window; `Limited` if
    /// that makes more than `rule.limit` hits in it (the hit still counts).
    async fn check(&self, key: &str, rule: Rule) -> Result<Decision, LimitError>;

    /// Whether a hit now would be over the limit, without counting one
    /// (e.g. "has this name failed too often?" before checking a password).
    async fn peek(&self, key: &str, rule: Rule) -> Result<Decision, LimitError>;
}

/// The aligned window `now` falls in: its index and the time left in it.
pub(crate) fn window(now: Timestamp, rule: Rule) -> (u64, Duration) {
    let len = u64::try_from(rule.window.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let now = now.as_millis();
    let index = now / len;
    let end = index.saturating_add(1).saturating_mul(len);
    (index, Duration::from_millis(end.saturating_sub(now)))
}

/// The decision for `count` hits (this one included when `counting`).
pub(crate) fn decide(count: u64, rule: Rule, left: Duration, counting: bool) -> Decision {
    let over = if counting {
        count > u64::from(rule.limit)
    } else {
        count >= u64::from(rule.limit)
    };
    if over {
        Decision::Limited { retry_after: left }
    } else {
        Decision::Allowed
    }
}
