#!/usr/bin/env bash
# Materialization under load: seedproxy's gradual MATERIALIZE (this build and, interleaved in the
# same run, a baseline build such as main's) against the traditional ALTER TABLE … ADD COLUMN …
# GENERATED ALWAYS AS (…) STORED, all under pgbench -N through the proxy, plus the backfill rate
# without load and the write trigger's cost. Report in BENCH_DIR/materialize.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

usage() {
  cat <<EOF
usage: bench/materialize.sh [--quick]

Starts its own PostgreSQL in BENCH_DIR/materialize-pg, loads pgbench -i -s BENCH_SCALE
(100,000 pgbench_accounts rows per unit), starts seedproxy with seeds on pgbench_accounts (policy
manual) and runs, in this order:
  1. UPDATE throughput straight to PostgreSQL, no trigger        (trigger overhead, baseline)
  2. BENCH_ROUNDS rounds under pgbench -N through the proxy, each: BENCH_BEFORE s of load, then
       new       MATERIALIZE with this build's proxy until step materialized, then ROLLBACK
       baseline  the same with BASELINE_BIN's proxy (skipped when BASELINE_BIN is not set)
       stored    ALTER TABLE … ADD COLUMN … STORED (psql, direct; the load goes through this build)
     in the order new, baseline, stored in odd rounds and stored, baseline, new in even ones
  3. UPDATE throughput with the engine's write trigger installed
  4. ROLLBACK; the schema must equal the one before (pg_dump --schema-only)
  5. UPDATE throughput without the trigger again
  6. MATERIALIZE without load: the same settings, then (proxy restarted) larger batches, short pauses
and stops everything. --quick: scale 1, one round, short periods (a smoke test of the script, not a
result).

Environment (defaults in brackets):
  BENCH_DIR [.bench]      cluster, results and report     BENCH_SCALE [10]  pgbench scale
  BENCH_CLIENTS [8]       pgbench -c                      BENCH_JOBS  [2]   pgbench -j
  BENCH_MODE [prepared]   pgbench -M of the -N load (the UPDATE runs are always prepared)
  BENCH_ROUNDS [2]        rounds of step 2
  BENCH_BEFORE [20]       seconds of load measured before each change
  BENCH_AFTER [5]         seconds of load kept after each change
  BENCH_SEGMENT [15]      pgbench -T of each back-to-back load segment
  BENCH_UPDATE_SECONDS [15]  seconds per UPDATE-throughput run
  BENCH_MATERIALIZE_TIMEOUT [900]  longest wait for a MATERIALIZE or ROLLBACK to reach its step
  BENCH_SEED [row]        row: the seeds are abalance::bigint * 100 (row-local), compared with
                          ALTER TABLE … ADD COLUMN … GENERATED ALWAYS AS (…) STORED;
                          history: the seeds count the account's pgbench_history rows (a
                          cross-table seed; pgbench -N inserts a history row in every transaction,
                          so both of its tables are written while it materializes). A generated
                          column cannot hold a subquery, so the comparison is the migration people
                          write instead: ALTER TABLE … ADD COLUMN and one UPDATE of every row, in
                          one transaction. BENCH_HISTORY_PER_ACCOUNT [3] rows are loaded first.
  SEEDPROXY_BIN [build/proxy/seedproxy]  the proxy binary
  BASELINE_BIN []         the baseline proxy binary (e.g. main built elsewhere); same config format
EOF
}

quick=0
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done

if ((quick)); then d_scale=1 d_before=5 d_after=2 d_segment=5 d_update=4 d_rounds=1; else
  d_scale=10 d_before=20 d_after=5 d_segment=15 d_update=15 d_rounds=2; fi
scale=${BENCH_SCALE:-$d_scale}
clients=${BENCH_CLIENTS:-8}
jobs=${BENCH_JOBS:-2}
mode=${BENCH_MODE:-prepared}
before=${BENCH_BEFORE:-$d_before}
after=${BENCH_AFTER:-$d_after}
segment=${BENCH_SEGMENT:-$d_segment}
update_seconds=${BENCH_UPDATE_SECONDS:-$d_update}
rounds=${BENCH_ROUNDS:-$d_rounds}
baseline_bin=${BASELINE_BIN:-}
watch_timeout=${BENCH_MATERIALIZE_TIMEOUT:-900}
rows=$((scale * 100000))
warm=2 # seconds of load discarded at the start of each load period (connections, caches)

