#!/usr/bin/env bash
# Installs everything seedproxy needs to build, test, demo and benchmark, from Debian 12's packages.
# Idempotent: when every package is already there it touches nothing and returns at once.
# --fuzz adds clang 14, its libFuzzer and sanitizer runtimes and llvm-symbolizer (scripts/fuzz.sh).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

fuzz=0
for arg in "$@"; do
  case $arg in
    --fuzz) fuzz=1 ;;
    *) die "usage: scripts/setup.sh [--fuzz]" ;;
  esac
done

packages=(
  build-essential cmake git
  libboost1.81-dev libpq-dev libpg-query-dev libprotobuf-c-dev nlohmann-json3-dev
  prometheus-cpp-dev doctest-dev libssl-dev
  postgresql-15 postgresql-client-15 pgbouncer
  python3 python3-psycopg python3-psycopg2 python3-yaml
  procps strace # bench/passthrough.sh: system calls per transaction
  dpkg-dev postgresql-server-dev-15 # tests/regress: apt-get source of the regression suite, headers for regress.so
  chromium fonts-liberation # headless, for tests/e2e/test_status_page.py (the status page in a browser)
  openssl openjdk-17-jdk-headless libpostgresql-jdbc-java # tests/e2e/test_tls*.py: certificates, pgjdbc
  # node-postgres comes from npm at test time (tests/e2e/test_tls_drivers.py), with the node on PATH
)
# node and npm for that test: Debian's, unless a node with its npm is already installed (a
# NodeSource nodejs ships npm itself, and Debian's npm package would conflict with it).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi
if ((fuzz)); then
  packages+=(clang-14 libclang-rt-14-dev llvm-14)
fi
# Boost 1.74's development packages claim the same headers as libboost1.81-dev.
conflicting=(libboost-dev libboost1.74-dev libboost-all-dev libboost1.74-all-dev)

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  die "this script installs Debian packages; on another system install the equivalents of: ${packages[*]}"
fi

# One dpkg-query for all names keeps the no-op case fast.
declare -A installed=()
while read -r name status; do
  if [[ "$status" == installed ]]; then installed[$name]=1; fi
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" "${conflicting[@]}" 2>/dev/null || true)
is_installed() { [[ -n "${installed[$1]:-}" ]]; }

missing=()
for p in "${packages[@]}"; do is_installed "$p" || missing+=("$p"); done
remove=()
for p in "${conflicting[@]}"; do is_installed "$p" && remove+=("$p"); done

if ((${#missing[@]} == 0 && ${#remove[@]} == 0)); then
  log "dependencies: all present"
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null ||
    die "installing packages needs root: run this as root, or install sudo, or install by hand: ${missing[*]}"
  sudo=(sudo)
fi
# env passes the variables through sudo too; the lock timeout waits out a concurrent apt instead of failing.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -o DPkg::Lock::Timeout=600)

log "dependencies: installing ${missing[*]:-nothing}${remove:+; removing ${remove[*]}}"
"${apt[@]}" update
if ((${#remove[@]} > 0)); then
  "${apt[@]}" remove "${remove[@]}"
fi
if ((${#missing[@]} > 0)); then
  "${apt[@]}" install --no-install-recommends "${missing[@]}"
fi
log "dependencies: done"
