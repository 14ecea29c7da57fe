#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang and runs each for a time budget; a crash is saved as a regression input.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: scripts/fuzz.sh [--build-dir DIR] [--no-build] [TARGET...]

Builds tests/fuzz with clang 14 (-fsanitize=fuzzer,address,undefined) into build-fuzz/, then runs
each TARGET (default: all) for FUZZ_SECONDS seconds (default 30), one at a time, on a fresh
working copy of its checked-in corpus (tests/fuzz/corpus/TARGET and regressions/TARGET; neither
is changed). Exits non-zero when any target crashes, leaks, times out or runs out of memory; the
input that did it is copied to tests/fuzz/regressions/TARGET/ and the command to reproduce it is
printed. A failure like one of tests/fuzz/crashes/TARGET/ (same broken property, or the same
sanitizer report at the same place) is a known crash whose fix has not landed: it is reported and
fuzzing goes on.

targets: ${all_targets[*]}

environment:
  FUZZ_SECONDS      time budget per target (default 30)
  FUZZ_RSS_MB       memory limit per target process in MB (default 2048)
  FUZZ_TIMEOUT      seconds one input may take before it counts as a hang (default 10)
  FUZZ_BUILD_JOBS   parallel compile jobs (default: nproc)
  FUZZ_ARGS         extra libFuzzer flags for every target, e.g. "-seed=1 -only_ascii=1"
EOF
}

all_targets=(frame_codec relay_scanner startup rewriter config admin_commands)
# Largest input per target: room for several messages, a startup packet, a statement, a file.
declare -A max_len=(
  [frame_codec]=4096 [relay_scanner]=4096 [startup]=2048
  [rewriter]=2048 [config]=4096 [admin_commands]=1024
)
declare -A dictionary=(
  [frame_codec]=protocol.dict [relay_scanner]=protocol.dict [startup]=protocol.dict
  [rewriter]=sql.dict [config]=config.dict [admin_commands]=admin.dict
)

