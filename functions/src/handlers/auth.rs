//! Who is asking: sessions from the cookie, a bearer token, `?token=` or a
//! socket ticket, and the CSRF + Origin guard of every form.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::respond::{Form, Request};
use crate::context::AppContext;
use crate::domain::{SessionKey, SessionToken, Timestamp, Username};
use crate::error::AppError;
use crate::security::cookies::{self, SESSION_COOKIE};
use crate::security::csrf::{self, CsrfSecret};
use crate::security::origin::OriginVerdict;

/// A valid session and its user.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user.
    pub username: Username,
    /// The session's store key.
    pub session: SessionKey,
    /// When the session ends (a socket opened with it is closed then).
    pub expires_at: Timestamp,
}

/// The session a token names, if it exists and has not expired.
pub async fn session_for(
    ctx: &AppContext,
    token: SessionToken,
) -> Result<Option<Authenticated>, AppError> {
    session_by_key(ctx, token.key()).await
}

/// The session stored under `key`, if it exists and has not expired.
pub async fn session_by_key(
    ctx: &AppContext,
    key: SessionKey,
) -> Result<Option<Authenticated>, AppError> {
    Ok(ctx
        .store
        .find_session(&key, Timestamp::now())
        .await?
        .map(|s| Authenticated {
            username: s.username,
            session: key,
            expires_at: s.expires_at,
        }))
}

/// The session of a socket ticket (`?ticket=`), taking the ticket: `None`
/// if it is malformed, unknown, already used or expired, or its session
/// has ended since.
pub async fn from_ticket(ctx: &AppContext, raw: &str) -> Result<Option<Authenticated>, AppError> {
    let Ok(ticket) = SessionToken::parse(raw) else {
        return Ok(None);
    };
    match ctx
        .store
        .take_ticket(&ticket.key(), Timestamp::now())
        .await?
    {
        Some(session) => session_by_key(ctx, session).await,
        None => Ok(None),
    }
}

/// The session of the `sessionid` cookie.
pub async fn from_cookie(
    ctx: &AppContext,
    headers: &HeaderMap,
) -> Result<Option<Authenticated>, AppError> {
    match cookies::get(headers, SESSION_COOKIE).map(SessionToken::parse) {
        Some(Ok(token)) => session_for(ctx, token).await,
        _ => Ok(None),
    }
}

/// The session of an `Authorization: Bearer …` header.
pub async fn from_bearer(
    ctx: &AppContext,
    headers: &HeaderMap,
) -> Result<Option<Authenticated>, AppError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| SessionToken::parse(t.trim()));
    match bearer {
        Some(Ok(token)) => session_for(ctx, token).await,
        _ => Ok(None),
    }
}

/// The browser's CSRF secret from its cookie, or a new one (`true`: the
/// caller must set the cookie).
pub fn csrf_secret(headers: &HeaderMap) -> (CsrfSecret, bool) {
    match cookies::get(headers, csrf::COOKIE).and_then(CsrfSecret::from_cookie) {
        Some(s) => (s, false),
        None => (CsrfSecret::generate(), true),
    }
}

/// The `Set-Cookie` value for a CSRF secret (a year; rotated at log in).
pub fn csrf_cookie(ctx: &AppContext, secret: &CsrfSecret) -> String {
    let year = std::time::Duration::from_secs(365 * 24 * 3600);
    cookies::set(
        csrf::COOKIE,
        &secret.cookie_value(),
        Some(year),
        ctx.config.cookie_secure,
    )
}

/// Guards a form POST: a foreign `Origin` (or `Sec-Fetch-Site: cross-site`)
/// is refused, and the form's CSRF token must match the cookie's secret.
pub fn check_form(ctx: &AppContext, req: &Request, form: &Form) -> Result<(), AppError> {
    if ctx.config.allowed_origins.check(req.headers()) == OriginVerdict::Foreign {
        return Err(AppError::Forbidden(
            "Origin checking failed: cross-site request refused.",
        ));
    }
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site {
        return Err(AppError::Forbidden("Cross-site request refused."));
    }
    let Some(secret) = cookies::get(req.headers(), csrf::COOKIE).and_then(CsrfSecret::from_cookie)
    else {
        return Err(AppError::Forbidden(
            "CSRF cookie not set. Reload the form and try again.",
        ));
    };
    if !secret.verify(form.get(csrf::FIELD)) {
        return Err(AppError::Forbidden(
            "CSRF token missing or incorrect. Reload the form and try again.",
        ));
    }
    Ok(())
}
