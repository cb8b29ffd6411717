//! The WebSocket `/users/` in four steps, the same for API Gateway
//! (`$connect`, `$disconnect`, `$default`) and the local server:
//!
//! 1. [`authorize`] — before any upgrade: a session (cookie or `?token=`)
//!    and an allowed `Origin`, else 401/403.
//! 2. [`connect`] — registers the connection in the `users` group and
//!    announces the user if it is their first.
//! 3. [`default`] — a client message: `ping` renews the lease, `snapshot`
//!    asks for the list; anything else is ignored.
//! 4. [`disconnect`] — unregisters and announces the user offline if it was
//!    their last connection.

use http::HeaderMap;

use super::auth::{self, Authenticated};
use super::respond;
use crate::context::AppContext;
use crate::domain::{ClientMessage, ConnectionId, ServerMessage, SessionToken, Timestamp};
use crate::error::AppError;
use crate::security::origin::OriginVerdict;
use crate::store::{ConnectionRecord, RemoveIf};

/// Largest client message accepted; bigger ones close the socket.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4096;

/// Decides whether a WebSocket may open, before upgrading.
///
/// A `?token=` (the cross-domain cloud page, programmatic clients) or the
/// session cookie authenticates. The `Origin` must be allowed; it may be
/// absent only with a token, since a token — unlike a cookie — is never sent
/// by a browser on another site's behalf.
#[tracing::instrument(skip_all)]
pub async fn authorize(
    ctx: &AppContext,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Authenticated, AppError> {
    let origin = ctx.config.allowed_origins.check(headers);
    let token = respond::query_param(query, "token");
    let who = match token {
        Some(raw) => {
            if origin == OriginVerdict::Foreign {
                return Err(AppError::Forbidden("Origin not allowed."));
            }
            let token =
                SessionToken::parse(&raw).map_err(|_| AppError::Unauthorized("Invalid token."))?;
            auth::session_for(ctx, token).await?
        }
        None => {
            if origin != OriginVerdict::Allowed {
                return Err(AppError::Forbidden("Origin not allowed."));
            }
            auth::from_cookie(ctx, headers).await?
        }
    };
    who.ok_or(AppError::Unauthorized("Log in first."))
}

/// Registers connection `id` for `who` and announces them if this is their
/// first connection. Fails with 401 if the session ended meanwhile (a log
/// out racing this connect); the connection is then unregistered again.
#[tracing::instrument(skip_all, fields(conn = %id))]
pub async fn connect(
    ctx: &AppContext,
    id: &ConnectionId,
    who: &Authenticated,
) -> Result<(), AppError> {
    let now = Timestamp::now();
    let record = ConnectionRecord {
        id: id.clone(),
        username: who.username.clone(),
        session: who.session.clone(),
        lease_until: now.plus(ctx.config.lease),
    };
    if let Some(online) = ctx.store.add_connection(&record).await? {
        // Every *other* connection: the newcomer's snapshot already shows it
        // online, and API Gateway cannot post to it during `$connect`.
        ctx.pusher.broadcast(&online, Some(id)).await?;
    }
    if ctx
        .store
        .find_session(&who.session, Timestamp::now())
        .await?
        .is_none()
    {
        disconnect(ctx, id).await?;
        return Err(AppError::Unauthorized("Session ended."));
    }
    Ok(())
}

/// Unregisters connection `id` (closed, timed out, gone) and announces the
/// user offline if it was their last. Unknown ids are fine: a log out or
/// the sweep may have removed it already.
#[tracing::instrument(skip_all, fields(conn = %id))]
pub async fn disconnect(ctx: &AppContext, id: &ConnectionId) -> Result<(), AppError> {
    if let Some(removed) = ctx.store.remove_connection(id, RemoveIf::Always).await?
        && let Some(offline) = removed.went_offline
    {
        ctx.pusher.broadcast(&offline, Some(id)).await?;
    }
    Ok(())
}

/// What to do after a client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing to send.
    Nothing,
    /// Send this message back.
    Send(ServerMessage),
    /// Send a snapshot of the list. The transport builds it with
    /// [`snapshot`] at the point where its ordering with presence events is
    /// right (the local server reads it in the socket's send loop).
    Snapshot,
    /// The connection is no longer registered (its lease was swept): close
    /// it so the client reconnects, re-registers and resynchronises.
    Close,
}

/// Handles one client text message (`$default`).
#[tracing::instrument(skip_all, fields(conn = %id))]
pub async fn default(ctx: &AppContext, id: &ConnectionId, text: &str) -> Result<Reply, AppError> {
    if text.len() > MAX_CLIENT_MESSAGE_BYTES {
        return Ok(Reply::Close);
    }
    match ClientMessage::parse(text) {
        Some(ClientMessage::Ping) => {
            let until = Timestamp::now().plus(ctx.config.lease);
            let missing = ctx
                .store
                .renew_leases(std::slice::from_ref(id), until)
                .await?;
            Ok(if missing.is_empty() {
                Reply::Send(ServerMessage::Pong)
            } else {
                Reply::Close
            })
        }
        Some(ClientMessage::Snapshot) => Ok(Reply::Snapshot),
        None => Ok(Reply::Nothing),
    }
}

/// The whole list as a `{"type":"snapshot"}` message.
pub async fn snapshot(ctx: &AppContext) -> Result<ServerMessage, AppError> {
    Ok(ServerMessage::Snapshot {
        users: ctx.store.list_presence().await?,
    })
}
