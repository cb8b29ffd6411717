//! `rollcall-server`: see the README for configuration.

fn main() -> std::process::ExitCode {
    rollcall_local_server::cli::main()
}
