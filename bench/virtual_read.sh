#!/usr/bin/env bash
# Virtual attribute read benchmark: pgbench reads risk_score by primary key from a table where it is
# a seed (through seedproxy) and from one where it is a real generated column (through seedproxy
# and direct), interleaved. Report in .bench/virtual-read.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: bench/virtual_read.sh [--build]

Starts its own PostgreSQL in .bench/virtual-read-pg and seedproxy, loads two copies of the same
accounts (account_v: risk_score is a seed; account_g: risk_score is GENERATED ALWAYS AS … STORED),
runs pgbench and stops everything. Builds build/proxy/seedproxy first if it is missing, or
always with --build.

Environment (defaults in brackets):
  BENCH_DURATION [10]   seconds per pgbench run       BENCH_ROUNDS [3]   rounds per target and mode
  BENCH_CLIENTS  [8]    pgbench -c                    BENCH_JOBS   [2]   pgbench -j
  BENCH_ROWS [100000]   accounts per table            BENCH_MODES  ["simple prepared"]
  BENCH_WARMUP   [3]    seconds of discarded warm-up per target and mode (0: none)
  SEEDPROXY_THREADS [1] seedproxy runtime.threads
  SEEDPROXY_BIN [build/proxy/seedproxy]  the proxy binary to measure
EOF
}

build=0
while (($#)); do
  case $1 in
    --build) build=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done

duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-8}
jobs=${BENCH_JOBS:-2}
rows=${BENCH_ROWS:-100000}
modes=${BENCH_MODES:-simple prepared}
warmup=${BENCH_WARMUP:-3}
proxy_threads=${SEEDPROXY_THREADS:-1}

bench_dir=$SEEDPROXY_ROOT/.bench
pg_dir=$bench_dir/virtual-read-pg
results=$bench_dir/virtual-read
report=$bench_dir/virtual-read.md
build_dir=$SEEDPROXY_ROOT/build
proxy_bin=${SEEDPROXY_BIN:-$build_dir/proxy/seedproxy}
pgbench=$PGBIN/pgbench
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)
# The seed, and the same expression as a stored generated column.
expression='balance / 1000.0 + credit_limit / 500.0'
attribute_type='numeric(8,2)'

if ((build)) || [[ -z "${SEEDPROXY_BIN:-}" && ! -x "$proxy_bin" ]]; then
  log "building seedproxy in ${build_dir#"$SEEDPROXY_ROOT"/}"
  cmake -S "$SEEDPROXY_ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build_dir" -j2 --target seedproxy
fi
[[ -x "$proxy_bin" ]] || die "$proxy_bin is missing"
need_pgcluster

# --- cleanup: pgbench, proxy, then PostgreSQL ------------------------------------------------------
proxy_pid=
pg_started=0
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT INT TERM
  bench_stop_pgbench
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 20 || true; fi
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
uptime >"$results/load-before.txt"

# --- PostgreSQL and data --------------------------------------------------------------------------
log "starting PostgreSQL in $pg_dir"
pgcluster_stop "$pg_dir" 2>/dev/null || true # left running by a run stopped with SIGKILL
pg_started=1
pg_port=$(pgcluster_start "$pg_dir")
log "PostgreSQL on 127.0.0.1:$pg_port"

