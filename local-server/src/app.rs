//! The axum application: [`router`] and [`serve`].
//!
//! Every HTTP route goes through the shared [`rollcall::handlers::route`]
//! table, exactly as in the Lambda functions; only `/users/` (the WebSocket)
//! is wired here, around the shared `ws` handlers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::routing::get;
use rollcall::AppContext;
use rollcall::error::AppError;
use rollcall::handlers::{self, respond};
use tokio::net::TcpListener;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

use crate::feed::Feed;
use crate::hub::Hub;
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
    /// Tracks socket tasks for a clean shutdown.
    pub sockets: tokio_util::task::TaskTracker,
}

/// The application's routes.
pub fn router(node: &Node) -> Router {
    let state = AppState {
        ctx: node.ctx.clone(),
        hub: node.hub.clone(),
        feed: node.feed.clone(),
        sockets: node.sockets.clone(),
    };
    Router::new()
        .route("/users/", get(crate::ws::upgrade))
        .fallback(http)
        .layer(DefaultBodyLimit::max(respond::MAX_BODY_BYTES))
        // The page lists every user: at 100,000 that is ~6 MB of HTML,
        // well under 1 MB compressed. The fastest levels: compressing runs
        // per request, and the list's markup compresses well anyway.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(state)
}

/// Adapts an axum request to the shared routing table and back.
async fn http(State(state): State<AppState>, req: Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let format = if parts.uri.path().starts_with("/api/") {
        respond::Format::Json
    } else {
        respond::Format::Html
    };
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

/// Serves `node` on an already-bound `listener` until `shutdown` completes,
/// then closes every socket (their users go offline after the grace period
/// unless they reconnect elsewhere) and stops.
pub async fn serve(
    listener: TcpListener,
    node: Node,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(&node);
    let hub = node.hub.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Upgraded sockets are not tracked by the HTTP server's
            // graceful shutdown: tell them to close now.
            hub.close_all();
        })
        .await;
    node.shutdown(Duration::from_secs(5)).await;
    result
}
