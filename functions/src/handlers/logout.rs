//! Log out: `POST /log_out/` (form) and `POST /api/log_out` (bearer).
//!
//! Ending a session deletes it, unregisters its connections (announcing the
//! user offline if those were their last) and closes those sockets.

use http::StatusCode;

use super::auth::{self, check_form};
use super::respond::{self, Request, Response};
use crate::context::AppContext;
use crate::domain::SessionKey;
use crate::error::AppError;
use crate::push::CloseReason;
use crate::security::cookies::{self, SESSION_COOKIE};
use crate::store::RemoveIf;

/// `POST /log_out/`: ends the cookie's session (if any) and 302s to
/// `/log_in/`. Needs the CSRF token, so no other site can trigger it.
#[tracing::instrument(skip_all)]
pub async fn submit(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let form = respond::form(req)?;
    check_form(ctx, req, &form)?;
    if let Some(who) = auth::from_cookie(ctx, req.headers()).await? {
        end_session(ctx, &who.session).await?;
        tracing::info!(user = %who.username, "logged out");
    }
    let r = respond::redirect("/log_in/");
    Ok(respond::set_cookie(
        r,
        &cookies::delete(SESSION_COOKIE, ctx.config.cookie_secure),
    ))
}

/// `POST /api/log_out` with `Authorization: Bearer TOKEN`: 204, or 401.
#[tracing::instrument(skip_all)]
pub async fn api(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let who = auth::from_bearer(ctx, req.headers())
        .await?
        .ok_or(AppError::Unauthorized("A valid bearer token is required."))?;
    end_session(ctx, &who.session).await?;
    Ok(respond::empty(StatusCode::NO_CONTENT))
}

/// Deletes the session, then unregisters and closes its connections.
///
/// The session goes first: a socket that authenticated just before either
/// registered before the listing below (and is closed here) or notices the
/// session is gone when it re-checks after registering (see
/// [`super::ws::connect`]).
pub async fn end_session(ctx: &AppContext, session: &SessionKey) -> Result<(), AppError> {
    ctx.store.delete_session(session).await?;
    let ids = ctx.store.session_connections(session).await?;
    for id in &ids {
        if let Some(removed) = ctx.store.remove_connection(id, RemoveIf::Always).await?
            && let Some(offline) = removed.went_offline
        {
            ctx.pusher.broadcast(&offline, None).await?;
        }
    }
    if !ids.is_empty() {
        ctx.pusher.close(&ids, CloseReason::LoggedOut).await?;
    }
    Ok(())
}