bench_dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}
pg_dir=$bench_dir/materialize-pg
results=$bench_dir/materialize
report=$bench_dir/materialize.md
proxy_bin=${SEEDPROXY_BIN:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
pgbench=$PGBIN/pgbench
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)
db=bench

# The seed and the stored generated column compute the same thing. Each seed is materialized
# once: a rolled-back seed must be declared again before it can be materialized again, so every
# run under load has its own attribute: bc_new_r1, bc_baseline_r1, bc_stored_r1 (a column), ...
seed_kind=${BENCH_SEED:-row}
case $seed_kind in
  row) expression='abalance::bigint * 100' ;;
  history) expression='(SELECT count(*) FROM pgbench_history h WHERE h.aid = pgbench_accounts.aid)' ;;
  *) die "BENCH_SEED must be row or history, not $seed_kind" ;;
esac
history_per_account=${BENCH_HISTORY_PER_ACCOUNT:-3}
attr_idle=balance_cents_idle      # no load, the same settings; kept for the trigger run (steps 3-4)
attr_fast=balance_cents_idle_fast # no load, larger batches and shorter pauses (step 6)

[[ -x "$proxy_bin" ]] || die "$proxy_bin is missing: run scripts/build.sh (or set SEEDPROXY_BIN)"
[[ -z "$baseline_bin" || -x "$baseline_bin" ]] || die "BASELINE_BIN $baseline_bin is not executable"
variants=(new)
[[ -z "$baseline_bin" ]] || variants+=(baseline)
need_pgcluster

# --- cleanup: load, proxy, PostgreSQL --------------------------------------------------------------
proxy_pid=
load_pid=
pg_started=0
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT
  trap '' INT TERM
  load_kill
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
now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
event() { printf '%s\t%s\n' "$1" "$(now)" >>"$results/events.tsv"; } # event NAME: a moment
echo "start $(loadavg)" >"$results/load.txt"

# --- pgbench -N through the proxy, in back-to-back segments ------------------------------------------
# pgbench -T must be fixed in advance and the change takes as long as it takes, so the load is a
# loop of segments of BENCH_SEGMENT seconds that ends after the segment during which the stop
# file appeared. Each segment logs every transaction (-l); the report reads them all.
load_start() { # load_start PHASE
  local phase=$1
  rm -f "$results/$phase.stop"
  (
    i=0
    while [[ ! -e "$results/$phase.stop" ]]; do
      i=$((i + 1))
      status=0
      "$pgbench" -n -N -M "$mode" -c "$clients" -j "$jobs" -T "$segment" -l \
        --log-prefix "$results/$phase-seg$i" -h 127.0.0.1 -p "$proxy_port" -U postgres "$db" \
        >"$results/$phase-seg$i.out" 2>&1 &
      echo $! >"$results/$phase.pgbench-pid"
      wait $! || status=$?
      printf '%s\t%s\n' "$i" "$status" >>"$results/$phase-status.tsv"
    done
  ) &
  load_pid=$!
  load_phase=$phase
}
load_stop() { # ends after the running segment
  touch "$results/$load_phase.stop"
  wait "$load_pid" || true
  load_pid=
}
# shellcheck disable=SC2317  # called from cleanup
load_kill() {
  [[ -n "$load_pid" ]] || return 0
  touch "$results/$load_phase.stop"
  local p
  p=$(cat "$results/$load_phase.pgbench-pid" 2>/dev/null || true)
  if [[ -n "$p" ]]; then stop_pid "$p" pgbench 5 || true; fi
  stop_pid "$load_pid" "pgbench loop" 5 || true
  load_pid=
}

# --- PostgreSQL and data --------------------------------------------------------------------------
log "starting PostgreSQL in $pg_dir"
pgcluster_stop "$pg_dir" 2>/dev/null || true # left running by a run stopped with SIGKILL
pg_started=1
# Every lock wait of 100 ms or more is logged with its holder, and every connection with its
# application_name, so the report can say who made an application wait (a batch, DDL, another client).
pg_port=$(pgcluster_start "$pg_dir" --set shared_buffers=512MB --set max_wal_size=4GB \
  --set log_lock_waits=on --set deadlock_timeout=100ms --set log_connections=on)
log "PostgreSQL on 127.0.0.1:$pg_port"
pg=("${psql[@]}" -p "$pg_port" -d "$db")

