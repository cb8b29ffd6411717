//! Applying rate limits in handlers: keys per client address and per
//! username, and the [`AppError::RateLimited`] a hit over a limit becomes.
//!
//! A limiter backend that fails (Redis or DynamoDB unreachable) does not
//! refuse requests: the error is logged and the request goes on, since the
//! store it needs is then most likely failing too and will answer for itself.

use super::respond::Request;
use crate::context::AppContext;
use crate::domain::{ClientAddr, Username};
use crate::error::AppError;
use crate::limits::{Decision, Rule};

/// The key of `what` (`login`, `signup`) for the request's client address,
/// if the front end recorded one.
pub fn by_addr(what: &str, req: &Request) -> Option<String> {
    req.extensions()
        .get::<ClientAddr>()
        .map(|a| format!("{what}:addr:{}", a.limit_key()))
}

/// The key of `what` for a username (NFKC-normalised, so look-alike
/// spellings share one count).
pub fn by_user(what: &str, name: &Username) -> String {
    format!("{what}:user:{name}")
}

/// Counts a hit; `Err(RateLimited)` if it is over `rule`.
pub async fn check(ctx: &AppContext, key: Option<&str>, rule: Rule) -> Result<(), AppError> {
    let Some(key) = key.filter(|_| !rule.is_off()) else {
        return Ok(());
    };
    refuse_if_limited(ctx.limiter.check(key, rule).await, key)
}

/// `Err(RateLimited)` if a hit now would be over `rule`; counts nothing.
pub async fn peek(ctx: &AppContext, key: Option<&str>, rule: Rule) -> Result<(), AppError> {
    let Some(key) = key.filter(|_| !rule.is_off()) else {
        return Ok(());
    };
    refuse_if_limited(ctx.limiter.peek(key, rule).await, key)
}

fn refuse_if_limited(
    decision: Result<Decision, crate::limits::LimitError>,
    key: &str,
) -> Result<(), AppError> {
    match decision {
        Ok(Decision::Allowed) => Ok(()),
        Ok(Decision::Limited { retry_after }) => {
            // The key names an address or a username, never a secret.
            tracing::info!(key, "rate limited");
            Err(AppError::RateLimited { retry_after })
        }
        Err(e) => {
            tracing::warn!(error = %e, "rate limiter unavailable; request let through");
            Ok(())
        }
    }
}
