#!/usr/bin/env bash
# The lifecycle of one seed on the demo database, narrated step by step with the command behind
# each step: a virtual attribute read through psql, reads climbing in SHOW SEEDS and the metrics,
# the materialization it triggers with its progress, reads served by the new column, and the
# rollback that leaves the schema as it was. scripts/demo.sh runs it once on a fresh database;
# run it by hand against a running demo with:
#   scripts/demo_tour.sh PROXY_PORT POSTGRES_PORT METRICS_PORT
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 3)) || die "usage: scripts/demo_tour.sh PROXY_PORT POSTGRES_PORT METRICS_PORT"
proxy_port=$1
pg_port=$2
metrics_port=$3
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
psql=("$PGBIN/psql" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)
seed=txn.amount_cents

step() { printf '\n%s== %s ==%s\n' "$_c_bold" "$*" "$_c_off"; }
# Shows the command a reader can type, then runs it.
run() {
  printf '%s$ %s%s\n' "$_c_bold" "$1" "$_c_off"
  bash -c "$1" 2>&1 | sed 's/^/    /'
}
console() { "${psql[@]}" -p "$proxy_port" -d seedproxy -Atc "$1"; }
phase() { console "SHOW SEEDS" | awk -F'|' '$2 == "public.txn" && $3 == "amount_cents" {print $5}'; }
p="psql -h 127.0.0.1 -U postgres"

[[ "$(phase)" == virtual ]] || {
  log "the tour's seed $seed is '$(phase)', not virtual: the tour ran before (scripts/demo.sh --reset runs it again)"
  exit 0
}

step "1. A virtual attribute: PostgreSQL has no column amount_cents, the proxy answers for it"
run "$p -p $pg_port bank -c '\\d txn' | grep -c amount_cents || true   # direct to PostgreSQL: 0 lines"
run "$p -p $proxy_port bank -c 'SELECT id, amount, amount_cents FROM txn ORDER BY id LIMIT 3'"

step "2. Reads climb: the seed materializes after 100 reads in an hour (materialize.policy threshold)"
reads_sql=$(for _ in $(seq 100); do echo "SELECT sum(amount_cents) FROM txn WHERE account_id = 42;"; done)
printf '%s$ (100 times) %s -p %s bank -c "SELECT sum(amount_cents) FROM txn WHERE account_id = 42"%s\n' \
  "$_c_bold" "$p" "$proxy_port" "$_c_off"
"${psql[@]}" -p "$proxy_port" -d bank -Atq <<<"$reads_sql" >/dev/null
run "python3 -c \"import urllib.request; print(''.join(l for l in urllib.request.urlopen('http://127.0.0.1:$metrics_port/metrics').read().decode().splitlines(True) if l.startswith('seedproxy_attribute_reads_total') and 'amount_cents' in l))\""
run "$p -p $proxy_port seedproxy -c 'SHOW SEEDS'   # reads: summed over proxies in the registry, refreshed every few seconds"

echo "    (the status page, http://127.0.0.1:$metrics_port/, shows the same reads against the threshold)"

step "3. Materialization: add the column, install the write trigger, backfill in batches, verify"
printf '%s$ %s -p %s seedproxy -c "SHOW MATERIALIZATIONS"   (polled)%s\n' "$_c_bold" "$p" "$proxy_port" "$_c_off"
deadline=$((SECONDS + 180))
last=
while :; do
  row=$(console "SHOW MATERIALIZATIONS" | awk -F'|' '$2 == "public.txn" && $3 == "amount_cents"')
  IFS='|' read -r _ _ _ step_name paused done total percent rate eta _ error _ <<<"$row"
  line="step ${step_name:-waiting for the read counts to reach the registry}"
  [[ -n "$percent" ]] && line+=", ${percent%%.*}% ($done of ~$total rows)"
  [[ -n "$rate" ]] && line+=", ${rate%%.*} rows/s"
  [[ -n "$eta" ]] && line+=", ETA ${eta%%.*} s"
  [[ "$paused" == t ]] && line+=" (paused)"
  [[ -n "$error" ]] && line+=" (error: $error)"
  [[ "$line" != "$last" ]] && echo "    $line"
  last=$line
  [[ "$step_name" == materialized ]] && break
  ((SECONDS < deadline)) || die "the materialization did not finish in 180 s; see SHOW MATERIALIZATIONS and the proxy log"
  sleep 0.3
done

step "4. Reads now use the column: PostgreSQL has it, the proxy passes the statement through"
run "$p -p $pg_port bank -c '\\d txn' | grep amount_cents"
run "$p -p $proxy_port bank -c 'SELECT id, amount, amount_cents FROM txn ORDER BY id LIMIT 3'"
run "$p -p $proxy_port seedproxy -c 'SHOW SEEDS' | grep amount_cents"

step "5. Rollback: the trigger, its function and the column go; the schema is what it was"
run "$p -p $proxy_port seedproxy -c 'ROLLBACK $seed'"
deadline=$((SECONDS + 60))
until [[ "$(phase)" == rolled_back ]]; do
  ((SECONDS < deadline)) || die "the rollback did not finish in 60 s"
  sleep 0.2
done
run "$p -p $pg_port bank -c '\\d txn' | grep -c amount_cents || true   # 0 lines again"
run "$p -p $proxy_port bank -c 'SELECT amount_cents FROM txn LIMIT 1' || true   # PostgreSQL's own error"

cat <<EOF

Do it yourself with account.risk_score (policy manual: only MATERIALIZE starts it):

    $p -p $proxy_port seedproxy -c 'MATERIALIZE account.risk_score'
    $p -p $proxy_port seedproxy -c 'SHOW MATERIALIZATIONS'
    $p -p $proxy_port seedproxy -c 'PAUSE account.risk_score'     # and RESUME account.risk_score
    $p -p $proxy_port seedproxy -c 'ROLLBACK account.risk_score'
EOF
