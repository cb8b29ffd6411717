//! The local server's own `main`, built in the tests package so that tests
//! can spawn real server processes (`CARGO_BIN_EXE_rollcall-node`).

fn main() -> std::process::ExitCode {
    rollcall_local_server::cli::main()
}
