//! [`spawn_gateway`]: the Lambda functions behind the local API Gateway
//! stand-in, on a store of the test's choosing, on free ports.

use std::sync::Arc;
use std::time::Duration;

use rollcall::context::Announcing;
use rollcall::limits::RateLimiter;
use rollcall::store::Store;
use rollcall::store::dynamodb::DynamoStore;
use rollcall_local_server::gateway::{self, EventSources, GatewayOptions, GatewayStats};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::client::{Socket, Visitor};

/// How often test sockets ping the cloud path (leases in tests are 1.5 s).
pub const PING: Duration = Duration::from_millis(300);

/// A running stand-in.
pub struct TestGateway {
    /// The HTTP API, `http://127.0.0.1:PORT`.
    pub base: String,
    /// The WebSocket API URL.
    pub ws_url: String,
    /// The functions' context.
    pub ctx: rollcall::AppContext,
    /// What the stand-in did (invocations, `@connections` calls).
    pub stats: GatewayStats,
    stop: CancellationToken,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts the stand-in on `store` (whose log no AWS service reads: the
/// handlers queue their events) with the `FAST` timings plus `extra`, its
/// queues in moto.
pub async fn spawn_gateway(
    store: Arc<dyn Store>,
    opts: GatewayOptions,
    extra: &[(&str, &str)],
) -> TestGateway {
    start(store, None, None, opts, extra).await
}

/// Starts the stand-in on a DynamoDB `store` whose presence table's stream
/// feeds the `fanout` function, as in AWS.
pub async fn spawn_gateway_on_dynamodb(
    store: DynamoStore,
    opts: GatewayOptions,
    extra: &[(&str, &str)],
) -> TestGateway {
    start(Arc::new(store.clone()), Some(store), None, opts, extra).await
}

/// Like [`spawn_gateway_on_dynamodb`], with the parts apart, for tests that
/// count what the functions call: the functions use `store` (as in AWS, one
/// that does not read the stream: a Lambda function gets its records from
/// the event source mapping), the stream mapping reads `stream` (the same
/// tables), and the functions and the queue mappings send and poll through
/// `sqs` (a client of the shared moto server, e.g. with an interceptor);
/// the rate limits count in `limiter` (as the template's: DynamoDB).
pub async fn spawn_gateway_counted(
    store: Arc<dyn Store>,
    stream: DynamoStore,
    sqs: aws_sdk_sqs::Client,
    limiter: Arc<dyn RateLimiter>,
    opts: GatewayOptions,
    extra: &[(&str, &str)],
) -> TestGateway {
    start(store, Some(stream), Some((sqs, limiter)), opts, extra).await
}

async fn start(
    store: Arc<dyn Store>,
    stream: Option<DynamoStore>,
    counted: Option<(aws_sdk_sqs::Client, Arc<dyn RateLimiter>)>,
    mut opts: GatewayOptions,
    extra: &[(&str, &str)],
) -> TestGateway {
    crate::init_tracing();
    let mut config = crate::app::config(extra);
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ws = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (http_addr, ws_addr) = (
        http.local_addr().expect("addr"),
        ws.local_addr().expect("addr"),
    );
    gateway::cli::configure(&mut config, http_addr, ws_addr, &opts.stage);
    let (sqs, limiter) = match counted {
        Some((sqs, limiter)) => (sqs, Some(limiter)),
        None => (
            crate::moto::sqs_client().expect("the stand-in's queues need moto"),
            None,
        ),
    };
    let prefix = format!("rollcall-test-{}-", crate::unique_name(""));
    let (push_url, settle_url) = gateway::esm::create_queues(&sqs, &prefix)
        .await
        .expect("create the queues in moto");
    config.push_queue_url = Some(push_url.clone());
    config.settle_queue_url = Some(settle_url.clone());
    let announcing = if stream.is_some() {
        Announcing::ByLog
    } else {
        Announcing::ByQueue
    };
    opts.sources = Some(EventSources {
        sqs: sqs.clone(),
        push_url,
        settle_url,
        stream,
        // Two, so two posters run at once (as Lambda scales).
        push_pollers: 2,
    });
    let ws_url = config.ws_url.clone().expect("ws url");
    let ctx = rollcall::lambda::context_with(
        config,
        store,
        &gateway::cli::local_sdk_config(),
        sqs,
        announcing,
    )
    .expect("context");
    let ctx = match limiter {
        Some(l) => ctx.with_limiter(l),
        None => ctx,
    };
    let stats = GatewayStats::default();
    let stop = CancellationToken::new();
    tokio::spawn(gateway::serve_with_stats(
        ctx.clone(),
        http,
        ws,
        opts,
        stats.clone(),
        stop.clone(),
    ));
    TestGateway {
        base: format!("http://{http_addr}"),
        ws_url,
        ctx,
        stats,
        stop,
    }
}

/// A `data-…` attribute of the home page's list.
pub fn page_attr(html: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("page has {name}"))
        + marker.len();
    let end = html[start..].find('"').expect("attribute ends") + start;
    html[start..end].replace("&amp;", "&")
}

impl TestGateway {
    /// Opens the WebSocket exactly as the page of `visitor` would: the URL
    /// rendered into the page, a ticket from `POST /api/ws_ticket`, the
    /// page's origin, a snapshot request, and pings.
    pub async fn socket(&self, visitor: &Visitor) -> Socket {
        let home = visitor.get("/").await;
        assert_eq!(home.status, 200, "logged in");
        let url = page_attr(&home.body, "data-ws-url");
        assert_eq!(url, self.ws_url);
        assert_eq!(page_attr(&home.body, "data-request-snapshot"), "true");
        let ticket = visitor.ws_ticket().await.expect("a ticket");
        Socket::connect_cloud(&format!("{url}?ticket={ticket}"), Some(&self.base), PING)
            .await
            .expect("socket opens")
    }
}
