#!/usr/bin/env bash
# Shared by the pgbench benchmarks: interleaved rounds over several targets, with the proxy's CPU
# time per run, recorded in runs.tsv for the report scripts (bench/bench_stats.py reads it).
#
# The calling script sources scripts/lib.sh and this file, then defines:
#   bench_pgbench TARGET MODE SECONDS [LOG_PREFIX]   runs pgbench once; output on stdout/stderr
#   declare -A bench_pid=([target]=PID ...)          the proxy process per target (0: none)
# and sets bench_results (directory) before calling bench_warm_up / bench_rounds.

bench_pgbench_pid=

# bench_cpu_ticks PID: user + system CPU time the process has used so far, in clock ticks; 0 for 0.
bench_cpu_ticks() {
  if (($1 == 0)); then echo 0; return; fi
  # Fields 14 and 15 of /proc/PID/stat; the process names here have no spaces.
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# bench_run TARGET MODE SECONDS OUTPUT [LOG_PREFIX]: bench_pgbench in the background, so a signal
# reaches the caller's trap at once rather than after the run; output into OUTPUT.
bench_run() {
  local target=$1 mode=$2 seconds=$3 output=$4
  shift 4
  bench_pgbench "$target" "$mode" "$seconds" "$@" >"$output" 2>&1 &
  bench_pgbench_pid=$!
  local status=0
  wait "$bench_pgbench_pid" || status=$?
  bench_pgbench_pid=
  return "$status"
}

# bench_stop_pgbench: for the caller's cleanup trap.
bench_stop_pgbench() {
  if [[ -n "$bench_pgbench_pid" ]]; then stop_pid "$bench_pgbench_pid" pgbench 5 || true; fi
}

# bench_warm_up SECONDS "MODES" TARGET...: discarded runs, one per target and mode.
bench_warm_up() {
  local seconds=$1 modes=$2 mode t
  shift 2
  ((seconds > 0)) || return 0
  for mode in $modes; do
    for t in "$@"; do
      log "warm-up: $t ($mode), ${seconds} s"
      bench_run "$t" "$mode" "$seconds" "$bench_results/warmup-$t-$mode.out" ||
        { cat "$bench_results/warmup-$t-$mode.out" >&2; die "warm-up against $t ($mode) failed"; }
    done
  done
}

# bench_rounds SECONDS ROUNDS "MODES" TARGET...: every round runs each target once, in an order
# rotated every round, so drift over time (caches, CPU clock, a neighbour's builds) spreads over
# all targets instead of favouring one. Appends one line per run to $bench_results/runs.tsv:
# mode, round, target, exit status, tps, pgbench log prefix, transactions, proxy CPU ticks.
bench_rounds() {
  local seconds=$1 rounds=$2 modes=$3
  shift 3
  local targets=("$@") mode r k t prefix status before after tps xacts n=0
  local total=$(($(wc -w <<<"$modes") * rounds * ${#targets[@]}))
  for mode in $modes; do
    for ((r = 1; r <= rounds; r++)); do
      for ((k = 0; k < ${#targets[@]}; k++)); do
        t=${targets[$(((k + r - 1) % ${#targets[@]}))]}
        n=$((n + 1))
        prefix=$bench_results/$t-$mode-$r
        status=0
        before=$(bench_cpu_ticks "${bench_pid[$t]:-0}")
        bench_run "$t" "$mode" "$seconds" "$prefix.out" "$prefix" || status=$?
        after=$(bench_cpu_ticks "${bench_pid[$t]:-0}")
        tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$prefix.out")
        xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*$/\1/p' "$prefix.out")
        if ((status != 0)) || [[ -z "$tps" ]]; then
          warn "pgbench against $t ($mode, round $r) failed; see $prefix.out"
          if ((status == 0)); then status=1; fi
        fi
        log "[$n/$total] $mode round $r: $t ${tps:-failed} tps"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$r" "$t" "$status" "$tps" "$prefix" \
          "${xacts:-0}" "$((after - before))" >>"$bench_results/runs.tsv"
      done
    done
  done
}

# bench_pgbouncer_start DIR PORT PG_PORT [SETTING...]: PgBouncer in session mode with trust
# authentication on 127.0.0.1:PORT in front of PostgreSQL on PG_PORT, its files in DIR (the
# configuration, userlist.txt, pgbouncer.log, stderr.log), each SETTING ("key = value") added to
# its [pgbouncer] section; started in the background, its pid in bench_pgbouncer_pid (the caller
# keeps it for its cleanup, then waits for the port). As root it runs as postgres (PgBouncer
# refuses root; setpriv execs, so the pid is PgBouncer's own).
bench_pgbouncer_start() {
  local dir=$1 port=$2 pg_port=$3
  shift 3
  mkdir -p "$dir"
  printf '"postgres" ""\n' >"$dir/userlist.txt"
  {
    printf '; Written by bench/%s\n[databases]\n* = host=127.0.0.1 port=%s\n\n[pgbouncer]\n' \
      "$(basename "$0")" "$pg_port"
    printf '%s\n' "listen_addr = 127.0.0.1" "listen_port = $port" "unix_socket_dir =" \
      "auth_type = trust" "auth_file = $dir/userlist.txt" "pool_mode = session" \
      "logfile = $dir/pgbouncer.log" "pidfile = $dir/pgbouncer.pid" "log_connections = 0" \
      "log_disconnections = 0" "$@"
  } >"$dir/pgbouncer.ini"
  local cmd=(/usr/sbin/pgbouncer "$dir/pgbouncer.ini")
  if ((EUID == 0)); then
    chown -R postgres: "$dir"
    cmd=(setpriv --reuid=postgres --regid=postgres --init-groups "${cmd[@]}")
  fi
  rm -f "$dir/pgbouncer.pid"
  "${cmd[@]}" >"$dir/stderr.log" 2>&1 &
  bench_pgbouncer_pid=$!
}
