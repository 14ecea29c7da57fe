#!/usr/bin/env bash
# Soak: SOAK_CLIENTS clients (default 2,000) through seedproxy for SOAK_SECONDS (default 600), half
# reading a seeded attribute and half plain rows, one query per client every SOAK_INTERVAL seconds;
# one PostgreSQL restart at a third of the run and one proxy reload (SIGHUP) at half. Prints the
# proxy's RSS and open file descriptors before, every SOAK_SAMPLE seconds during, and after, then
# the load generator's query and error counts (errors per third of the run: before the restart,
# around it, after the reload). Not a CI test: see docs/benchmarks.md for a run and its numbers.
#
#   bench/soak.sh [path/to/seedproxy]
#
# Every client holds its own backend (session mode), so PostgreSQL runs with max_connections =
# clients + 100; the machine needs the memory for that many idle backends (~2 MB each here).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

proxy_bin=${1:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
[[ -x "$proxy_bin" ]] || die "no seedproxy binary at $proxy_bin; build first or pass its path"
clients=${SOAK_CLIENTS:-2000}
seconds=${SOAK_SECONDS:-600}
interval=${SOAK_INTERVAL:-1}
sample=${SOAK_SAMPLE:-30}
dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}/soak
rm -rf "$dir/work"
mkdir -p "$dir/work"
work=$dir/work
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

pg_port=$(pgcluster_start "$dir/pg" --max-connections $((clients + 100)))
proxy_pid=
load_pid=
cleanup() {
  if [[ -n "$load_pid" ]]; then stop_pid "$load_pid" soak_load 10 || true; fi
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 10; fi
  pgcluster_stop "$dir/pg"
}
trap cleanup EXIT
"$PGBIN/pgbench" -i -s 1 -q -h 127.0.0.1 -p "$pg_port" -U postgres postgres >"$work/init.log" 2>&1 ||
  { cat "$work/init.log" >&2; die "pgbench -i failed"; }

proxy_port=$(free_port 17632)
cat >"$work/seedproxy.json" <<EOF
{
  "listen": {"host": "127.0.0.1", "port": $proxy_port},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "control": {"user": "postgres"},
  "runtime": {"threads": 2, "shutdown_grace_seconds": 5},
  "limits": {"max_clients": $((clients + 500)), "max_authenticating": $((clients + 500)),
             "max_authenticating_per_address": $((clients + 500))},
  "log": {"level": "warning"},
  "seeds": [
    {"database": "postgres", "entity": "pgbench_accounts", "attribute": "risk", "type": "bigint",
     "expression": "abalance * 2 + aid", "materialize": {"policy": "never"}}
  ]
}
EOF
"$proxy_bin" --config "$work/seedproxy.json" >"$work/seedproxy.log" 2>&1 &
proxy_pid=$!
wait_for_port "$proxy_port" "$proxy_pid" 15 || { cat "$work/seedproxy.log" >&2; die "seedproxy did not start"; }

# sample LABEL: one line of the proxy's resident memory, open descriptors and PostgreSQL backends.
sample() {
  local rss fds backends
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$proxy_pid/status")
  fds=$(find "/proc/$proxy_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  backends=$("$PGBIN/psql" -X -Atq -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres \
    -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>/dev/null || echo '?')
  printf '%-8s t=%4ds  rss=%6d KiB  fds=%5d  backends=%s  load=%s\n' "$1" "$((SECONDS - began))" \
    "$rss" "$fds" "$backends" "$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/samples.txt"
}

began=$SECONDS
sample before
"$PY" "$SEEDPROXY_ROOT/bench/soak_load.py" "$proxy_port" "$clients" "$seconds" "$interval" \
  >"$work/load.json" 2>"$work/load.err" &
load_pid=$!
restarted=0 reloaded=0
while kill -0 "$load_pid" 2>/dev/null; do
  sleep "$sample" & wait $! || true
  kill -0 "$load_pid" 2>/dev/null || break
  sample during
  elapsed=$((SECONDS - began))
  if ((!restarted && elapsed >= seconds / 3)); then
    log "restarting PostgreSQL (pg_ctl restart -m fast)"
    pg_restart=(env LC_ALL=C "$PGBIN/pg_ctl" restart -w -m fast -D "$dir/pg/data" -l "$dir/pg/postgres.log")
    if ((EUID == 0)); then pg_restart=(runuser -u postgres -- "${pg_restart[@]}"); fi
    (cd / && "${pg_restart[@]}") >/dev/null
    restarted=1
    sample restarted
  elif ((restarted && !reloaded && elapsed >= seconds / 2)); then
    log "reloading seedproxy (SIGHUP)"
    kill -HUP "$proxy_pid"
    reloaded=1
    sample reloaded
  fi
done
wait "$load_pid" || die "the load generator failed: $(cat "$work/load.err")"
load_pid=
sample after
printf 'clients=%d seconds=%d interval=%s restart=%d reload=%d\n' "$clients" "$seconds" "$interval" \
  "$restarted" "$reloaded"
cat "$work/load.json"
grep -c . "$work/seedproxy.log" | sed 's/^/proxy log lines: /'
