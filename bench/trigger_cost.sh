#!/usr/bin/env bash
# The write trigger's cost alone: UPDATE throughput of pgbench_accounts straight to PostgreSQL with
# no trigger, with the engine's trigger (a PL/pgSQL function with SET search_path FROM CURRENT,
# fired WHEN the column would change), and with the same function without the SET clause; rounds
# interleaved so the machine's load drifts over all three alike. The column exists and is never
# backfilled, so table bloat plays no part (bench/materialize.sh measures the whole story).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

scale=${BENCH_SCALE:-2}
seconds=${BENCH_SECONDS:-8}
rounds=${BENCH_ROUNDS:-2}
dir=${BENCH_DIR:-$SEEDPROXY_ROOT/.bench}/trigger-cost-pg
mkdir -p "$(dirname "$dir")"
port=$(pgcluster_start "$dir")
trap 'pgcluster_stop "$dir"' EXIT
psql=(env PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -qAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres)
"$PGBIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -q -s "$scale" postgres >/dev/null 2>&1
value='((new.abalance::bigint * 100))::bigint'
"${psql[@]}" <<SQL
ALTER TABLE pgbench_accounts ADD COLUMN balance_cents bigint;
CREATE FUNCTION with_set() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT
  AS \$\$ BEGIN NEW.balance_cents := $value; RETURN NEW; END \$\$;
CREATE FUNCTION without_set() RETURNS trigger LANGUAGE plpgsql
  AS \$\$ BEGIN NEW.balance_cents := $value; RETURN NEW; END \$\$;
SQL
script=$(mktemp)
printf '\\set aid random(1, %d)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n' \
  $((scale * 100000)) >"$script"

printf 'round\ttrigger\ttps\tload\n'
for ((round = 1; round <= rounds; round++)); do
  for kind in none with_set without_set; do
    "${psql[@]}" -c 'DROP TRIGGER IF EXISTS zzzz_seedproxy_balance_cents ON pgbench_accounts' \
      -c 'VACUUM pgbench_accounts'
    if [[ $kind != none ]]; then
      "${psql[@]}" -c "CREATE TRIGGER zzzz_seedproxy_balance_cents BEFORE INSERT OR UPDATE ON
        pgbench_accounts FOR EACH ROW WHEN (new.balance_cents IS DISTINCT FROM $value)
        EXECUTE FUNCTION $kind()"
    fi
    tps=$("$PGBIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -M prepared -c 8 -j 2 -T "$seconds" \
      -n -f "$script" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n 1)
    printf '%d\t%s\t%s\t%s\n' "$round" "$kind" "$tps" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
rm -f "$script"
