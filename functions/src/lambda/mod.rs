//! `lambda_http` adapters: the Lambda functions' side of the shared handlers
//! (feature `lambda`). Each function's `main` in `src/bin/` builds the
//! context once with [`context_from_env`] and serves one of these.
//!
//! `lambda_http` is built with only `apigw_http` and `apigw_websockets`:
//! with its REST feature on, a WebSocket `$connect` event carrying a
//! top-level `httpMethod` parses as a REST request and loses its
//! `connectionId`. The fixtures in `functions/tests/fixtures/` pin this down.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, LambdaEvent, Request, RequestExt, Response};

use crate::config::{Config, StoreChoice};
use crate::context::{Announcing, AppContext};
use crate::domain::ClientAddr;
use crate::domain::{ConnectionId, Timestamp};
use crate::handlers::{self, respond::Format, ws};
use crate::push::CloseReason;
use crate::push::apigw::ApiGwPusher;
use crate::queue::Queues;
use crate::queue::sqs::SqsQueues;
use crate::store::Store;
use crate::store::dynamodb::DynamoStore;

/// Builds the context from the environment: DynamoDB (default) or Redis,
/// and the API Gateway pusher for `ROLLCALL_APIGW_ENDPOINT`.
pub async fn context_from_env() -> Result<AppContext, Error> {
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store: Arc<dyn Store> = match &config.store {
        StoreChoice::Auto | StoreChoice::DynamoDb => Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.tables.clone(),
        )),
        StoreChoice::Memory => {
            return Err("ROLLCALL_STORE=memory cannot be used by the Lambda functions".into());
        }
        other => crate::store::open(other, &config).await?,
    };
    let choice = match &config.store {
        StoreChoice::Auto => StoreChoice::DynamoDb,
        other => other.clone(),
    };
    let limiter = crate::limits::open(&choice, &config).await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let announcing = match choice {
        StoreChoice::DynamoDb => Announcing::ByLog,
        _ => Announcing::ByQueue,
    };
    Ok(context_with(config, store, &sdk, sqs, announcing)?.with_limiter(limiter))
}

/// The context for `config` over `store`, pushing through the endpoint in
/// `config.apigw_endpoint` and queueing to `config.push_queue_url` and
/// `config.settle_queue_url` through `sqs`, with credentials from `sdk`.
/// `announcing`: [`Announcing::ByLog`] on DynamoDB, whose presence table's
/// stream feeds the `fanout` function; [`Announcing::ByQueue`] on Redis,
/// whose log no AWS service reads, so handlers queue their events.
pub fn context_with(
    config: Config,
    store: Arc<dyn Store>,
    sdk: &aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
    announcing: Announcing,
) -> Result<AppContext, Error> {
    let endpoint = config
        .apigw_endpoint
        .clone()
        .ok_or("ROLLCALL_APIGW_ENDPOINT must name the WebSocket API's management endpoint")?;
    let (Some(push_url), Some(settle_url)) = (
        config.push_queue_url.clone(),
        config.settle_queue_url.clone(),
    ) else {
        return Err(
            "ROLLCALL_PUSH_QUEUE_URL and ROLLCALL_SETTLE_QUEUE_URL must name the queues".into(),
        );
    };
    let queues: Arc<dyn Queues> = Arc::new(SqsQueues::new(sqs, push_url, settle_url));
    let client = ApiGwPusher::client_for(sdk, &endpoint);
    let pusher = ApiGwPusher::new(client, store.clone(), config.push_concurrency, config.lease);
    let pusher = match announcing {
        Announcing::ByQueue => pusher.announcing_through(queues.clone()),
        Announcing::ByLog => pusher,
    };
    Ok(AppContext::new(store, Arc::new(pusher), config).with_queues(queues, announcing))
}

/// JSON logs (honouring `AWS_LAMBDA_LOG_FORMAT`/`AWS_LAMBDA_LOG_LEVEL`).
pub fn init_tracing() {
    lambda_http::tracing::init_default_subscriber();
}

/// Any HTTP API route: pages, forms, the JSON API (`http_*` functions).
/// The client address the handlers limit by is API Gateway's
/// `requestContext.http.sourceIp`.
pub async fn http(ctx: &AppContext, req: Request) -> Result<Response<Body>, Error> {
    let client = source_ip(&req);
    let (mut parts, body) = req.into_parts();
    if let Some(addr) = client {
        parts.extensions.insert(addr);
    }
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let response = handlers::route(ctx, http::Request::from_parts(parts, bytes)).await;
    Ok(response.map(Body::Text))
}

