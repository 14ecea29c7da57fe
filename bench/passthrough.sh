#!/usr/bin/env bash
# Passthrough benchmark: pgbench -S straight to PostgreSQL, through PgBouncer and through seedproxy,
# interleaved; then memory per idle connection of both proxies. Report in .bench/passthrough.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: bench/passthrough.sh [--no-build]

Environment (defaults in brackets):
  BENCH_DURATION [10]   seconds per pgbench run       BENCH_ROUNDS [3]   rounds per target and mode
  BENCH_CLIENTS  [8]    pgbench -c                    BENCH_JOBS   [2]   pgbench -j
  BENCH_SCALE    [10]   pgbench scale                 BENCH_MODES  ["simple prepared"]
  BENCH_WARMUP   [3]    seconds of discarded warm-up per target (0: none)
  BENCH_IDLE_CONNECTIONS [1000]  idle connections for the memory test (0: skip it)
  BENCH_SYSCALL_XACTS [2000] pgbench -t (per client) of the run each proxy makes under
                        strace -c -f, for system calls per transaction (0: skip it)
  SEEDPROXY_THREADS [1] seedproxy runtime.threads
  SEEDPROXY_METRICS [0] 1: seedproxy serves its metrics port (to measure what metrics cost)
  SEEDPROXY_URING_BIN []  a seedproxy built with -DSEEDPROXY_IO_URING=ON, measured as a fourth
                        target (seedproxy-uring) beside the default (epoll) build
  BENCH_DIR [.bench]    where the cluster, configurations and the report go
EOF
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

duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-8}
jobs=${BENCH_JOBS:-2}
scale=${BENCH_SCALE:-10}
modes=${BENCH_MODES-simple prepared} # set but empty: no pgbench runs, memory test only
warmup=${BENCH_WARMUP:-3}
idle_conns=${BENCH_IDLE_CONNECTIONS:-1000}
syscall_xacts=${BENCH_SYSCALL_XACTS:-2000}
proxy_threads=${SEEDPROXY_THREADS:-1}
proxy_metrics=${SEEDPROXY_METRICS:-0}

bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
pg_dir=$bench_dir/pg
bouncer_dir=$bench_dir/pgbouncer
results=$bench_dir/results
report=$bench_dir/passthrough.md
proxy_bin=${SEEDPROXY_BIN:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
pgbench=$PGBIN/pgbench
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)

if ((build)); then
  "$SEEDPROXY_ROOT/scripts/setup.sh"
  "$SEEDPROXY_ROOT/scripts/build.sh" --target seedproxy
