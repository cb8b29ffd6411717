#!/usr/bin/env bash
# Starts a private Docker engine (loopback-only published ports) and builds,
# from Debian's own redis-server, the `redis:5.0` image that testcontainers'
# Redis module asks for — no registry is needed. Prints `export DOCKER_HOST=…`
# on success; exits non-zero (printing why on stderr) if no engine can run.
#
# Usage: eval "$(scripts/docker-engine.sh start DIR)"   |   scripts/docker-engine.sh stop DIR
set -euo pipefail

cmd=${1:?start|stop}
dir=${2:?state directory}
sock="$dir/docker.sock"

stop() {
  if [ -f "$dir/dockerd.pid" ]; then
    kill "$(cat "$dir/dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -e "$dir/dockerd.pid" ] || break; sleep 0.1; done
  fi
  ip link delete docker0 2>/dev/null || true
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

command -v dockerd >/dev/null || { echo "dockerd is not installed" >&2; exit 1; }
mkdir -p "$dir"
if ! DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1; then
  dockerd -H "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" --ip 127.0.0.1 >"$dir/dockerd.log" 2>&1 &
  for _ in $(seq 100); do
    DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
export DOCKER_HOST="unix://$sock"
docker info >/dev/null 2>&1 || { echo "the Docker engine did not start (see $dir/dockerd.log)" >&2; exit 1; }

if ! docker image inspect redis:5.0 >/dev/null 2>&1; then
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/data" "$root/tmp"
  cp "$(command -v redis-server)" "$root/bin/redis-server"
  cp "$(command -v busybox)" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  for lib in $(ldd "$(command -v redis-server)" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  tar -C "$root" -cf "$root.tar" .
  docker import \
    --change 'CMD ["/bin/redis-server","--bind","0.0.0.0","--protected-mode","no","--save","","--appendonly","no"]' \
    --change 'EXPOSE 6379' --change 'WORKDIR /data' \
    "$root.tar" redis:5.0 >/dev/null
  rm -rf "$root" "$root.tar"
fi
echo "export DOCKER_HOST=unix://$sock"