"${psql[@]}" -p "$pg_port" -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
log "pgbench -i -s $scale ($rows pgbench_accounts rows)"
"$pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$pg_port" -U postgres "$db" >"$results/pgbench-init.log" 2>&1 ||
  { cat "$results/pgbench-init.log" >&2; die "pgbench -i failed"; }
if [[ $seed_kind == history ]]; then
  log "loading $((rows * history_per_account)) pgbench_history rows and an index on their aid"
  "${pg[@]}" -c "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
    SELECT 1 + i % ($scale * 10), 1 + i % $scale, 1 + i % $rows, 1, now()
    FROM generate_series(0, $((rows * history_per_account - 1))) i" \
    -c "CREATE INDEX pgbench_history_aid ON pgbench_history (aid)"
fi
"${pg[@]}" -c "VACUUM ANALYZE" -c "CHECKPOINT"
# pg_dump writes a random \restrict key into every dump; it is not part of the schema.
schema_dump() {
  "$PGBIN/pg_dump" --schema-only -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -n public |
    grep -Ev '^\\(un)?restrict '
}
schema_dump >"$results/schema-before.sql"

# --- seedproxy ------------------------------------------------------------------------------------
proxy_port=$(free_port 18532)
# Under load, the engine's defaults (the same for this build and the baseline): batches of about
# 100 ms, a pause of half the batch after each, a row lock waited for at most 50 ms. In this build
# lock_timeout is also the longest an application may wait on a batch's rows before the batch is
# cancelled, and the target shrinks while applications wait (docs/materialization.md).
load_settings=${BENCH_LOAD_SETTINGS:-'"lock_timeout_seconds": 0.05, "target_batch_seconds": 0.1,
    "pause_ratio": 0.5, "max_batch_rows": 100000'}
# Without load: nothing to protect, so larger batches and short pauses (fewer commits, fewer pauses).
fast_settings='"lock_timeout_seconds": 0.05, "target_batch_seconds": 0.5, "pause_ratio": 0.05,
    "max_batch_rows": 200000'
# validation.max_cost_ratio: the history seed counts rows for every account it reads, past the
# default bound on a seed's planner cost; the row-local seed is far below either bound.
write_config() { # write_config FILE SETTINGS
  local seeds='' a sep='' r v attrs=("$attr_idle" "$attr_fast")
  for ((r = 1; r <= rounds; r++)); do for v in "${variants[@]}"; do attrs+=("bc_${v}_r$r"); done; done
  for a in "${attrs[@]}"; do
    seeds+="$sep{\"database\": \"$db\", \"entity\": \"public.pgbench_accounts\", \"attribute\": \"$a\",
     \"type\": \"bigint\", \"expression\": \"$expression\", \"materialize\": {\"policy\": \"manual\"}}"
    sep=$',\n    '
  done
  cat >"$1" <<EOF
{
  "instance": "bench-materialize",
  "listen": {"host": "127.0.0.1", "port": $proxy_port},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "control": {"user": "postgres"},
  "admin": {"users": ["postgres"]},
  "validation": {"max_cost_ratio": 1e12},
  "seeds": [
    $seeds
  ],
  "materialization": {$2, "progress_log_seconds": 5},
  "runtime": {"threads": 1, "shutdown_grace_seconds": 5},
  "log": {"level": "info"}
}
EOF
}
write_config "$results/seedproxy-load.json" "$load_settings"
write_config "$results/seedproxy-fast.json" "$fast_settings"

proxy_start() { # proxy_start CONFIG ATTRIBUTE [BINARY]: waits until ATTRIBUTE (a virtual seed) reads
  local bin=${3:-$proxy_bin}
  log "starting seedproxy on 127.0.0.1:$proxy_port ($(basename "$1"), ${bin#"$SEEDPROXY_ROOT"/})"
  echo "=== $(date -u +%FT%T) $bin" >>"$results/seedproxy.log"
  "$bin" --config "$1" >>"$results/seedproxy.log" 2>&1 &
  proxy_pid=$!
  proxy_running=$bin
  wait_for_port "$proxy_port" "$proxy_pid" 15 ||
    { tail -n 30 "$results/seedproxy.log" >&2; die "seedproxy did not start"; }
  local i
  for ((i = 0; ; i++)); do
    if "${psql[@]}" -p "$proxy_port" -d "$db" -Atc "SELECT $2 FROM pgbench_accounts WHERE aid = 1" \
      >/dev/null 2>"$results/check.err"; then break; fi
    ((i < 100)) || { cat "$results/check.err" >&2; die "$2 is not readable through seedproxy"; }
    sleep 0.1
  done
}
proxy_use() { # proxy_use BINARY ATTRIBUTE: the proxy on proxy_port runs BINARY (one proxy at a time,
  # so the engine that materializes is the one measured)
  [[ "${proxy_running:-}" == "$1" && -n "$proxy_pid" ]] && return 0
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 20; fi
  proxy_pid=
  proxy_start "$results/seedproxy-load.json" "$2" "$1"
}
proxy_use "$proxy_bin" "$attr_idle"

# watch NAME COMMAND ATTRIBUTE UNTIL: MATERIALIZE/ROLLBACK and follow it. Not reaching the step in
# time is reported (the report shows the last row) but does not end the run: a ROLLBACK later stops
# the materialization, and the other measurements still mean something.
watch() {
  log "$2 (until step $4, at most ${watch_timeout} s)"
  "$PY" "$SEEDPROXY_ROOT/bench/materialize_watch.py" --port "$proxy_port" --command "$2" \
    --attribute "$3" --until "$4" --out "$results/$1" --timeout "$watch_timeout" || {
    grep -E ' (warning|error) | materialize: ' "$results/seedproxy.log" | tail -n 20 >&2
    warn "$2 did not reach step $4 (see $results/$1.tsv)"
  }
}

# --- UPDATE throughput, straight to PostgreSQL -----------------------------------------------------
printf '\\set aid random(1, %d)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n' \
  "$rows" >"$results/update.sql"
update_run() { # update_run NAME
  "${pg[@]}" -c "VACUUM pgbench_accounts" -c "CHECKPOINT"
  log "UPDATE throughput ($1), ${update_seconds} s, load $(loadavg)"
  echo "$1 $(loadavg)" >>"$results/load.txt"
  "$pgbench" -n -M prepared -c "$clients" -j "$jobs" -T "$update_seconds" -f "$results/update.sql" \
    -h 127.0.0.1 -p "$pg_port" -U postgres "$db" >"$results/update-$1.out" 2>&1 ||
    { cat "$results/update-$1.out" >&2; die "UPDATE pgbench ($1) failed"; }
}
update_run no-trigger-1

# --- under load: rounds of this build, the baseline and ALTER TABLE … STORED ----------------------
under_load() { # under_load PHASE COMMAND...: load, BENCH_BEFORE s, the change, BENCH_AFTER s
  local phase=$1
  shift
  "${pg[@]}" -c "VACUUM ANALYZE pgbench_accounts" -c "CHECKPOINT"
  log "$phase: pgbench -N -c $clients -j $jobs through seedproxy; ${before} s before the change"
  echo "$phase $(loadavg)" >>"$results/load.txt"
  load_start "$phase"
  sleep "$warm"
  event "$phase.before_start"
  sleep "$before"
  event "$phase.change_start"
  "$@"
  event "$phase.change_end"
  echo "$phase.change_end $(loadavg)" >>"$results/load.txt"
  sleep "$after"
  event "$phase.after_end"
  load_stop
}
materialize_run() { # materialize_run VARIANT ROUND: MATERIALIZE under load, check, ROLLBACK
  local variant=$1 attr="bc_$1_r$2" bin=$proxy_bin wrong
  [[ "$variant" != baseline ]] || bin=$baseline_bin
  proxy_use "$bin" "$attr"
  under_load "$variant-r$2" watch "materialize-$variant-r$2" "MATERIALIZE pgbench_accounts.$attr" "$attr" materialized
  wrong=$("${pg[@]}" -Atc "SELECT count(*) FROM pgbench_accounts WHERE $attr IS DISTINCT FROM ($expression)")
  echo "rows_wrong_$variant-r$2=$wrong" >>"$results/checks.env"
  ((wrong == 0)) || warn "$wrong rows where $attr differs from the expression after materialization"
  watch "rollback-$variant-r$2" "ROLLBACK pgbench_accounts.$attr" "$attr" rolled_back
}
alter_stored() { # alter_stored COLUMN
  local sql="ALTER TABLE pgbench_accounts ADD COLUMN $1 bigint GENERATED ALWAYS AS ($expression) STORED"
  local what="ALTER TABLE pgbench_accounts ADD COLUMN $1 … STORED"
  if [[ $seed_kind != row ]]; then # a generated column cannot hold a subquery: the hand-written migration
    sql="BEGIN; ALTER TABLE pgbench_accounts ADD COLUMN $1 bigint; UPDATE pgbench_accounts SET $1 = $expression; COMMIT"
    what="ALTER TABLE pgbench_accounts ADD COLUMN $1, UPDATE of every row, one transaction"
  fi
  log "$what (direct)"
  "${pg[@]}" -c "$sql" >"$results/alter.out" 2>&1 || { cat "$results/alter.out" >&2; die "ALTER TABLE failed"; }
}
stored_run() { # stored_run ROUND
  proxy_use "$proxy_bin" "$attr_idle"
  under_load "stored-r$1" alter_stored "bc_stored_r$1"
  "${pg[@]}" -c "ALTER TABLE pgbench_accounts DROP COLUMN bc_stored_r$1"
}
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order=(new baseline stored); else order=(stored baseline new); fi
  for v in "${order[@]}"; do
    case $v in
      stored) stored_run "$r" ;;
      baseline) [[ -z "$baseline_bin" ]] || materialize_run baseline "$r" ;;
      *) materialize_run "$v" "$r" ;;
    esac
  done
