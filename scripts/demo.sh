#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL with the `bank` database under .demo/, seedproxy in front of it.
# Runs until Ctrl-C or SIGTERM, then stops the proxy and PostgreSQL. Safe to run again.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: scripts/demo.sh [--reset] [--port N] [--no-build] [--no-tour]

Installs dependencies, builds seedproxy, starts PostgreSQL in .demo/pg with the demo database
'bank', and seedproxy on port 6432 (or the next free one) in front of it. Ctrl-C stops both.

  --reset     throw .demo/ away first (fresh cluster, fresh data)
  --port N    proxy port to use (default: 6432 or the next free port; also SEEDPROXY_DEMO_PORT)
  --no-build  skip dependency install and build (use the existing build/proxy/seedproxy)
  --no-tour   skip the narrated lifecycle of txn.amount_cents (scripts/demo_tour.sh) on a fresh
              database: read while virtual, reads climbing, materialization, rollback
EOF
}

reset=0
build=1
tour=1
port_wanted=${SEEDPROXY_DEMO_PORT:-}
while (($#)); do
  case $1 in
    --reset) reset=1 ;;
    --no-build) build=0 ;;
    --no-tour) tour=0 ;;
    --port)
      (($# >= 2)) || die "--port needs a number"
      port_wanted=$2
      shift
      ;;
    --port=*) port_wanted=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[[ -z "$port_wanted" || "$port_wanted" =~ ^[0-9]+$ ]] || die "--port: not a number: $port_wanted"

demo_dir=$SEEDPROXY_ROOT/.demo
pg_dir=$demo_dir/pg
config=$demo_dir/seedproxy.json
proxy_log=$demo_dir/seedproxy.log
pid_file=$demo_dir/seedproxy.pid
proxy_bin=${SEEDPROXY_BIN:-$SEEDPROXY_ROOT/build/proxy/seedproxy}
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)

