//! One socket's loop: its snapshot, the queued events and pings out,
//! client messages in (each counted against the socket's allowance), and
//! closing with a code that says why, however the socket ends; then
//! unregistering, retried until the store takes it.

use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rollcall::domain::{ConnectionId, PresenceEvent, Timestamp};
use rollcall::handlers::auth::Authenticated;
use rollcall::handlers::ws::{self as shared, Reply};
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;

use super::frames::{self, ReadOnly};
use crate::app::AppState;
use crate::hub::queue;
use crate::hub::{Outbound, close};
use rollcall::limits::bucket::TokenBucket;

/// A registered connection, about to run.
pub struct Open {
    /// Its id (already registered in the store).
    pub id: ConnectionId,
    /// Its session and user.
    pub who: Authenticated,
    /// Its user's "online" event if it was their first connection.
    pub online: Option<PresenceEvent>,
    /// The time of the client's list, if it said.
    pub since: Option<Timestamp>,
}

/// How a socket's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed it, or the connection dropped.
    Client,
    /// A read or write failed, or a write did not finish in time.
    Broken,
    /// Nothing heard for `ROLLCALL_WS_IDLE_TIMEOUT_SECS`.
    Idle,
    /// A message over [`shared::MAX_CLIENT_MESSAGE_BYTES`].
    TooBig,
    /// Messages faster than `ROLLCALL_WS_MESSAGE_RATE`.
    TooManyMessages,
    /// Its session reached its expiry.
    SessionExpired,
    /// Its registration was gone when a message came (swept).
    Unregistered,
    /// Closed from outside (the hub: log out, lagging, lease, shutdown).
    Closed(u16),
}

impl End {
    /// The close code to send, if any, and the metrics label.
    fn code_and_reason(self) -> (Option<u16>, &'static str) {
        match self {
            Self::Client => (None, "client"),
            Self::Broken => (None, "broken"),
            Self::Idle => (None, "idle"),
            Self::TooBig => (Some(close::TOO_BIG), "too_big"),
            Self::TooManyMessages => (Some(close::TOO_MANY_MESSAGES), "too_many_messages"),
            Self::SessionExpired => (Some(close::LOGGED_OUT), "session_expired"),
            Self::Unregistered => (Some(close::EXPIRED), "expired"),
            Self::Closed(code) => (
                Some(code),
                match code {
                    close::LOGGED_OUT => "logged_out",
                    close::EXPIRED => "expired",
                    close::LAGGING => "lagging",
                    close::GOING_AWAY => "shutdown",
                    _ => "other",
                },
            ),
        }
    }
}

/// The socket as [`run`] gets it: tungstenite parses what the client sends;
/// what the server sends is written to the connection underneath with
/// [`frames`] (see there).
pub type Ws = WebSocketStream<ReadOnly<TokioIo<Upgraded>>>;

