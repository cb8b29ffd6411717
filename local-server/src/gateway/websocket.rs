//! The WebSocket API: an upgrade is a `$connect` event, each text message a
//! `$default` event, each close a `$disconnect` event.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Uri};
use rollcall::domain::ConnectionId;
use tokio::sync::mpsc;

use super::events::{self, WsKind};
use super::stats::FUNCTION;
use super::{Conn, Gateway, Out, invoke, now_ms, origin, to_response};

/// Text messages a socket may have waiting for `$default` before the
/// stand-in stops reading it (back pressure, not loss).
const DEFAULT_BACKLOG: usize = 64;

/// The WebSocket API: `$connect` decides, then the socket runs.
pub(super) async fn ws_api(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let id = ConnectionId::generate().as_str().to_owned();
    let ip = peer.ip().to_string();
    let connected_at = now_ms();
    let event = events::ws_event(
        &origin(&gw, &ip),
        &id,
        connected_at,
        WsKind::Connect {
            headers: &headers,
            query: uri.query(),
        },
    );
    let ctx = &gw.ctx;
    let reply = FUNCTION
        .scope(
            "ws_connect",
            invoke(event, |r| rollcall::lambda::ws_connect(ctx, r)),
        )
        .await;
    gw.stats.count(|c| &c.ws_connect, 1);
    if !(200..300).contains(&reply.status) {
        return to_response(reply);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    gw.conns().insert(
        id.clone(),
        Conn {
            tx,
            connected_at,
            source_ip: ip,
        },
    );
    let gw2 = gw.clone();
    ws.on_failed_upgrade(move |_| {
        tracing::warn!("upgrade failed after $connect");
    })
    .on_upgrade(move |socket| run_socket(gw2, id, socket, rx))
}

async fn run_socket(
    gw: Arc<Gateway>,
    id: String,
    socket: WebSocket,
    mut rx: mpsc::UnboundedReceiver<Out>,
) {
    let (mut sink, mut stream) = socket.split();
    let ip = gw
        .conns()
        .get(&id)
        .map(|c| c.source_ip.clone())
        .unwrap_or_default();
    let connected_at = gw.conns().get(&id).map_or_else(now_ms, |c| c.connected_at);
    let mut close_code = 1006u16;
    let mut reason = "Going away";
    // `$default` runs beside the socket, as API Gateway invokes it: a slow
    // invocation never holds back the posts waiting in `rx`. In order, at
    // most `DEFAULT_BACKLOG` messages waiting.
    let (default_tx, mut default_rx) = mpsc::channel::<Utf8Bytes>(DEFAULT_BACKLOG);
    let defaults = tokio::spawn({
        let (gw, id, ip) = (gw.clone(), id.clone(), ip.clone());
        async move {
            while let Some(text) = default_rx.recv().await {
                let event = events::ws_event(
                    &origin(&gw, &ip),
                    &id,
                    connected_at,
                    WsKind::Message {
                        body: text.as_str(),
                    },
                );
                let ctx = &gw.ctx;
                let reply = FUNCTION
                    .scope(
                        "ws_default",
                        invoke(event, |r| rollcall::lambda::ws_default(ctx, r)),
                    )
                    .await;
                gw.stats.count(|c| &c.ws_default, 1);
                if reply.status >= 300 {
                    tracing::warn!(status = reply.status, "$default failed");
                }
            }
        }
    });
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(t)) => {
                    if sink.send(Message::Text(Utf8Bytes::from(t))).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close) | None => {
                    // DeleteConnection: API Gateway closes with 1000.
                    let frame = CloseFrame { code: 1000, reason: Utf8Bytes::from_static("") };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    close_code = 1000;
                    reason = "Connection deleted";
                    break;
                }
            },
            msg = tokio::time::timeout(gw.opts.idle_timeout, stream.next()) => match msg {
                Err(_) => {
                    let frame = CloseFrame { code: 1001, reason: Utf8Bytes::from_static("Going away") };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    close_code = 1001;
                    reason = "Idle timeout";
                    break;
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    if default_tx.send(text).await.is_err() {
                        break;
                    }
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    close_code = frame.map_or(1005, |f| f.code);
                    reason = "Client-side close frame";
                    break;
                }
                Ok(Some(Ok(_))) => {} // binary ignored; pings answered by the library
                Ok(None | Some(Err(_))) => break,
            },
        }
    }
    gw.conns().remove(&id);
    // Messages already taken are handled before `$disconnect`.
    drop(default_tx);
    let _ = defaults.await;
    let open_ms = now_ms().saturating_sub(connected_at);
    gw.stats
        .count(|c| &c.connection_ms, u64::try_from(open_ms).unwrap_or(0));
    if gw.opts.lose_disconnects {
        tracing::info!(conn = %id, "dropping the $disconnect event (simulated)");
        return;
    }
    let event = events::ws_event(
        &origin(&gw, &ip),
        &id,
        connected_at,
        WsKind::Disconnect {
            code: close_code,
            reason,
        },
    );
    let ctx = &gw.ctx;
    FUNCTION
        .scope(
            "ws_disconnect",
            invoke(event, |r| rollcall::lambda::ws_disconnect(ctx, r)),
        )
        .await;
    gw.stats.count(|c| &c.ws_disconnect, 1);
}
