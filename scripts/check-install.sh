#!/usr/bin/env bash
# scripts/check-install.sh BUILD_DIR — install durq into a temp prefix and build the quick
# start against it twice: with CMake (find_package(durq) -> durq::durq) and with pkg-config.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
mkdir -p "$tmp/consumer"
cat >"$tmp/consumer/CMakeLists.txt" <<CMK
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(durq 0.1 REQUIRED)
add_executable(quickstart $PWD/examples/quickstart.c)
target_link_libraries(quickstart PRIVATE durq::durq)
CMK
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/consumer/build/quickstart" sqlite::memory:
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc -std=c11 examples/quickstart.c $(pkg-config --cflags --libs durq) \
  -Wl,-rpath,"$tmp/prefix/lib" -o "$tmp/quickstart-pc"
"$tmp/quickstart-pc" sqlite::memory:
echo "install check: find_package(durq) and pkg-config durq both build and run the quick start"