/// One socket's life, once registered: snapshot, then events and pings
/// out and client messages in until either side ends it or its session
/// expires; then unregister (retried until the store takes it), and if it
/// was the user's last socket they go offline after the grace period.
///
/// One loop does both directions, so only it writes to the connection.
/// This future lives as long as the socket, at the size of its largest
/// state: the store calls it makes now and then (a client message, the
/// `joined` list, unregistering) are boxed while they run, so an idle
/// socket does not carry their space.
pub async fn run(state: AppState, open: Open, mut ws: Ws) {
    let Open {
        id,
        who,
        online,
        since,
    } = open;
    let ctx = &state.ctx;
    // Our own arrival is in the log; once the view has it, the snapshot
    // shows us online and the event itself is not sent to us.
    if let Some(e) = &online
        && !Box::pin(state.feed.view.wait_for(&e.username, e.seq, JOIN_WAIT)).await
    {
        tracing::warn!("the presence view is behind; joining anyway");
    }
    let mut reg = state.feed.join(&id);
    let replies = reg.tx.clone();
    Box::pin(queue_joined(&state, &replies, since)).await;
    state.metrics.sockets_opened.inc();
    tracing::debug!("socket open");

    let started = Instant::now();
    let mut heard = started; // the last frame received
    let ping_every = ctx.config.ws_ping_interval;
    let idle_limit = ctx.config.ws_idle_timeout;
    let mut allowance = TokenBucket::new(ctx.config.socket_limits.messages, started);
    let session_left = Duration::from_millis(
        who.expires_at
            .as_millis()
            .saturating_sub(Timestamp::now().as_millis()),
    );
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let closing = reg.cancel.clone();
    let cancelled = closing.cancelled();
    let session_over = tokio::time::sleep(session_left);
    tokio::pin!(cancelled, session_over);
    let mut streak = 0u8; // frames sent since the other branches were polled

    let end = loop {
        // Biased, the queue first: a socket woken for an event (nearly
        // every wake) polls nothing else. After FAIR_TURN frames in a row
        // the queue sits out one turn, so the client, the ping, a cancel
        // and the session's end are looked at however busy the queue is;
        // a cancel is also seen before each frame is written.
        tokio::select! {
            biased;
            out = reg.rx.recv(), if streak < FAIR_TURN => {
                streak += 1;
                if closing.is_cancelled() {
                    break End::Closed(reg.close_code());
                }
                let ok = match out {
                    Some(Outbound(frames)) => {
                        deadline(idle_limit, frames::write_texts(io(&mut ws), &frames)).await
                    }
                    None => false,
                };
                if !ok {
                    break End::Broken;
                }
            }
            msg = ws.next() => {
                let now = Instant::now();
                heard = now;
                let counted = matches!(
                    msg,
                    Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_)))
                );
                if counted && allowance.as_mut().is_some_and(|b| !b.take(now)) {
                    tracing::info!("closing a socket over its message rate");
                    state.metrics.limited("ws:message");
                    break End::TooManyMessages;
                }
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        let handled =
                            shared::default(ctx, &id, text.as_str(), shared::Lease::KeptByServer);
                        match Box::pin(handled).await {
                            Ok(Reply::Nothing) => {}
                            Ok(Reply::Send(m)) => {
                                let _ = replies.try_send(Outbound::one(Utf8Bytes::from(m.to_json())));
                            }
                            Ok(Reply::Snapshot { since }) => {
                                state.feed.snapshot_to(&replies);
                                Box::pin(queue_joined(&state, &replies, since)).await;
                            }
                            Ok(Reply::Close) => break End::Unregistered,
                            Err(e) => {
                                tracing::warn!(error = %e, "client message failed");
                            }
                        }
                    }
                    // tungstenite's own pong went nowhere (see `frames`).
                    Some(Ok(Message::Ping(payload))) => {
                        if !deadline(idle_limit, frames::write_control(io(&mut ws), frames::PONG, &payload)).await {
                            break End::Broken;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        // Echo the client's code (RFC 6455 §5.5.1).
                        let payload = frame.map_or_else(Vec::new, |f| frames::close_payload(f.code.into(), ""));
                        let _ = deadline(CLOSE_WAIT, frames::write_control(io(&mut ws), frames::CLOSE, &payload)).await;
                        break End::Client;
                    }
                    Some(Ok(_)) => {} // binary and pongs are ignored
                    None | Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => break End::Client,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "socket read failed");
                        // An oversized message is a protocol error we can name.
                        break if matches!(e, tungstenite::Error::Capacity(_)) { End::TooBig } else { End::Broken };
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > idle_limit {
                    tracing::info!("reaping a silent socket");
                    break End::Idle;
                }
                if !deadline(idle_limit, frames::write_control(io(&mut ws), frames::PING, &[])).await {
                    break End::Broken;
                }
            }
            () = &mut cancelled => break End::Closed(reg.close_code()),
            () = &mut session_over => break End::SessionExpired,
            // The queue's turn comes back once the others have been asked.
            () = std::future::ready(()), if streak >= FAIR_TURN => streak = 0,
        }
    };
    state.hub.unregister(&id);
    // Closed from outside while ending for another reason: say why.
    let end = if closing.is_cancelled() {
        End::Closed(reg.close_code())
    } else {
        end
    };
    // A lease stops at the session's end, so the sweep may take the
    // registration at the very moment the session's own timer fires: the
    // page should hear "session expired" (and log in) either way.
    let end = match end {
        End::Closed(close::EXPIRED) | End::Unregistered if Timestamp::now() >= who.expires_at => {
            End::SessionExpired
        }
        end => end,
    };
    let (code, reason) = end.code_and_reason();
    state.metrics.closed(reason);
    if let Some(code) = code {
        let text = match end {
            End::SessionExpired => "session expired",
            _ => close_text(code),
        };
        let payload = frames::close_payload(code, text);
        let _ = deadline(
            CLOSE_WAIT,
            frames::write_control(io(&mut ws), frames::CLOSE, &payload),
        )
        .await;
    }
    drop(ws);
    Box::pin(unregister(ctx.clone(), id)).await;
    tracing::debug!(reason, "socket closed");
}

/// Frames a socket's loop sends in a row before it polls its other
/// branches (the client, the ping, a cancel, the session's end) once.
const FAIR_TURN: u8 = 16;

/// How long a closing socket waits for its close frame to be written.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The connection under `ws`, for writing.
fn io(ws: &mut Ws) -> &mut TokioIo<Upgraded> {
    &mut ws.get_mut().0
}

/// Runs a write with a deadline: a peer that stops reading cannot hold the
/// loop. Whether it finished in time.
async fn deadline(
    limit: Duration,
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> bool {
    matches!(tokio::time::timeout(limit, write).await, Ok(Ok(())))
}

/// How long a new socket waits for the view to show its own arrival.
const JOIN_WAIT: Duration = Duration::from_secs(2);

/// Queues the `joined` message for a client whose list is from `since`.
async fn queue_joined(state: &AppState, tx: &queue::Sender<Outbound>, since: Option<Timestamp>) {
    match shared::joined(&state.ctx, since).await {
        Ok(Some(m)) => {
            let _ = tx.try_send(Outbound::one(Utf8Bytes::from(m.to_json())));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not list the users who joined"),
    }
}

/// Unregisters a closed socket, retrying while the store fails (a Redis
/// restart), until its lease would have ended anyway (after that the sweep
/// removes it).
pub async fn unregister(ctx: rollcall::AppContext, id: ConnectionId) {
    let give_up = Instant::now() + ctx.config.lease;
    let mut backoff = Duration::from_millis(100);
    loop {
        match shared::disconnect(&ctx, &id).await {
            Ok(()) => return,
            Err(e) if Instant::now() + backoff < give_up => {
                tracing::warn!(error = %e, "could not unregister a closed socket; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(error = %e, "could not unregister a closed socket; its lease will end it");
                return;
            }
        }
    }
}

/// The reason sent with a close code.
fn close_text(code: u16) -> &'static str {
    match code {
        close::GOING_AWAY => "server shutting down",
        close::TOO_BIG => "message too big",
        close::LOGGED_OUT => "logged out",
        close::EXPIRED => "connection expired; reconnect",
        close::LAGGING => "too slow; reconnect",
        close::TOO_MANY_MESSAGES => "too many messages; reconnect later",
        _ => "server error",
    }
}
