#!/usr/bin/env bash
# The README's benchmark: fan-out latency to 1,000 and 10,000 observer
# sockets and idle memory per socket, on release builds of the local server
# (memory store; Redis; two nodes on one Redis). Prints a Markdown table.
# Arguments go to rollcall-bench, e.g. --observers 1000 --rounds 50
# --scenarios memory,redis,redis-2-nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
setup_system redis-server:redis-server gcc:gcc pkg-config:pkg-config
setup_rust
# Each observer holds a descriptor in the bench and one in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -p rollcall-tests --bin rollcall-node --bin rollcall-bench
exec "${CARGO_TARGET_DIR:-target}/release/rollcall-bench" "$@"
