//! `rollcall-server`: see the README for configuration.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rollcall_local_server::cli::run().await
}
