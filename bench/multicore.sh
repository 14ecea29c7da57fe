#!/usr/bin/env bash
# Multi-core scaling: pgbench -S through seedproxy with 1, 2, ... I/O threads, many clients, so the
# proxy (not PostgreSQL) is what limits throughput; interleaved rounds, TPS and proxy CPU per
# transaction for each thread count, as ratios to 1 thread. Report in .bench/multicore.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

usage() {
  cat <<EOF2
usage: bench/multicore.sh [--no-build]

Environment (defaults in brackets):
  BENCH_THREADS ["1 2"]  seedproxy runtime.threads to compare   BENCH_ROUNDS [3]
  BENCH_CLIENTS [32]     pgbench -c                               BENCH_JOBS [2]
  BENCH_DURATION [10]    seconds per run                          BENCH_MODE [prepared]
  BENCH_PROXY_CPUS []    taskset CPU list for seedproxy (e.g. "0" or "0,1"): a CPU-limited proxy
  BENCH_DIR [.bench]
EOF2
}
build=1
while (($#)); do
  case $1 in
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
thread_counts=${BENCH_THREADS:-1 2}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-32}
jobs=${BENCH_JOBS:-2}
duration=${BENCH_DURATION:-10}
mode=${BENCH_MODE:-prepared}
proxy_cpus=${BENCH_PROXY_CPUS:-}
bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
pg_dir=$bench_dir/pg
results=$bench_dir/multicore
proxy_bin=${SEEDPROXY_BIN:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
pgbench=$PGBIN/pgbench
if ((build)); then
  "$SEEDPROXY_ROOT/scripts/setup.sh"
  "$SEEDPROXY_ROOT/scripts/build.sh" --target seedproxy
fi
[[ -x "$proxy_bin" ]] || die "$proxy_bin is missing: run scripts/build.sh"
need_pgcluster

declare -A proxy_pid=() proxy_port=()
pg_started=0
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT
  trap '' INT TERM
  local n
  for n in "${!proxy_pid[@]}"; do stop_pid "${proxy_pid[$n]}" "seedproxy ($n threads)" 20 || true; done
  if ((pg_started)); then pgcluster_stop "$pg_dir" || true; fi
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted"; exit 130' INT TERM
rm -rf "$results"
mkdir -p "$results"

pgcluster_stop "$pg_dir" 2>/dev/null || true
pg_started=1
pg_port=$(pgcluster_start "$pg_dir" --max-connections 400 --set shared_buffers=512MB)
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -p "$pg_port")
if [[ "$("${psql[@]}" -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'bench'")" != 1 ]]; then
  "${psql[@]}" -d postgres -c "CREATE DATABASE bench"
fi
if [[ "$("${psql[@]}" -d bench -Atc "SELECT to_regclass('pgbench_accounts') IS NOT NULL")" != t ]]; then
  "$pgbench" -i -q -s 10 -h 127.0.0.1 -p "$pg_port" -U postgres bench >"$results/init.log" 2>&1
fi

for n in $thread_counts; do
  port=$(free_port $((17500 + n)))
  cat >"$results/seedproxy-$n.json" <<EOF2
{"listen": {"host": "127.0.0.1", "port": $port}, "upstream": {"host": "127.0.0.1", "port": $pg_port},
 "limits": {"max_clients": 3000}, "runtime": {"threads": $n}, "log": {"level": "warning"}}
EOF2
  cmd=("$proxy_bin" --config "$results/seedproxy-$n.json")
  if [[ -n "$proxy_cpus" ]]; then cmd=(taskset -c "$proxy_cpus" "${cmd[@]}"); fi
  "${cmd[@]}" >"$results/seedproxy-$n.log" 2>&1 &
  proxy_pid[$n]=$!
  proxy_port[$n]=$port
  wait_for_port "$port" "${proxy_pid[$n]}" 15 || die "seedproxy ($n threads) did not start"
done

echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)" >"$results/meta.env"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
for ((r = 1; r <= rounds; r++)); do
  for n in $thread_counts; do
    before=$(ticks "${proxy_pid[$n]}")
    "$pgbench" -n -S -M "$mode" -c "$clients" -j "$jobs" -T "$duration" -h 127.0.0.1 \
      -p "${proxy_port[$n]}" -U postgres bench >"$results/run-$n-$r.out" 2>&1 || warn "pgbench ($n threads) failed"
    after=$(ticks "${proxy_pid[$n]}")
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$results/run-$n-$r.out")
    xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*$/\1/p' "$results/run-$n-$r.out")
    printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$r" "${tps:-0}" "${xacts:-0}" "$((after - before))" >>"$results/runs.tsv"
    log "round $r: $n thread(s) ${tps:-failed} tps"
  done
done
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/meta.env"

"$PY" - "$results" "$(getconf CLK_TCK)" "$mode" "$clients" "$proxy_cpus" >"$bench_dir/multicore.md" <<'PY'
import statistics, sys
results, clk, mode, clients, cpus = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
meta = dict(l.rstrip("\n").split("=", 1) for l in open(f"{results}/meta.env"))
runs = {}
for line in open(f"{results}/runs.tsv"):
    n, r, tps, xacts, ticks = line.split()
    runs.setdefault(int(n), []).append((float(tps), int(xacts), int(ticks)))
print("# Multi-core scaling")
print()
print(f"- `pgbench -S -M {mode} -c {clients}` through seedproxy; proxy CPUs: {cpus or 'any'}; "
      f"load average {meta['load_start']} at the start, {meta['load_end']} at the end")
print()
print("| I/O threads | TPS (median) | TPS / 1 thread | proxy CPU µs per transaction | TPS per round |")
print("|---:|---:|---:|---:|---|")
base = statistics.median(t for t, _, _ in runs[min(runs)])
for n in sorted(runs):
    tps = statistics.median(t for t, _, _ in runs[n])
    x = sum(x for _, x, _ in runs[n])
    cpu = sum(k for _, _, k in runs[n]) / clk / x * 1e6 if x else float("nan")
    print(f"| {n} | {tps:.0f} | {tps / base:.2f}× | {cpu:.1f} | {' / '.join(f'{t:.0f}' for t, _, _ in runs[n])} |")
PY
cat "$bench_dir/multicore.md"