# --- one demo at a time per checkout -------------------------------------------------------------
if [[ -f "$pid_file" ]]; then
  old_pid=$(<"$pid_file")
  if [[ "$old_pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$old_pid/comm" 2>/dev/null)" == seedproxy ]]; then
    die "a demo is already running here (seedproxy pid $old_pid): stop it with Ctrl-C in its terminal, or kill $old_pid"
  fi
  rm -f "$pid_file"
fi

if ((build)); then
  "$SEEDPROXY_ROOT/scripts/setup.sh"
  "$SEEDPROXY_ROOT/scripts/build.sh" --target seedproxy
fi
[[ -x "$proxy_bin" ]] || die "$proxy_bin is missing: run scripts/build.sh"
need_pgcluster

# --- cleanup: whatever this run started, it stops (proxy first, then PostgreSQL) ---------------------
proxy_pid=
tail_pid=
pg_started=0
# shellcheck disable=SC2317  # called from traps
cleanup() {
  # Ignore further signals while cleaning up: timeout(1) signals the script and then its whole
  # process group, and an impatient second Ctrl-C must not leave PostgreSQL running.
  trap - EXIT
  trap '' INT TERM
  if [[ -n "$proxy_pid" ]]; then stop_pid "$proxy_pid" seedproxy 20 || true; fi
  if [[ -n "$tail_pid" ]]; then
    sleep 0.3 # lets tail show the proxy's last lines
    kill "$tail_pid" 2>/dev/null || true
    wait "$tail_pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
  if ((pg_started)); then
    log "stopping PostgreSQL ($pg_dir)"
    pgcluster_stop "$pg_dir" || true
  fi
}
# shellcheck disable=SC2317
on_signal() {
  echo >&2
  log "stopping the demo"
  cleanup
  log "demo stopped"
  exit 0
}
trap cleanup EXIT
trap on_signal INT TERM

if ((reset)) && [[ -d "$demo_dir" ]]; then
  log "--reset: removing $demo_dir"
  if [[ -d "$pg_dir" ]]; then pgcluster_stop "$pg_dir" 2>/dev/null || true; fi
  rm -rf "$demo_dir"
fi
mkdir -p "$demo_dir"

# --- PostgreSQL with the bank database ----------------------------------------------------------
log "starting PostgreSQL in $pg_dir"
pg_started=1
pg_port=$(pgcluster_start "$pg_dir")
log "PostgreSQL listens on 127.0.0.1:$pg_port"

# The load runs in one transaction, so `txn` exists exactly when the data is complete.
has_bank=$("${psql[@]}" -p "$pg_port" -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'bank'")
loaded=0
if [[ "$has_bank" == 1 ]]; then
  loaded=$("${psql[@]}" -p "$pg_port" -d bank -Atc "SELECT (to_regclass('public.txn') IS NOT NULL)::int")
fi
if [[ "$loaded" == 1 ]]; then
  log "database bank already loaded (use --reset to reload it)"
else
  log "loading database bank"
  PGOPTIONS="-c client_min_messages=warning" "${psql[@]}" -p "$pg_port" -d postgres \
    -c "DROP DATABASE IF EXISTS bank" -c "CREATE DATABASE bank"
  "${psql[@]}" -p "$pg_port" -d bank -1 -f "$SEEDPROXY_ROOT/scripts/demo/bank.sql"
fi
counts=$("${psql[@]}" -p "$pg_port" -d bank -Atc \
  "SELECT (SELECT count(*) FROM account) || ' accounts, ' || (SELECT count(*) FROM txn) || ' transactions'")
log "bank: $counts"

# --- seedproxy configuration --------------------------------------------------------------------
if [[ -n "$port_wanted" ]]; then
  port_is_free "$port_wanted" || die "port $port_wanted is in use; pick another with --port"
  proxy_port=$port_wanted
else
  proxy_port=$(free_port 6432)
fi
metrics_port=$(free_port $((proxy_port + 1000)))

write_config() { # write_config FILE SEEDS_JSON
  cat >"$1" <<EOF
{
  "listen": {"host": "127.0.0.1", "port": $proxy_port},
  "upstream": {"host": "127.0.0.1", "port": $pg_port},
  "admin": {"users": ["postgres"]},
  "metrics": {"host": "127.0.0.1", "port": $metrics_port},
  "runtime": {"threads": 1, "shutdown_grace_seconds": 5},
  "log": {"level": "info"},
  "materialization": {"reads_flush_seconds": 1,
                      "initial_batch_rows": 500, "max_batch_rows": 2000, "target_batch_seconds": 0.05},
  "seeds": $2
}
EOF
}
seed='{"database": "bank", "entity": "public.account", "attribute": "risk_score", "type": "numeric(8,2)",
     "expression": "balance / 1000.0 + credit_limit / 500.0", "materialize": {"policy": "manual"}}'
# The tour's seed: hot after 100 reads in an hour, then materialized by the proxy on its own.
tour_seed='{"database": "bank", "entity": "public.txn", "attribute": "amount_cents", "type": "bigint",
     "expression": "(amount * 100)::bigint", "materialize": {"policy": "threshold", "reads": 100, "window_seconds": 3600}}'
write_config "$config.candidate" "[
    $seed,
    $tour_seed
  ]"
seeded=0
if check_out=$("$proxy_bin" --check-config "$config.candidate" 2>&1); then
  mv "$config.candidate" "$config"
  seeded=1
else
  rm -f "$config.candidate"
  warn "seedproxy --check-config rejects the demo seed, so the demo runs without it: $check_out"
  write_config "$config" "[]"
  "$proxy_bin" --check-config "$config" >/dev/null || die "seedproxy rejects the demo configuration $config"
fi

# --- seedproxy ----------------------------------------------------------------------------------
log "starting seedproxy on 127.0.0.1:$proxy_port (log: ${proxy_log#"$SEEDPROXY_ROOT"/})"
: >"$proxy_log"
"$proxy_bin" --config "$config" >>"$proxy_log" 2>&1 &
proxy_pid=$!
echo "$proxy_pid" >"$pid_file"
if ! wait_for_port "$proxy_port" "$proxy_pid" 15; then
  tail -n 20 "$proxy_log" >&2 || true
  die "seedproxy did not start listening on port $proxy_port"
