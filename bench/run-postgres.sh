#!/usr/bin/env bash
# bench/run-postgres.sh — durq on PostgreSQL against hand-written libpq queues, in one run.
#
# Installs what it needs if missing (Debian 12, as root or with sudo: the packages of
# run-default.sh plus postgresql and libpq-dev), builds durq-bench in build-bench/ (Release,
# DURQ_WITH_POSTGRES=ON; DURQ_BENCH_BUILD_DIR overrides the directory), then runs on one
# throwaway PostgreSQL server (scripts/pg-server.sh, stopped at exit; pass --pg-url URL to
# use another server):
#   - the queue workload with synchronous acks at 1,2,4,8 workers, durq group vs per-op;
#   - the queue workload with asynchronous acks at 1,8,64,256,1024 items in flight over 2
#     workers, durq group vs per-op, and ack-fetch (group commit, each worker acking and
#     fetching in one durq_work_ack_fetch call, as a hand-written loop does);
#   - the libpq baselines pg-naive (2 connections, one item per transaction) and pg-batched
#     (2 connections, 128 items per claim and per delete transaction = 256 in flight);
# and prints the ratios (durq group vs per-op, vs pg-naive, vs pg-batched). Writes
# bench/results/postgres-table.txt, postgres-results.json and postgres-throughput.png
# (DURQ_BENCH_OUT overrides the directory). Sized to finish in under 5 minutes on 2 cores.
# Extra arguments are passed to durq-bench (later flags win), e.g.
#   bench/run-postgres.sh --in-flight 256 --pg-url postgresql://me@db.example/postgres
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need=()
for pkg in build-essential cmake pkg-config libsqlite3-dev libck-dev gnuplot-nox postgresql libpq-dev; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if ((${#need[@]})); then
	echo "run-postgres: installing ${need[*]}" >&2
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

jobs="$(nproc 2>/dev/null || echo 2)"
build="${DURQ_BENCH_BUILD_DIR:-build-bench}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDURQ_BUILD_TESTS=OFF \
	-DDURQ_BUILD_BENCH=ON -DDURQ_WITH_POSTGRES=ON >/dev/null
cmake --build "$build" -j"$jobs" --target durq-bench >/dev/null

out="${DURQ_BENCH_OUT:-$root/bench/results}"
mkdir -p "$out"
start=$(date +%s)
"$build/bench/durq-bench" \
	--provider postgresql \
	--workload queue \
	--mode group,per-op,ceiling,ack-fetch \
	--workers 1,2,4,8 \
	--items 10000 --duration 3 \
	--in-flight 1,8,64,256,1024 --in-flight-workers 2 \
	--in-flight-workload queue \
	--in-flight-items 100000 --in-flight-duration 3 \
	--payload 256 --sync FULL \
	--json "$out/postgres-results.json" --plot "$out/postgres-throughput.png" \
	"$@" | tee "$out/postgres-table.txt"
end=$(date +%s)

echo
echo "run-postgres: finished in $((end - start)) s"
echo "run-postgres: table   -> $out/postgres-table.txt"
echo "run-postgres: JSON    -> $out/postgres-results.json"
echo "run-postgres: plot    -> $out/postgres-throughput.png (gnuplot script: $out/postgres-throughput.png.gp)"
