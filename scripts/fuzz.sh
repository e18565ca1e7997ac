#!/usr/bin/env bash
# scripts/fuzz.sh — build the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in
# their own build dir, run each for a bounded time from its committed corpus
# (tests/fuzz/corpus/<target>; new inputs go to a temp dir, the corpus is left as it is),
# and print the executions. Any finding (crash, model disagreement, leak, sanitizer report,
# an input running over 60 s) fails the script; its input is kept in <build>/fuzz-artifacts.
# Usage: scripts/fuzz.sh [seconds per target, default 60] [build dir, default build-fuzz]
# Installs nothing: needs clang with libFuzzer (scripts/deps.sh installs clang and
# libclang-rt-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
build="${2:-build-fuzz}"
targets=(fuzz_api fuzz_url_options)
declare -A max_len=([fuzz_api]=2048 [fuzz_url_options]=512)

cc=""
for c in clang clang-16 clang-15 clang-14; do
  if command -v "$c" >/dev/null; then cc=$(command -v "$c"); break; fi
done
if [ -z "$cc" ]; then
  echo "fuzz: FAIL: no clang on PATH (scripts/deps.sh installs clang and libclang-rt-dev)"; exit 1
fi
echo "== fuzzing: ${targets[*]}, $secs s each ($($cc --version | head -1))"
# The library too is built with -fsanitize=fuzzer-no-link (coverage), ASan and UBSan.
CC="$cc" cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDURQ_FUZZ=ON \
  -DDURQ_SANITIZE=address,undefined -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
  -DDURQ_WITH_POSTGRES=OFF -DDURQ_BUILD_BENCH=OFF -DDURQ_BUILD_CONFORMANCE=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null

# Databases of the targets on tmpfs when there is one (fsync is free there).
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
  export TMPDIR=/dev/shm
fi
export ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
failed=0
for t in "${targets[@]}"; do
  work=$(mktemp -d "${TMPDIR:-/tmp}/durq-fuzz-$t-XXXXXX")
  art="$build/fuzz-artifacts/$t"
  log="$build/fuzz-$t.log"
  mkdir -p "$art"
  set +e
  "$build/tests/fuzz/$t" "$work" "tests/fuzz/corpus/$t" -max_total_time="$secs" \
    -max_len="${max_len[$t]}" -len_control=0 -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$art/" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  calls=$(grep -oE '[0-9]+ durq calls checked' "$log" | tail -1 || true)
  new=$(find "$work" -type f | wc -l)
  rm -rf "$work"
  if [ $rc -ne 0 ]; then
    failed=1
    echo "fuzz: $t: FINDING (exit $rc) after ${execs:-?} executions; input in $art, log $log:"
    grep -E "FINDING|ERROR: |SUMMARY|runtime error|Test unit written|==[0-9]+==" "$log" | head -20
  else
    echo "fuzz: $t: ${execs:-?} executions in $secs s${calls:+, $calls}, ${cov:-cov: ?}," \
      "$new new inputs, 0 findings"
  fi
done
exit $failed
