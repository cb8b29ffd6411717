//! The WebSocket `/users/`: authorize and register before upgrading, then
//! one loop per socket ([`socket`]).
//!
//! Everything that can refuse a socket happens before the 101, as API
//! Gateway's `$connect` does, through the same shared handlers: the
//! session and the `Origin` (401/403), the upgrade rate limits per client
//! address and per session, and the per-user cap on open sockets, which
//! the store checks in the very step that registers the connection (429).
//! A socket that was registered but never upgraded (the client left before
//! the 101) is unregistered again.
//!
//! Each socket's life runs in a `socket` tracing span carrying its
//! connection id and user, so every log line of it (the shared handlers'
//! included) names the connection.
//!
//! # Layout
//!
//! * `mod.rs` — [`upgrade`].
//! * [`socket`] — the loop: snapshot, events, pings, client messages, and
//!   closing with the right code.

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Uri};
use rollcall::domain::{ConnectionId, Timestamp};
use rollcall::handlers::respond::{self, Format};
use rollcall::handlers::ws::{self as shared, MAX_CLIENT_MESSAGE_BYTES};
use tracing::Instrument as _;

use crate::app::AppState;

pub mod socket;

/// Read buffer per socket. Client messages are tiny; tungstenite's 128 KiB
/// default would cost 128 KiB per idle socket.
const READ_BUFFER: usize = 1024;

/// `GET /users/[?since=MS]` with an upgrade: 401/403/429 unless
/// [`shared::authorize`] says yes and [`shared::connect`] registers it,
/// then the socket runs in [`socket::run`]. `since` is the time of the
/// page's list: users who joined after it are listed right after the
/// snapshot.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let ctx = &state.ctx;
    let client = ctx.config.trusted_proxies.client_of(peer.ip(), &headers);
    let refuse = |e: rollcall::error::AppError| {
        state.metrics.upgrades_refused.inc();
        crate::app::to_axum(e.into_response(Format::Json))
    };
    let who = match shared::authorize(ctx, &headers, uri.query(), Some(client)).await {
        Ok(who) => who,
        Err(e) => return refuse(e),
    };
    let id = ConnectionId::generate();
    let span = tracing::info_span!("socket", conn = %id, user = %who.username);
    let online = match shared::connect(ctx, &id, &who)
        .instrument(span.clone())
        .await
    {
        Ok(online) => online,
        Err(e) => return span.in_scope(|| refuse(e)),
    };
    let since = respond::query_param(uri.query(), "since")
        .and_then(|s| s.parse().ok())
        .map(Timestamp::from_millis);
    let tracker = state.sockets.clone();
    let (failed_ctx, failed_id, failed_span) = (ctx.clone(), id.clone(), span.clone());
    let failed_tracker = tracker.clone();
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_failed_upgrade(move |e| {
            // Registered, but the client went away before the 101 landed.
            failed_span.in_scope(|| tracing::debug!(error = %e, "upgrade failed; unregistering"));
            failed_tracker.spawn(socket::unregister(failed_ctx, failed_id).instrument(failed_span));
        })
        .on_upgrade(move |ws| {
            let open = socket::Open {
                id,
                who,
                online,
                since,
            };
            tracker.track_future(socket::run(state, open, ws).instrument(span))
        })
        .into_response()
}
