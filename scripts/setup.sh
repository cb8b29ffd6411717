#!/usr/bin/env bash
# Installs what rollcall needs on a Debian/Ubuntu machine, skipping whatever
# is already there. Sourced by run.sh and test.sh.
#   setup_system PACKAGE_FOR_COMMAND...   e.g. setup_system redis-server:redis-server
#   setup_rust
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Each argument is COMMAND:PACKAGE; installs PACKAGE if COMMAND is missing.
setup_system() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "rollcall: please install: ${missing[*]}" >&2
    return 1
  fi
  echo "rollcall: installing ${missing[*]} ..." >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_rust() {
  if command -v cargo >/dev/null 2>&1; then return 0; fi
  if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; return 0; fi
  setup_system curl:curl gcc:gcc
  echo "rollcall: installing Rust (rustup) ..." >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy >&2
  export PATH="$HOME/.cargo/bin:$PATH"
}
