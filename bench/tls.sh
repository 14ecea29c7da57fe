#!/usr/bin/env bash
# TLS benchmark: seedproxy and PgBouncer, both terminating TLS from clients (sslmode=require) in
# front of one PostgreSQL, measured in one run with the targets alternating in every round:
#   connect   pgbench -S -C: a new TLS connection (handshake, startup, authentication) per
#             transaction: handshakes per second, end to end
#   simple    pgbench -S -M simple over TLS, connections held
#   prepared  pgbench -S -M prepared over TLS
# Both run one thread. By default PgBouncer runs with server_lifetime = 0, so it opens a server
# connection per client as seedproxy does without server_pool (session mode, no server reuse);
# with BENCH_SERVER_REUSE=1 both keep backends between clients: PgBouncer with its defaults
# (server_reset_query DISCARD ALL), seedproxy with auth.mode proxy and server_pool on. Then, per
# mode, system calls per transaction of each proxy under strace -c -f for a fixed pgbench -t.
# Report in $BENCH_DIR/tls.md.
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
  BENCH_SYSCALL_XACTS [1000]  pgbench -t (per client) of the run each proxy makes under strace -c -f
                       in simple and prepared, for system calls per transaction (0: skip it)
  BENCH_SYSCALL_CONNECTS [50]  the same for connect (each transaction a new TLS connection)
  BENCH_DIR [.bench]   where the cluster, certificates, configurations and the report go
  SEEDPROXY_BIN [build/proxy/seedproxy]
  SEEDPROXY_BASE_BIN []  another seedproxy build (e.g. main's) measured in the same run as a third
                       target, seedproxy-base
  BENCH_SERVER_REUSE [0]  1: both proxies keep backends between clients (every seedproxy target
                       must then know server_pool)
EOF2
}
case ${1:-} in -h | --help) usage; exit 0 ;; "") ;; *) usage >&2; die "unknown argument: $1" ;; esac

duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-8}
jobs=${BENCH_JOBS:-2}
scale=${BENCH_SCALE:-10}
modes=${BENCH_MODES:-connect simple prepared}
syscall_xacts=${BENCH_SYSCALL_XACTS:-1000}
syscall_connects=${BENCH_SYSCALL_CONNECTS:-50}
server_reuse=${BENCH_SERVER_REUSE:-0}
[[ "$server_reuse" == 0 || "$server_reuse" == 1 ]] || die "BENCH_SERVER_REUSE must be 0 or 1"
bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
pg_dir=$bench_dir/pg
tls_dir=$bench_dir/tls
report=$bench_dir/tls.md
proxy_bin=${SEEDPROXY_BIN:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
base_bin=${SEEDPROXY_BASE_BIN:-}
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)
[[ -x "$proxy_bin" ]] || die "$proxy_bin is missing: run scripts/build.sh"
[[ -z "$base_bin" || -x "$base_bin" ]] || die "SEEDPROXY_BASE_BIN $base_bin is not executable"
need_pgcluster
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

proxy_pid= base_pid= bouncer_pid= pg_started=0 strace_pid=
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT
  trap '' INT TERM
  if [[ -n "$strace_pid" ]]; then stop_pid "$strace_pid" strace 5 || true; fi
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 20 || true; fi
  if [[ -n "$base_pid" ]]; then stop_pid "$base_pid" seedproxy-base 20 || true; fi
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
$( ((server_reuse)) || echo "server_lifetime = 0")
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

# --- seedproxy with client-side TLS (and the base build, if one is given) -------------------------
start_seedproxy() { # start_seedproxy NAME BINARY PORT: the pid in started_pid
  cat >"$tls_dir/$1.json" <<JSON
{
  "listen": {"host": "127.0.0.1", "port": $3},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "client_tls": {"sslmode": "require", "cert_file": "$tls_dir/server.crt", "key_file": "$tls_dir/server.key"},
  "limits": {"max_clients": 1000},
  "runtime": {"threads": 1, "shutdown_grace_seconds": 5},
$( ((server_reuse)) && echo '  "auth": {"mode": "proxy", "trust_users": ["postgres"]}, "server_pool": {"enabled": true},')
  "log": {"level": "warning"}
}
JSON
  "$2" --config "$tls_dir/$1.json" >"$tls_dir/$1.log" 2>&1 &
  started_pid=$!
}
proxy_port=$(free_port 17532)
start_seedproxy seedproxy "$proxy_bin" "$proxy_port"
proxy_pid=$started_pid
wait_for_port "$proxy_port" "$proxy_pid" 15 || { cat "$tls_dir/seedproxy.log" >&2; die "seedproxy did not start"; }
targets=(pgbouncer seedproxy)
declare -A port_of=([pgbouncer]=$bouncer_port [seedproxy]=$proxy_port)
declare -A pid_of=([pgbouncer]=$bouncer_pid [seedproxy]=$proxy_pid)
if [[ -n "$base_bin" ]]; then
  base_port=$(free_port 18532)
  start_seedproxy seedproxy-base "$base_bin" "$base_port"
  base_pid=$started_pid
  wait_for_port "$base_port" "$base_pid" 15 || { cat "$tls_dir/seedproxy-base.log" >&2; die "seedproxy-base did not start"; }
  targets+=(seedproxy-base)
  port_of[seedproxy-base]=$base_port
  pid_of[seedproxy-base]=$base_pid
