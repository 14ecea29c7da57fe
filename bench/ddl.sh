#!/usr/bin/env bash
# DDL through seedproxy against DDL straight into PostgreSQL (issue 13, section 3): one psql script
# per scenario, run alternately direct and through the proxy, ratios of the median wall times.
#
#   none   200 CREATE TABLE in a database without a registry
#   other  200 CREATE TABLE in a database whose seed is on another table
#   same   200 ALTER TABLE ... ADD COLUMN on the seeded table itself
#   read   100 times ALTER TABLE ... ADD COLUMN on the seeded table, then a SELECT of the seed
#          (the statement after the DDL involves the seed, so it waits for the catalog refresh)
#
# Between runs (not timed) the created tables are dropped and the seeded table of `same`/`read` is
# made anew (dropped columns keep their attnum; a table has at most 1600).
#
# Usage: bench/ddl.sh [SEEDPROXY_BINARY]   (default build/proxy/seedproxy)
# Environment: BENCH_ROUNDS (default 7), BENCH_STATEMENTS (200), BENCH_DIR (.bench),
# BENCH_SCENARIOS (default "none other same read"; a subset runs only those).
# Prints one line per run (scenario, round, target, seconds, and the CPU time
# seedproxy's process used during the run, all threads, in µs) and then a summary table: wall
# time ratios, and the proxy's CPU per statement (less noisy than wall time on a loaded machine).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

proxy_bin=${1:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
[[ -x "$proxy_bin" ]] || die "no seedproxy binary at $proxy_bin; build first or pass its path"
rounds=${BENCH_ROUNDS:-7}
statements=${BENCH_STATEMENTS:-200}
scenarios=${BENCH_SCENARIOS:-none other same read}
dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}/ddl
rm -rf "$dir/work"
mkdir -p "$dir/work"
work=$dir/work

pg_port=$(pgcluster_start "$dir/pg")
proxy_pid=
cleanup() {
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 10; fi
  pgcluster_stop "$dir/pg"
}
trap cleanup EXIT
psql=(env PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1
  -h 127.0.0.1 -U postgres)

# --- databases and seeds --------------------------------------------------------------------------
for db in bench_none bench_other bench_same; do
  "${psql[@]}" -p "$pg_port" -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
for db in bench_other bench_same; do
  "${psql[@]}" -p "$pg_port" -d "$db" \
    -c "CREATE TABLE anchor (id int PRIMARY KEY, amount numeric NOT NULL)" \
    -c "INSERT INTO anchor SELECT g, g FROM generate_series(1, 1000) g"
done

proxy_port=$(free_port 17532)
cat >"$work/seedproxy.json" <<EOF
{
  "listen": {"host": "127.0.0.1", "port": $proxy_port},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "control": {"user": "postgres"},
  "runtime": {"threads": 1, "shutdown_grace_seconds": 5},
  "materialization": {"enabled": false},
  "log": {"level": "warning"},
  "seeds": [
    {"database": "bench_other", "entity": "public.anchor", "attribute": "doubled",
     "type": "numeric", "expression": "amount * 2", "materialize": {"policy": "never"}},
    {"database": "bench_same", "entity": "public.anchor", "attribute": "doubled",
     "type": "numeric", "expression": "amount * 2", "materialize": {"policy": "never"}}
  ]
}
EOF
"$proxy_bin" --config "$work/seedproxy.json" >"$work/seedproxy.log" 2>&1 &
proxy_pid=$!
wait_for_port "$proxy_port" "$proxy_pid" 15 || { cat "$work/seedproxy.log" >&2; die "seedproxy did not start"; }
"${psql[@]}" -p "$proxy_port" -d bench_same -Atc "SELECT doubled FROM anchor WHERE id = 1" >/dev/null ||
  die "the seed is not served through the proxy"

# --- the scripts ----------------------------------------------------------------------------------
for ((i = 1; i <= statements; i++)); do
  printf 'CREATE TABLE created_%d (id int PRIMARY KEY, note text, amount numeric);\n' "$i"
done >"$work/create.sql"
for ((i = 1; i <= statements; i++)); do
  printf 'ALTER TABLE anchor ADD COLUMN c_%d int;\n' "$i"
done >"$work/alter.sql"
for ((i = 1; i <= statements / 2; i++)); do
  printf 'ALTER TABLE anchor ADD COLUMN c_%d int;\nSELECT doubled FROM anchor WHERE id = 1;\n' "$i"
done >"$work/read.sql"
# Directly there is no seed: the same value, spelled out.
sed 's/SELECT doubled FROM/SELECT amount * 2 AS doubled FROM/' "$work/read.sql" >"$work/read_direct.sql"

