//! What every [`RateLimiter`] backend must do.
//!
//! Free `async fn`s over `&dyn RateLimiter` that panic on failure; the
//! [`crate::limiter_conformance_suite!`] macro makes one `#[tokio::test]` per
//! check from an expression yielding a fresh limiter. Memory runs it here;
//! Redis and DynamoDB run it against real servers in the `tests` package.
//! The checks use real time (short windows), as the shared backends expire
//! their counters on the server's clock.

use std::time::Duration;

use super::{Decision, RateLimiter, Rule, window};
use crate::domain::Timestamp;

/// Sleeps until the current window of `rule` has most of it left, so a
/// check's hits fall in one window.
async fn fresh_window(rule: Rule) {
    let (_, left) = window(Timestamp::now(), rule);
    if left < rule.window.mul_f64(0.7) {
        tokio::time::sleep(left + Duration::from_millis(5)).await;
    }
}

fn limited(d: Decision) -> Duration {
    match d {
        Decision::Limited { retry_after } => retry_after,
        Decision::Allowed => panic!("expected Limited, got Allowed"),
    }
}

/// N hits pass, the next is limited until the window ends.
pub async fn hits_up_to_the_limit_pass_and_the_next_is_limited(l: &dyn RateLimiter) {
    let rule = Rule::per(3, Duration::from_secs(2));
    fresh_window(rule).await;
    for i in 0..3 {
        assert_eq!(
            l.check("k", rule).await.expect("the limiter answers"),
            Decision::Allowed,
            "hit {i}"
        );
    }
    let after = limited(l.check("k", rule).await.expect("the limiter answers"));
    assert!(after > Duration::ZERO && after <= rule.window, "{after:?}");
    limited(l.peek("k", rule).await.expect("the limiter answers"));
    limited(l.check("k", rule).await.expect("the limiter answers"));
}

/// `peek` never counts.
pub async fn peeking_counts_nothing(l: &dyn RateLimiter) {
    let rule = Rule::per(2, Duration::from_secs(2));
    fresh_window(rule).await;
    for _ in 0..5 {
        assert!(
            l.peek("p", rule)
                .await
                .expect("the limiter answers")
                .is_allowed()
        );
    }
    assert!(
        l.check("p", rule)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
    assert!(
        l.peek("p", rule)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
    assert!(
        l.check("p", rule)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
    limited(l.peek("p", rule).await.expect("the limiter answers"));
}

/// Keys, and rules with other windows, have their own counts.
pub async fn keys_and_windows_are_counted_apart(l: &dyn RateLimiter) {
    let rule = Rule::per(1, Duration::from_secs(2));
    fresh_window(rule).await;
    assert!(
        l.check("a", rule)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
    limited(l.check("a", rule).await.expect("the limiter answers"));
    assert!(
        l.check("b", rule)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
    assert!(
        l.check("a:longer", rule)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
    let other = Rule::per(1, Duration::from_secs(3));
    assert!(
        l.check("a", other)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
}

/// When the window ends, hits pass again.
pub async fn a_new_window_lets_hits_through_again(l: &dyn RateLimiter) {
    let rule = Rule::per(1, Duration::from_millis(600));
    fresh_window(rule).await;
    assert!(
        l.check("w", rule)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
    let after = limited(l.check("w", rule).await.expect("the limiter answers"));
    tokio::time::sleep(after + Duration::from_millis(20)).await;
    assert!(
        l.check("w", rule)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
}

/// A rule that is off always allows.
pub async fn rules_that_are_off_never_limit(l: &dyn RateLimiter) {
    for _ in 0..50 {
        assert!(
            l.check("off", Rule::OFF)
                .await
                .expect("the limiter answers")
                .is_allowed()
        );
    }
    assert!(
        l.peek("off", Rule::OFF)
            .await
            .expect("the limiter answers")
            .is_allowed()
    );
}

/// Hits racing through any number of limiters on one backend (processes,
/// Lambdas) are counted exactly: exactly `limit` pass.
pub async fn concurrent_hits_are_counted_exactly(limiters: &[&dyn RateLimiter]) {
    let rule = Rule::per(10, Duration::from_secs(6));
    fresh_window(rule).await;
    let hits = (0..30).map(|i| limiters[i % limiters.len()].check("race", rule));
    let decisions = futures_util::future::join_all(hits).await;
    let allowed = decisions
        .into_iter()
        .filter(|d| d.as_ref().expect("backend answers").is_allowed())
        .count();
    assert_eq!(allowed, 10);
}

/// Makes one `#[tokio::test]` per check; `$make` is an async expression
/// yielding a fresh limiter (boxed or any smart pointer).
#[macro_export]
macro_rules! limiter_conformance_suite {
    ($make:expr) => {
        $crate::limiter_conformance_suite!(@tests $make;
            hits_up_to_the_limit_pass_and_the_next_is_limited,
            peeking_counts_nothing,
            keys_and_windows_are_counted_apart,
            a_new_window_lets_hits_through_again,
            rules_that_are_off_never_limit,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_hits_are_counted_exactly() {
            let limiter = $make.await;
            let one: &dyn $crate::limits::RateLimiter = &*limiter;
            $crate::limits::conformance::concurrent_hits_are_counted_exactly(&[one, one]).await;
        }
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let limiter = $make.await;
                $crate::limits::conformance::$check(&*limiter).await;
            }
        )*
    };
}
