#!/usr/bin/env bash
# scripts/deps.sh — install the Debian packages durq needs to build, test and bench.
# Runs apt-get only for what is missing; needs root (or sudo) when something is missing.
# postgresql: the server that scripts/pg-server.sh starts for the PostgreSQL tests (Debian puts
# its binaries in /usr/lib/postgresql/<ver>/bin, off PATH; it also creates the user postgres);
# libpq-dev: the client library the PostgreSQL provider is built on.
# libjansson-dev: JSON for the durq command (--json, export/import), no hand-written escaping;
# libmicrohttpd-dev: the HTTP server of `durq serve-metrics`; curl: its test scrapes /metrics;
# doxygen: the API reference, built with warnings as errors in CI.
# clang, libclang-rt-dev: the fuzzers (scripts/fuzz.sh); libFuzzer's runtime is in
# libclang-rt-dev, which clang only recommends.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsqlite3-dev libck-dev libcmocka-dev gnuplot-nox
  postgresql libpq-dev clang libclang-rt-dev libjansson-dev libmicrohttpd-dev curl doxygen)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "deps: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
