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
//! * `mod.rs` — [`upgrade`]: the handshake.
//! * [`socket`] — the loop: snapshot, events, pings, client messages, and
//!   closing with the right code.
//! * [`frames`] — frames out, written straight to the connection; frames in
//!   parsed by tungstenite.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use rollcall::domain::{ConnectionId, Timestamp};
use rollcall::error::AppError;
use rollcall::handlers::respond::{self, Format};
use rollcall::handlers::ws::{self as shared, MAX_CLIENT_MESSAGE_BYTES};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument as _;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::app::AppState;

pub mod frames;
pub mod socket;

/// Read buffer per socket. Client messages are tiny (a ping, a snapshot
/// request); tungstenite's 128 KiB default would cost 128 KiB per idle
/// socket. A longer message is read in several reads.
const READ_BUFFER: usize = 256;

/// `GET /users/[?since=MS]` with an upgrade: 400 unless it is a WebSocket
/// handshake (RFC 6455 §4.2.1), 401/403/429 unless [`shared::authorize`]
/// says yes and [`shared::connect`] registers it, then `101` and the
/// socket runs in [`socket::run`]. `since` is the time of the page's list:
/// users who joined after it are listed right after the snapshot.
///
/// The handshake is answered here rather than by axum's `WebSocketUpgrade`
/// because the socket is not a tungstenite stream for writing: see
/// [`frames`].
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let ctx = &state.ctx;
    let refuse = |e: AppError| {
        state.metrics.upgrades_refused.inc();
        crate::app::to_axum(e.into_response(Format::Json))
    };
    let accept = match handshake(req.headers()) {
        Ok(accept) => accept,
        Err(e) => return refuse(e),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return refuse(AppError::BadRequest(
            "this connection cannot be upgraded".into(),
        ));
    };
    let (headers, uri) = (req.headers(), req.uri());
    let client = ctx.config.trusted_proxies.client_of(peer.ip(), headers);
    let who = match shared::authorize(ctx, headers, uri.query(), Some(client)).await {
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
    let open = socket::Open {
        id,
        who,
        online,
        since,
    };
    let tracker = state.sockets.clone();
    let task = async move {
        let io = match on_upgrade.await {
            Ok(io) => TokioIo::new(io),
            Err(e) => {
                // Registered, but the client went away before the 101 landed.
                tracing::debug!(error = %e, "upgrade failed; unregistering");
                Box::pin(socket::unregister(state.ctx.clone(), open.id)).await;
                return;
            }
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_CLIENT_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_CLIENT_MESSAGE_BYTES));
        // Both boxed, so this task's own future stays small: the socket's
        // loop is one allocation of its own size, and the handshake's
        // state is freed once it is done.
        let ws = Box::pin(WebSocketStream::from_raw_socket(
            frames::ReadOnly(io),
            Role::Server,
            Some(config),
        ))
        .await;
        Box::pin(socket::run(state, open, ws)).await;
    };
    tracker.spawn(task.instrument(span));
    switching_protocols(accept)
}

/// Checks a WebSocket handshake's request headers (what axum's
/// `WebSocketUpgrade` checks); returns the `Sec-WebSocket-Accept` value.
fn handshake(headers: &HeaderMap) -> Result<HeaderValue, AppError> {
    let has = |name: HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if !has(header::CONNECTION, "upgrade") {
        return Err(AppError::BadRequest(
            "Connection header did not include 'upgrade'".into(),
        ));
    }
    if !has(header::UPGRADE, "websocket") {
        return Err(AppError::BadRequest(
            "`Upgrade` header did not include 'websocket'".into(),
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(AppError::BadRequest(
            "`Sec-WebSocket-Version` header did not include '13'".into(),
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| AppError::BadRequest("`Sec-WebSocket-Key` header missing".into()))?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::try_from(accept).map_err(|e| AppError::Internal(Box::new(e)))
}

/// The `101 Switching Protocols` answer to a handshake.
fn switching_protocols(accept: HeaderValue) -> Response {
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn a_handshake_is_accepted_with_the_rfc_s_example_key() {
        let ok = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        // RFC 6455 §1.3.
        assert_eq!(handshake(&ok).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn a_request_that_is_not_a_handshake_is_refused() {
        let base = [
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        for skip in 0..base.len() {
            let h: Vec<_> = base
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, p)| *p)
                .collect();
            assert!(
                matches!(handshake(&headers(&h)), Err(AppError::BadRequest(_))),
                "without {}",
                base[skip].0
            );
        }
        let old = headers(&[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", "x"),
        ]);
        assert!(handshake(&old).is_err());
    }
}
