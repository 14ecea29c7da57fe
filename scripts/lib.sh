# Shared helpers for the scripts in scripts/ and bench/: paths, logging, ports, process control.
# shellcheck shell=bash disable=SC2034
# Source it; it defines functions and variables and runs nothing else.

SEEDPROXY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Debian's interpreter: it has psycopg. The python3 first on PATH may be another one without it.
PY=/usr/bin/python3
PGBIN=/usr/lib/postgresql/15/bin
PGCLUSTER="$SEEDPROXY_ROOT/tests/harness/pgcluster.py"

if [[ -t 2 ]]; then
  _c_bold=$'\e[1m' _c_red=$'\e[31m' _c_off=$'\e[0m'
else
  _c_bold='' _c_red='' _c_off=''
fi

log() { printf '%s==>%s %s\n' "$_c_bold" "$_c_off" "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "$_c_red" "$_c_off" "$*" >&2; }
die() {
  printf '%serror:%s %s\n' "$_c_red" "$_c_off" "$*" >&2
  exit 1
}

# port_is_free PORT: nothing listens on 127.0.0.1:PORT and we could bind it.
port_is_free() {
  "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# free_port START: the first free port at or above START.
free_port() {
  local port=$1
  while ! port_is_free "$port"; do
    port=$((port + 1))
    ((port < 65536)) || die "no free TCP port at or above $1"
  done
  echo "$port"
}

# port_accepts PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_accepts() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for_port PORT PID SECONDS: wait until PORT accepts; fails early if PID exits.
wait_for_port() {
  local port=$1 pid=$2 deadline=$((SECONDS + $3))
  until port_accepts "$port"; do
    kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# stop_pid PID NAME SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL. Quiet if already gone.
stop_pid() {
  local pid=$1 name=$2 deadline=$((SECONDS + $3))
  kill -0 "$pid" 2>/dev/null || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      warn "$name did not stop within $3 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  # Reap it if it is our child, so no zombie is left and its status is not reported later.
  wait "$pid" 2>/dev/null || true
}

# need_pgcluster: the test harness's cluster starter must be present.
need_pgcluster() {
  [[ -f "$PGCLUSTER" ]] || die "tests/harness/pgcluster.py is missing; it starts the throwaway PostgreSQL"
}

# pgcluster_start DIR [ARGS...]: start (initdb on first use) a cluster in DIR; prints its port.
pgcluster_start() {
  local dir=$1 out port
  shift
  need_pgcluster
  out=$("$PY" "$PGCLUSTER" start --dir "$dir" "$@") || die "could not start PostgreSQL in $dir (see its log there)"
  port=$(sed -n 's/^port=\([0-9][0-9]*\)$/\1/p' <<<"$out" | tail -n 1)
  [[ -n "$port" ]] || die "pgcluster.py start printed no port=NNNN line: $out"
  echo "$port"
}

pgcluster_stop() {
  "$PY" "$PGCLUSTER" stop --dir "$1" >&2 || warn "could not stop PostgreSQL in $1"
}
