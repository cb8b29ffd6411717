//! Log in: `GET/POST /log_in/` (form, sets the session cookie) and
//! `POST /api/log_in` (JSON, returns a bearer token).

use http::StatusCode;
use serde::Deserialize;

use super::auth::{check_form, csrf_cookie, csrf_secret};
use super::limit;
use super::respond::{self, Request, Response};
use crate::context::AppContext;
use crate::domain::{SessionToken, Timestamp, Username};
use crate::error::AppError;
use crate::pages::LogInPage;
use crate::security::cookies::{self, SESSION_COOKIE};
use crate::security::csrf::CsrfSecret;
use crate::store::SessionRecord;

/// Shown for any wrong name/password pair (never which one was wrong).
pub const INVALID: &str = "Please enter a correct username and password.";

/// `GET /log_in/[?next=/path]`.
pub async fn page(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let next = respond::query_param(req.uri().query(), "next");
    let next = safe_next(next.as_deref().unwrap_or("")).unwrap_or("");
    render(ctx, req, "", next, None)
}

/// `POST /log_in/`: on success the session cookie and 302 to `next` (if
/// same-site) or `/`; else 200 with the error.
#[tracing::instrument(skip_all)]
pub async fn submit(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let form = respond::form(req)?;
    check_form(ctx, req, &form)?;
    let next = safe_next(form.get("next")).unwrap_or("");
    let started = start_session(ctx, req, form.get("username"), form.get("password")).await;
    let Some((token, session)) = (match started {
        Ok(s) => s,
        // Over a limit, or the hasher is full: the form says when to retry.
        Err(e) => return e.on_form(|m| render(ctx, req, form.get("username"), next, Some(m))),
    }) else {
        return render(ctx, req, form.get("username"), next, Some(INVALID));
    };
    let to = if next.is_empty() { "/" } else { next };
    let max_age = ctx.config.session_ttl;
    let r = respond::redirect(to);
    let r = respond::set_cookie(
        r,
        &cookies::set(
            SESSION_COOKIE,
            token.expose(),
            Some(max_age),
            ctx.config.cookie_secure,
        ),
    );
    // A new CSRF secret at log in, so one planted before cannot be reused.
    let r = respond::set_cookie(r, &csrf_cookie(ctx, &CsrfSecret::generate()));
    tracing::info!(user = %session.username, "logged in");
    Ok(r)
}

/// Body of `POST /api/log_in`.
#[derive(Deserialize)]
struct ApiLogIn {
    username: String,
    password: String,
}

/// `POST /api/log_in`: 200 `{"token", "expires_at"}` or 401.
#[tracing::instrument(skip_all)]
pub async fn api(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let body: ApiLogIn = respond::json_body(req)?;
    match start_session(ctx, req, &body.username, &body.password).await? {
        Some((token, session)) => Ok(respond::json(
            StatusCode::OK,
            &serde_json::json!({
                "token": token.expose(),
                "expires_at": session.expires_at.to_rfc3339(),
            }),
        )),
        None => Err(AppError::Unauthorized(INVALID)),
    }
}

/// Checks the rate limits and the credentials and, if right, stores a new
/// session. Unknown users cost the same hashing work as wrong passwords.
/// Every attempt counts against its client address; a failure also counts
/// against the name, and a name over its failures cannot log in (whatever
/// the password) until its window ends.
async fn start_session(
    ctx: &AppContext,
    req: &Request,
    raw_username: &str,
    password: &str,
) -> Result<Option<(SessionToken, SessionRecord)>, AppError> {
    let rules = ctx.config.rate_limits;
    let addr_key = limit::by_addr("login", req);
    limit::check(ctx, addr_key.as_deref(), rules.login_per_addr).await?;
    let name = Username::parse(raw_username).ok();
    let user_key = name.as_ref().map(|n| limit::by_user("login", n));
    limit::peek(ctx, user_key.as_deref(), rules.login_failures_per_user).await?;
    let user = match &name {
        Some(name) => ctx.store.find_user(name).await?,
        None => None,
    };
    let too_long = password.len() > crate::domain::MAX_PASSWORD_BYTES;
    let phc = user.as_ref().map(|u| u.password_hash.as_str());
    let ok = !too_long && ctx.hasher.verify(password, phc).await?;
    let (Some(user), true) = (user, ok) else {
        // This attempt is answered as a failure either way; the count
        // refuses the next ones once over.
        let _ = limit::check(ctx, user_key.as_deref(), rules.login_failures_per_user).await;
        return Ok(None);
    };
    let token = SessionToken::generate();
    let session = SessionRecord {
        key: token.key(),
        username: user.username,
        expires_at: Timestamp::now().plus(ctx.config.session_ttl),
    };
    ctx.store.create_session(&session).await?;
    Ok(Some((token, session)))
}

/// `next` if it is a path on this site (`/…`, not `//host` or `/\host`).
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

fn render(
    ctx: &AppContext,
    req: &Request,
    username: &str,
    next: &str,
    error: Option<&str>,
) -> Result<Response, AppError> {
    let (secret, new) = csrf_secret(req.headers());
    let token = secret.form_token();
    let body = askama::Template::render(&LogInPage {
        csrf: &token,
        username,
        next,
        error,
    })?;
    let r = respond::html(StatusCode::OK, body);
    Ok(if new {
        respond::set_cookie(r, &csrf_cookie(ctx, &secret))
    } else {
        r
    })
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_same_site_paths_are_followed_after_log_in() {
        assert_eq!(safe_next("/"), Some("/"));
        assert_eq!(safe_next("/users/?x=1"), Some("/users/?x=1"));
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "/a\nb",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
