//! The WebSocket `/users/`: authorize before upgrading, then one loop per
//! socket that sends its snapshot and the queued events and pings, reads
//! client messages, and cleans up however the socket ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Uri};
use rollcall::domain::{ConnectionId, Timestamp};
use rollcall::handlers::auth::Authenticated;
use rollcall::handlers::respond::{self, Format};
use rollcall::handlers::ws::{self as shared, MAX_CLIENT_MESSAGE_BYTES, Reply};

use crate::app::AppState;
use crate::hub::{Outbound, close};
use tokio::sync::mpsc;

/// Read buffer per socket. Client messages are tiny; tungstenite's 128 KiB
/// default would cost 128 KiB per idle socket.
const READ_BUFFER: usize = 1024;

/// `GET /users/[?since=MS]` with an upgrade: 401/403 unless
/// [`shared::authorize`] says yes, then the socket runs in [`run`]. `since`
/// is the time of the page's list: users who joined after it are listed
/// right after the snapshot.
pub async fn upgrade(
    State(state): State<AppState>,
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match shared::authorize(&state.ctx, &headers, uri.query()).await {
        Err(e) => crate::app::to_axum(e.into_response(Format::Json)),
        Ok(who) => {
            let since = respond::query_param(uri.query(), "since")
                .and_then(|s| s.parse().ok())
                .map(Timestamp::from_millis);
            ws.read_buffer_size(READ_BUFFER)
                .write_buffer_size(0)
                .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
                .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
                .on_upgrade(move |socket| {
                    let tracker = state.sockets.clone();
                    tracker.track_future(run(state, who, socket, since))
                })
                .into_response()
        }
    }
}

/// One socket's life: register (the user's first socket makes them
/// online), snapshot, then events and pings out and client messages in
/// until either side ends it; then unregister (retried until the store
/// takes it), and if it was the user's last socket they go offline after
/// the grace period.
async fn run(state: AppState, who: Authenticated, socket: WebSocket, since: Option<Timestamp>) {
    let id = ConnectionId::generate();
    let ctx = &state.ctx;
    let (mut sink, mut stream) = socket.split();
    let online = match shared::connect(ctx, &id, &who).await {
        Ok(online) => online,
        Err(e) => {
            let code = if e.status().is_client_error() {
                close::LOGGED_OUT
            } else {
                close::INTERNAL
            };
            let _ = sink.send(close_frame(code)).await;
            return;
        }
    };
    // Our own arrival is in the log; once the view has it, the snapshot
    // shows us online and the event itself is not sent to us.
    if let Some(e) = &online
        && !state
            .feed
            .view
            .wait_for(&e.username, e.seq, JOIN_WAIT)
            .await
    {
        tracing::warn!(conn = %id, "the presence view is behind; joining anyway");
    }
    let mut reg = state.feed.join(&id);
    let replies = reg.tx.clone();
    queue_joined(&state, &replies, since).await;
    tracing::debug!(conn = %id, user = %who.username, "socket open");

    let started = Instant::now();
    let heard = AtomicU64::new(0); // ms since `started` of the last frame received
    let ping_every = ctx.config.ws_ping_interval;
    let idle_limit = ctx.config.ws_idle_timeout;
    let mut end_code = None;
    let closing = reg.cancel.clone();

    let sending = async {
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        loop {
            tokio::select! {
                out = reg.rx.recv() => {
                    let ok = match out {
                        Some(Outbound(frames)) => send_all(&mut sink, &frames, idle_limit).await,
                        None => false,
                    };
                    if !ok {
                        return;
                    }
                }
                _ = ping.tick() => {
                    let silent = started.elapsed().saturating_sub(Duration::from_millis(heard.load(Ordering::Relaxed)));
                    if silent > idle_limit {
                        tracing::info!(conn = %id, user = %who.username, "reaping a silent socket");
                        return;
                    }
                    if !send(&mut sink, Message::Ping(bytes::Bytes::new()), idle_limit).await {
                        return;
                    }
                }
            }
        }
    };

    let receiving = async {
        while let Some(msg) = stream.next().await {
            heard.store(millis(started.elapsed()), Ordering::Relaxed);
            match msg {
                Ok(Message::Text(text)) => {
                    match shared::default(ctx, &id, text.as_str(), shared::Lease::KeptByServer)
                        .await
                    {
                        Ok(Reply::Nothing) => {}
                        Ok(Reply::Send(m)) => {
                            let _ = replies.try_send(Outbound::one(Utf8Bytes::from(m.to_json())));
                        }
                        Ok(Reply::Snapshot { since }) => {
                            state.feed.snapshot_to(&replies);
                            queue_joined(&state, &replies, since).await;
                        }
                        Ok(Reply::Close) => return Some(close::EXPIRED),
                        Err(e) => {
                            tracing::warn!(conn = %id, error = %e, "client message failed");
                        }
                    }
                }
                Ok(Message::Close(_)) => return None,
                Ok(_) => {} // binary is ignored; pings are answered by the library
                Err(e) => {
                    tracing::debug!(conn = %id, error = %e, "socket read failed");
                    // An oversized message is a protocol error we can name.
                    let too_big = matches!(
                        e.into_inner().downcast_ref::<tungstenite::Error>(),
                        Some(tungstenite::Error::Capacity(_))
                    );
                    return too_big.then_some(close::TOO_BIG);
                }
            }
        }
        None
    };

    tokio::select! {
        () = sending => {}
        code = receiving => end_code = code,
        () = closing.cancelled() => end_code = Some(close::GOING_AWAY),
    }
    state.hub.unregister(&id);
    if closing.is_cancelled() {
        end_code = Some(reg.close_code());
    }
    if let Some(code) = end_code {
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close_frame(code))).await;
    }
    unregister(ctx, &id).await;
    tracing::debug!(conn = %id, user = %who.username, "socket closed");
}