build_dir=$SEEDPROXY_ROOT/build-fuzz
build=1
targets=()
while (($#)); do
  case $1 in
    --build-dir)
      (($# >= 2)) || die "--build-dir needs a directory"
      build_dir=$2
      shift
      ;;
    --build-dir=*) build_dir=${1#*=} ;;
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *)
      [[ -n "${max_len[$1]:-}" ]] || die "unknown fuzz target: $1 (targets: ${all_targets[*]})"
      targets+=("$1")
      ;;
  esac
  shift
done
((${#targets[@]})) || targets=("${all_targets[@]}")

seconds=${FUZZ_SECONDS:-30}
rss_mb=${FUZZ_RSS_MB:-2048}
timeout=${FUZZ_TIMEOUT:-10}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_SECONDS must be a positive whole number of seconds, not '$seconds'"
[[ "$rss_mb" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_RSS_MB must be a positive number, not '$rss_mb'"
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_TIMEOUT must be a positive number, not '$timeout'"
read -r -a extra_args <<<"${FUZZ_ARGS:-}"

fuzz_dir=$SEEDPROXY_ROOT/tests/fuzz
clangxx=clang++-14
symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
started=$SECONDS

if ((build)); then
  "$SEEDPROXY_ROOT/scripts/setup.sh" --fuzz
  command -v "$clangxx" >/dev/null || die "$clangxx not found; scripts/setup.sh --fuzz installs clang-14"
  log "configuring $build_dir (clang 14, libFuzzer + ASan + UBSan)"
  # -Werror as in CI's g++ builds: clang 14 warns about nothing g++ accepts (checked on the whole tree).
  # -O1 with line tables, as OSS-Fuzz builds: quicker to compile than -O2 -g, and stacks
  # still name file and line.
  cmake -S "$SEEDPROXY_ROOT" -B "$build_dir" -DCMAKE_CXX_COMPILER="$clangxx" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
    -DSEEDPROXY_FUZZ=ON -DSEEDPROXY_SANITIZE=OFF \
    -DSEEDPROXY_WERROR=ON -DSEEDPROXY_BENCH=OFF -DSEEDPROXY_TESTS=ON >/dev/null
  jobs=${FUZZ_BUILD_JOBS:-$(nproc)}
  log "building the fuzz targets with $jobs jobs"
  build_targets=()
  for target in "${targets[@]}"; do build_targets+=(--target "fuzz_$target"); done
  cmake --build "$build_dir" -j"$jobs" "${build_targets[@]}"
  log "built in $((SECONDS - started)) s"
fi

# Symbolized stacks; leaks, UB and heap errors all stop the run with a report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [[ -x "$symbolizer" ]]; then export ASAN_SYMBOLIZER_PATH=$symbolizer; fi

# signature FILE [REPORT]: what running one input through $binary fails with: a broken property
# (file:line and condition), or a sanitizer's summary, with the first product frame when the
# summary alone is generic ("deadly signal", "timeout"). Prints "passes" when the input does not
# fail. The whole report is written to REPORT when given.
signature() {
  local out sig frame
  if out=$("$binary" -timeout="$timeout" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
    "$1" 2>&1); then
    echo passes
    return
  fi
  if [[ -n "${2:-}" ]]; then printf '%s\n' "$out" >"$2"; fi
  sig=$(grep -m1 -oE '[A-Za-z0-9_]+\.(cpp|hpp):[0-9]+: fuzz property failed: .*' <<<"$out" || true)
  if [[ -z "$sig" ]]; then
    sig=$(grep -m1 -E '^SUMMARY: ' <<<"$out" | sed -E 's#/[^ :]*/##g' || true)
    frame=$(grep -m1 -E "#[0-9]+ 0x[0-9a-f]+ in .* $SEEDPROXY_ROOT/(common|config|proxy|rewriter|seeds)/" \
      <<<"$out" | sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in //; s#'"$SEEDPROXY_ROOT"'/##' || true)
    if [[ "$sig" == "SUMMARY: libFuzzer: "* && -n "$frame" ]]; then sig="$sig at $frame"; fi
  fi
  echo "${sig:-failed without a report}"
}

work_root=$build_dir/fuzz-work
failed=()
summary=()
known_found=()
for target in "${targets[@]}"; do
  binary=$build_dir/tests/fuzz/fuzz_$target
  [[ -x "$binary" ]] || die "$binary is missing: run without --no-build"
  corpus=$fuzz_dir/corpus/$target
  regressions=$fuzz_dir/regressions/$target
  crashes=$fuzz_dir/crashes/$target
  [[ -d "$corpus" ]] || die "no checked-in corpus at $corpus"

  # A fresh working corpus each run: what the fuzzer adds stays in build-fuzz/, never in tests/.
  work=$work_root/$target
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$corpus"/* "$work/corpus/"
  if [[ -d "$regressions" ]]; then
    find "$regressions" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$work/corpus/" \;
  fi
  seeds=$(find "$work/corpus" -type f | wc -l)

  # Crashes whose fix has not landed (tests/fuzz/crashes/TARGET): finding one again is reported,
  # not failed, and fuzzing goes on for the rest of the budget.
  declare -A known=()
  if [[ -d "$crashes" ]]; then
    while IFS= read -r file; do
      sig=$(signature "$file")
      if [[ "$sig" == passes ]]; then
        warn "$target: known crash ${file#"$SEEDPROXY_ROOT"/} no longer fails; move it to regressions/"
      else
        known[$sig]=${file#"$SEEDPROXY_ROOT"/}
      fi
    done < <(find "$crashes" -maxdepth 1 -type f ! -name '.*' | sort)
  fi

  log "fuzzing $target for $seconds s ($seeds seed inputs, max_len ${max_len[$target]}${known[*]:+, ${#known[@]} known crash(es)})"
  : >"$work/log.txt"
  deadline=$((SECONDS + seconds))
  known_hits=0
  outcome=ok
  report=()
  while ((SECONDS < deadline)); do
    status=0
    "$binary" "$work/corpus" \
      -max_total_time=$((deadline - SECONDS)) -max_len="${max_len[$target]}" \
      -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" -timeout="$timeout" \
      -dict="$fuzz_dir/dict/${dictionary[$target]}" -artifact_prefix="$work/artifacts/" \
      -print_final_stats=1 "${extra_args[@]}" >>"$work/log.txt" 2>&1 || status=$?
    mapfile -t artifacts < <(find "$work/artifacts" -type f \
      \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    ((status != 0 || ${#artifacts[@]} > 0)) || break
    if ((${#artifacts[@]} == 0)); then
      warn "$target: libFuzzer exited $status without leaving an input behind"
      outcome=FAILED
      break
    fi
    for artifact in "${artifacts[@]}"; do
      sig=$(signature "$artifact" "$work/report.txt")
      if [[ -n "${known[$sig]:-}" ]]; then
        # Kept aside (not in artifacts/, which the next round checks): one signature can cover
        # several bugs (one broken property, different causes), so each is shown and kept.
        mkdir -p "$work/known"
        mv "$artifact" "$work/known/"
        detail=$(grep -m1 -A1 'fuzz property failed' "$work/report.txt" | sed -n '2s/^ *//p' | cut -c1-240)
        log "$target: like known crash ${known[$sig]} ($sig)${detail:+: $detail}; input kept in ${work#"$SEEDPROXY_ROOT"/}/known/; fuzzing on"
        known_hits=$((known_hits + 1))
        continue
      fi
      outcome=FAILED
      mkdir -p "$regressions"
      saved=$regressions/$(basename "$artifact")
      cp "$artifact" "$saved"
      relative=${saved#"$SEEDPROXY_ROOT"/}
      binary_relative=${binary#"$SEEDPROXY_ROOT"/}
      report+=(
        "$target: $sig"
        "saved the input as $relative ($(stat -c %s "$saved") bytes). Reproduce with:"
        "    $binary_relative $relative"
        "    build/tests/fuzz/fuzz_replay_$target $relative   # the g++ replay build"
        "    $binary_relative -minimize_crash=1 -runs=20000 $relative   # a smaller input"
        "  If its fix cannot land yet, move it to tests/fuzz/crashes/$target/: the replay tests then report it without failing."
      )
    done
    [[ "$outcome" == ok ]] || break
    if ((known_hits >= 20)); then
      warn "$target: known crashes keep recurring; stopping early"
      break
    fi
  done
  unset known

  runs=$(awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }' "$work/log.txt")
  coverage=$(grep -oE 'cov: [0-9]+' "$work/log.txt" | tail -n 1 | cut -d' ' -f2)
  added=$(($(find "$work/corpus" -type f | wc -l) - seeds))
  line=$(printf '%-15s %9s runs  cov %5s  +%s inputs' "$target" "${runs:-?}" "${coverage:-?}" "$added")
  if ((known_hits)); then
    line+="  (known crash found $known_hits time(s))"
    known_found+=("$target")
  fi
  summary+=("$(printf '%-7s' "$outcome") $line")
  if [[ "$outcome" != ok ]]; then
    failed+=("$target")
    warn "the end of $target's log ($work/log.txt):"
    grep -vE '^(#[0-9]+|INFO:|MS:|base unit:|0x|\\x|stat::|	NEW_FUNC)' "$work/log.txt" | tail -n 40 >&2 || true
    if ((${#report[@]})); then
      warn "$target: new failure(s):"
      printf '%s\n' "${report[@]}" >&2
    fi
  fi
done

log "fuzzing summary ($seconds s per target, $((SECONDS - started)) s in all):"
printf '  %s\n' "${summary[@]}" >&2
if ((${#failed[@]})); then
  die "fuzzing found problems in: ${failed[*]}"
fi
if ((${#known_found[@]})); then
  log "no new crash, leak, hang or broken property; known crashes found again: ${known_found[*]}"
else
  log "no crash, leak, hang or broken property found"
fi
