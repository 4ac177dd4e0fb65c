#!/usr/bin/env bash
# Builds mpdet with warnings as errors and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMPDET_WERROR=ON >/dev/null
cmake --build build
log=$(mktemp)
status=0
ctest --test-dir build --output-on-failure -j2 >"$log" 2>&1 || status=$?
cat "$log"
# The runner's summary line comes last, whatever ctest printed after it.
grep -E '[0-9]+% tests passed' "$log" | tail -n 1
rm -f "$log"
exit $status
