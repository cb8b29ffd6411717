//! A local stand-in for API Gateway, so the **cloud code path** runs on a
//! laptop: the Lambda functions' own adapters (`rollcall::lambda`) behind
//! real HTTP and WebSocket listeners, with the events they receive built
//! exactly as API Gateway builds them and parsed by `lambda_http` as in
//! Lambda, and the `@connections` management API the real SDK pusher calls.
//!
//! * HTTP API (payload 2.0) on one listener: every request becomes an event
//!   for the `http_*` functions.
//! * WebSocket API on another (another origin, as in AWS): an upgrade is a
//!   `$connect` event (a non-2xx answer refuses it), each text message a
//!   `$default` event, each close a `$disconnect` event; idle connections
//!   are closed after [`GatewayOptions::idle_timeout`] (10 min in AWS).
//! * `POST/GET/DELETE /{stage}/@connections/{id}`: 410 `GoneException`
//!   for ids that are not open — what makes stale-connection clean-up
//!   testable (moto's version never answers 410).
//! * Optionally the scheduled sweep, as EventBridge would invoke it.
//! * [`GatewayStats`]: what it did, counted as AWS bills it (invocations per
//!   function, messages posted, connection time), for cost accounting; and
//!   [`current_function`], which function the running task serves, so a test
//!   can attribute each AWS call to the function that made it.

pub mod cli;
pub mod events;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent, Service as _};
use rollcall::AppContext;
use rollcall::domain::{ConnectionId, Timestamp};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use events::{LambdaReply, Origin, WsKind};

/// How the stand-in behaves.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The WebSocket API's stage (its URL path and the management path prefix).
    pub stage: String,
    /// A connection with no client frame for this long is closed (AWS: 10 min).
    pub idle_timeout: Duration,
    /// Drop `$disconnect` events, as API Gateway may (it is best effort):
    /// dead connections then linger until a post finds them gone (410) or
    /// the sweep finds their lease expired.
    pub lose_disconnects: bool,
    /// Invoke the `sweep` function this often (EventBridge schedule).
    pub sweep_every: Option<Duration>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            stage: "local".into(),
            idle_timeout: Duration::from_secs(600),
            lose_disconnects: false,
            sweep_every: Some(Duration::from_secs(60)),
        }
    }
}

/// What a stand-in did, counted (see [`serve_with_stats`]): Lambda
/// invocations per function, `@connections` calls and connection time — the
/// quantities API Gateway and Lambda bill. Clones share the same counters;
/// only the stand-in adds to them, everyone else reads [`snapshot`](Self::snapshot)s.
#[derive(Debug, Clone, Default)]
pub struct GatewayStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    ws_connect: AtomicU64,
    ws_disconnect: AtomicU64,
    ws_default: AtomicU64,
    http: AtomicU64,
    sweep: AtomicU64,
    posts: AtomicU64,
    post_bytes: AtomicU64,
    posts_gone: AtomicU64,
    deletes: AtomicU64,
    deletes_gone: AtomicU64,
    gets: AtomicU64,
    connection_ms: AtomicU64,
}

/// One reading of a [`GatewayStats`]; [`since`](Self::since) gives the
/// difference between two readings. Invocations count once the function
/// has returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// `$connect` invocations (`ws_connect`), refused upgrades included.
    pub ws_connect: u64,
    /// `$disconnect` invocations (`ws_disconnect`); dropped ones are not.
    pub ws_disconnect: u64,
    /// `$default` invocations (`ws_default`): one per client text message.
    pub ws_default: u64,
    /// HTTP API requests, each one invocation of an `http_*` function.
    pub http: u64,
    /// Scheduled sweeps (`sweep` invocations) the stand-in made.
    pub sweep: u64,
    /// `PostToConnection` calls delivered to an open connection (messages
    /// to clients).
    pub posts: u64,
    /// Bytes of those messages.
    pub post_bytes: u64,
    /// `PostToConnection` calls answered 410 Gone (not open).
    pub posts_gone: u64,
    /// `DeleteConnection` calls on an open connection.
    pub deletes: u64,
    /// `DeleteConnection` calls answered 410 Gone (not open).
    pub deletes_gone: u64,
    /// `GetConnection` calls, whatever the answer.
    pub gets: u64,
    /// Milliseconds connections stayed open, summed over closed connections.
    pub connection_ms: u64,
}

impl StatsSnapshot {
    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            ws_connect: self.ws_connect.saturating_sub(earlier.ws_connect),
            ws_disconnect: self.ws_disconnect.saturating_sub(earlier.ws_disconnect),
            ws_default: self.ws_default.saturating_sub(earlier.ws_default),
            http: self.http.saturating_sub(earlier.http),
            sweep: self.sweep.saturating_sub(earlier.sweep),
            posts: self.posts.saturating_sub(earlier.posts),
            post_bytes: self.post_bytes.saturating_sub(earlier.post_bytes),
            posts_gone: self.posts_gone.saturating_sub(earlier.posts_gone),
            deletes: self.deletes.saturating_sub(earlier.deletes),
            deletes_gone: self.deletes_gone.saturating_sub(earlier.deletes_gone),
            gets: self.gets.saturating_sub(earlier.gets),
            connection_ms: self.connection_ms.saturating_sub(earlier.connection_ms),
        }
    }
}

