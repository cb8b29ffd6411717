//! The WebSocket `/users/` in four steps, the same for API Gateway
//! (`$connect`, `$disconnect`, `$default`) and the local server:
//!
//! 1. [`authorize`] — before any upgrade: a session (cookie, `?token=` or
//!    a single-use `?ticket=`) and an allowed `Origin`, else 401/403.
//! 2. [`connect`] — registers the connection in the `users` group; the
//!    user's first makes them online.
//! 3. [`default`] — a client message: `ping` renews the lease, `snapshot`
//!    asks for who is online; anything else is ignored.
//! 4. [`disconnect`] — unregisters; after the user's last connection they
//!    go offline once the grace period passes with none back.
//!
//! The store logs each transition with the change itself; who announces it
//! to sockets is [`AppContext::announce`]'s business.

use http::HeaderMap;

use super::auth::{self, Authenticated};
use super::{limit, respond};
use crate::context::AppContext;
use crate::domain::{
    ClientAddr, ClientMessage, ConnectionId, PresenceEvent, ServerMessage, SessionToken, Timestamp,
    UserPresence,
};
use crate::error::AppError;
use crate::presence::MAX_JOINED;
use crate::security::origin::OriginVerdict;
use crate::store::{ConnectionRecord, Offline, RemoveIf, StoreError};

/// Largest client message accepted; bigger ones close the socket.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4096;

/// Decides whether a WebSocket may open, before upgrading.
///
/// A `?ticket=` (the cross-domain cloud page: single use, see
/// [`super::ticket`]; a used, expired or unknown one is 401), a `?token=`
/// (programmatic clients) or the session cookie authenticates. The `Origin`
/// must be allowed; it may be absent only with a ticket or a token, since
/// those — unlike a cookie — are never sent by a browser on another site's
/// behalf. The Origin is checked before a ticket is taken.
///
/// Upgrades are rate limited (429 with `Retry-After`) per client address
/// (`client`: the TCP peer or API Gateway's `sourceIp`), counted before the
/// session is looked up so that guessed tokens count too, then per session.
#[tracing::instrument(skip_all)]
pub async fn authorize(
    ctx: &AppContext,
    headers: &HeaderMap,
    query: Option<&str>,
    client: Option<ClientAddr>,
) -> Result<Authenticated, AppError> {
    let limits = ctx.config.socket_limits;
    let by_addr = client.map(|a| format!("ws:addr:{}", a.limit_key()));
    limit::check(ctx, by_addr.as_deref(), limits.upgrades_per_addr).await?;
    let who = authenticate(ctx, headers, query).await?;
    let by_session = format!("ws:session:{}", who.session.as_str());
    limit::check(ctx, Some(&by_session), limits.upgrades_per_session).await?;
    Ok(who)
}

