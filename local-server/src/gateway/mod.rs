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
//! * The event source mappings ([`esm`]): the presence table's stream
//!   (the emulator's DynamoDB Streams) into `fanout`, the push and settle
//!   queues (the emulator's SQS) into `push` and `settle`.
//! * [`GatewayStats`]: what it did, counted as AWS bills it (invocations per
//!   function, messages posted, connection time), for cost accounting; and
//!   [`current_function`], which function the running task serves, so a test
//!   can attribute each AWS call to the function that made it.

pub mod cli;
pub mod esm;
pub mod events;
mod management;
mod stats;
mod websocket;

pub use esm::EventSources;
use management::{manage, manage_unstaged};
use stats::FUNCTION;
pub use stats::{GatewayStats, StatsSnapshot, current_function};
use websocket::ws_api;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{HeaderValue, StatusCode};
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent, Service as _};
use rollcall::AppContext;
use rollcall::domain::{ConnectionId, Timestamp};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use events::{LambdaReply, Origin};

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
    /// The queues and stream the event source mappings read (the fan-out
    /// behind `fanout`, `push` and `settle`); `None` runs no fan-out.
    pub sources: Option<EventSources>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            stage: "local".into(),
            idle_timeout: Duration::from_secs(600),
            lose_disconnects: false,
            sweep_every: Some(Duration::from_secs(60)),
            sources: None,
        }
    }
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
    if let Some(sources) = &gw.opts.sources {
        esm::start(&gw, sources, &shutdown).await;
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