/// The client's address as API Gateway saw it (HTTP API payload 2.0, or a
/// WebSocket event's `identity.sourceIp`).
pub fn source_ip(req: &Request) -> Option<ClientAddr> {
    let ip = match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(rc) => rc.http.source_ip.clone(),
        RequestContext::WebSocket(rc) => rc.identity.source_ip.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }?;
    ClientAddr::parse(&ip).ok()
}

/// The WebSocket request context of an API Gateway WebSocket event.
fn websocket(req: &Request) -> Result<ConnectionId, Error> {
    let RequestContext::WebSocket(rc) = req.request_context() else {
        return Err("not an API Gateway WebSocket event".into());
    };
    let id = rc
        .connection_id
        .as_deref()
        .ok_or("the event has no connectionId")?;
    ConnectionId::parse(id).map_err(|e| format!("{e}: {id:?}").into())
}

fn status(code: http::StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::Empty);
    *r.status_mut() = code;
    r
}

/// `$connect`: authorize (cookie, `?ticket=` or `?token=`, Origin, upgrade rate limits
/// by `sourceIp` and session), register (within the per-user cap),
/// announce. A non-2xx answer makes API Gateway refuse the upgrade with
/// that status (401, 403, 429).
pub async fn ws_connect(ctx: &AppContext, req: Request) -> Result<Response<Body>, Error> {
    let id = websocket(&req)?;
    let query = req.query_string_parameters_ref().map(|q| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for name in ["ticket", "token"] {
            if let Some(v) = q.first(name) {
                out.append_pair(name, v);
            }
        }
        out.finish()
    });
    let who = match ws::authorize(ctx, req.headers(), query.as_deref(), source_ip(&req)).await {
        Ok(who) => who,
        Err(e) => return Ok(e.into_response(Format::Json).map(Body::Text)),
    };
    match ws::connect(ctx, &id, &who).await {
        Ok(_) => Ok(status(http::StatusCode::OK)),
        Err(e) => Ok(e.into_response(Format::Json).map(Body::Text)),
    }
}

/// `$disconnect`: unregister, announce offline after the last connection.
pub async fn ws_disconnect(ctx: &AppContext, req: Request) -> Result<Response<Body>, Error> {
    let id = websocket(&req)?;
    ws::disconnect(ctx, &id).await?;
    Ok(status(http::StatusCode::OK))
}

/// `$default`: a client message, counted per connection against
/// `ROLLCALL_WS_MESSAGE_RATE` by this instance (over it, the connection is
/// deleted). Replies
/// go back through `PostToConnection`
/// (API Gateway cannot answer from `$connect`, so the page asks for its
/// snapshot here, right after connecting).
pub async fn ws_default(ctx: &AppContext, req: Request) -> Result<Response<Body>, Error> {
    let id = websocket(&req)?;
    let text = match req.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let connected_at = match req.request_context() {
        RequestContext::WebSocket(rc) => u64::try_from(rc.connected_at).unwrap_or(0),
        _ => 0,
    };
    let lease = ws::Lease::KeptByPings {
        connected_at: Timestamp::from_millis(connected_at),
    };
    if ws::count_message(ctx, &id).is_err() {
        // Over ROLLCALL_WS_MESSAGE_RATE: the connection goes (API Gateway
        // has no close codes); the page reconnects with backoff.
        tracing::info!(conn = %id, "closing a connection over its message rate");
        ctx.messages.forget(&id);
        ctx.pusher
            .close(std::slice::from_ref(&id), CloseReason::TooManyMessages)
            .await?;
        return Ok(status(http::StatusCode::OK));
    }
    match ws::default(ctx, &id, &text, lease).await? {
        ws::Reply::Nothing => {}
        ws::Reply::Send(m) => {
            ctx.pusher.send(&id, &m.to_json()).await?;
        }
        ws::Reply::Snapshot { since } => {
            for message in ws::snapshot(ctx, since).await? {
                if !ctx.pusher.send(&id, &message.to_json()).await? {
                    break;
                }
            }
        }
        ws::Reply::Close => {
            ctx.pusher
                .close(std::slice::from_ref(&id), CloseReason::Expired)
                .await?
        }
    }
    Ok(status(http::StatusCode::OK))
}

/// The scheduled sweep (EventBridge): settles grace periods whose message
/// was lost, removes expired connections.
pub async fn sweep(
    ctx: &AppContext,
    _event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Error> {
    let swept = handlers::sweep::sweep(ctx, Timestamp::now()).await?;
    Ok(serde_json::json!({
        "removed": swept.removed,
        "settled": swept.settled,
        "failed": swept.failed,
    }))
}

mod queues;
pub use queues::{fanout, push, settle};
