//! Socket tickets: `POST /api/ws_ticket`.
//!
//! The cloud page's WebSocket is on another origin than the page (API
//! Gateway's WebSocket API), which the `HttpOnly` session cookie does not
//! reach. Rather than writing the two-week session token into the page, the
//! page asks its own origin for a ticket before each socket it opens and
//! opens `?ticket=`: it is good for one socket, for [`TICKET_LIFETIME`], and
//! the store keeps only its hash.

use std::time::Duration;

use http::StatusCode;

use super::respond::{self, Request, Response};
use super::{auth, limit};
use crate::context::AppContext;
use crate::domain::{SessionToken, Timestamp};
use crate::error::AppError;
use crate::security::origin::OriginVerdict;

/// How long a socket ticket can be used: long enough for the page to open
/// its socket right after asking (a slow network included), short enough
/// that one that leaks (a proxy's log of the WebSocket URL) is stale. It is
/// single use besides.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// `POST /api/ws_ticket` (session cookie or `Authorization: Bearer`), with
/// `Content-Type: application/json` (any body): 200
/// `{"ticket": "…", "expires_in": 30}`, a single-use ticket for one
/// WebSocket (`?ticket=`) of this session. 401 without a session; 415
/// without the JSON content type and 403 from a foreign `Origin` or
/// `Sec-Fetch-Site: cross-site` — so no other site can have a browser get
/// one (not that it could read the reply). Rate limited per client address
/// (counted before the session is looked up, so guessed tokens count too)
/// and per session (`ROLLCALL_WS_TICKETS_PER_ADDR`, `_PER_SESSION`): over
/// either, 429 with `Retry-After`.
#[tracing::instrument(skip_all)]
pub async fn api(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    if !respond::is_json(req) {
        return Err(AppError::UnsupportedMediaType(
            "Send Content-Type: application/json.",
        ));
    }
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site || ctx.config.allowed_origins.check(req.headers()) == OriginVerdict::Foreign {
        return Err(AppError::Forbidden("Cross-site request refused."));
    }
    let limits = ctx.config.socket_limits;
    let by_addr = limit::by_addr("ticket", req);
    limit::check(ctx, by_addr.as_deref(), limits.tickets_per_addr).await?;
    let who = match auth::from_bearer(ctx, req.headers()).await? {
        Some(who) => Some(who),
        None => auth::from_cookie(ctx, req.headers()).await?,
    };
    let who = who.ok_or(AppError::Unauthorized(
        "Log in first: a bearer token or session cookie is required.",
    ))?;
    let by_session = format!("ticket:session:{}", who.session.as_str());
    limit::check(ctx, Some(&by_session), limits.tickets_per_session).await?;
    let ticket = SessionToken::generate();
    let expires_at = Timestamp::now().plus(TICKET_LIFETIME);
    ctx.store
        .create_ticket(&ticket.key(), &who.session, expires_at)
        .await?;
    Ok(respond::json(
        StatusCode::OK,
        &serde_json::json!({
            "ticket": ticket.expose(),
            "expires_in": TICKET_LIFETIME.as_secs(),
        }),
    ))
}