done

# --- without load; the write trigger's cost -------------------------------------------------------
proxy_use "$proxy_bin" "$attr_idle"
"${pg[@]}" -c "VACUUM ANALYZE pgbench_accounts" -c "CHECKPOINT"
echo "idle $(loadavg)" >>"$results/load.txt"
watch materialize-idle "MATERIALIZE pgbench_accounts.$attr_idle" "$attr_idle" materialized
update_run trigger
"${pg[@]}" -Atc "SELECT tgname FROM pg_trigger WHERE tgrelid = 'pgbench_accounts'::regclass AND NOT tgisinternal" \
  >"$results/triggers-during-update.txt"
watch rollback-idle "ROLLBACK pgbench_accounts.$attr_idle" "$attr_idle" rolled_back
schema_dump >"$results/schema-after-rollback.sql"
if diff -u "$results/schema-before.sql" "$results/schema-after-rollback.sql" >"$results/schema.diff"; then
  echo "schema_after_rollback=identical" >>"$results/checks.env"
else
  echo "schema_after_rollback=different" >>"$results/checks.env"
  warn "the schema after ROLLBACK differs from the one before; see $results/schema.diff"
fi
update_run no-trigger-2

stop_pid "$proxy_pid" seedproxy 20
proxy_pid=
"${pg[@]}" -c "VACUUM ANALYZE pgbench_accounts" -c "CHECKPOINT"
proxy_start "$results/seedproxy-fast.json" "$attr_fast"
echo "idle-fast $(loadavg)" >>"$results/load.txt"
watch materialize-fast "MATERIALIZE pgbench_accounts.$attr_fast" "$attr_fast" materialized
watch rollback-fast "ROLLBACK pgbench_accounts.$attr_fast" "$attr_fast" rolled_back
echo "end $(loadavg)" >>"$results/load.txt"

