#!/usr/bin/env bash
# Configures and builds seedproxy: Release with warnings as errors, or ASan+UBSan with --sanitize.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: scripts/build.sh [--sanitize] [--build-dir DIR] [--target NAME]

  (default)        Release build into build/
  --sanitize       RelWithDebInfo build with AddressSanitizer and UBSan into build-asan/
  --build-dir DIR  build into DIR instead
  --target NAME    build only NAME (e.g. seedproxy) instead of everything, tests included
EOF
}

sanitize=0
build_dir=
target=()
while (($#)); do
  case $1 in
    --sanitize) sanitize=1 ;;
    --build-dir)
      (($# >= 2)) || die "--build-dir needs a directory"
      build_dir=$2
      shift
      ;;
    --build-dir=*) build_dir=${1#*=} ;;
    --target)
      (($# >= 2)) || die "--target needs a name"
      target=(--target "$2")
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done

if ((sanitize)); then
  build_dir=${build_dir:-$SEEDPROXY_ROOT/build-asan}
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEEDPROXY_SANITIZE=ON)
else
  build_dir=${build_dir:-$SEEDPROXY_ROOT/build}
  # Explicit OFF so a directory configured with sanitizers earlier is switched back.
  flags=(-DCMAKE_BUILD_TYPE=Release -DSEEDPROXY_SANITIZE=OFF)
fi

log "configuring $build_dir (${flags[*]})"
cmake -S "$SEEDPROXY_ROOT" -B "$build_dir" -DSEEDPROXY_WERROR=ON "${flags[@]}"
log "building with $(nproc) jobs"
cmake --build "$build_dir" -j"$(nproc)" "${target[@]}"
log "built ${target[1]:-everything} in $build_dir"
