#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and runs each
# for SECONDS (default 60) from its seed corpus.  Exits non-zero on the first
# crash, leak or sanitizer report (the reproducer is left in build-fuzz/).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 fuzz_mlir
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
cmake -S . -B build-fuzz -DHS_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF > /dev/null
cmake --build build-fuzz -j"$(nproc)" > /dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in build-fuzz/fuzz/fuzz_*; do [ -x "$f" ] && targets+=("$(basename "$f")"); done
fi
for t in "${targets[@]}"; do
  seeds=build-fuzz/fuzz/corpus_${t#fuzz_}_seed
  [ -d "$seeds" ] || seeds=fuzz/corpus_${t#fuzz_}
  seeds=$( [ -d "$seeds" ] && realpath "$seeds" || true)
  corpus=build-fuzz/fuzz/corpus_${t#fuzz_}
  mkdir -p "$corpus"
  dict=()
  [ -f "fuzz/${t#fuzz_}.dict" ] && dict=(-dict="fuzz/${t#fuzz_}.dict")
  echo "== $t: ${secs}s =="
  (cd build-fuzz && ./fuzz/"$t" "${dict[@]/#-dict=/-dict=../}" -max_total_time="$secs" -print_final_stats=1 \
     "${corpus#build-fuzz/}" $seeds 2>&1 | tail -4) || { echo "$t: failed (reproducer in build-fuzz/)"; exit 1; }
done
