#!/usr/bin/env bash
# User-space instructions per transaction of PgBouncer and seedproxy, whole process (OpenSSL,
# libc and the proxy's own code), in plain text, under client-side TLS, and per new TLS connection,
# counted by callgrind: independent of machine load. Report in .bench/proxies_callgrind.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

usage() {
  cat <<EOF
usage: bench/proxies_callgrind.sh [SEEDPROXY_BINARY]   (default: build/proxy/seedproxy)

Each proxy runs under valgrind --tool=callgrind twice per leg, once for a short and once for a long
pgbench -S -M simple run; the difference of the two totals divided by the difference of the
transactions is what one transaction costs, with startup, connection setup and shutdown cancelled
out. Both proxies run one thread, in session mode, with the same certificate; PgBouncer closes a
server connection when its client leaves (server_lifetime = 0), as seedproxy does. The report lists
per leg the instructions per transaction and the functions whose count differs most between the
two proxies.

Environment (defaults in brackets):
  BENCH_LEGS    [plain tls]  which client legs: plain, tls, and connect (pgbench -C over TLS:
                             a TLS handshake, startup and login per transaction)
  BENCH_CLIENTS [4]     pgbench -c
  BENCH_SHORT   [250]        pgbench -t, short    BENCH_LONG    [1250]  pgbench -t, long
  BENCH_CONNECT_SHORT [20]   the same for connect BENCH_CONNECT_LONG [70]
  BENCH_TOP     [25]         functions listed     BENCH_DIR [.bench]    cluster, outputs, report
  BENCH_SERVER_REUSE [0]     1: both proxies keep backends between clients (PgBouncer's defaults,
                             seedproxy's server_pool with auth.mode proxy), as in bench/tls.sh
EOF
}

[[ "${1:-}" == -h || "${1:-}" == --help ]] && { usage; exit 0; }
binary=${1:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
[[ -x "$binary" ]] || die "$binary is not an executable"
for tool in valgrind callgrind_annotate /usr/sbin/pgbouncer openssl; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install valgrind pgbouncer openssl)"
done

legs=${BENCH_LEGS:-plain tls}
clients=${BENCH_CLIENTS:-4}
short=${BENCH_SHORT:-250}
long=${BENCH_LONG:-1250}
connect_short=${BENCH_CONNECT_SHORT:-20}
connect_long=${BENCH_CONNECT_LONG:-70}
top=${BENCH_TOP:-25}
server_reuse=${BENCH_SERVER_REUSE:-0}
[[ "$server_reuse" == 0 || "$server_reuse" == 1 ]] || die "BENCH_SERVER_REUSE must be 0 or 1"
bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
work=$bench_dir/proxies-callgrind
report=$bench_dir/proxies_callgrind.md
pg_dir=$work/pg

proxy_pid=
pg_started=0
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT
  trap '' INT TERM
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" proxy 60 || true; fi
  if ((pg_started)); then pgcluster_stop "$pg_dir" || true; fi
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted"; exit 130' INT TERM

rm -rf "$work"
mkdir -p "$work"
chmod 777 "$work"  # PgBouncer runs as postgres when this script runs as root
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 \
  -subj "/CN=127.0.0.1" -keyout "$work/server.key" -out "$work/server.crt" 2>/dev/null
printf '"postgres" ""\n' >"$work/userlist.txt"
pg_started=1
pg_port=$(pgcluster_start "$pg_dir")
"$PGBIN/psql" -X -q -h 127.0.0.1 -U postgres -p "$pg_port" -d postgres -c "CREATE DATABASE bench"
"$PGBIN/pgbench" -i -q -s 1 -h 127.0.0.1 -U postgres -p "$pg_port" bench >"$work/init.log" 2>&1 ||
  { cat "$work/init.log" >&2; die "pgbench -i failed"; }
((EUID == 0)) && chown -R postgres: "$work"

# write_configs LEG PORT: pgbouncer.ini and seedproxy.json for that leg
write_configs() {
  local sslmode=require
  [[ $1 == plain ]] && sslmode=disable
  cat >"$work/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$pg_port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = session
$( ((server_reuse)) || echo "server_lifetime = 0")
log_connections = 0
log_disconnections = 0
client_tls_sslmode = $sslmode
client_tls_cert_file = $work/server.crt
client_tls_key_file = $work/server.key
logfile = $work/pgbouncer.log
ignore_startup_parameters = extra_float_digits
INI
  cat >"$work/seedproxy.json" <<JSON
{"listen": {"host": "127.0.0.1", "port": $2},
 "upstream": {"host": "127.0.0.1", "port": $pg_port},
 "client_tls": {"sslmode": "$sslmode", "cert_file": "$work/server.crt",
                "key_file": "$work/server.key"},
 $( ((server_reuse)) && echo '"auth": {"mode": "proxy", "trust_users": ["postgres"]}, "server_pool": {"enabled": true},')
 "runtime": {"threads": 1, "shutdown_grace_seconds": 1}, "log": {"level": "warning"}}
JSON
  ((EUID == 0)) && chown postgres: "$work/pgbouncer.ini" "$work/seedproxy.json"
  return 0
}

# measure PROXY LEG XACTS: the callgrind profile's path; the proxy runs as postgres under root
measure() {
  local proxy=$1 leg=$2 xacts=$3 port
  port=$(free_port 16900)
  write_configs "$leg" "$port"
  local profile=$work/$proxy-$leg-$xacts.out command
  if [[ $proxy == pgbouncer ]]; then
    command=(/usr/sbin/pgbouncer "$work/pgbouncer.ini")
  else
    command=("$binary" --config "$work/seedproxy.json")
  fi
  local runner=()
  ((EUID == 0)) && runner=(setpriv --reuid=postgres --regid=postgres --init-groups)
  "${runner[@]}" valgrind --tool=callgrind --callgrind-out-file="$profile" "${command[@]}" \
    >"$work/$proxy-$leg-$xacts.log" 2>&1 &
  proxy_pid=$!
  wait_for_port "$port" "$proxy_pid" 120 || die "$proxy under valgrind did not start"
  local sslmode=require connect=()
  [[ $leg == plain ]] && sslmode=disable
  [[ $leg == connect ]] && connect=(-C)
  PGSSLMODE=$sslmode "$PGBIN/pgbench" -n -S -M simple "${connect[@]}" -c "$clients" -j 2 -t "$xacts" \
    -h 127.0.0.1 -p "$port" -U postgres bench >"$work/pgbench-$proxy-$leg-$xacts.log" 2>&1 ||
    { cat "$work/pgbench-$proxy-$leg-$xacts.log" >&2; die "pgbench through $proxy failed"; }
  stop_pid "$proxy_pid" "$proxy" 60
  proxy_pid=
  echo "$profile"
}

total_of() { sed -n 's/^\(summary\|totals\): \([0-9]*\).*/\2/p' "$1" | head -n 1; }

{
  echo "# PgBouncer and seedproxy: user-space instructions per transaction (callgrind)"
  echo
  echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), seedproxy binary \`$binary\`"
  echo "- pgbench -S -M simple -c $clients, ($long - $short) x $clients transactions told apart"
  echo "  (connect: -C, ($connect_long - $connect_short) x $clients)"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (callgrind counts do not depend on it)"
  echo
  echo "| leg | PgBouncer | seedproxy | seedproxy / PgBouncer |"
  echo "|---|---:|---:|---:|"
} >"$report"
details=()
for leg in $legs; do
  case $leg in
    plain | tls) leg_short=$short leg_long=$long ;;
    connect) leg_short=$connect_short leg_long=$connect_long ;;
    *) die "unknown leg $leg (plain, tls or connect)" ;;
  esac
  transactions=$(((leg_long - leg_short) * clients))
  declare -A per=()
  declare -A profiles=()
  for proxy in pgbouncer seedproxy; do
    log "callgrind: $proxy, $leg, $leg_short and $leg_long transactions per client"
    first=$(measure "$proxy" "$leg" "$leg_short")
    second=$(measure "$proxy" "$leg" "$leg_long")
    per[$proxy]=$(awk -v a="$(total_of "$first")" -v b="$(total_of "$second")" -v x="$transactions" \
      'BEGIN { printf "%.0f", (b - a) / x }')
    profiles[$proxy]="$first $second"
  done
  ratio=$(awk -v a="${per[seedproxy]}" -v b="${per[pgbouncer]}" 'BEGIN { printf "%.2f", a / b }')
  echo "| $leg | ${per[pgbouncer]} | ${per[seedproxy]} | ${ratio}x |" >>"$report"
  # shellcheck disable=SC2086  # the two profiles of each proxy, as separate words
  details+=("### $leg: per transaction, the functions that differ most" ""
    '```' "$(python3 "$SEEDPROXY_ROOT/bench/callgrind_difference.py" --top "$top" \
      --transactions "$transactions" ${profiles[pgbouncer]} ${profiles[seedproxy]})" '```' "")
  unset per profiles
done
{
  echo
  printf '%s\n' "${details[@]}"
} >>"$report"
cat "$report"
