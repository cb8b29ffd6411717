//! Fan-out latency and idle memory per socket of the local server
//! (`bash scripts/bench.sh`; see `rollcall_tests::bench`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rollcall_tests::bench::run().await
}