fi

# A first query through the proxy proves the whole path before we tell anyone to connect.
through_proxy=$("${psql[@]}" -p "$proxy_port" -d bank -Atc "SELECT count(*) FROM account") ||
  die "a query through seedproxy failed; see $proxy_log"
log "through seedproxy: SELECT count(*) FROM account -> $through_proxy"
seed_live=0
if ((seeded)) && "${psql[@]}" -p "$proxy_port" -d bank -Atc "SELECT risk_score FROM account LIMIT 1" >/dev/null 2>&1; then
  seed_live=1
fi

cat <<EOF

${_c_bold}seedproxy is running${_c_off} on 127.0.0.1:$proxy_port, in front of PostgreSQL on 127.0.0.1:$pg_port.

Connect (no password):

    psql -h 127.0.0.1 -p $proxy_port -U postgres bank

Try:

    SELECT id, owner, balance, credit_limit FROM account ORDER BY balance DESC LIMIT 5;

    SELECT a.owner, count(*) AS txns, sum(t.amount) AS total
    FROM account a JOIN txn t ON t.account_id = a.id
    GROUP BY a.owner ORDER BY total DESC LIMIT 5;

    BEGIN; UPDATE account SET balance = balance - 100 WHERE id = 42; ROLLBACK;
EOF
if ((seed_live)); then
  cat <<EOF

The seed account.risk_score (= balance / 1000.0 + credit_limit / 500.0, as numeric(8,2)) is
declared in the configuration. PostgreSQL has no such column (\\d account), yet through the proxy:

    SELECT id, owner, balance, credit_limit, risk_score FROM account ORDER BY risk_score DESC LIMIT 5;

    SELECT * FROM account WHERE id = 42;

    SELECT count(*) FROM account WHERE risk_score > 30;

    UPDATE account SET risk_score = 0 WHERE id = 1;   -- refused, as for a generated column

Where the seed is kept: the proxy wrote it to the registry in the database (\\dt seedproxy.*).
EOF
elif ((seeded)); then
  cat <<EOF

The configuration declares the seed account.risk_score (= balance / 1000.0 + credit_limit / 500.0).
This build does not answer for it yet, so PostgreSQL says the column does not exist:

    SELECT id, owner, risk_score FROM account LIMIT 5;
EOF
fi
cat <<EOF

The admin console (docs/admin.md), PgBouncer-style:

    psql -h 127.0.0.1 -p $proxy_port -U postgres seedproxy      -- then SHOW SEEDS; SHOW CLIENTS; SHOW STATS;

Status page and Prometheus metrics (docs/metrics.md): http://127.0.0.1:$metrics_port/ and /metrics

Edit ${config#"$SEEDPROXY_ROOT"/} and save it (or kill -HUP $proxy_pid): the proxy reloads it without
dropping a connection, or logs why it refused it and keeps the old one.

Files: config ${config#"$SEEDPROXY_ROOT"/}, proxy log ${proxy_log#"$SEEDPROXY_ROOT"/}, cluster ${pg_dir#"$SEEDPROXY_ROOT"/}.
Press Ctrl-C to stop the proxy and PostgreSQL. seedproxy's log follows.

EOF

if ((seed_live && tour)); then
  "$SEEDPROXY_ROOT/scripts/demo_tour.sh" "$proxy_port" "$pg_port" "$metrics_port" ||
    warn "the lifecycle tour stopped early; the proxy keeps running (see $proxy_log)"
  echo
  log "seedproxy's log follows; Ctrl-C stops the proxy and PostgreSQL"
fi

tail -n +1 -f -s 0.2 --pid="$proxy_pid" "$proxy_log" &
tail_pid=$!

# Signals interrupt this wait and run on_signal. Reaching the next line means the proxy died by itself.
proxy_status=0
wait "$proxy_pid" || proxy_status=$?
proxy_pid=
warn "seedproxy exited on its own (status $proxy_status); see $proxy_log"
exit 1