impl GatewayStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.0;
        let get = |n: &AtomicU64| n.load(Ordering::SeqCst);
        StatsSnapshot {
            ws_connect: get(&c.ws_connect),
            ws_disconnect: get(&c.ws_disconnect),
            ws_default: get(&c.ws_default),
            http: get(&c.http),
            sweep: get(&c.sweep),
            posts: get(&c.posts),
            post_bytes: get(&c.post_bytes),
            posts_gone: get(&c.posts_gone),
            deletes: get(&c.deletes),
            deletes_gone: get(&c.deletes_gone),
            gets: get(&c.gets),
            connection_ms: get(&c.connection_ms),
        }
    }

    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        counter(&self.0).fetch_add(n, Ordering::SeqCst);
    }
}

tokio::task_local! {
    static FUNCTION: &'static str;
}

/// The function whose invocation the current task is running inside a
/// stand-in: `ws_connect`, `ws_disconnect`, `ws_default`, `sweep`, or
/// `http` (any `http_*` function: which one depends on the route); `None`
/// outside an invocation. SDK interceptors run in the calling task, so a
/// test's interceptor can tell which function made each call.
pub fn current_function() -> Option<&'static str> {
    FUNCTION.try_with(|f| *f).ok()
}

enum Out {
    Text(String),
    Close,
}

struct Conn {
    tx: mpsc::UnboundedSender<Out>,
    connected_at: i64,
    source_ip: String,
}

struct Gateway {
    ctx: AppContext,
    opts: GatewayOptions,
    http_domain: String,
    ws_domain: String,
    conns: Mutex<HashMap<String, Conn>>,
    stats: GatewayStats,
}

impl Gateway {
    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conn>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the stand-in until `shutdown`: the HTTP API on `http`, the WebSocket
/// API and its management API on `ws`. `ctx` must push through
/// `http://{ws address}/{stage}` (see [`cli`]).
pub async fn serve(
    ctx: AppContext,
    http: TcpListener,
    ws: TcpListener,
    opts: GatewayOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with_stats(ctx, http, ws, opts, GatewayStats::default(), shutdown).await
}

/// [`serve`], counting what the stand-in does into `stats` (keep a clone
/// to read it).
pub async fn serve_with_stats(
    ctx: AppContext,
    http: TcpListener,
    ws: TcpListener,
    opts: GatewayOptions,
    stats: GatewayStats,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let gw = Arc::new(Gateway {
        ctx,
        http_domain: http.local_addr()?.to_string(),
        ws_domain: ws.local_addr()?.to_string(),
        opts,
        conns: Mutex::new(HashMap::new()),
        stats,
    });
    if let Some(every) = gw.opts.sweep_every {
        tokio::spawn(schedule_sweep(gw.clone(), every, shutdown.clone()));
    }
    let http_app = Router::new().fallback(http_api).with_state(gw.clone());
    let management = "/{stage}/@connections/{id}";
    let ws_app = Router::new()
        .route(management, any(manage))
        .route("/@connections/{id}", any(manage_unstaged))
        .fallback(get(ws_api))
        .with_state(gw.clone());
    let stop_http = shutdown.clone();
    let stop_ws = shutdown.clone();
    let http_server = axum::serve(
        http,
        http_app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop_http.cancelled().await });
    let ws_server = axum::serve(
        ws,
        ws_app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop_ws.cancelled().await });
    let closer = async {
        shutdown.cancelled().await;
        for conn in gw.conns().values() {
            let _ = conn.tx.send(Out::Close);
        }
    };
    let (a, b, ()) = tokio::join!(http_server.into_future(), ws_server.into_future(), closer);
    a.and(b)
}

/// Hands `event` to a function through `lambda_http`'s own request parsing
/// and response shaping (its `Adapter`, as the Lambda runtime does) and
/// returns the response as API Gateway would read it.
pub async fn invoke<F, Fut>(event: Value, function: F) -> LambdaReply
where
    F: FnMut(lambda_http::Request) -> Fut,
    Fut: std::future::Future<
            Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>,
        > + Send,
{
    let request: LambdaRequest = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(e) => return failure(&format!("event did not parse: {e}")),
    };
    let mut adapter = lambda_http::Adapter::from(lambda_http::service_fn(function));
    match adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
    {
        Ok(response) => match serde_json::to_value(&response) {
            Ok(v) => events::read_reply(&v),
            Err(e) => failure(&format!("response did not serialise: {e}")),
        },
        // A function error: API Gateway answers 500 (HTTP) or refuses.
        Err(e) => failure(&format!("function failed: {e:?}")),
    }
}