cat >"$results/meta.env" <<EOF
seedproxy_version=$("$proxy_bin" --version 2>&1 | head -n 1)
commit=$(if [[ -n "${SEEDPROXY_BIN:-}" ]]; then echo "not known: SEEDPROXY_BIN"; else
  git -C "$SEEDPROXY_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown
  git -C "$SEEDPROXY_ROOT" diff --quiet HEAD -- proxy config rewriter seeds 2>/dev/null || echo " +local changes"
fi | tr -d '\n')
binary=${proxy_bin#"$SEEDPROXY_ROOT"/}
pg_version=$("${pg[@]}" -Atc "SELECT split_part(version(), ' on ', 1)")
scale=$scale
rows=$rows
rounds=$rounds
baseline_binary=${baseline_bin:-none}
baseline_version=$(if [[ -n "$baseline_bin" ]]; then "$baseline_bin" --version 2>&1 | head -n 1; else echo none; fi)
clients=$clients
jobs=$jobs
mode=$mode
before=$before
after=$after
segment=$segment
update_seconds=$update_seconds
expression=$expression
seed_kind=$seed_kind
history_per_account=$history_per_account
load_settings=$(tr -s ' \n' ' ' <<<"$load_settings")
fast_settings=$(tr -s ' \n' ' ' <<<"$fast_settings")
EOF

"$PY" "$SEEDPROXY_ROOT/bench/materialize_report.py" "$results" "$pg_dir/postgres.log" >"$report"
echo
cat "$report"
echo
log "report saved to ${report#"$SEEDPROXY_ROOT"/}"
