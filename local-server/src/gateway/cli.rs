//! The `rollcall-gateway` program: the Lambda functions behind a local API
//! Gateway stand-in (see the module above), configured like the functions
//! (`ROLLCALL_*`, `AWS_ENDPOINT_URL` for DynamoDB on an emulator).

use std::process::ExitCode;

use rollcall::config::{Config, StoreChoice};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{EventSources, GatewayOptions, serve};
use crate::dev_redis::DevRedis;

/// Credentials and region for talking to the stand-in's management API
/// (it does not check signatures).
pub fn local_sdk_config() -> aws_config::SdkConfig {
    use aws_config::{BehaviorVersion, Region};
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "local",
            "local",
            None,
            None,
            "rollcall-gateway",
        )))
        .build()
}

/// Points `config` at the stand-in listening on `http_addr` (pages) and
/// `ws_addr` (WebSocket + management), unless `ROLLCALL_WS_URL` says otherwise.
pub fn configure(
    config: &mut Config,
    http_addr: std::net::SocketAddr,
    ws_addr: std::net::SocketAddr,
    stage: &str,
) {
    if config.ws_url.is_none() {
        config.ws_url = Some(format!("ws://{ws_addr}/{stage}"));
    }
    config.apigw_endpoint = Some(format!("http://{ws_addr}/{stage}"));
    // The page lives on the HTTP API's origin, the socket on another.
    let _ = config.allowed_origins.allow(&format!("http://{http_addr}"));
}

/// Runs the stand-in; the exit code says how it ended.
pub async fn run() -> ExitCode {
    crate::cli::init_tracing();
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rollcall-gateway: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let ws_bind =
        std::env::var("ROLLCALL_GATEWAY_WS_BIND").unwrap_or_else(|_| "127.0.0.1:8001".into());
    let (http, ws) = match (
        TcpListener::bind(&config.bind).await,
        TcpListener::bind(&ws_bind).await,
    ) {
        (Ok(h), Ok(w)) => (h, w),
        (Err(e), _) => {
            eprintln!(
                "rollcall-gateway: cannot listen on {} (ROLLCALL_BIND): {e}",
                config.bind
            );
            return ExitCode::from(1);
        }
        (_, Err(e)) => {
            eprintln!(
                "rollcall-gateway: cannot listen on {ws_bind} (ROLLCALL_GATEWAY_WS_BIND): {e}"
            );
            return ExitCode::from(1);
        }
    };
    let (Ok(http_addr), Ok(ws_addr)) = (http.local_addr(), ws.local_addr()) else {
        return ExitCode::from(1);
    };
    let mut opts = GatewayOptions::default();
    configure(&mut config, http_addr, ws_addr, &opts.stage);
    // The queues live in the emulator the AWS environment names
    // (`AWS_ENDPOINT_URL`, e.g. moto), as the tables do.
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let (push_url, settle_url) = match super::esm::create_queues(&sqs, "rollcall-").await {
        Ok(urls) => urls,
        Err(e) => {
            eprintln!(
                "rollcall-gateway: cannot create the SQS queues (is AWS_ENDPOINT_URL an emulator?): {e}"
            );
            return ExitCode::from(1);
        }
    };
    config.push_queue_url = Some(push_url.clone());
    config.settle_queue_url = Some(settle_url.clone());
    let mut _dev_redis = None;
    let choice = match &config.store {
        StoreChoice::Auto => match DevRedis::start().await {
            Ok(r) => {
                let url = r.url().to_owned();
                _dev_redis = Some(r);
                StoreChoice::Redis(url)
            }
            Err(e) => {
                eprintln!("rollcall-gateway: {e}");
                return ExitCode::from(1);
            }
        },
        other => other.clone(),
    };
    let store = match rollcall::store::open(&choice, &config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rollcall-gateway: {e}");
            return ExitCode::from(1);
        }
    };
    // Rate limits count next to the store, as in the deployed functions.
    let limiter = match rollcall::limits::open(&choice, &config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rollcall-gateway: rate limiter: {e}");
            return ExitCode::from(1);
        }
    };
    opts.sources = Some(EventSources {
        sqs: sqs.clone(),
        push_url,
        settle_url,
        stream: match &choice {
            StoreChoice::DynamoDb => {
                Some(rollcall::store::dynamodb::DynamoStore::from_env(config.tables.clone()).await)
            }
            _ => None,
        },
        push_pollers: 4,
    });
    let announcing = match &choice {
        StoreChoice::DynamoDb => rollcall::context::Announcing::ByLog,
        _ => rollcall::context::Announcing::ByQueue,
    };
    let ctx =
        match rollcall::lambda::context_with(config, store, &local_sdk_config(), sqs, announcing) {
            Ok(c) => c.with_limiter(limiter),
            Err(e) => {
                eprintln!("rollcall-gateway: {e}");
                return ExitCode::from(1);
            }
        };
    println!(
        "rollcall (Lambda code path) is running: open http://{http_addr}/ — WebSocket API ws://{ws_addr}/{} (Ctrl-C to stop)",
        opts.stage
    );
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        crate::cli::shutdown_signal().await;
        trigger.cancel();
    });
    match serve(ctx, http, ws, opts, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rollcall-gateway: {e}");
            ExitCode::from(1)
        }
    }
}
