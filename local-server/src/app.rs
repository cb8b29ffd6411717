//! The axum application: [`router`] and [`serve`].
//!
//! Every HTTP route goes through the shared [`rollcall::handlers::route`]
//! table, exactly as in the Lambda functions; only `/users/` (the WebSocket)
//! is wired here, around the shared `ws` handlers.
//!
//! Limits against slow or greedy clients (values from the configuration):
//! headers must arrive within `ROLLCALL_HTTP_HEADER_TIMEOUT_SECS` and fit in
//! [`MAX_HEADER_BYTES`] (hyper's read buffer; over it, 431), a request must
//! be answered within `ROLLCALL_HTTP_TIMEOUT_SECS` (else 408), at most
//! `ROLLCALL_HTTP_MAX_CONCURRENCY` HTTP requests are handled at once (the
//! rest wait, within their timeout), bodies are at most 16 KiB (413).
//! Upgraded WebSockets count against none of these: their upgrade request
//! ends with the 101.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::handler::Handler as _;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use rollcall::AppContext;
use rollcall::error::AppError;
use rollcall::handlers::{self, respond};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;

use crate::feed::Feed;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::node::Node;

/// What axum handlers get.
#[derive(Clone)]
pub struct AppState {
    /// The shared handlers' context.
    pub ctx: AppContext,
    /// This process's sockets.
    pub hub: Arc<Hub>,
    /// The presence view and log follower.
    pub feed: Arc<Feed>,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Tracks socket tasks for a clean shutdown.
    pub sockets: tokio_util::task::TaskTracker,
}

/// The application's routes.
pub fn router(node: &Node) -> Router {
    let state = AppState {
        ctx: node.ctx.clone(),
        hub: node.hub.clone(),
        feed: node.feed.clone(),
        metrics: node.metrics.clone(),
        sockets: node.sockets.clone(),
    };
    let config = &node.ctx.config;
    // Only plain HTTP requests are timed and counted: the WebSocket route
    // is outside these layers.
    let pages = tower::ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            config.http_timeout,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(
            config.http_max_concurrency,
        ))
        .service(http.with_state(state.clone()));
    // The timeout layer answers a bare 408; render it as every error is.
    let pages = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(render_timeouts))
        .service(pages);
    Router::new()
        .route("/users/", get(crate::ws::upgrade))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .fallback_service(pages)
        .layer(DefaultBodyLimit::max(respond::MAX_BODY_BYTES))
        // The page lists every user: at 100,000 that is ~6 MB of HTML,
        // well under 1 MB compressed. The fastest levels: compressing runs
        // per request, and the list's markup compresses well anyway.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(state)
}

/// `GET /metrics`: every metric in the Prometheus text format, the
/// gauges read now.
async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    let m = &state.metrics;
    crate::metrics::gauge(&m.sockets_open, state.hub.len());
    crate::metrics::gauge(&m.hash_running, state.ctx.hasher.running());
    crate::metrics::gauge(&m.hash_waiting, state.ctx.hasher.waiting());
    let view = state.feed.view.stats();
    crate::metrics::gauge(&m.users, view.users);
    crate::metrics::gauge(&m.users_online, view.online);
    let mut r = axum::response::Response::new(Body::from(m.render()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    r
}

/// How long `/readyz` waits for the store.
const READY_PING: Duration = Duration::from_secs(2);

/// `GET /readyz`: readiness — 200 `{"status":"ready"}` when the store
/// answers a ping within 2 s and the feed is following the event log
/// (a read succeeded within the last 10 s); else 503 with which of the two
/// is not. A load balancer sends new clients only to ready processes;
/// `/healthz` (liveness) stays 200 meanwhile, so nothing restarts a
/// process that waits for its store.
async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    let store = matches!(
        tokio::time::timeout(READY_PING, state.ctx.store.ping()).await,
        Ok(Ok(()))
    );
    let feed = state.feed.following();
    let (status, word) = if store && feed {
        (http::StatusCode::OK, "ready")
    } else {
        (http::StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    let body = serde_json::json!({
        "status": word,
        "store": if store { "ok" } else { "unreachable" },
        "feed": if feed { "following" } else { "stalled" },
        "since_last_log_read_ms": u64::try_from(state.feed.since_last_read().as_millis()).unwrap_or(u64::MAX),
    });
    to_axum(respond::json(status, &body))
}

/// Gives the timeout layer's bare 408 the body every error has (through
/// [`AppError::into_response`], in the route's format).
async fn render_timeouts(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let format = format_of(req.uri().path());
    let r = next.run(req).await;
    if r.status() == http::StatusCode::REQUEST_TIMEOUT {
        return to_axum(AppError::RequestTimeout.into_response(format));
    }
    r
}

fn format_of(path: &str) -> respond::Format {
    if path.starts_with("/api/") {
        respond::Format::Json
    } else {
        respond::Format::Html
    }
}

/// Adapts an axum request to the shared routing table and back, with the
/// client's address (from the connection) for the rate limits.
async fn http(State(state): State<AppState>, req: Request) -> axum::response::Response {
    let (mut parts, body) = req.into_parts();
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied() {
        let client = state
            .ctx
            .config
            .trusted_proxies
            .client_of(peer.ip(), &parts.headers);
        parts.extensions.insert(client);
    }
    let format = format_of(parts.uri.path());
    let bytes = match axum::body::to_bytes(body, respond::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return to_axum(AppError::PayloadTooLarge.into_response(format)),
    };
    to_axum(handlers::route(&state.ctx, http::Request::from_parts(parts, bytes)).await)
}

/// A shared handler's response as an axum one.
pub fn to_axum(r: respond::Response) -> axum::response::Response {
    r.map(Body::from)
}

/// Largest request head (request line and headers) accepted: hyper's read
/// buffer (its minimum is 8 KiB); a longer head is answered 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields accepted in one request.
pub const MAX_HEADERS: usize = 64;
/// How long shutdown waits for HTTP requests in progress.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// Serves `node` on an already-bound `listener` until `shutdown` completes,
/// then closes every socket (their users go offline after the grace period
/// unless they reconnect elsewhere) and stops.
///
/// Connections are served by hyper directly (axum's `serve` cannot set a
/// header read timeout or buffer size): HTTP/1.1 with upgrades, each
/// request carrying the peer's [`ConnectInfo`].
pub async fn serve(
    listener: TcpListener,
    node: Node,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(&node);
    let header_timeout = node.ctx.config.http_header_timeout;
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: keep serving the others.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses go out in several writes (compressed pages stream):
        // without this, Nagle's algorithm and the client's delayed ACK add
        // ~40 ms to every multi-write response.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(MAX_HEADER_BYTES)
            .max_header_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS);
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = stopping.cancelled() => {
                    // Finish the request in progress, then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Upgraded sockets are not tracked by the HTTP connections: tell them
    // to close now.
    node.hub.close_all();
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(HTTP_DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests still running at shutdown were dropped");
    }
    node.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
