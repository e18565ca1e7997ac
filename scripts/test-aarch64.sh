#!/usr/bin/env bash
# scripts/test-aarch64.sh — cross-build durq for aarch64 and run the concurrency tests and the
# sqlite-file conformance tests under qemu-user (CTest runs each binary through qemu-aarch64).
# Usage: scripts/test-aarch64.sh [build-dir]   (default build-aarch64; needs root or sudo when
# something is missing). Fails on any failed or skipped test, like scripts/test.sh, whose
# configure/build/ctest/summary steps it reuses.
#
# What this can and cannot show: it checks that durq builds for aarch64 against the arm64
# Concurrency Kit (CK_MD_RMO: ck's fences emit dmb, its RMW ops order nothing) and that the
# tests pass there. qemu on an amd64 host runs the guest's loads and stores as the host's, so the
# reorderings a real arm64 core makes (beyond x86's store->load) do not happen here: a missing
# fence is found by reading the code or on arm64 hardware, not by this run.
#
# Runs ctest -j1: under emulation, two qemu processes side by side on a 2-core machine starve
# the timing bounds of conf_longpoll (seen: an item due in 50 ms fetched 6 ms after the enqueue
# returned; a poll noticed after 719 ms instead of < 520). Takes ~4-5 min on the 2-core VM, of
# which stress_cycles (8 threads x 10,000 cycles, its normal count) is ~2 min.
# Knobs: DURQ_STRESS_CYCLES (test_stress's cycle count; unset = its default 10000),
# DURQ_CTEST_ARGS (extra ctest arguments after "-j1", e.g. "-E stress_cycles" or "-j2").
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-aarch64}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# ---- deps: host cross tools and arm64 multiarch -dev packages, apt-get only when missing ----
# libck-dev:arm64 is not among them: it cannot be installed next to libck-dev:amd64 (same
# /usr/include/ck_md.h, different content; apt would remove the amd64 one that the native
# build needs). It is unpacked into the build dir below instead.
pkgs=(cmake pkg-config gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
      libc6-dev:arm64 libsqlite3-dev:arm64 libcmocka-dev:arm64)
updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "aarch64: dpkg --add-architecture arm64"
  $SUDO dpkg --add-architecture arm64
  apt update -qq; updated=1 # apt-get download below needs the arm64 lists too
fi
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "aarch64: installing ${missing[*]}"
  ((updated)) || apt update -qq
  apt install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- Concurrency Kit for arm64, unpacked into $build/arm64-ck with its own ck.pc ----
ck="$PWD/$build/arm64-ck"
if [ ! -f "$ck/pkgconfig/ck.pc" ]; then
  rm -rf "$ck"; mkdir -p "$ck/debs"
  (cd "$ck/debs" && apt-get download -qq libck-dev:arm64 libck0:arm64 2>&1 | grep -v "unsandboxed" || true)
  for d in "$ck"/debs/*.deb; do dpkg-deb -x "$d" "$ck/root"; done
  mkdir -p "$ck/pkgconfig"
  sed "s|=/usr|=$ck/root/usr|" "$ck/root/usr/lib/aarch64-linux-gnu/pkgconfig/ck.pc" >"$ck/pkgconfig/ck.pc"
fi
grep -q "CK_MD_RMO" "$ck/root/usr/include/ck_md.h" ||
  { echo "FAIL: $ck holds no arm64 ck_md.h (CK_MD_RMO)"; exit 1; }

# ---- configure, and check it picked the arm64 sqlite and ck (not the host's) ----
cmake_args=(-DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchain-aarch64.cmake" -DDURQ_AARCH64_CK_ROOT="$ck"
            -DDURQ_BUILD_BENCH=OFF)
start=$SECONDS
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}" >/dev/null
grep -q "^SQLite3_LIBRARY:.*/aarch64-linux-gnu/" "$build/CMakeCache.txt" ||
  { echo "FAIL: SQLite3_LIBRARY is not the arm64 one"; grep "^SQLite3_LIBRARY" "$build/CMakeCache.txt"; exit 1; }
grep -q "^CK_INCLUDE_DIRS:INTERNAL=$ck/root/usr/include" "$build/CMakeCache.txt" ||
  { echo "FAIL: ck is not the arm64 one"; grep "^CK_INCLUDE_DIRS" "$build/CMakeCache.txt"; exit 1; }

# ---- build and run: scripts/test.sh (deps, build, ctest, summary) with a label filter ----
export DURQ_CTEST_ARGS="-L ^(concurrency|sqlite-file)\$ -j1 ${DURQ_CTEST_ARGS:-}"
echo "aarch64: ctest $DURQ_CTEST_ARGS under qemu-aarch64, DURQ_STRESS_CYCLES=${DURQ_STRESS_CYCLES:-default}"
rc=0
bash scripts/test.sh "$build" "${cmake_args[@]}" || rc=$?
bin="$build/tests/unit/test_stress"
if [ -f "$bin" ] && ! aarch64-linux-gnu-readelf -h "$bin" | grep -q "Machine: *AArch64"; then
  echo "FAIL: $bin is not an aarch64 binary"; exit 1
fi
echo "aarch64: $((SECONDS - start)) s (configure, build, tests under qemu)"
exit $rc
