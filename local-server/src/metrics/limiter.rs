//! [`CountingLimiter`]: a [`RateLimiter`] that counts its refusals per rule
//! (`rollcall_rate_limited_total{rule}`) and its failures, and otherwise
//! decides exactly as the limiter it wraps.
//!
//! The rule is the key's first two parts (`login:addr`, `ws:session`,
//! `ws:conn`), which the handlers make from a fixed set: the label never
//! holds an address, a name or a session.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rollcall::limits::{Decision, LimitError, RateLimiter, Rule};

use super::RuleName;

/// Counts the refusals of the limiter it wraps.
pub struct CountingLimiter {
    inner: Arc<dyn RateLimiter>,
    limited: Family<RuleName, Counter>,
    errors: Counter,
}

impl CountingLimiter {
    /// `inner`, its refusals counted in `limited` and failures in `errors`.
    pub fn new(
        inner: Arc<dyn RateLimiter>,
        limited: Family<RuleName, Counter>,
        errors: Counter,
    ) -> Self {
        Self {
            inner,
            limited,
            errors,
        }
    }

    fn seen(&self, key: &str, r: Result<Decision, LimitError>) -> Result<Decision, LimitError> {
        match &r {
            Ok(Decision::Limited { .. }) => {
                self.limited
                    .get_or_create(&RuleName { rule: rule_of(key) })
                    .inc();
            }
            Ok(Decision::Allowed) => {}
            Err(_) => {
                self.errors.inc();
            }
        }
        r
    }
}

/// The rule a key counts for, from the fixed set the handlers use.
fn rule_of(key: &str) -> &'static str {
    let mut parts = key.splitn(3, ':');
    match (parts.next(), parts.next()) {
        (Some("login"), Some("addr")) => "login:addr",
        (Some("login"), Some("user")) => "login:user",
        (Some("signup"), Some("addr")) => "signup:addr",
        (Some("signup"), Some("user")) => "signup:user",
        (Some("ws"), Some("addr")) => "ws:addr",
        (Some("ws"), Some("session")) => "ws:session",
        (Some("ws"), Some("conn")) => "ws:message",
        (Some("ticket"), Some("addr")) => "ticket:addr",
        (Some("ticket"), Some("session")) => "ticket:session",
        _ => "other",
    }
}

#[async_trait]
impl RateLimiter for CountingLimiter {
    async fn check(&self, key: &str, rule: Rule) -> Result<Decision, LimitError> {
        self.seen(key, self.inner.check(key, rule).await)
    }

    async fn peek(&self, key: &str, rule: Rule) -> Result<Decision, LimitError> {
        self.seen(key, self.inner.peek(key, rule).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall::limits::memory::MemoryLimiter;
    use std::time::Duration;

    #[test]
    fn keys_name_their_rule_and_nothing_else() {
        assert_eq!(rule_of("login:addr:203.0.113.7"), "login:addr");
        assert_eq!(rule_of("ws:addr:2001:db8::/64"), "ws:addr");
        assert_eq!(rule_of("ws:conn:abc"), "ws:message");
        assert_eq!(rule_of("ticket:session:ab"), "ticket:session");
        assert_eq!(rule_of("whatever"), "other");
    }

    #[tokio::test]
    async fn refusals_are_counted_per_rule() {
        let limited = Family::<RuleName, Counter>::default();
        let l = CountingLimiter::new(
            Arc::new(MemoryLimiter::new()),
            limited.clone(),
            Counter::default(),
        );
        let rule = Rule::per(1, Duration::from_secs(60));
        assert!(l.check("ws:session:ab", rule).await.unwrap().is_allowed());
        assert!(!l.check("ws:session:ab", rule).await.unwrap().is_allowed());
        assert_eq!(
            limited
                .get_or_create(&RuleName { rule: "ws:session" })
                .get(),
            1
        );
    }
}
