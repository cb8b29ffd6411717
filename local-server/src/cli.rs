//! The `rollcall-server` program: configuration from the environment, a
//! store (starting a private Redis in development), the listener, and a
//! clean shutdown on Ctrl-C or SIGTERM.

use std::process::ExitCode;

use rollcall::config::{Config, StoreChoice};
use tokio::net::TcpListener;

#[cfg(feature = "dev-redis")]
use crate::dev_redis::{DevRedis, default_data_dir};
use crate::node::{Backend, Node};

/// Blocking-pool threads beyond the hashing slots (DNS look-ups, the
/// occasional blocking call of a client library).
const SPARE_BLOCKING_THREADS: usize = 8;

/// The program: reads the configuration, builds the runtime (its blocking
/// pool capped at `ROLLCALL_HASH_CONCURRENCY` + 8 threads: hashes are the
/// only steady blocking work) and runs the server on it.
pub fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rollcall: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.hash_concurrency + SPARE_BLOCKING_THREADS)
        .build();
    match runtime {
        Ok(rt) => rt.block_on(run_with(config)),
        Err(e) => {
            eprintln!("rollcall: cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs the server on the current runtime; the exit code says how it ended.
pub async fn run() -> ExitCode {
    match Config::from_env() {
        Ok(config) => run_with(config).await,
        Err(e) => {
            eprintln!("rollcall: configuration error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the server with `config`.
pub async fn run_with(config: Config) -> ExitCode {
    init_tracing();
    // Keep the private Redis (if any) alive until the server stops.
    #[cfg(feature = "dev-redis")]
    let mut _dev_redis: Option<DevRedis> = None;
    #[cfg(feature = "dev-redis")]
    let data_dir = config.data_dir.clone().unwrap_or_else(default_data_dir);
    let backend = match &config.store {
        StoreChoice::Memory => Backend::Memory,
        StoreChoice::Redis(url) => Backend::Redis { url: url.clone() },
        #[cfg(feature = "dev-redis")]
        StoreChoice::Auto => match DevRedis::start_in(&data_dir).await {
            Ok(r) => {
                tracing::info!(url = r.url(), how = ?r.how(), data = %data_dir.display(), "started a private Redis for development");
                let url = r.url().to_owned();
                _dev_redis = Some(r);
                Backend::Redis { url }
            }
            Err(e) => {
                eprintln!("rollcall: {e}");
                return ExitCode::from(1);
            }
        },
        #[cfg(not(feature = "dev-redis"))]
        StoreChoice::Auto => {
            eprintln!(
                "rollcall: this build has no development Redis (feature dev-redis); set ROLLCALL_STORE to redis://host:port, dynamodb or memory"
            );
            return ExitCode::from(2);
        }
        StoreChoice::DynamoDb => Backend::DynamoDb,
    };
    let listener = match TcpListener::bind(&config.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "rollcall: cannot listen on {} (ROLLCALL_BIND): {e}",
                config.bind
            );
            return ExitCode::from(1);
        }
    };
    let node = match Node::start(config, &backend).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("rollcall: {e}");
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("rollcall is running: open http://{addr}/ (Ctrl-C to stop)"),
        Err(_) => println!("rollcall is running"),
    }
    match crate::app::serve(listener, node, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rollcall: server error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

/// Logs to stderr: `RUST_LOG` filters (default `info`); `ROLLCALL_LOG_FORMAT=json` for JSON lines.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("ROLLCALL_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