/// How long a new socket waits for the view to show its own arrival.
const JOIN_WAIT: Duration = Duration::from_secs(2);

/// Queues the `joined` message for a client whose list is from `since`.
async fn queue_joined(state: &AppState, tx: &mpsc::Sender<Outbound>, since: Option<Timestamp>) {
    match shared::joined(&state.ctx, since).await {
        Ok(Some(m)) => {
            let _ = tx.try_send(Outbound::one(Utf8Bytes::from(m.to_json())));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not list the users who joined"),
    }
}

/// Unregisters a closed socket, retrying while the store fails, until its
/// lease would have ended anyway (after that the sweep removes it).
async fn unregister(ctx: &rollcall::AppContext, id: &ConnectionId) {
    let give_up = Instant::now() + ctx.config.lease;
    let mut backoff = Duration::from_millis(100);
    loop {
        match shared::disconnect(ctx, id).await {
            Ok(()) => return,
            Err(e) if Instant::now() + backoff < give_up => {
                tracing::warn!(conn = %id, error = %e, "could not unregister a closed socket; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(conn = %id, error = %e, "could not unregister a closed socket; its lease will end it");
                return;
            }
        }
    }
}

/// Sends `frames` in order, each with [`send`]'s deadline.
async fn send_all(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    frames: &[Utf8Bytes],
    deadline: Duration,
) -> bool {
    for f in frames {
        if !send(sink, Message::Text(f.clone()), deadline).await {
            return false;
        }
    }
    true
}

/// Sends with a deadline: a peer that stops reading cannot hold the loop.
async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    msg: Message,
    deadline: Duration,
) -> bool {
    matches!(
        tokio::time::timeout(deadline, sink.send(msg)).await,
        Ok(Ok(()))
    )
}

fn close_frame(code: u16) -> Message {
    let reason = match code {
        close::GOING_AWAY => "server shutting down",
        close::TOO_BIG => "message too big",
        close::LOGGED_OUT => "logged out",
        close::EXPIRED => "connection expired; reconnect",
        close::LAGGING => "too slow; reconnect",
        _ => "server error",
    };
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
