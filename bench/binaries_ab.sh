#!/usr/bin/env bash
# Two seedproxy binaries side by side (say, before and after a change to the hot path), plain TCP,
# in front of one PostgreSQL, pgbench -S alternating between them in every round so that whatever
# else the machine does weighs on both alike. Needs the cluster and data that bench/passthrough.sh
# or bench/tls.sh leave in $BENCH_DIR.
#   SEEDPROXY_BIN_A=/tmp/seedproxy-main SEEDPROXY_BIN_B=build/proxy/seedproxy bench/binaries_ab.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-8}
jobs=${BENCH_JOBS:-2}
bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
pg_dir=$bench_dir/pg
declare -A bin_of=([a]=${SEEDPROXY_BIN_A:?set SEEDPROXY_BIN_A} [b]=${SEEDPROXY_BIN_B:-$SEEDPROXY_ROOT/build/proxy/seedproxy})
for name in a b; do [[ -x "${bin_of[$name]}" ]] || die "${bin_of[$name]} is missing"; done
[[ -d "$pg_dir" ]] || die "$pg_dir is missing: run bench/passthrough.sh or bench/tls.sh with BENCH_DIR=$bench_dir first"
need_pgcluster

declare -A pid_of=() port_of=()
# shellcheck disable=SC2317  # called from the trap
cleanup() {
  trap - EXIT
  for name in "${!pid_of[@]}"; do stop_pid "${pid_of[$name]}" "seedproxy ($name)" 20 || true; done
  pgcluster_stop "$pg_dir" || true
}
trap cleanup EXIT
pgcluster_stop "$pg_dir" 2>/dev/null || true
pg_port=$(pgcluster_start "$pg_dir" --max-connections 300 --set shared_buffers=256MB)

first_port=37432
for name in a b; do
  port_of[$name]=$(free_port "$first_port")
  first_port=$((port_of[$name] + 1))
  cat >"$bench_dir/seedproxy-ab-$name.json" <<JSON
{
  "listen": {"host": "127.0.0.1", "port": ${port_of[$name]}},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "limits": {"max_clients": 3000},
  "runtime": {"threads": 1},
  "log": {"level": "warning"}
}
JSON
  "${bin_of[$name]}" --config "$bench_dir/seedproxy-ab-$name.json" >"$bench_dir/seedproxy-ab-$name.log" 2>&1 &
  pid_of[$name]=$!
  wait_for_port "${port_of[$name]}" "${pid_of[$name]}" 15 || die "seedproxy ($name) did not start"
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
echo "a = ${bin_of[a]}, b = ${bin_of[b]}; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | mode | binary | TPS | proxy CPU µs per transaction |"
echo "|---:|---|---|---:|---:|"
for ((round = 1; round <= rounds; round++)); do
  for mode in simple prepared; do
    order=(a b)
    if ((round % 2 == 0)); then order=(b a); fi
    for name in "${order[@]}"; do
      before=$(ticks "${pid_of[$name]}")
      out=$("$PGBIN/pgbench" -n -S -M "$mode" -c "$clients" -j "$jobs" -T "$duration" \
        -h 127.0.0.1 -p "${port_of[$name]}" -U postgres bench 2>&1) || die "pgbench failed: $out"
      after=$(ticks "${pid_of[$name]}")
      tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -n 1)
      done_tx=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
      cpu=$(awk -v t=$((after - before)) -v n="$done_tx" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
      printf '| %d | %s | %s | %.0f | %s |\n' "$round" "$mode" "$name" "$tps" "$cpu"
    done
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
