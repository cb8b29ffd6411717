//! `rollcall-gateway`: the Lambda functions behind a local API Gateway
//! stand-in (HTTP API, WebSocket API, `@connections`). See the README.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rollcall_local_server::gateway::cli::run().await
}
