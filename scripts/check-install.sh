#!/usr/bin/env bash
# scripts/check-install.sh BUILD_DIR — install durq into a temp prefix and build the quick
# start against it: with CMake (find_package(durq) -> durq::durq and durq::durq_static) and
# with pkg-config (shared, and static with --static --libs). Also checks that the installed
# package hands a consumer only durq's include directory: ck (Concurrency Kit) is a private
# dependency, and its Cflags (-D__x86_64__, its include dir) must not reach a consumer.
# Last, the installed `durq` command runs (--help and one verb).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install check FAILED: $*" >&2; exit 1; }
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
prefix_inc=$(realpath "$tmp/prefix/include")
# ck's include dir, when it is not a system one (pkg-config drops those, so they can't leak)
ck_inc=$(pkg-config --variable=includedir ck 2>/dev/null || true)
case "$ck_inc" in /usr/include | /usr/local/include) ck_inc="" ;; esac

# no_private_flags WHAT FLAGS... — fail if FLAGS hold a -D or ck's include dir
no_private_flags() {
	local what=$1 f
	shift
	for f in "$@"; do
		case "$f" in -D*) fail "$what has the compile definition '$f' (private dependency leaked)" ;; esac
		if [ -n "$ck_inc" ] && [[ "$f" == *"$ck_inc"* ]]; then
			fail "$what has ck's include dir ('$f')"
		fi
	done
}

# ---- CMake consumer: shared and static target, compile commands checked ----
mkdir -p "$tmp/consumer"
cat >"$tmp/consumer/CMakeLists.txt" <<CMK
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(durq 0.1 REQUIRED)
add_executable(quickstart $PWD/examples/quickstart.c)
target_link_libraries(quickstart PRIVATE durq::durq)
add_executable(quickstart_static $PWD/examples/quickstart.c)
target_link_libraries(quickstart_static PRIVATE durq::durq_static)
CMK
# no build type: the consumer itself adds no -D (e.g. -DNDEBUG), so any -D came from durq
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
	-DCMAKE_BUILD_TYPE= -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
cmake --build "$tmp/consumer/build" --verbose >"$tmp/consumer/build.log" 2>&1 ||
	{ cat "$tmp/consumer/build.log" >&2; fail "CMake consumer did not build"; }
ncompile=0
while IFS= read -r cmd; do
	ncompile=$((ncompile + 1))
	# shellcheck disable=SC2086
	no_private_flags "CMake consumer compile command" $cmd
done < <(grep -E '^ *[^ ]*(cc|gcc|clang)[^ ]* .* -c .*quickstart\.c' "$tmp/consumer/build.log")
[ "$ncompile" -eq 2 ] || fail "expected 2 quickstart compile commands in the verbose build log, saw $ncompile"
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/consumer/build/quickstart" sqlite::memory:
"$tmp/consumer/build/quickstart_static" sqlite::memory:

# ---- pkg-config consumer ----
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
read -r -a cflags <<<"$(pkg-config --cflags durq)"
no_private_flags "pkg-config --cflags durq" "${cflags[@]}"
# exactly durq's include dir, plus whatever sqlite3 (Requires.private) itself asks for
read -r -a sqlite_cflags <<<"$(pkg-config --cflags sqlite3)"
[ "${#cflags[@]}" -eq $((1 + ${#sqlite_cflags[@]})) ] ||
	fail "pkg-config --cflags durq is '${cflags[*]}', want only -I$prefix_inc"
if [ "${cflags[0]:0:2}" != "-I" ] || [ "$(realpath "${cflags[0]:2}")" != "$prefix_inc" ]; then
	fail "pkg-config --cflags durq is '${cflags[*]}', want -I$prefix_inc first"
fi
# shellcheck disable=SC2046
cc -std=c11 examples/quickstart.c $(pkg-config --cflags --libs durq) \
	-Wl,-rpath,"$tmp/prefix/lib" -o "$tmp/quickstart-pc"
"$tmp/quickstart-pc" sqlite::memory:
# static: libdurq.a itself (not the .so next to it) needs everything --static --libs lists
static_libs=$(pkg-config --static --libs durq)
static_libs=${static_libs/-ldurq/-l:libdurq.a}
# shellcheck disable=SC2046,SC2086
cc -std=c11 examples/quickstart.c $(pkg-config --cflags durq) $static_libs -o "$tmp/quickstart-pc-static"
"$tmp/quickstart-pc-static" sqlite::memory:
# ---- an out-of-tree provider, built against the installed headers only ----
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples/counting_demo.c examples/counting_provider.c \
	$(pkg-config --cflags --libs durq) -Wl,-rpath,"$tmp/prefix/lib" -o "$tmp/counting-demo"
"$tmp/counting-demo" sqlite::memory: || fail "the out-of-tree counting provider did not work"
# ---- the durq command, installed next to the library ----
"$tmp/prefix/bin/durq" --help | grep -q '^exit codes:' || fail "installed 'durq --help' printed no exit codes"
"$tmp/prefix/bin/durq" stats sqlite::memory: | grep -q '^provider *sqlite-memory' ||
	fail "installed 'durq stats sqlite::memory:' did not run"
echo "install check: find_package(durq) (shared + static) and pkg-config durq (shared + --static)" \
	"build and run the quick start; consumers get only -I$prefix_inc, no ck flags;" \
	"an out-of-tree provider builds against the installed headers and runs;" \
	"the installed durq command runs"
