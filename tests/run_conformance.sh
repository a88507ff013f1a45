#!/usr/bin/env bash
# Runs `hloserve check-hlo` over the conformance folder and passes when at
# least THRESHOLD of the files whose names carry no complex type pass.
# Usage: run_conformance.sh HLOSERVE DIR THRESHOLD
set -u
bin=$1 dir=$2 threshold=$3
if [ ! -d "$dir" ]; then
  echo "conformance folder $dir not found" >&2
  exit 1
fi
log=${HS_CONFORMANCE_LOG:-$(mktemp)}
find "$dir" -maxdepth 1 -name '*.mlir' ! -name '*complex*' -print0 | sort -z |
  xargs -0 -n 100 "$bin" check-hlo > "$log" 2>&1
total=$(grep -cE '^(PASS|FAIL|ERROR) ' "$log")
pass=$(grep -c '^PASS ' "$log")
grep -E '^(FAIL|ERROR) ' "$log" | cut -c1-300
echo "conformance (non-complex): $pass of $total files pass"
awk -v p="$pass" -v t="$total" -v th="$threshold" 'BEGIN { exit !(t > 0 && p >= th * t) }'