fi
[[ -x "$proxy_bin" ]] || die "$proxy_bin is missing: run scripts/build.sh"
need_pgcluster
# Thousands of sockets: 1,000 clients plus 1,000 server connections per proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- cleanup: proxies first, then PostgreSQL -------------------------------------------------------
proxy_pid=
bouncer_pid=
strace_pid=
uring_pid=
pg_started=0
# shellcheck disable=SC2317  # called from traps
cleanup() {
  # Ignore further signals while cleaning up: timeout(1) signals the script and then its whole
  # process group, and an impatient second Ctrl-C must not leave PostgreSQL running.
  trap - EXIT
  trap '' INT TERM
  bench_stop_pgbench
  if [[ -n "$strace_pid" ]]; then stop_pid "$strace_pid" strace 5 || true; fi
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 20 || true; fi
  if [[ -n "$uring_pid" ]]; then stop_pid "$uring_pid" seedproxy-uring 20 || true; fi
  if [[ -n "$bouncer_pid" ]]; then stop_pid "$bouncer_pid" pgbouncer 20 || true; fi
  if ((pg_started)); then
    log "stopping PostgreSQL ($pg_dir)"
    pgcluster_stop "$pg_dir" || true
  fi
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted"; exit 130' INT TERM

mkdir -p "$bench_dir"
rm -rf "$results"
mkdir -p "$results"

# --- PostgreSQL -----------------------------------------------------------------------------------
log "starting PostgreSQL in $pg_dir (max_connections 2200)"
# An earlier run stopped by SIGKILL may have left it running with other settings.
pgcluster_stop "$pg_dir" 2>/dev/null || true
pg_started=1
pg_port=$(pgcluster_start "$pg_dir" --max-connections 2200 --set shared_buffers=512MB)
log "PostgreSQL on 127.0.0.1:$pg_port"

have=$("${psql[@]}" -p "$pg_port" -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'bench'")
if [[ "$have" != 1 ]]; then "${psql[@]}" -p "$pg_port" -d postgres -c "CREATE DATABASE bench"; fi
# pgbench -i commits table by table, so look at the last table it fills, not only the first.
loaded=$("${psql[@]}" -p "$pg_port" -d bench -Atc \
  "SELECT to_regclass('pgbench_branches') IS NOT NULL AND to_regclass('pgbench_accounts') IS NOT NULL")
if [[ "$loaded" == t ]] &&
  [[ "$("${psql[@]}" -p "$pg_port" -d bench -Atc "SELECT count(*) FROM pgbench_branches")" == "$scale" ]] &&
  [[ "$("${psql[@]}" -p "$pg_port" -d bench -Atc "SELECT count(*) = $scale * 100000 FROM pgbench_accounts")" == t ]]; then
  log "pgbench data at scale $scale already there"
else
  log "pgbench -i -s $scale"
  "$pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$pg_port" -U postgres bench >"$results/pgbench-init.log" 2>&1 ||
    { cat "$results/pgbench-init.log" >&2; die "pgbench -i failed"; }
fi

# --- PgBouncer (session pooling) ------------------------------------------------------------------
bouncer_port=$(free_port 16432)
log "starting PgBouncer on 127.0.0.1:$bouncer_port"
bench_pgbouncer_start "$bouncer_dir" "$bouncer_port" "$pg_port" "max_client_conn = 3000" \
  "default_pool_size = 1100" "ignore_startup_parameters = extra_float_digits"
bouncer_pid=$bench_pgbouncer_pid
wait_for_port "$bouncer_port" "$bouncer_pid" 15 ||
  { cat "$bouncer_dir/stderr.log" >&2; die "PgBouncer did not start"; }

# --- seedproxy ------------------------------------------------------------------------------------
proxy_port=$(free_port 17432)
metrics_line=
if [[ "$proxy_metrics" == 1 ]]; then
  metrics_port=$(free_port 19187)
  metrics_line="\"metrics\": {\"host\": \"127.0.0.1\", \"port\": $metrics_port},"
fi
cat >"$bench_dir/seedproxy.json" <<EOF
{
  $metrics_line
  "listen": {"host": "127.0.0.1", "port": $proxy_port},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "limits": {"max_clients": 3000},
  "runtime": {"threads": $proxy_threads, "shutdown_grace_seconds": 5},
  "log": {"level": "warning"}
}
EOF
log "starting seedproxy on 127.0.0.1:$proxy_port ($proxy_threads thread(s))"
"$proxy_bin" --config "$bench_dir/seedproxy.json" >"$bench_dir/seedproxy.log" 2>&1 &
proxy_pid=$!
wait_for_port "$proxy_port" "$proxy_pid" 15 ||
  { cat "$bench_dir/seedproxy.log" >&2; die "seedproxy did not start"; }

declare -A port_of=([direct]=$pg_port [pgbouncer]=$bouncer_port [seedproxy]=$proxy_port)
targets=(direct pgbouncer seedproxy)
uring_bin=${SEEDPROXY_URING_BIN:-}
if [[ -n "$uring_bin" ]]; then
  uring_port=$(free_port 18432)
  sed -e "s/\"port\": $proxy_port}/\"port\": $uring_port}/" "$bench_dir/seedproxy.json" >"$bench_dir/seedproxy-uring.json"
  log "starting seedproxy (io_uring build) on 127.0.0.1:$uring_port"
  "$uring_bin" --config "$bench_dir/seedproxy-uring.json" >"$bench_dir/seedproxy-uring.log" 2>&1 &
  uring_pid=$!
  wait_for_port "$uring_port" "$uring_pid" 15 ||
    { cat "$bench_dir/seedproxy-uring.log" >&2; die "seedproxy (io_uring) did not start"; }
  port_of[seedproxy-uring]=$uring_port
  targets+=(seedproxy-uring)
fi

for t in "${targets[@]}"; do
  "${psql[@]}" -p "${port_of[$t]}" -d bench -Atc "SELECT 1" >/dev/null || die "cannot query bench through $t"
done

cat >"$results/meta.env" <<EOF
seedproxy_version=$("$proxy_bin" --version 2>&1 | head -n 1)
commit=$(git -C "$SEEDPROXY_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$SEEDPROXY_ROOT" diff --quiet HEAD -- proxy config 2>/dev/null || echo "+local changes")
seedproxy_threads=$proxy_threads
seedproxy_metrics=$proxy_metrics
pgbouncer_version=$(/usr/sbin/pgbouncer --version | head -n 1)
pg_version=$("${psql[@]}" -p "$pg_port" -d bench -Atc "SELECT split_part(version(), ' on ', 1)")
scale=$scale
clients=$clients
jobs=$jobs
duration=$duration
rounds=$rounds
modes=$modes
memory_test=$((idle_conns > 0 ? 1 : 0))
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
EOF

bench_pgbench() { # bench_pgbench TARGET MODE SECONDS [LOG_PREFIX]
  local args=(-n -S -M "$2" -c "$clients" -j "$jobs" -T "$3" -h 127.0.0.1 -p "${port_of[$1]}" -U postgres)
  if (($# > 3)); then args+=(-l --log-prefix "$4"); fi
  "$pgbench" "${args[@]}" bench
}
declare -A bench_pid=([direct]=0 [pgbouncer]=$bouncer_pid [seedproxy]=$proxy_pid)
if [[ -n "$uring_pid" ]]; then bench_pid[seedproxy-uring]=$uring_pid; fi
bench_results=$results
echo "clk_tck=$(getconf CLK_TCK)" >>"$results/meta.env"

bench_warm_up "$warmup" simple "${targets[@]}"
bench_rounds "$duration" "$rounds" "$modes" "${targets[@]}"

# --- system calls per transaction -----------------------------------------------------------------
# A fixed number of transactions (-t, not -T: strace slows the proxy, the count must not depend on
# it) with strace -c -f attached to each proxy process, all of its threads.
bench_syscalls() { # bench_syscalls TARGET MODE
  local t=$1 mode=$2 out=$results/strace-$1-$2 deadline
  strace -c -f -p "${bench_pid[$t]}" -o "$out.txt" 2>"$out.err" &
  strace_pid=$!
  deadline=$((SECONDS + 10))
  until grep -q attached "$out.err" 2>/dev/null; do
    ((SECONDS < deadline)) || die "strace did not attach to $t"
    sleep 0.1
  done
  "$pgbench" -n -S -M "$mode" -c "$clients" -j "$jobs" -t "$syscall_xacts" -h 127.0.0.1 \
    -p "${port_of[$t]}" -U postgres bench >"$out.out" 2>&1 || warn "pgbench under strace against $t failed"
  kill -INT "$strace_pid"
  wait "$strace_pid" || true
  strace_pid=
  local xacts
  xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*$/\1/p' "$out.out")
  printf '%s\t%s\t%s\n' "$t" "$mode" "${xacts:-0}" >>"$results/syscalls.tsv"
  log "system calls: $t ($mode) $(awk '$NF == "total" { print $4 }' "$out.txt") for ${xacts:-0} transactions"
}
if ((syscall_xacts > 0)) && command -v strace >/dev/null; then
  for mode in $modes; do
    for t in "${targets[@]:1}"; do bench_syscalls "$t" "$mode"; done
  done
elif ((syscall_xacts > 0)); then
  warn "strace is not installed: no system call counts"
fi

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/meta.env"
if [[ "$proxy_metrics" == 1 ]]; then
  # Evidence that the counters moved during the runs.
  "$PY" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
    "http://127.0.0.1:$metrics_port/metrics" >"$results/metrics.txt" || warn "could not scrape /metrics"
  log "metrics: $(grep -E '^seedproxy_statements_total' "$results/metrics.txt" | tr '\n' ' ')"
fi

# --- memory per idle connection -------------------------------------------------------------------
if ((idle_conns > 0)); then
  # seedproxy first: PgBouncer keeps its server connections after its clients leave, and 1,000
  # extra backends would slow down the next 1,000 connection startups.
  for proxy in seedproxy pgbouncer; do
    if [[ $proxy == pgbouncer ]]; then pid=$bouncer_pid; else pid=$proxy_pid; fi
    log "memory: $idle_conns idle connections through $proxy (pid $pid)"
    if "$PY" "$SEEDPROXY_ROOT/bench/idle_connections.py" --port "${port_of[$proxy]}" --pid "$pid" \
      --count "$idle_conns" --database bench --upstream-port "$pg_port" >"$results/memory-$proxy.json" 2>"$results/memory-$proxy.err"; then
      log "memory: $proxy $(cat "$results/memory-$proxy.json")"
    else
      warn "memory test through $proxy failed: $(tail -n 3 "$results/memory-$proxy.err")"
      rm -f "$results/memory-$proxy.json"
    fi
  done
fi

"$PY" "$SEEDPROXY_ROOT/bench/passthrough_report.py" "$results" >"$report"
echo
cat "$report"
echo
log "report saved to ${report#"$SEEDPROXY_ROOT"/}"
