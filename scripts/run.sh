#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine and runs the rollcall local server on
# http://127.0.0.1:8000/ with its own private Redis (a testcontainers
# container if Docker is reachable, else a redis-server child process).
# Any ROLLCALL_* variable (see README) is passed through.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
setup_system redis-server:redis-server gcc:gcc pkg-config:pkg-config
setup_rust
exec cargo run --release --locked -p rollcall-local-server --bin rollcall-server
