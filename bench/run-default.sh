#!/usr/bin/env bash
# bench/run-default.sh — the default durq benchmark (README command 1).
#
# Installs what it needs if missing (Debian 12, as root or with sudo), builds durq-bench in
# build-bench/ (Release), runs SQLite file and in-memory x queue and orchestration x
# group/per-op/ceiling at 1,2,4,8 workers and 1/1..8/8 dispatchers/activity workers (one
# synchronous op per thread), then the queue and produce-and-consume workloads with
# asynchronous acks at 1,8,64,256,1024 items in flight over 2 workers, group vs per-op, and
# writes bench-results/results.json, bench-results/throughput.png and bench-results/table.txt;
# then orchestration with asynchronous turns and 0 ms activities, 64 in flight, 1/1 and 8/8
# (bench-results/table-orch-async.txt, results-orch-async.json).
# Sized to finish in under 5 minutes on 2 cores. Extra arguments are passed to durq-bench
# (later flags win), e.g.  bench/run-default.sh --sync-latency-us 1000
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need=()
for pkg in build-essential cmake pkg-config libsqlite3-dev libck-dev gnuplot-nox; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if ((${#need[@]})); then
	echo "run-default: installing ${need[*]}" >&2
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DDURQ_BUILD_TESTS=OFF \
	-DDURQ_BUILD_BENCH=ON >/dev/null
cmake --build build-bench -j"$jobs" --target durq-bench >/dev/null

out="$root/bench-results"
mkdir -p "$out"
start=$(date +%s)
build-bench/bench/durq-bench \
	--provider sqlite-file,sqlite-memory \
	--workload queue,orchestration \
	--mode group,per-op,ceiling \
	--workers 1,2,4,8 \
	--concurrency 1/1,2/2,4/4,8/8 \
	--items 20000 --duration 4 \
	--orch-duration 4 \
	--in-flight 1,8,64,256,1024 --in-flight-workers 2 \
	--in-flight-workload queue,queue-produce \
	--in-flight-items 300000 --in-flight-duration 2 \
	--payload 256 --sync FULL --activity-ms 10 \
	--json "$out/results.json" --plot "$out/throughput.png" \
	"$@" | tee "$out/table.txt"
# The shape of issue #8's orchestration target: activities that take no time, 64
# orchestrations in flight, turns, activity acks and starts submitted asynchronously.
echo
build-bench/bench/durq-bench \
	--provider sqlite-file,sqlite-memory \
	--workload orchestration \
	--mode group,per-op \
	--concurrency 1/1,8/8 \
	--orch-async --activity-ms 0 --orch-in-flight 64 \
	--orch-items 1000000 --orch-duration 3 \
	--payload 256 --sync FULL \
	--json "$out/results-orch-async.json" \
	"$@" | tee "$out/table-orch-async.txt"
end=$(date +%s)

echo
echo "run-default: finished in $((end - start)) s"
echo "run-default: table   -> $out/table.txt"
echo "run-default: JSON    -> $out/results.json (orchestration, asynchronous: results-orch-async.json)"
echo "run-default: plot    -> $out/throughput.png (gnuplot script: $out/throughput.png.gp)"
