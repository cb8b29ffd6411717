#!/usr/bin/env bash
# Where a fan-out's time goes: runs `rollcall-bench fanout` (memory store,
# 10,000 observers by default) on a release build with frame pointers and
# line tables, samples every CPU with `perf record` while events fan out,
# then prints the share of the samples per process and object (kernel or
# user space) and the heaviest call paths. The README's "Where the time
# goes" comes from this. Needs perf (Debian: linux-perf) and root or
# kernel.perf_event_paranoid <= 0. Environment: OBSERVERS (10000), ROUNDS
# (100: long enough to outlast the sampling at 10,000), SAMPLE_SECS (15).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
setup_system redis-server:redis-server gcc:gcc pkg-config:pkg-config perf:linux-perf
setup_rust
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
observers="${OBSERVERS:-10000}"
rounds="${ROUNDS:-100}"
seconds="${SAMPLE_SECS:-15}"
target="${PROFILE_TARGET_DIR:-target/profile}"
CARGO_TARGET_DIR="$target" CARGO_PROFILE_RELEASE_STRIP=false \
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only RUSTFLAGS="-C force-frame-pointers=yes" \
  cargo build --release --locked -p rollcall-tests --bin rollcall-node --bin rollcall-bench
out="$(mktemp -d)"
"$target/release/rollcall-bench" fanout --observers "$observers" --rounds "$rounds" --scenarios memory \
  >"$out/bench.txt" 2>&1 &
bench=$!
# Past opening the sockets (a few seconds), into the rounds.
sleep 10
node="$(pgrep -d, -x rollcall-node)"
# Samples carry thread ids: name each thread by its process.
{ for t in /proc/"$bench"/task/*; do echo "${t##*/} rollcall-bench"; done
  for p in ${node//,/ }; do for t in /proc/"$p"/task/*; do echo "${t##*/} rollcall-node"; done; done; } >"$out/threads"
perf record -e cpu-clock -F 2000 -a -g -o "$out/perf.data" -- sleep "$seconds" 2>/dev/null
wait "$bench"
grep '^|' "$out/bench.txt"
echo
echo "## Share of all samples ($observers observers, $seconds s, both CPUs), by process and object"
perf report -i "$out/perf.data" --no-children --sort pid,dso --stdio -g none 2>/dev/null |
  awk -v threads="$out/threads" '
    BEGIN { while ((getline l < threads) > 0) { split(l, f, " "); who[f[1]] = f[2] } }
    /^ *[0-9.]+%/ { split($2, t, ":"); p = (t[1] in who) ? who[t[1]] : "other"; share[p " " $3] += $1 }
    END { for (k in share) if (share[k] >= 0.1) printf "%6.2f%%  %s\n", share[k], k }' | sort -rn
echo
# The paths that matter, callees included, summed over each process's
# threads (the same share of all samples; perf's own --tid filter is not
# relied on: it keeps kernel frames of other threads).
echo "## Where it goes: whole paths, callees included"
perf report -i "$out/perf.data" --children --sort pid,sym --stdio -g none 2>/dev/null |
  awk -v threads="$out/threads" '
    BEGIN {
      while ((getline l < threads) > 0) { split(l, f, " "); who[f[1]] = f[2] }
      n = split("tokio::runtime::scheduler::multi_thread::worker::run " \
        "rollcall_local_server::ws::socket::run::{{closure}} " \
        "rollcall_local_server::ws::frames::write_all_vectored::{{closure}} " \
        "do_writev net_rx_action tcp_v4_rcv rollcall_local_server::hub::Hub::fan_out " \
        "__x64_sys_recvfrom tcp_recvmsg do_epoll_wait", want, " ")
      for (k = 1; k <= n; k++) wanted[want[k]] = k
    }
    /^ *[0-9.]+%/ && ($5 in wanted) {
      split($3, t, ":"); if (t[1] in who) share[who[t[1]] "  " $5] += $1
    }
    END { for (k in share) if (share[k] >= 0.5) printf "%6.2f%%  %s\n", share[k], k }' |
  sort -k2,2 -k1,1rn
echo
echo "perf data: $out/perf.data (perf report -i it)"