fi
for t in "${targets[@]}"; do
  PGSSLMODE=require "${psql[@]}" -p "${port_of[$t]}" -d bench -Atc "SELECT 1" >/dev/null ||
    die "cannot query bench through $t over TLS"
done

# user ticks, system ticks, minor page faults (the whole process) and context switches (summed
# over its threads)
usage() {
  printf '%s %s\n' "$(awk '{print $14, $15, $10}' "/proc/$1/stat")" \
    "$(cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }')"
}
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
  before=$(usage "${pid_of[$1]}")
  out=$(PGSSLMODE=require "$PGBIN/pgbench" "${args[@]}" bench 2>&1) || die "pgbench ($1, $2) failed: $out"
  after=$(usage "${pid_of[$1]}")
  tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -n 1)
  n=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
  # CPU µs/tx, then user and system µs/tx, minor faults/tx, context switches/tx
  printf '%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$1" "$tps" \
    "$(awk -v b="$before" -v a="$after" -v n="$n" -v hz="$hz" 'BEGIN { split(b, x, " "); split(a, y, " ")
       u = (y[1] - x[1]) / hz * 1e6 / n; s = (y[2] - x[2]) / hz * 1e6 / n
       printf "%.1f\t%.1f\t%.1f\t%.2f\t%.2f", u + s, u, s, (y[3] - x[3]) / n, (y[4] - x[4]) / n }')" >>"$runs"
  log "round $3 $2 $1: $tps tps"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up"
for t in "${targets[@]}"; do
  PGSSLMODE=require "$PGBIN/pgbench" -n -S -c "$clients" -j "$jobs" -T 2 -h 127.0.0.1 -p "${port_of[$t]}" -U postgres bench >/dev/null 2>&1
done
for ((round = 1; round <= rounds; round++)); do
  for mode in $modes; do
    order=("${targets[@]}")
    if ((round % 2 == 0)); then mapfile -t order < <(printf '%s\n' "${targets[@]}" | tac); fi
    for t in "${order[@]}"; do run "$t" "$mode" "$round"; done
  done
done

# --- system calls per transaction ------------------------------------------------------------------
# A fixed number of transactions (-t, not -T: strace slows the proxy, the count must not depend on
# it) with strace -c -f attached to the proxy process, all of its threads.
syscalls=$tls_dir/syscalls.tsv
: >"$syscalls"
count_syscalls() { # count_syscalls TARGET MODE
  local t=$1 mode=$2 out=$tls_dir/strace-$1-$2 deadline xacts=$syscall_xacts
  local args=(-n -S -c "$clients" -j "$jobs" -h 127.0.0.1 -p "${port_of[$t]}" -U postgres)
  case $mode in
    connect) args+=(-C -M simple) xacts=$syscall_connects ;;
    *) args+=(-M "$mode") ;;
  esac
  strace -c -f -p "${pid_of[$t]}" -o "$out.txt" 2>"$out.err" &
  strace_pid=$!
  deadline=$((SECONDS + 10))
  until grep -q attached "$out.err" 2>/dev/null; do
    ((SECONDS < deadline)) || die "strace did not attach to $t"
    sleep 0.1
  done
  PGSSLMODE=require "$PGBIN/pgbench" "${args[@]}" -t "$xacts" bench >"$out.out" 2>&1 ||
    warn "pgbench under strace against $t ($mode) failed"
  kill -INT "$strace_pid"
  wait "$strace_pid" || true
  strace_pid=
  local processed
  processed=$(grep -oP 'number of transactions actually processed: \K[0-9]+' "$out.out" || echo 0)
  # strace -c: calls in column 4, the name last (the errors column may be empty).
  awk -v mode="$mode" -v t="$t" -v n="$processed" '
    $NF == "total" { total = $4 }
    $NF ~ /^(read|recvfrom|recvmsg|readv)$/ { rd += $4 }
    $NF ~ /^(write|sendto|sendmsg|writev)$/ { wr += $4 }
    $NF == "epoll_ctl" { ctl += $4 }
    $NF ~ /^epoll_(p)?wait$/ { ew += $4 }
    END { if (n > 0) printf "%s\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\n", mode, t, n, rd / n, wr / n, ctl / n, ew / n, total / n }' \
    "$out.txt" >>"$syscalls"
  log "system calls: $t ($mode) $(awk '$NF == "total" { print $4 }' "$out.txt") for $processed transactions"
}
if ((syscall_xacts > 0)) && command -v strace >/dev/null; then
  for mode in $modes; do
    for t in "${targets[@]}"; do count_syscalls "$t" "$mode"; done
  done
