#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine and runs rollcall's whole test suite:
# formatting, lints, unit tests, the store conformance suite on memory and a
# real Redis, end-to-end and multi-process tests, headless Chromium, and the
# testcontainers path on a private Docker engine when one can be started.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

setup_system redis-server:redis-server gcc:gcc pkg-config:pkg-config \
  chromium:chromium chromedriver:chromium-driver busybox:busybox-static
setup_rust

# The browser test must run wherever Chromium could be installed.
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  export ROLLCALL_REQUIRE_BROWSER=1
fi

# A private Docker engine for the testcontainers path, if this machine can
# run one (root, or a user allowed to; no registry needed).
docker_dir="${TMPDIR:-/tmp}/rollcall-docker-$(id -u)"
if [ "$(id -u)" = 0 ] && setup_system dockerd:docker.io 2>/dev/null \
   && out=$(scripts/docker-engine.sh start "$docker_dir" 2>"$docker_dir.err"); then
  eval "$out"
  export ROLLCALL_REQUIRE_DOCKER=1
  trap 'scripts/docker-engine.sh stop "$docker_dir"' EXIT
  echo "rollcall: Docker engine up ($DOCKER_HOST): testcontainers path enabled" >&2
else
  echo "rollcall: no Docker engine here ($(cat "$docker_dir.err" 2>/dev/null || echo 'not root')); testcontainers path will be skipped" >&2
fi

# moto, the DynamoDB emulator the DynamoDB store's conformance suite runs
# against, in a private virtualenv at .venv (git-ignored).
setup_system python3:python3
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  # Debian ships venv's pip bootstrap separately; "ensurepip" is no command,
  # so this always installs the package.
  setup_system ensurepip:python3-venv
fi
if [ ! -x .venv/bin/pip ]; then
  python3 -m venv --clear .venv
fi
.venv/bin/pip install -q --disable-pip-version-check 'moto[server]>=5.2,<6'
export ROLLCALL_MOTO_SERVER="$PWD/.venv/bin/moto_server" ROLLCALL_REQUIRE_MOTO=1

# The AWS template, offline: cfn-lint, checkov, sam validate --lint, and
# sam build of every function for arm64 (pinned tools in private virtualenvs
# under .venv/, a Lambda build cache outside the work tree; infra/README.md).
bash infra/check.sh

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --workspace
