//! Log out: `POST /log_out/` (form) and `POST /api/log_out` (bearer).
//!
//! Ending a session deletes it, unregisters its connections (announcing the
//! user offline if those were their last) and closes those sockets.

use http::StatusCode;

use super::auth::{self, check_form};
use super::respond::{self, Request, Response};
use crate::context::AppContext;
use crate::domain::{SessionKey, Username};
use crate::error::AppError;
use crate::push::CloseReason;
use crate::security::cookies::{self, SESSION_COOKIE};
use crate::store::{Offline, RemoveIf};

/// `POST /log_out/`: ends the cookie's session (if any) and 302s to
/// `/log_in/`. Needs the CSRF token, so no other site can trigger it.
#[tracing::instrument(skip_all)]
pub async fn submit(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let form = respond::form(req)?;
    check_form(ctx, req, &form)?;
    if let Some(who) = auth::from_cookie(ctx, req.headers()).await? {
        end_session(ctx, &who.session, &who.username).await?;
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
    end_session(ctx, &who.session, &who.username).await?;
    Ok(respond::empty(StatusCode::NO_CONTENT))
}

/// Deletes the session, then unregisters and closes its connections; the
/// user goes offline at once if those were their last (log out skips the
/// grace period). Keeps going past a connection it fails to remove, and
/// still closes every socket; the first failure is returned afterwards.
///
/// The session goes first: a socket that authenticated just before either
/// registered before the listing below (and is closed here) or notices the
/// session is gone when it re-checks after registering (see
/// [`super::ws::connect`]).
pub async fn end_session(
    ctx: &AppContext,
    session: &SessionKey,
    user: &Username,
) -> Result<(), AppError> {
    ctx.store.delete_session(session).await?;
    let ids = ctx.store.session_connections(session).await?;
    let mut first_error: Option<AppError> = None;
    for id in &ids {
        match ctx
            .store
            .remove_connection(id, RemoveIf::Always, Offline::Now)
            .await
        {
            Ok(Some(removed)) => {
                if let Some(offline) = removed.went_offline
                    && let Err(e) = ctx.announce(&offline).await
                {
                    first_error.get_or_insert(e.into());
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(conn = %id, error = %e, "log out: could not unregister a connection");
                first_error.get_or_insert(e.into());
            }
        }
    }
    // A tab closed just before: its grace period ends now.
    match ctx.store.offline_now(user).await {
        Ok(Some(offline)) => {
            if let Err(e) = ctx.announce(&offline).await {
                first_error.get_or_insert(e.into());
            }
        }
        Ok(None) => {}
        Err(e) => {
            first_error.get_or_insert(e.into());
        }
    }
    if !ids.is_empty()
        && let Err(e) = ctx.pusher.close(&ids, CloseReason::LoggedOut).await
    {
        first_error.get_or_insert(e.into());
    }
    first_error.map_or(Ok(()), Err)
}
