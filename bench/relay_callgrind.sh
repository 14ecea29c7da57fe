#!/usr/bin/env bash
# The proxy's own user-space instructions per transaction under pgbench -S, counted by callgrind
# (independent of machine load), for one or more seedproxy binaries. Report in
# .bench/relay_callgrind.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

usage() {
  cat <<EOF
usage: bench/relay_callgrind.sh [SEEDPROXY_BINARY...]   (default: build/proxy/seedproxy)

Each binary runs under valgrind --tool=callgrind, counting only inside Asio's scheduler loop
(--toggle-collect='boost::asio::detail::scheduler::run*', so startup and shutdown are left out),
while pgbench -S runs a fixed number of transactions through it. Instructions are divided by
the transactions; the functions listed are the proxy's own with the most instructions.

Environment (defaults in brackets):
  BENCH_MODES [simple]  pgbench -M modes       BENCH_CLIENTS [8]   pgbench -c
  BENCH_XACTS [1000]    pgbench -t per client  BENCH_SCALE   [1]   pgbench scale
  BENCH_TOP   [12]      functions listed       BENCH_DIR [.bench]  cluster, outputs, report
EOF
}

binaries=()
for arg in "$@"; do
  case $arg in
    -h | --help) usage; exit 0 ;;
    *) binaries+=("$arg") ;;
  esac
done
((${#binaries[@]})) || binaries=("$SEEDPROXY_ROOT/build/proxy/seedproxy")
for bin in "${binaries[@]}"; do [[ -x "$bin" ]] || die "$bin is not an executable"; done
command -v valgrind >/dev/null || die "valgrind is missing (apt-get install valgrind)"

modes=${BENCH_MODES:-simple}
clients=${BENCH_CLIENTS:-8}
xacts=${BENCH_XACTS:-1000}
scale=${BENCH_SCALE:-1}
top=${BENCH_TOP:-12}
bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
pg_dir=$bench_dir/pg-callgrind
out_dir=$bench_dir/callgrind
report=$bench_dir/relay_callgrind.md
pgbench=$PGBIN/pgbench
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)

proxy_pid=
pg_started=0
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT
  trap '' INT TERM
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 60 || true; fi
  if ((pg_started)); then pgcluster_stop "$pg_dir" || true; fi
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted"; exit 130' INT TERM

mkdir -p "$bench_dir" "$out_dir"
pg_started=1
pg_port=$(pgcluster_start "$pg_dir")
have=$("${psql[@]}" -p "$pg_port" -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'bench'")
if [[ "$have" != 1 ]]; then "${psql[@]}" -p "$pg_port" -d postgres -c "CREATE DATABASE bench"; fi
"$pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$pg_port" -U postgres bench >"$out_dir/init.log" 2>&1 ||
  { cat "$out_dir/init.log" >&2; die "pgbench -i failed"; }

{
  echo "# seedproxy instructions per transaction (callgrind)"
  echo
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (callgrind counts do not depend on it)"
  echo "- workload: pgbench -S -c $clients -t $xacts (scale $scale), no seed configured"
  echo
  echo "| binary | mode | transactions | instructions | per transaction |"
  echo "|---|---|---:|---:|---:|"
} >"$report"
details=()

n=0
for bin in "${binaries[@]}"; do
  n=$((n + 1))
  for mode in $modes; do
    port=$(free_port 17532)
    config=$out_dir/seedproxy-$n.json
    cat >"$config" <<EOF
{
  "listen": {"host": "127.0.0.1", "port": $port},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "runtime": {"threads": 1, "shutdown_grace_seconds": 5},
  "log": {"level": "warning"}
}
EOF
    profile=$out_dir/callgrind-$n-$mode.out
    rm -f "$profile"
    log "callgrind: $bin ($mode)"
    valgrind --tool=callgrind --callgrind-out-file="$profile" \
      --toggle-collect='boost::asio::detail::scheduler::run*' \
      "$bin" --config "$config" >"$out_dir/seedproxy-$n-$mode.log" 2>&1 &
    proxy_pid=$!
    wait_for_port "$port" "$proxy_pid" 120 || die "seedproxy under valgrind did not start"
    "$pgbench" -n -S -M "$mode" -c "$clients" -j 2 -t "$xacts" -h 127.0.0.1 -p "$port" -U postgres \
      bench >"$out_dir/pgbench-$n-$mode.log" 2>&1 ||
      { cat "$out_dir/pgbench-$n-$mode.log" >&2; die "pgbench through the proxy failed"; }
    stop_pid "$proxy_pid" seedproxy 120
    proxy_pid=
    total=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$profile")
    [[ -n "$total" ]] || total=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$profile")
    done_xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out_dir/pgbench-$n-$mode.log")
    per=$(awk -v t="$total" -v x="$done_xacts" 'BEGIN { printf "%.0f", t / x }')
    echo "| \`$bin\` | $mode | $done_xacts | $total | $per |" >>"$report"
    # The per-statement gates' share, and the functions with the most instructions of their own.
    annotated=$(callgrind_annotate --threshold=100 "$profile" 2>/dev/null | grep -E '^ *[0-9,]+ \(' || true)
    # (none at all when no statement reaches them, as in -M prepared: grep's status is ignored)
    gates=$({ grep -E 'statement_clues|search_path_clue|begin_chunk|finish_word|classify_full|note_word|might_change_catalog|contains_ignoring_case|equals_ignoring_case|search_path_change' <<<"$annotated" || true; } |
      awk -v x="$done_xacts" '{ gsub(",", "", $1); sum += $1 } END { printf "%.0f", sum / x }')
    details+=("### \`$bin\`, $mode" ""
      "Statement gates (statement_clues and its helpers, search_path_clue, might_change_catalog, contains/equals_ignoring_case, search_path_change): $gates instructions per transaction." ""
      '```' "$(head -n "$top" <<<"$annotated" | cut -c1-200)" '```' "")
  done
done
{
  echo
  printf '%s\n' "${details[@]}"
} >>"$report"
cat "$report"