declare -A script_of=([none]=create [other]=create [same]=alter [read]=read)
declare -A database_of=([none]=bench_none [other]=bench_other [same]=bench_same [read]=bench_same)
declare -A port_of=([direct]=$pg_port [seedproxy]=$proxy_port)

# What a run created goes again (not timed). The altered table is made anew straight in PostgreSQL,
# as dropped columns keep their attnum and a table has at most 1600; then one ALTER through the
# proxy, so the proxy's catalog knows the new table before the timed run.
reset() {
  local db=$1
  "${psql[@]}" -p "$pg_port" -d "$db" -At <<'SQL' >/dev/null
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT relname FROM pg_class WHERE relname LIKE 'created\_%' AND relkind = 'r' LOOP
    EXECUTE format('DROP TABLE %I', r.relname);
  END LOOP;
END $$;
SQL
  if [[ $db == bench_same ]]; then
    "${psql[@]}" -p "$pg_port" -d "$db" -c "DROP TABLE anchor" \
      -c "CREATE TABLE anchor (id int PRIMARY KEY, amount numeric NOT NULL)" \
      -c "INSERT INTO anchor SELECT g, g FROM generate_series(1, 1000) g" >/dev/null
    "${psql[@]}" -p "$proxy_port" -d "$db" -c "ALTER TABLE anchor ADD COLUMN warm int" \
      -c "ALTER TABLE anchor DROP COLUMN warm" >/dev/null
  fi
}

# CPU time of the seedproxy process so far, every thread, in microseconds: the scheduler's own
# nanosecond count (/proc/PID/task/*/schedstat, first field), finer than the 10 ms of /proc/PID/stat.
proxy_cpu_us() {
  cat /proc/"$proxy_pid"/task/*/schedstat | awk '{ ns += $1 } END { printf "%d", ns / 1000 }'
}

printf 'scenario\tround\ttarget\tseconds\tproxy_cpu_us\n' | tee "$work/runs.tsv"
for ((round = 1; round <= rounds; round++)); do
  for scenario in $scenarios; do
    # Alternate which target goes first, so a neighbour's load drifts over both alike.
    targets=(direct seedproxy)
    if ((round % 2 == 0)); then targets=(seedproxy direct); fi
    for target in "${targets[@]}"; do
      db=${database_of[$scenario]}
      reset "$db"
      script=${script_of[$scenario]}
      if [[ $scenario == read && $target == direct ]]; then script=read_direct; fi
      cpu_before=$(proxy_cpu_us)
      started=$(date +%s.%N)
      "${psql[@]}" -p "${port_of[$target]}" -d "$db" -f "$work/$script.sql" >/dev/null
      ended=$(date +%s.%N)
      cpu=$(($(proxy_cpu_us) - cpu_before))
      # Directly, the proxy's CPU is what it spends idle meanwhile (its timers, the registry's
      # heartbeats): the `idle` column of the summary.
      printf '%s\t%d\t%s\t%.4f\t%d\n' "$scenario" "$round" "$target" \
        "$(echo "$ended - $started" | bc)" "$cpu" | tee -a "$work/runs.tsv"
    done
  done
done

"$PY" - "$work/runs.tsv" "$statements" "$scenarios" <<'PY'
import csv, statistics, sys
runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
rounds = max(int(r["round"]) for r in runs)
print(f"\nscenario  statements  direct_s  seedproxy_s  ratio  paired  proxy_cpu_us/stmt  idle"
      f"   (medians of {rounds} rounds)")
for scenario in sys.argv[3].split():
    s = {(r["target"], int(r["round"])): float(r["seconds"]) for r in runs if r["scenario"] == scenario}
    cpu = {k: statistics.median(float(r["proxy_cpu_us"]) / int(sys.argv[2]) for r in runs
                                if r["scenario"] == scenario and r["target"] == k)
           for k in ("direct", "seedproxy")}
    t = {k: statistics.median(v for (target, _), v in s.items() if target == k)
         for k in ("direct", "seedproxy")}
    # Each round's two runs are back to back: their ratio sees the same neighbours' load.
    paired = statistics.median(s[("seedproxy", n)] / s[("direct", n)] for n in range(1, rounds + 1))
    print(f"{scenario:<9} {sys.argv[2]:>10}  {t['direct']:8.3f}  {t['seedproxy']:11.3f}  "
          f"{t['seedproxy'] / t['direct']:5.2f}x  {paired:5.2f}x  {cpu['seedproxy']:17.1f}  {cpu['direct']:4.1f}")
PY
