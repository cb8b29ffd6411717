#!/usr/bin/env bash
# The README's benchmarks, on release builds: fan-out to 1,000 and 10,000
# observer sockets (memory store; Redis; two nodes on one Redis), the user
# base (1,000 / 10,000 / 100,000 registered users), churn within the grace
# period, churn through a Redis SIGKILL (recovery time, events lost), and
# the cloud path (the Lambda functions behind the API Gateway
# stand-in, with moto). Prints Markdown tables. With arguments, runs only
# that one: e.g. `bash scripts/bench.sh users --registered 1000,100000`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
setup_system redis-server:redis-server gcc:gcc pkg-config:pkg-config python3:python3
setup_rust
if [ ! -x .venv/bin/moto_server ]; then
  python3 -m venv .venv && .venv/bin/pip install -q --disable-pip-version-check 'moto[server]>=5.2,<6'
fi
export ROLLCALL_MOTO_SERVER="$PWD/.venv/bin/moto_server"
# Each socket holds a descriptor in the bench and one in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -p rollcall-tests --bin rollcall-node --bin rollcall-bench
bench="${CARGO_TARGET_DIR:-target}/release/rollcall-bench"
if [ $# -gt 0 ]; then exec "$bench" "$@"; fi
"$bench" fanout
"$bench" users
"$bench" churn
"$bench" churn --kill-redis
"$bench" cloud
