#!/usr/bin/env bash
# Memory per idle client connection: seedproxy binaries and PgBouncer side by side, in front of one
# PostgreSQL, each measured by bench/idle_connections.py (N clients, each idle after one query,
# the proxy warmed up first), the targets alternating in every round. One I/O thread each.
#   bench/idle_memory.sh /tmp/seedproxy-main build/proxy/seedproxy pgbouncer
# The word `pgbouncer` stands for PgBouncer in session mode (as bench/passthrough.sh runs it).
# Prints a Markdown table; the JSON of each run goes to $BENCH_DIR/idle-memory/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF2
usage: bench/idle_memory.sh TARGET...   (a seedproxy binary, or the word pgbouncer)

Environment (defaults in brackets):
  BENCH_ROUNDS [3]        rounds, each measuring every target once (the order alternates)
  BENCH_CONNECTIONS [1000] idle clients per measurement
  BENCH_DIR [.bench]      where the cluster, configurations and results go
EOF2
}
case ${1:-} in
  -h | --help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
rounds=${BENCH_ROUNDS:-3}
count=${BENCH_CONNECTIONS:-1000}
bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
out_dir=$bench_dir/idle-memory
pg_dir=$bench_dir/pg-idle
targets=("$@")
for target in "${targets[@]}"; do
  if [[ "$target" == pgbouncer ]]; then
    [[ -x /usr/sbin/pgbouncer ]] || die "PgBouncer is missing (apt-get install pgbouncer)"
  else
    [[ -x "$target" ]] || die "$target is not an executable seedproxy"
  fi
done
need_pgcluster
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
((count + 64 <= $(ulimit -n))) || die "$count connections need more open files than $(ulimit -n)"
mkdir -p "$out_dir"

pid='' pg_started=0
# shellcheck disable=SC2317  # called from the trap
cleanup() {
  trap - EXIT
  if [[ -n "$pid" ]]; then stop_pid "$pid" proxy 20 || true; fi
  if ((pg_started)); then pgcluster_stop "$pg_dir" || true; fi
}
trap cleanup EXIT
pgcluster_stop "$pg_dir" 2>/dev/null || true
pg_started=1
pg_port=$(pgcluster_start "$pg_dir" --max-connections $((count + 200)))

start_seedproxy() { # start_seedproxy BINARY PORT CONFIG: the pid in `pid`
  cat >"$3" <<JSON
{
  "listen": {"host": "127.0.0.1", "port": $2},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "limits": {"max_clients": $((count + 100))},
  "runtime": {"threads": 1},
  "log": {"level": "warning"}
}
JSON
  "$1" --config "$3" >"${3%.json}.log" 2>&1 &
  pid=$!
}

measure() { # measure ROUND INDEX TARGET: one table row
  local round=$1 index=$2 target=$3 port result
  port=$(free_port 17432)
  if [[ "$target" == pgbouncer ]]; then
    bench_pgbouncer_start "$out_dir/pgbouncer" "$port" "$pg_port" \
      "max_client_conn = $((count + 100))" "default_pool_size = $((count + 100))"
    pid=$bench_pgbouncer_pid
  else
    start_seedproxy "$target" "$port" "$out_dir/seedproxy-$index.json"
  fi
  wait_for_port "$port" "$pid" 15 || die "$target did not start"
  result=$out_dir/round$round-target$index.json
  "$PY" "$SEEDPROXY_ROOT/bench/idle_connections.py" --port "$port" --pid "$pid" --count "$count" \
    >"$result" || die "idle_connections.py failed against $target"
  stop_pid "$pid" proxy 20 || true
  pid=
  "$PY" - "$result" "$round" "$target" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {r['kib_per_connection_after_startup']} | "
      f"**{r['kib_per_connection_after_query']}** | {r['anon_kib_per_connection_after_query']} | "
      f"{r['rss_warmup_growth_kib']} |")
PY
}

echo "$count idle clients per run, one I/O thread; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | target | KiB per client after startup | after one query | anonymous, after one query | one-time growth in the warm-up, KiB |"
echo "|---:|---|---:|---:|---:|---:|"
for ((round = 1; round <= rounds; round++)); do
  order=("${!targets[@]}")
  if ((round % 2 == 0)); then
    order=()
    for ((i = ${#targets[@]} - 1; i >= 0; i--)); do order+=("$i"); done
  fi
  for index in "${order[@]}"; do measure "$round" "$index" "${targets[$index]}"; done
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