elif ((syscall_xacts > 0)); then
  warn "strace is not installed: no system call counts"
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# The median of a[1..n] (sorts a), for the report's awk programs.
awk_median='function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                 return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }'
{
  echo "# TLS: seedproxy and PgBouncer terminating client TLS"
  echo
  echo "$("$proxy_bin" --version 2>&1 | head -n 1)${base_bin:+ (seedproxy-base: $base_bin)}, $(/usr/sbin/pgbouncer --version | head -n 1), $(openssl version)."
  echo "pgbench -S, $clients clients, $jobs jobs, ${duration}s per run, $rounds rounds alternating the"
  echo "targets; sslmode=require, TLS 1.3, ECDSA P-256 certificate; both one thread; upstream plain on"
  echo "the same host. Load average $load_start at start, $load_end at end (2 cores, shared)."
  echo
  echo "| mode | target | PgBouncer tps (median) | target tps (median) | target / PgBouncer | CPU µs/tx PgBouncer | CPU µs/tx target |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for mode in $modes; do
    for t in "${targets[@]:1}"; do
      awk -F'\t' -v mode="$mode" -v target="$t" "$awk_median"'
        $1 == mode && $3 == "pgbouncer" { b[++nb] = $4; bc[nb] = $5 }
        $1 == mode && $3 == target { s[++ns] = $4; sc[ns] = $5 }
        END { mb = median(b, nb); ms = median(s, ns)
              printf "| %s | %s | %.0f | %.0f | %.2f× | %.1f | %.1f |\n", mode, target, mb, ms, ms / mb, median(bc, nb), median(sc, ns) }' "$runs"
    done
  done
  echo
  echo "connect: every transaction opens a new TLS connection (pgbench -C), so its tps is handshakes"
  if ((server_reuse)); then
    echo "per second, each with a full TLS 1.3 handshake, startup and authentication; both proxies keep"
    echo "backends between clients (PgBouncer's defaults, seedproxy's server_pool), so no backend starts."
  else
    echo "per second, each with a full TLS 1.3 handshake, startup, authentication and a backend start."
  fi
  echo
  if [[ -s "$syscalls" ]]; then
    echo "System calls per transaction, strace -c -f on each proxy during pgbench -t (connect:"
    echo "$syscall_connects per client, others: $syscall_xacts per client); reads are read/recvfrom,"
    echo "writes write/sendto:"
    echo
    echo "| mode | target | transactions | reads | writes | epoll_ctl | epoll_wait | total | / PgBouncer |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '$2 == "pgbouncer" { base[$1] = $8 } { row[NR] = $0 }
      END { for (i = 1; i <= NR; i++) { split(row[i], f, "\t")
              printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f× |\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], (base[f[1]] > 0 ? f[8] / base[f[1]] : 0) } }' "$syscalls"
    echo
  fi
  echo "Where the proxy's CPU goes (medians over the rounds, per transaction): user and system CPU"
  echo "time, minor page faults, and context switches summed over the proxy's threads:"
  echo
  echo "| mode | target | user µs | system µs | minor faults | context switches |"
  echo "|---|---|---:|---:|---:|---:|"
  for mode in $modes; do
    for t in "${targets[@]}"; do
      awk -F'\t' -v mode="$mode" -v target="$t" "$awk_median"'
        $1 == mode && $3 == target { ++n; u[n] = $6; s[n] = $7; f[n] = $8; c[n] = $9 }
        END { printf "| %s | %s | %.1f | %.1f | %.2f | %.2f |\n", mode, target, median(u, n), median(s, n), median(f, n), median(c, n) }' "$runs"
    done
  done
  echo
  echo "Every run (mode, round, target, tps, proxy CPU µs per transaction, user, system, minor faults,"
  echo "context switches per transaction):"
  echo
  echo '```'
  cat "$runs"
  echo '```'
} >"$report"
echo
cat "$report"
log "report saved to ${report#"$SEEDPROXY_ROOT"/}"
