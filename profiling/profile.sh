#!/usr/bin/env bash
# profiling/profile.sh — profile one durq-bench configuration with perf and turn it into a
# flame graph offline, with existing tools only:
#   perf record -g (DWARF unwinding: Debian's libsqlite3 has no frame pointers)
#   perf script report flamegraph  (perf's own flamegraph.py) with the d3-flame-graph HTML
#   template from npm (d3-flame-graph@4, dist/templates/d3-flamegraph-base.html, all JS inlined)
# plus perf report --stdio for the top frames (self and children).
#
# usage: profiling/profile.sh [-n NAME] [-o DIR] [-F HZ] [-- durq-bench args...]
#   default config: --provider sqlite-file --workload orchestration --mode group
#                   --concurrency 2/2 --orch-duration 8
# outputs in DIR (default profiling/results): NAME/perf.data, NAME.html (flame graph),
#   NAME.top.txt (top frames), NAME.bench.txt (the bench row).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="profile"
out="$root/profiling/results"
freq=999
while getopts "n:o:F:h" opt; do
	case "$opt" in
	n) name="$OPTARG" ;;
	o) out="$OPTARG" ;;
	F) freq="$OPTARG" ;;
	*) sed -n '2,15p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ "${1:-}" == "--" ]] && shift
if (($# == 0)); then
	set -- --provider sqlite-file --workload orchestration --mode group \
		--concurrency 2/2 --orch-duration 8
fi

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
need=()
command -v perf >/dev/null || need+=(linux-perf)
command -v npm >/dev/null || need+=(npm)
command -v cmake >/dev/null || need+=(build-essential cmake pkg-config)
dpkg-query -W -f='${Status}' libsqlite3-dev 2>/dev/null | grep -q 'ok installed' || need+=(libsqlite3-dev)
dpkg-query -W -f='${Status}' libck-dev 2>/dev/null | grep -q 'ok installed' || need+=(libck-dev)
if ((${#need[@]})); then
	echo "profile: installing ${need[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The flame graph template: perf's flamegraph.py looks for it at
# /usr/share/d3-flame-graph/d3-flamegraph-base.html (Debian has no package for it).
tpl="/usr/share/d3-flame-graph/d3-flamegraph-base.html"
if [[ ! -f "$tpl" ]]; then
	cache="$root/profiling/.cache"
	tpl="$cache/node_modules/d3-flame-graph/dist/templates/d3-flamegraph-base.html"
	if [[ ! -f "$tpl" ]]; then
		mkdir -p "$cache"
		npm install --prefix "$cache" --no-audit --no-fund --silent d3-flame-graph@4 >/dev/null
	fi
fi
flamegraph_py=""
for f in /usr/libexec/perf-core/scripts/python/flamegraph.py \
	/usr/lib/perf-core/scripts/python/flamegraph.py; do
	[[ -f "$f" ]] && flamegraph_py="$f" && break
done

# RelWithDebInfo + frame pointers for our code; symbols for perf report.
cmake -S "$root" -B "$root/build-prof" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_C_FLAGS="-fno-omit-frame-pointer" -DDURQ_BUILD_TESTS=OFF -DDURQ_BUILD_BENCH=ON >/dev/null
cmake --build "$root/build-prof" -j"$(nproc)" --target durq-bench >/dev/null

mkdir -p "$out/$name"
# named perf.data inside its own folder: flamegraph.py reads the header of ./perf.data
data="$out/$name/perf.data"
echo "profile: perf record -F $freq -g --call-graph dwarf,8192 durq-bench $*" >&2
perf record -F "$freq" -g --call-graph dwarf,8192 -o "$data" -- \
	"$root/build-prof/bench/durq-bench" --quiet "$@" >"$out/$name.bench.txt" 2>"$out/$name.perf.log"
cat "$out/$name.bench.txt"

set +o pipefail # head closes the pipes early; that is not a failure
{
	echo "# $name: durq-bench $*"
	echo "## self time, by symbol (perf report --no-children)"
	perf report -i "$data" --no-children --sort dso,symbol --percent-limit 1.5 --stdio \
		-g none 2>/dev/null | grep -v '^$' | grep -v '^#' | head -40
	echo
	echo "## inclusive time (perf report --children), top 40"
	perf report -i "$data" --children --sort symbol --percent-limit 3 --stdio \
		-g none 2>/dev/null | grep -v '^$' | grep -v '^#' | head -40
	echo
	echo "## by thread name"
	perf report -i "$data" --no-children --sort comm --stdio -g none 2>/dev/null |
		grep -v '^$' | grep -v '^#' | head -20
} >"$out/$name.top.txt"
set -o pipefail

if [[ -n "$flamegraph_py" ]]; then
	# run from $out so flamegraph.py's own 'perf report --header-only' finds the data
	(cd "$out/$name" && perf script -i "$data" -s "$flamegraph_py" -- \
		--template "$tpl" -o "$out/$name.html" >/dev/null 2>>"$out/$name.perf.log")
	echo "profile: flame graph -> $out/$name.html" >&2
else
	echo "profile: perf's flamegraph.py not found; only $out/$name.top.txt written" >&2
fi
echo "profile: top frames  -> $out/$name.top.txt" >&2
echo "profile: perf data   -> $data" >&2
