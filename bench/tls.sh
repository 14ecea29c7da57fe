#!/usr/bin/env bash
# TLS benchmark: seedproxy and PgBouncer, both terminating TLS from clients (sslmode=require) in
# front of one PostgreSQL, measured in one run with the targets alternating in every round:
#   connect   pgbench -S -C: a new TLS connection (handshake, startup, authentication) per
#             transaction: handshakes per second, end to end
#   simple    pgbench -S -M simple over TLS, connections held
#   prepared  pgbench -S -M prepared over TLS
# Both run one thread; PgBouncer with server_lifetime = 0, so it opens a server connection per
# client as seedproxy does (session mode without server reuse). Report in $BENCH_DIR/tls.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

usage() {
  cat <<EOF2
usage: bench/tls.sh

Environment (defaults in brackets):
  BENCH_DURATION [10]  seconds per run      BENCH_ROUNDS [3]  rounds
  BENCH_CLIENTS  [8]   pgbench -c           BENCH_JOBS   [2]  pgbench -j
  BENCH_SCALE    [10]  pgbench scale        BENCH_MODES  ["connect simple prepared"]
  BENCH_DIR [.bench]   where the cluster, certificates, configurations and the report go
  SEEDPROXY_BIN [build/proxy/seedproxy]
EOF2
}
case ${1:-} in -h | --help) usage; exit 0 ;; "") ;; *) usage >&2; die "unknown argument: $1" ;; esac

duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-8}
jobs=${BENCH_JOBS:-2}
scale=${BENCH_SCALE:-10}
modes=${BENCH_MODES:-connect simple prepared}
bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
pg_dir=$bench_dir/pg
tls_dir=$bench_dir/tls
report=$bench_dir/tls.md
proxy_bin=${SEEDPROXY_BIN:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)
[[ -x "$proxy_bin" ]] || die "$proxy_bin is missing: run scripts/build.sh"
need_pgcluster
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

proxy_pid= bouncer_pid= pg_started=0
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT
  trap '' INT TERM
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 20 || true; fi
  if [[ -n "$bouncer_pid" ]]; then stop_pid "$bouncer_pid" pgbouncer 20 || true; fi
  if ((pg_started)); then pgcluster_stop "$pg_dir" || true; fi
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted"; exit 130' INT TERM
rm -rf "$tls_dir"
mkdir -p "$tls_dir"

# --- certificates: a CA and one server certificate for both proxies (ECDSA P-256, as is common) --
log "making a CA and a certificate with openssl"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 \
  -subj "/CN=bench CA" -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls_dir/server.ext"
openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.crt" -CAkey "$tls_dir/ca.key" \
  -set_serial 1 -days 2 -sha256 -extfile "$tls_dir/server.ext" -out "$tls_dir/server.crt" 2>/dev/null
chmod 600 "$tls_dir/server.key"

