#!/usr/bin/env bash
# scripts/docs.sh [OUTDIR] — the API reference: Doxygen over the public headers
# (docs/Doxyfile) into OUTDIR (default build/docs; HTML in OUTDIR/html). Fails on any
# warning: every public function, struct, field, enum value and macro must be documented,
# every parameter with @param. The CMake target `docs` runs this script.
# Environment: DOXYGEN (default: doxygen on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=${1:-build/docs}
mkdir -p "$out"
out=$(cd "$out" && pwd)
doxygen=${DOXYGEN:-doxygen}
if ! command -v "$doxygen" >/dev/null; then
  echo "docs.sh: $doxygen not found (scripts/deps.sh installs the Debian package doxygen)" >&2
  exit 1
fi
version=$(sed -n 's/^project(durq VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
log=$out/warnings.log
rc=0
DURQ_SRC=$src DURQ_DOCS_OUT=$out DURQ_VERSION=$version "$doxygen" docs/Doxyfile 2>"$log" || rc=$?
n=$(grep -cE '(warning|error):' "$log" || true)
if [ "$rc" -ne 0 ] || [ "$n" -ne 0 ] || [ -s "$log" ]; then
  cat "$log" >&2
  echo "docs.sh: doxygen failed (exit $rc) with $n warnings; see above" >&2
  exit 1
fi
echo "docs.sh: API reference in $out/html/index.html (0 warnings)"