have=$("${psql[@]}" -p "$pg_port" -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'bank'")
if [[ "$have" != 1 ]]; then "${psql[@]}" -p "$pg_port" -d postgres -c "CREATE DATABASE bank"; fi
log "loading $rows accounts into account_v (seeded) and account_g (generated column)"
# Deterministic, varied values; account_g is copied from account_v so both hold the same rows.
"${psql[@]}" -p "$pg_port" -d bank <<EOF
SET client_min_messages = warning;
DROP TABLE IF EXISTS account_v, account_g;
CREATE TABLE account_v (
  id bigint PRIMARY KEY,
  owner text NOT NULL,
  balance numeric(12,2) NOT NULL,
  credit_limit numeric(12,2) NOT NULL,
  opened_on date NOT NULL
);
CREATE TABLE account_g (
  id bigint PRIMARY KEY,
  owner text NOT NULL,
  balance numeric(12,2) NOT NULL,
  credit_limit numeric(12,2) NOT NULL,
  opened_on date NOT NULL,
  risk_score $attribute_type GENERATED ALWAYS AS ($expression) STORED
);
INSERT INTO account_v
SELECT i, 'owner ' || i, ((i * 7919) % 10000000) / 100.0, ((i * 104729) % 5000000) / 100.0,
       date '2015-01-01' + (i % 3650)::int
FROM generate_series(1::bigint, $rows) AS i;
INSERT INTO account_g (id, owner, balance, credit_limit, opened_on)
SELECT id, owner, balance, credit_limit, opened_on FROM account_v;
VACUUM ANALYZE account_v, account_g;
EOF

# --- seedproxy ------------------------------------------------------------------------------------
proxy_port=$(free_port 18432)
cat >"$results/seedproxy.json" <<EOF
{
  "listen": {"host": "127.0.0.1", "port": $proxy_port},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "control": {"user": "postgres"},
  "seeds": [
    {"database": "bank", "entity": "public.account_v", "attribute": "risk_score",
     "type": "$attribute_type", "expression": "$expression", "materialize": {"policy": "never"}}
  ],
  "runtime": {"threads": $proxy_threads, "shutdown_grace_seconds": 5},
  "log": {"level": "warning"}
}
EOF
log "starting seedproxy on 127.0.0.1:$proxy_port ($proxy_threads thread(s))"
"$proxy_bin" --config "$results/seedproxy.json" >"$results/seedproxy.log" 2>&1 &
proxy_pid=$!
wait_for_port "$proxy_port" "$proxy_pid" 15 ||
  { cat "$results/seedproxy.log" >&2; die "seedproxy did not start"; }

# The seed must be live (catalog loaded) and agree with the generated column on every row.
checksum="SELECT count(*), sum(risk_score), sum(hashtext(risk_score::text)::bigint)"
for ((i = 0; ; i++)); do
  if virtual=$("${psql[@]}" -p "$proxy_port" -d bank -Atc "$checksum FROM account_v" 2>"$results/check.err"); then break; fi
  ((i < 50)) || { cat "$results/check.err" "$results/seedproxy.log" >&2; die "risk_score is not readable from account_v through seedproxy"; }
  sleep 0.2
done
generated=$("${psql[@]}" -p "$pg_port" -d bank -Atc "$checksum FROM account_g")
[[ "$virtual" == "$generated" ]] ||
  die "the seed and the generated column disagree: virtual $virtual, generated $generated"
log "risk_score agrees on all $rows rows (count|sum|hash: $virtual)"

for table in account_v account_g; do
  printf '\\set id random(1, %d)\nSELECT risk_score FROM %s WHERE id = :id;\n' "$rows" "$table" >"$results/$table.sql"
done

declare -A port_of=([virtual-proxy]=$proxy_port [generated-proxy]=$proxy_port [generated-direct]=$pg_port)
declare -A script_of=([virtual-proxy]=account_v.sql [generated-proxy]=account_g.sql [generated-direct]=account_g.sql)
targets=(virtual-proxy generated-proxy generated-direct)

cat >"$results/meta.env" <<EOF
seedproxy_version=$("$proxy_bin" --version 2>&1 | head -n 1)
commit=$(if [[ -n "${SEEDPROXY_BIN:-}" ]]; then echo "not known: SEEDPROXY_BIN"; else
  git -C "$SEEDPROXY_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown
  git -C "$SEEDPROXY_ROOT" diff --quiet HEAD -- proxy config rewriter seeds 2>/dev/null || echo "+local changes"
fi | tr -d '\n')
binary=${proxy_bin#"$SEEDPROXY_ROOT"/}
seedproxy_threads=$proxy_threads
pg_version=$("${psql[@]}" -p "$pg_port" -d bank -Atc "SELECT split_part(version(), ' on ', 1)")
rows=$rows
clients=$clients
jobs=$jobs
duration=$duration
rounds=$rounds
modes=$modes
expression=$expression
attribute_type=$attribute_type
EOF

bench_pgbench() { # bench_pgbench TARGET MODE SECONDS [LOG_PREFIX]
  local args=(-n -M "$2" -c "$clients" -j "$jobs" -T "$3" -f "$results/${script_of[$1]}"
    -h 127.0.0.1 -p "${port_of[$1]}" -U postgres)
  if (($# > 3)); then args+=(-l --log-prefix "$4"); fi
  "$pgbench" "${args[@]}" bank
}
declare -A bench_pid=([virtual-proxy]=$proxy_pid [generated-proxy]=$proxy_pid [generated-direct]=0)
bench_results=$results

bench_warm_up "$warmup" "$modes" "${targets[@]}"
bench_rounds "$duration" "$rounds" "$modes" "${targets[@]}"
uptime >"$results/load-after.txt"

"$PY" "$SEEDPROXY_ROOT/bench/virtual_read_report.py" "$results" "$(getconf CLK_TCK)" >"$report"
echo
cat "$report"
echo
log "report saved to ${report#"$SEEDPROXY_ROOT"/}"
