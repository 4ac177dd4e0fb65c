#!/usr/bin/env bash
# Cross-builds mpdet for aarch64 with warnings as errors (cmake/aarch64-linux-gnu.cmake; run
# scripts/install_arm_deps.sh first) and runs the tests under qemu-user on two CPU models:
#   max         every ARMv8.x feature qemu has, the dot product included: the WHOLE suite, so both
#               NEON kernel families (neon, neondot) and everything else run as arm64 code;
#   cortex-a53  ARMv8.0 without the dot product: the CPU kernel and backend suite (test_cpu), the
#               tests whose code depends on the CPU model.
# MPDET_ARM_FULL=1 runs the whole suite on both models (about twice the time);
# MPDET_ARM_EXCLUDE=REGEX leaves the matching tests out of the `max` run (CI uses it to bound the
# time: the real-model suites take most of the ~12 min under emulation). test_cpu checks
# that each model exposes exactly the expected ISAs (MPDET_EXPECT_CPU_ISAS), so a detection
# problem cannot silently skip a kernel family. Prints one summary line per model, the last
# being the ctest summary of the whole-suite run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${MPDET_ARM_BUILD_DIR:-build-arm}"
JOBS="${MPDET_ARM_JOBS:-2}"
start=$SECONDS
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release -DMPDET_WERROR=ON >/dev/null
cmake --build "$BUILD" -j "$JOBS"
echo "aarch64 build: $((SECONDS - start)) s"

status=0
summaries=()
run_ctest() {  # run_ctest <qemu cpu> <expected ISAs> [ctest arguments...]
  local cpu="$1" isas="$2"
  shift 2
  local log t0=$SECONDS rc=0
  log=$(mktemp)
  QEMU_CPU="$cpu" MPDET_EXPECT_CPU_ISAS="$isas" \
    ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" "$@" >"$log" 2>&1 || rc=$?
  cat "$log"
  local line
  line=$(grep -E '[0-9]+% tests passed' "$log" | tail -n 1 || true)
  summaries+=("qemu -cpu $cpu ($((SECONDS - t0)) s): ${line:-no ctest summary}")
  rm -f "$log"
  if [ "$rc" -ne 0 ]; then status=$rc; fi
  last_line="$line"
}

if [ "${MPDET_ARM_FULL:-0}" = 1 ]; then
  run_ctest cortex-a53 scalar,neon
else
  run_ctest cortex-a53 scalar,neon -R '^test_cpu\.'
fi
if [ -n "${MPDET_ARM_EXCLUDE:-}" ]; then
  run_ctest max scalar,neon,neondot -E "$MPDET_ARM_EXCLUDE"
else
  run_ctest max scalar,neon,neondot
fi
printf '%s\n' "${summaries[@]}"
echo "aarch64 build and tests: $((SECONDS - start)) s"
# The runner's summary line comes last: the whole suite under qemu -cpu max.
echo "${last_line:-no ctest summary}"
exit $status