# --- PostgreSQL and the pgbench data -------------------------------------------------------------
pgcluster_stop "$pg_dir" 2>/dev/null || true
pg_started=1
pg_port=$(pgcluster_start "$pg_dir" --max-connections 300 --set shared_buffers=256MB)
log "PostgreSQL on 127.0.0.1:$pg_port"
have=$("${psql[@]}" -p "$pg_port" -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'bench'")
[[ "$have" == 1 ]] || "${psql[@]}" -p "$pg_port" -d postgres -c "CREATE DATABASE bench"
if [[ "$("${psql[@]}" -p "$pg_port" -d bench -Atc "SELECT to_regclass('pgbench_branches') IS NOT NULL")" != t ]] ||
  [[ "$("${psql[@]}" -p "$pg_port" -d bench -Atc "SELECT count(*) FROM pgbench_branches")" != "$scale" ]]; then
  log "pgbench -i -s $scale"
  "$PGBIN/pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$pg_port" -U postgres bench >"$tls_dir/init.log" 2>&1 ||
    { cat "$tls_dir/init.log" >&2; die "pgbench -i failed"; }
fi

# --- PgBouncer with client-side TLS ----------------------------------------------------------------
bouncer_port=$(free_port 16532)
printf '"postgres" ""\n' >"$tls_dir/userlist.txt"
cat >"$tls_dir/pgbouncer.ini" <<INI
; Written by bench/tls.sh
[databases]
* = host=127.0.0.1 port=$pg_port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $tls_dir/userlist.txt
pool_mode = session
server_lifetime = 0
max_client_conn = 1000
default_pool_size = 200
client_tls_sslmode = require
client_tls_cert_file = $tls_dir/server.crt
client_tls_key_file = $tls_dir/server.key
client_tls_protocols = tlsv1.2,tlsv1.3
logfile = $tls_dir/pgbouncer.log
pidfile = $tls_dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
ignore_startup_parameters = extra_float_digits
INI
bouncer_cmd=(/usr/sbin/pgbouncer "$tls_dir/pgbouncer.ini")
if ((EUID == 0)); then
  chown -R postgres: "$tls_dir"
  bouncer_cmd=(setpriv --reuid=postgres --regid=postgres --init-groups "${bouncer_cmd[@]}")
fi
"${bouncer_cmd[@]}" >"$tls_dir/pgbouncer.stderr" 2>&1 &
bouncer_pid=$!
wait_for_port "$bouncer_port" "$bouncer_pid" 15 || { cat "$tls_dir/pgbouncer.stderr" >&2; die "PgBouncer did not start"; }

# --- seedproxy with client-side TLS ----------------------------------------------------------------
proxy_port=$(free_port 17532)
cat >"$tls_dir/seedproxy.json" <<JSON
{
  "listen": {"host": "127.0.0.1", "port": $proxy_port},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "client_tls": {"sslmode": "require", "cert_file": "$tls_dir/server.crt", "key_file": "$tls_dir/server.key"},
  "limits": {"max_clients": 1000},
  "runtime": {"threads": 1, "shutdown_grace_seconds": 5},
  "log": {"level": "warning"}
}
JSON
"$proxy_bin" --config "$tls_dir/seedproxy.json" >"$tls_dir/seedproxy.log" 2>&1 &
proxy_pid=$!
wait_for_port "$proxy_port" "$proxy_pid" 15 || { cat "$tls_dir/seedproxy.log" >&2; die "seedproxy did not start"; }

declare -A port_of=([pgbouncer]=$bouncer_port [seedproxy]=$proxy_port)
declare -A pid_of=([pgbouncer]=$bouncer_pid [seedproxy]=$proxy_pid)
for t in pgbouncer seedproxy; do
  PGSSLMODE=require "${psql[@]}" -p "${port_of[$t]}" -d bench -Atc "SELECT 1" >/dev/null ||
    die "cannot query bench through $t over TLS"
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
runs=$tls_dir/runs.tsv
: >"$runs"
run() { # run TARGET MODE ROUND
  local args=(-n -S -c "$clients" -j "$jobs" -T "$duration" -h 127.0.0.1 -p "${port_of[$1]}" -U postgres)
  case $2 in
    connect) args+=(-C -M simple) ;;
    *) args+=(-M "$2") ;;
  esac
  local before after out tps n
  before=$(ticks "${pid_of[$1]}")
  out=$(PGSSLMODE=require "$PGBIN/pgbench" "${args[@]}" bench 2>&1) || die "pgbench ($1, $2) failed: $out"
  after=$(ticks "${pid_of[$1]}")
  tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -n 1)
  n=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
  printf '%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$1" "$tps" \
    "$(awk -v t=$((after - before)) -v n="$n" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')" >>"$runs"
  log "round $3 $2 $1: $tps tps"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up"
for t in pgbouncer seedproxy; do
  PGSSLMODE=require "$PGBIN/pgbench" -n -S -c "$clients" -j "$jobs" -T 2 -h 127.0.0.1 -p "${port_of[$t]}" -U postgres bench >/dev/null 2>&1
done
for ((round = 1; round <= rounds; round++)); do
  for mode in $modes; do
    order=(pgbouncer seedproxy)
    if ((round % 2 == 0)); then order=(seedproxy pgbouncer); fi
    for t in "${order[@]}"; do run "$t" "$mode" "$round"; done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# TLS: seedproxy and PgBouncer terminating client TLS"
  echo
  echo "$("$proxy_bin" --version 2>&1 | head -n 1), $(/usr/sbin/pgbouncer --version | head -n 1), $(openssl version)."
  echo "pgbench -S, $clients clients, $jobs jobs, ${duration}s per run, $rounds rounds alternating the"
  echo "targets; sslmode=require, TLS 1.3, ECDSA P-256 certificate; both one thread; upstream plain on"
  echo "the same host. Load average $load_start at start, $load_end at end (2 cores, shared)."
  echo
  echo "| mode | PgBouncer tps (median) | seedproxy tps (median) | seedproxy / PgBouncer | CPU µs/tx PgBouncer | CPU µs/tx seedproxy |"
  echo "|---|---:|---:|---:|---:|---:|"
  for mode in $modes; do
    awk -F'\t' -v mode="$mode" '
      function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                       return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
      $1 == mode && $3 == "pgbouncer" { b[++nb] = $4; bc[nb] = $5 }
      $1 == mode && $3 == "seedproxy" { s[++ns] = $4; sc[ns] = $5 }
      END { mb = median(b, nb); ms = median(s, ns)
            printf "| %s | %.0f | %.0f | %.2f× | %.1f | %.1f |\n", mode, mb, ms, ms / mb, median(bc, nb), median(sc, ns) }' "$runs"
  done
  echo
  echo "connect: every transaction opens a new TLS connection (pgbench -C), so its tps is handshakes"
  echo "per second, each with a full TLS 1.3 handshake, startup, authentication and a backend start."
  echo
  echo "Every run (mode, round, target, tps, proxy CPU µs per transaction):"
  echo
  echo '```'
  cat "$runs"
  echo '```'
} >"$report"
echo
cat "$report"
log "report saved to ${report#"$SEEDPROXY_ROOT"/}"
