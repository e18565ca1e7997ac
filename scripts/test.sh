#!/usr/bin/env bash
# scripts/test.sh — README test command: install deps, build, run every test with CTest.
# Usage: scripts/test.sh [build-dir] [extra cmake args...]
# Fails on any failed or skipped test, and prints how many test cases each binary ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build="${1:-build}"; shift || true
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
log="$build/ctest.log"
set +e
ctest --test-dir "$build" -j2 --output-on-failure ${DURQ_CTEST_ARGS:-} -V >"$log" 2>&1
rc=$?
set -e
# Summary: test cases per CTest entry (cmocka prints "N test(s) run").
awk '/^[0-9]+: Test command:/ { split($0, a, ":"); } 
     /Test +#[0-9]+: / { for (i = 1; i <= NF; i++) if ($i ~ /^#[0-9]+:$/) { n = substr($i, 2, length($i) - 2); name[n] = $(i + 1) } }
     /^[0-9]+: \[==========\] [0-9]+ test\(s\) run\./ { split($0, a, ":"); cnt[a[1]] = $3 }
     END { for (n in name) { printf "  %-40s %5s cases\n", name[n], (n in cnt) ? cnt[n] : "?"; total += cnt[n] }
           printf "  %-40s %5d cases\n", "TOTAL", total }' "$log" | sort
grep -E "tests passed|tests failed|Total Test time" "$log" || true
if grep -qE "\[  SKIPPED \]|\*\*\*Skipped|Not Run" "$log"; then
  echo "FAIL: skipped tests (a skipped test is a failed test)"; grep -E "SKIPPED|Skipped|Not Run" "$log"; exit 1
fi
if [ $rc -ne 0 ]; then
  grep -E "\*\*\*Failed|\[  FAILED  \]|\[  ERROR   \]|LINE   \]|ThreadSanitizer|AddressSanitizer|runtime error" "$log" | head -50
  echo "FAIL: ctest exit $rc (full log: $log)"; exit $rc
fi
