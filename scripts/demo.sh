#!/usr/bin/env bash
# The object-detection demo in one command, from a fresh clone (README.md, "Demo"):
#   1. set-up: Debian packages (scripts/setup_system.sh) and the Python venv (scripts/setup_venv.sh)
#   2. build hloserve and hloserve-detect (cmake)
#   3. convert torchvision's Faster R-CNN with the example config
#      (examples/object_detection/detector.yaml): the pretrained COCO detector `my_detector` when
#      torchvision's weights can be had (online, or from the torch hub cache); otherwise, LOUDLY,
#      the random-weight `random_detector`, with how to get the real weights
#   4. start `hloserve serve` on a free loopback port
#   5. run `hloserve-detect` on a photo that scikit-image ships (or IMAGE), writing detections.jpg
#   6. stop the server
#
# Usage: scripts/demo.sh [IMAGE]
# Environment: HS_BUILD_DIR (default build), HS_DEMO_DIR (where models/, detections.jpg and the
# server log go; default the repository root), HS_DEMO_WEIGHTS (DEFAULT or none: skip the check).
#
# Design: every step is the public command a user would type (the converter, `hloserve serve`,
# `hloserve-detect`), so the demo is also their smoke test (tests/python/test_e2e_demo.py runs
# it). The converter's config is the example's own, rewritten only so that its paths point at
# HS_DEMO_DIR; a server that fails to start or a client that fails makes the demo fail, and the
# server is stopped whatever happens.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
build="${HS_BUILD_DIR:-$repo/build}"
out="${HS_DEMO_DIR:-$repo}"
image="${1:-}"
mkdir -p "$out/models"
out="$(cd "$out" && pwd)"

say() { printf '\n== %s ==\n' "$*"; }

say "1/6 set-up (Debian packages, Python venv)"
bash scripts/setup_system.sh
bash scripts/setup_venv.sh
py="$repo/.venv/bin/python"

say "2/6 build ($build)"
cmake -S . -B "$build" > /dev/null
cmake --build "$build" -j"$(nproc)" --target hloserve hloserve-detect

say "3/6 convert the detector"
weights="${HS_DEMO_WEIGHTS:-$("$py" examples/object_detection/get_weights.py)}"
if [ "$weights" = "DEFAULT" ]; then
  model=my_detector
  echo "torchvision's pretrained COCO weights: converting my_detector (resnet50_fpn, 640x640)"
else
  model=random_detector
  cat <<'EOF'

###########################################################################################
##  NO PRETRAINED WEIGHTS: this demo runs a RANDOM-WEIGHT detector (random_detector),    ##
##  so its boxes and labels are MEANINGLESS. Everything else is the real pipeline.       ##
##                                                                                       ##
##  For real detections, download torchvision's COCO weights on a machine with internet  ##
##  access (see the get_weights message above, or run                                    ##
##    .venv/bin/python examples/object_detection/get_weights.py)                         ##
##  and put the .pth file into ~/.cache/torch/hub/checkpoints/, then run the demo again. ##
###########################################################################################

EOF
fi
config="$out/models/demo-detector.yaml"
"$py" - "$repo/examples/object_detection/detector.yaml" "$config" "$out/models" <<'PY'
import sys
from pathlib import Path
import yaml
src, dst, root = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
cfg = yaml.safe_load(src.read_text())
cfg["output_root"] = root
for h in cfg["handlers"]:
    h["file"] = str((src.parent / h["file"]).resolve())
    w = h.get("options", {}).get("weights")
    if isinstance(w, str) and w.upper() not in ("DEFAULT", "NONE"):
        h["options"]["weights"] = str((src.parent / w).resolve())
dst.write_text("# written by scripts/demo.sh from " + str(src) + "\n" + yaml.safe_dump(cfg))
PY
"$py" tools/convert_to_stablehlo.py "$config" --only "$model"

say "4/6 start the server"
log="$out/demo-server.log"
server_out="$out/demo-server.out"
: > "$server_out"
"$build/hloserve" serve --model-repository "$out/models" --http-port 0 > "$server_out" 2> "$log" &
server_pid=$!
stop_server() {
  if [ -n "${server_pid:-}" ] && kill -0 "$server_pid" 2> /dev/null; then
    kill -TERM "$server_pid" 2> /dev/null || true
    wait "$server_pid" 2> /dev/null || true
  fi
  server_pid=""
}
trap stop_server EXIT
port=""
for _ in $(seq 1 1200); do
  if line="$(grep -m1 '^hloserve: serving' "$server_out" 2> /dev/null)"; then
    port="${line##*:}"
    break
  fi
  kill -0 "$server_pid" 2> /dev/null || break
  sleep 0.5
done
if [ -z "$port" ]; then
  echo "demo: the server did not start; its log ($log):" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "$line"
url="http://127.0.0.1:$port"
if ! "$py" - "$url/v2/models/$model/ready" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=30).read()
except urllib.error.HTTPError as e:
    sys.exit(f"demo: the model is not ready: {e.read().decode(errors='replace')}")
PY
then
  tail -n 40 "$log" >&2
  exit 1
fi
echo "$model is ready at $url"

say "5/6 detect"
if [ -z "$image" ]; then
  image="$out/astronaut.png"
  "$py" -c 'import sys; from PIL import Image; from skimage import data
Image.fromarray(data.astronaut()).save(sys.argv[1])' "$image"
  echo "sample image: scikit-image's astronaut (Eileen Collins, NASA) -> $image"
fi
score_min=0.5
[ "$model" = random_detector ] && score_min=0.85  # show only the few boxes a random model is surest of
"$build/hloserve-detect" "$image" --url "$url" --model "$model" --score-min "$score_min" \
  -o "$out/detections.jpg"

say "6/6 stop the server"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
if [ "$status" -ne 0 ]; then
  echo "demo: the server exited with status $status; its log: $log" >&2
  exit 1
fi
echo "server stopped. Open $out/detections.jpg"
if [ "$model" = random_detector ]; then
  echo "REMINDER: random weights; the boxes are meaningless (see the banner above)."
fi