fn failure(message: &str) -> LambdaReply {
    tracing::error!(message, "lambda invocation failed");
    LambdaReply {
        status: 500,
        headers: Vec::new(),
        cookies: Vec::new(),
        body: br#"{"message":"Internal Server Error"}"#.to_vec(),
    }
}

fn to_response(reply: LambdaReply) -> Response {
    let mut r = Response::new(Body::from(reply.body));
    *r.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(k), HeaderValue::try_from(v)) {
            r.headers_mut().append(k, v);
        }
    }
    for c in reply.cookies {
        if let Ok(v) = HeaderValue::try_from(c) {
            r.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    r
}

/// The HTTP API: any request → payload-2.0 event → an `http_*` function.
async fn http_api(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    // API Gateway's HTTP API payload limit.
    let Ok(bytes) = axum::body::to_bytes(body, 10 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let ip = peer.ip().to_string();
    let origin = Origin {
        api_id: "local-http",
        domain: &gw.http_domain,
        stage: "$default",
        source_ip: &ip,
    };
    let event = events::http_event(&origin, &parts.method, &parts.uri, &parts.headers, &bytes);
    let ctx = &gw.ctx;
    let reply = FUNCTION
        .scope("http", invoke(event, |r| rollcall::lambda::http(ctx, r)))
        .await;
    gw.stats.count(|c| &c.http, 1);
    to_response(reply)
}

fn origin<'a>(gw: &'a Gateway, ip: &'a str) -> Origin<'a> {
    Origin {
        api_id: "local-ws",
        domain: &gw.ws_domain,
        stage: &gw.opts.stage,
        source_ip: ip,
    }
}

fn now_ms() -> i64 {
    i64::try_from(Timestamp::now().as_millis()).unwrap_or(i64::MAX)
}

/// The WebSocket API: `$connect` decides, then the socket runs.
async fn ws_api(
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
                    let event = events::ws_event(&origin(&gw, &ip), &id, connected_at, WsKind::Message { body: text.as_str() });
                    let ctx = &gw.ctx;
                    let reply = FUNCTION
                        .scope("ws_default", invoke(event, |r| rollcall::lambda::ws_default(ctx, r)))
                        .await;
                    gw.stats.count(|c| &c.ws_default, 1);
                    if reply.status >= 300 {
                        tracing::warn!(status = reply.status, "$default failed");
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

fn gone() -> Response {
    let mut r = (StatusCode::GONE, r#"{"message":"Gone"}"#).into_response();
    r.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("GoneException"),
    );
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn manage_unstaged(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    manage_one(gw, id, req).await
}

async fn manage(
    State(gw): State<Arc<Gateway>>,
    Path((_stage, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    manage_one(gw, id, req).await
}

/// The management API (`@connections`), as the SDK pusher calls it.
async fn manage_one(gw: Arc<Gateway>, id: String, req: Request) -> Response {
    let method = req.method().clone();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 128 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    if method == http::Method::GET {
        gw.stats.count(|c| &c.gets, 1);
    }
    let conns = gw.conns();
    let Some(conn) = conns.get(&id) else {
        match method {
            http::Method::POST => gw.stats.count(|c| &c.posts_gone, 1),
            http::Method::DELETE => gw.stats.count(|c| &c.deletes_gone, 1),
            _ => {}
        }
        return gone();
    };
    match method {
        http::Method::POST => {
            let text = String::from_utf8_lossy(&body).into_owned();
            let bytes = u64::try_from(text.len()).unwrap_or(u64::MAX);
            if conn.tx.send(Out::Text(text)).is_err() {
                gw.stats.count(|c| &c.posts_gone, 1);
                return gone();
            }
            gw.stats.count(|c| &c.posts, 1);
            gw.stats.count(|c| &c.post_bytes, bytes);
            StatusCode::OK.into_response()
        }
        http::Method::DELETE => {
            let _ = conn.tx.send(Out::Close);
            gw.stats.count(|c| &c.deletes, 1);
            StatusCode::NO_CONTENT.into_response()
        }
        http::Method::GET => {
            let at =
                Timestamp::from_millis(u64::try_from(conn.connected_at).unwrap_or(0)).to_rfc3339();
            let body = serde_json::json!({
                "connectedAt": at,
                "identity": { "sourceIp": conn.source_ip, "userAgent": "" },
                "lastActiveAt": at,
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// Invokes the `sweep` function on a schedule with an EventBridge event.
async fn schedule_sweep(gw: Arc<Gateway>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let event = serde_json::json!({
            "version": "0",
            "id": ConnectionId::generate().as_str(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "000000000000",
            "time": Timestamp::now().to_rfc3339(),
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:000000000000:rule/rollcall-sweep"],
            "detail": {}
        });
        let run = rollcall::lambda::sweep(&gw.ctx, LambdaEvent::new(event, Context::default()));
        if let Err(e) = FUNCTION.scope("sweep", run).await {
            tracing::error!(error = %e, "scheduled sweep failed");
        }
        gw.stats.count(|c| &c.sweep, 1);
    }
}
