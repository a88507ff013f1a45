#!/usr/bin/env bash
# The one test command (README.md, .ci/run): sets up what it needs, builds,
# and runs every test.
#   1. Debian packages (scripts/setup_system.sh) and the Python venv
#      (scripts/setup_venv.sh, pinned requirements.txt)
#   2. build/ (RelWithDebInfo): ctest, the conformance suite included
#   3. build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer): ctest again
#   4. a libFuzzer smoke run of every parser target (scripts/fuzz.sh, 20 s each)
#   5. pytest over tests/python with the project venv
# Set HS_SKIP_ASAN=1, HS_SKIP_FUZZ=1 or HS_SKIP_PYTHON=1 to leave a stage out locally.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/setup_system.sh
if [ -z "${HS_SKIP_PYTHON:-}" ] && [ -f scripts/setup_venv.sh ]; then
  bash scripts/setup_venv.sh
fi

status=0
echo "== build (RelWithDebInfo) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs") || status=1

if [ -z "${HS_SKIP_ASAN:-}" ]; then
  echo "== build-asan (ASan + UBSan) =="
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHS_SANITIZE=ON > /dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j"$jobs") || status=1
fi

if [ -z "${HS_SKIP_FUZZ:-}" ]; then
  echo "== fuzz smoke (libFuzzer, ASan+UBSan) =="
  bash scripts/fuzz.sh 20 || status=1
fi

if [ -z "${HS_SKIP_PYTHON:-}" ] && [ -x .venv/bin/pytest ] && ls tests/python/test_*.py > /dev/null 2>&1; then
  echo "== pytest =="
  HS_BUILD_DIR="$PWD/build" .venv/bin/pytest -q tests/python || status=1
fi
exit $status
