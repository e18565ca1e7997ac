#!/usr/bin/env bash
# scripts/load-full.sh — issue 11 item 6 at full size: 16 threads x 10^6 item operations
# (enqueue, claim, ack, abandon of one item each) on one durq handle, a file database, group
# commit, durq's default options. Prints item-ops/s and calls/s, errors by code, busy errors
# surfaced (must be 0) and the duration; exits non-zero on any error, any item not acked
# exactly once, or a busy error surfaced. CI runs the same test smaller (CTest durability_load).
# Usage: scripts/load-full.sh [build-dir]   (default build-load; configured as a release build
#        if it has no CMake cache; dependencies: scripts/deps.sh)
# Environment: DURQ_LOAD_OPS (1000000), DURQ_LOAD_THREADS (16), DURQ_LOAD_DIR (TMPDIR or
# /tmp; a real disk), DURQ_LOAD_COMMIT=per-op for the per-op commit mode.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-load}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDURQ_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target test_load >/dev/null
export DURQ_LOAD_OPS="${DURQ_LOAD_OPS:-1000000}" DURQ_LOAD_THREADS="${DURQ_LOAD_THREADS:-16}"
echo "== load: $DURQ_LOAD_THREADS threads x $DURQ_LOAD_OPS item-ops, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%F %H:%M UTC')"
start=$SECONDS
set +e
"$build/tests/durability/test_load" 2>&1 | grep -E '^load:|\[  (PASSED|FAILED) |ERROR|error:'
rc=${PIPESTATUS[0]}
set -e
echo "== load: $((SECONDS - start)) s wall, exit $rc"
exit "$rc"