/// The session a socket upgrade presents (ticket, token or cookie), with
/// its Origin checked.
async fn authenticate(
    ctx: &AppContext,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Authenticated, AppError> {
    let origin = ctx.config.allowed_origins.check(headers);
    let ticket = respond::query_param(query, "ticket");
    let token = respond::query_param(query, "token");
    let who = match (ticket, token) {
        (Some(raw), _) => {
            if origin == OriginVerdict::Foreign {
                return Err(AppError::Forbidden("Origin not allowed."));
            }
            return auth::from_ticket(ctx, &raw)
                .await?
                .ok_or(AppError::Unauthorized("Invalid or used ticket."));
        }
        (None, Some(raw)) => {
            if origin == OriginVerdict::Foreign {
                return Err(AppError::Forbidden("Origin not allowed."));
            }
            let token =
                SessionToken::parse(&raw).map_err(|_| AppError::Unauthorized("Invalid token."))?;
            auth::session_for(ctx, token).await?
        }
        (None, None) => {
            if origin != OriginVerdict::Allowed {
                return Err(AppError::Forbidden("Origin not allowed."));
            }
            auth::from_cookie(ctx, headers).await?
        }
    };
    who.ok_or(AppError::Unauthorized("Log in first."))
}

/// Registers connection `id` for `who`; returns the "online" event if this
/// is their first connection (announced by whoever announces, see
/// [`AppContext::announce`]). Fails with 401 if the session ended since
/// [`authorize`] (a log out racing this connect), or 429 if the user has
/// `ROLLCALL_WS_MAX_PER_USER` connections open already: the store checks
/// both in the same step as the registration, so no extra read is made and
/// racing connects on several processes never exceed the cap. A connect
/// that fails after registering undoes its registration.
#[tracing::instrument(skip_all, fields(conn = %id))]
pub async fn connect(
    ctx: &AppContext,
    id: &ConnectionId,
    who: &Authenticated,
) -> Result<Option<PresenceEvent>, AppError> {
    let now = Timestamp::now();
    let record = ConnectionRecord {
        id: id.clone(),
        username: who.username.clone(),
        session: who.session.clone(),
        // A session ending sooner ends the lease (the sweep then closes
        // the connection: nothing else would on the cloud path).
        lease_until: now.plus(ctx.config.lease).min(who.expires_at),
        session_expires_at: who.expires_at,
    };
    let cap = ctx.config.socket_limits.max_per_user;
    let online = match ctx.store.add_connection(&record, cap).await {
        Ok(online) => online,
        // Logged out (or expired) since `authorize`: nothing was registered.
        Err(StoreError::NotFound) => return Err(AppError::Unauthorized("Session ended.")),
        Err(StoreError::LimitReached) => {
            tracing::info!(user = %who.username, "too many open sockets");
            return Err(AppError::TooManyConnections);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(event) = &online {
        // Every *other* connection: the newcomer's snapshot already shows
        // it online, and API Gateway cannot post to it during `$connect`.
        if let Err(e) = ctx.announce(event).await {
            // Undo, so no ghost stays online; the lease would end it anyway.
            if let Err(undo) = end(ctx, id, Offline::Now).await {
                tracing::warn!(error = %undo, "could not undo a failed connect");
            }
            return Err(e.into());
        }
    }
    Ok(online)
}

/// Unregisters connection `id` (closed, timed out, gone). If it was its
/// user's last, they are announced offline after the grace period
/// (`ROLLCALL_OFFLINE_GRACE_SECS`) unless a connection of theirs opens
/// meanwhile. Unknown ids are fine: a log out or the sweep may have removed
/// it already.
#[tracing::instrument(skip_all, fields(conn = %id))]
pub async fn disconnect(ctx: &AppContext, id: &ConnectionId) -> Result<(), AppError> {
    let grace = ctx.config.offline_grace;
    let offline = if grace.is_zero() {
        Offline::Now
    } else {
        Offline::After(Timestamp::now().plus(grace))
    };
    end(ctx, id, offline).await
}

/// Unregisters `id`, announcing an immediate offline transition, or asking
/// for a grace period that started to be settled when it ends.
async fn end(ctx: &AppContext, id: &ConnectionId, offline: Offline) -> Result<(), AppError> {
    let Some(removed) = ctx
        .store
        .remove_connection(id, RemoveIf::Always, offline)
        .await?
    else {
        return Ok(());
    };
    if let Some(event) = removed.went_offline {
        ctx.announce(&event).await?;
    }
    if let (true, Offline::After(due)) = (removed.grace_started, offline)
        && let Err(e) = ctx.grace_started(&removed.username, due).await
    {
        // The sweep settles it a little later anyway.
        tracing::warn!(error = %e, "could not queue the end of a grace period");
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
    /// Send a snapshot (and the users who joined after `since`). The
    /// transport builds it where its ordering with presence events is right
    /// (the local server: from its view, in the socket's queue; the cloud:
    /// [`snapshot`]).
    Snapshot {
        /// The time of the client's list, if it said.
        since: Option<Timestamp>,
    },
    /// The connection is no longer registered (its lease was swept): close
    /// it so the client reconnects, re-registers and resynchronises.
    Close,
}

/// Who keeps a connection's lease alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The server process renews all its sockets' leases in one batch (the
    /// local server): a ping renews nothing.
    KeptByServer,
    /// Only the client's pings renew it (API Gateway). The connection
    /// opened at `connected_at`.
    KeptByPings {
        /// When the connection opened.
        connected_at: Timestamp,
    },
}

/// Whether a ping at `now` renews the lease of a connection opened at
/// `connected_at` whose client pings every `ping`: one ping in each window
/// of two ping periods since it opened — every other ping, half the writes.
/// The longest gap between renewals is under three ping periods (a late
/// ping can miss its window), so the lease must be at least that long
/// (`Config` checks it).
pub fn renewal_due(now: Timestamp, connected_at: Timestamp, ping: std::time::Duration) -> bool {
    let p = u64::try_from(ping.as_millis()).unwrap_or(u64::MAX).max(1);
    let elapsed = now.as_millis().saturating_sub(connected_at.as_millis());
    elapsed % p.saturating_mul(2) < p
}

/// Handles one client text message (`$default`).
#[tracing::instrument(skip_all, fields(conn = %id))]
pub async fn default(
    ctx: &AppContext,
    id: &ConnectionId,
    text: &str,
    lease: Lease,
) -> Result<Reply, AppError> {
    if text.len() > MAX_CLIENT_MESSAGE_BYTES {
        return Ok(Reply::Close);
    }
    match ClientMessage::parse(text) {
        Some(ClientMessage::Ping) => {
            let now = Timestamp::now();
            let renew = match lease {
                Lease::KeptByServer => false,
                Lease::KeptByPings { connected_at } => {
                    renewal_due(now, connected_at, ctx.config.client_ping_interval)
                }
            };
            if !renew {
                return Ok(Reply::Send(ServerMessage::Pong));
            }
            let missing = ctx
                .store
                .renew_leases(std::slice::from_ref(id), now.plus(ctx.config.lease))
                .await?;
            Ok(if missing.is_empty() {
                Reply::Send(ServerMessage::Pong)
            } else {
                Reply::Close
            })
        }
        Some(ClientMessage::Snapshot { since }) => Ok(Reply::Snapshot {
            since: since.map(Timestamp::from_millis),
        }),
        None => Ok(Reply::Nothing),
    }
}

/// Counts one client message of connection `id` against
/// `ROLLCALL_WS_MESSAGE_RATE` in this process's buckets (the cloud's
/// `$default`, where every message is a separate invocation: see
/// [`MessageBuckets`](crate::limits::bucket::MessageBuckets) — no store
/// call, so a page's pings cost no write for it); `Err(RateLimited)` when
/// over it: the caller closes the connection. The local server keeps a
/// bucket in each socket's task instead.
pub fn count_message(ctx: &AppContext, id: &ConnectionId) -> Result<(), AppError> {
    let rule = ctx.config.socket_limits.messages;
    if ctx.messages.take(id, rule, std::time::Instant::now()) {
        Ok(())
    } else {
        Err(AppError::RateLimited {
            retry_after: rule.window,
        })
    }
}

/// Largest snapshot message [`snapshot`] makes: API Gateway takes at most
/// 32 KB per WebSocket frame (and 128 KB per message).
pub const MAX_SNAPSHOT_BYTES: usize = 32 * 1024 - 512;

/// The snapshot of who is online from [`AppContext::presence`], split into
/// parts of at most [`MAX_SNAPSHOT_BYTES`] (all but the last say `more`),
/// then, if `since` is given and anyone joined after it, the `joined`
/// message.
pub async fn snapshot(
    ctx: &AppContext,
    since: Option<Timestamp>,
) -> Result<Vec<ServerMessage>, AppError> {
    let at = Timestamp::now().as_millis();
    let reset = ctx.presence.ordered();
    let users = ctx.presence.online().await?;
    let mut out = split_snapshot(reset, at, users, ctx.presence.known_total());
    if let Some(joined) = joined(ctx, since).await? {
        out.push(joined);
    }
    Ok(out)
}

/// `users` as snapshot parts of at most [`MAX_SNAPSHOT_BYTES`] each.
/// `total` (registered users, if known for free) goes with the last part.
pub fn split_snapshot(
    reset: bool,
    at: u64,
    users: Vec<UserPresence>,
    total: Option<u64>,
) -> Vec<ServerMessage> {
    ServerMessage::snapshot_parts(reset, at, users, total, MAX_SNAPSHOT_BYTES)
}

/// The `joined` message for a client whose list is from `since`, if anyone
/// joined after it.
pub async fn joined(
    ctx: &AppContext,
    since: Option<Timestamp>,
) -> Result<Option<ServerMessage>, AppError> {
    let Some(since) = since else {
        return Ok(None);
    };
    let (users, truncated) = ctx.presence.joined_since(since, MAX_JOINED).await?;
    Ok((!users.is_empty()).then_some(ServerMessage::Joined { users, truncated }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Username;

    #[test]
    fn a_large_snapshot_is_split_into_frames_under_32_kb() {
        // 5,000 online users with long names: ~230 KB in one message.
        let users: Vec<UserPresence> = (0..5000)
            .map(|i| UserPresence::at(Username::parse(&format!("user.{i:05}.éé")).unwrap(), 1))
            .collect();
        let parts = split_snapshot(false, 7, users.clone(), Some(100_000));
        assert!(parts.len() > 5, "{}", parts.len());
        let mut seen = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let json = p.to_json();
            assert!(json.len() <= MAX_SNAPSHOT_BYTES, "part {i}: {}", json.len());
            let ServerMessage::Snapshot { users, more, .. } = p else {
                panic!("a snapshot")
            };
            assert_eq!(*more, i + 1 < parts.len());
            assert_eq!(json.contains(r#""more":true"#), *more);
            seen.extend(users.iter().cloned());
        }
        assert_eq!(seen, users, "every user once, in order");
        let one = split_snapshot(true, 7, Vec::new(), None);
        assert_eq!(one.len(), 1, "an empty snapshot is one message");
    }

    #[test]
    fn every_other_ping_renews_and_renewals_are_never_three_periods_apart() {
        let ping = std::time::Duration::from_secs(30);
        let opened = Timestamp::from_millis(1_000_000);
        let at = |ms: u64| Timestamp::from_millis(1_000_000 + ms);
        // Pings every 30 s, a little late each time.
        let renewing: Vec<u64> = (1..=12u64)
            .map(|k| k * 30_000 + 700)
            .filter(|ms| renewal_due(at(*ms), opened, ping))
            .collect();
        assert_eq!(renewing.len(), 6, "{renewing:?}");
        let mut last = 0;
        for r in renewing {
            assert!(r - last < 90_000, "gap {} ms", r - last);
            last = r;
        }
        // A ping late by almost a period can skip one window: still < 3P.
        assert!(renewal_due(at(60_000), opened, ping));
        assert!(renewal_due(at(89_999), opened, ping));
        assert!(!renewal_due(at(90_000), opened, ping));
        assert!(renewal_due(at(120_000), opened, ping));
    }

    #[test]
    fn the_longest_names_still_fit() {
        // 150 characters of three bytes each.
        let wide = Username::parse(&"日".repeat(150)).unwrap();
        let parts = split_snapshot(
            false,
            1,
            vec![UserPresence::at(wide, 1); 200],
            Some(u64::MAX),
        );
        assert!(
            parts
                .iter()
                .all(|p| p.to_json().len() <= MAX_SNAPSHOT_BYTES)
        );
    }
}
