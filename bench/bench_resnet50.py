#!/usr/bin/env python3
"""ResNet-50 through hloserve's runtime against torch eager, in one run on one machine.

For each image size: builds torchvision's resnet50 (seeded random weights; pretrained weights
cannot be downloaded here and do not change the arithmetic), exports it with torch.export +
torchax to StableHLO (tools/hloserve_export), runs it with `hloserve run-hlo --repeat`, and times
torch eager with the same thread count in the same process run. Prints the median times, the ratio
ours/torch (target: at most 1.1), the largest relative error (target: 1e-4) and the memory
figures (target: peak intermediate memory at most twice the largest live set; the weights are
mmap'd and counted separately).

  .venv/bin/python bench/bench_resnet50.py [--sizes 224 640] [--threads N] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def build_dir() -> Path:
    return Path(os.environ.get("HS_BUILD_DIR", ROOT / "build"))


def export_resnet50(size: int, out: Path, seed: int = 0):
    """Writes model.mlir, weights.safetensors, params.json and input.npy; returns (model, x)."""
    import torch
    import torchvision
    from safetensors.numpy import save_file

    from hloserve_export.lower import export_module

    torch.manual_seed(seed)
    model = torchvision.models.resnet50(weights=None).eval()
    # Random init leaves BatchNorm at mean 0 / var 1; give it real statistics so the folded
    # arithmetic is exercised.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "stamp.json"
    key = {"torch": torch.__version__, "size": size, "seed": seed}
    if not (stamp.exists() and json.loads(stamp.read_text()) == key):
        low = export_module(model, (x,))
        (out / "model.mlir").write_text(low.text)
        save_file(low.weights, str(out / "weights.safetensors"))
        (out / "params.json").write_text(json.dumps(low.params))
        np.save(out / "input.npy", x.numpy())
        stamp.write_text(json.dumps(key))
    return model, x


def run_ours(out: Path, threads: int, repeat: int) -> tuple[np.ndarray, dict]:
    """Runs the exported program; returns its output and the figures run-hlo printed."""
    params = json.loads((out / "params.json").read_text())
    cmd = [str(build_dir() / "hloserve"), "run-hlo", str(out / "model.mlir"),
           "--weights", str(out / "weights.safetensors"), "--weight-names", ",".join(params),
           "--threads", str(threads), "--input", f"x={out / 'input.npy'}",
           "--output-dir", str(out / "result")]
    if repeat:
        cmd += ["--repeat", str(repeat)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"run-hlo failed: {stderr}")
    figures = {}
    m = re.search(r"run-hlo: (.*)", stdout)
    if m:
        for kv in m.group(1).split():
            k, v = kv.split("=")
            figures[k] = float(v)
    return np.load(out / "result" / "output_0.npy"), figures


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got.astype(np.float64) - want)) / max(np.max(np.abs(want)), 1e-30))


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 640])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--cache", type=Path, default=build_dir() / "bench")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} repeat={args.repeat} torch={torch.__version__}")
    ok = True
    for size in args.sizes:
        out = args.cache / f"resnet50_{size}"
        model, x = export_resnet50(size, out)
        with torch.no_grad():
            want = model(x).numpy().astype(np.float64)
            times = []
            for _ in range(args.repeat + 1):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
        torch_ms = float(np.median(times[1:]))
        got, fig = run_ours(out, args.threads, args.repeat)
        err = rel_error(got, want)
        ours_ms = fig["median_ms"]
        ratio = ours_ms / torch_ms
        live = fig["max_live_bytes"]
        peak = fig["peak_intermediate_bytes"]
        print(f"resnet50 {size}x{size}: torch eager {torch_ms:.1f} ms, hloserve {ours_ms:.1f} ms, "
              f"ratio {ratio:.2f} (target <= 1.1); max rel error {err:.2e} (target <= 1e-4)")
        print(f"  memory: weights {fig['weights_bytes'] / 2**20:.1f} MiB, largest live set "
              f"{live / 2**20:.1f} MiB, peak intermediates {peak / 2**20:.1f} MiB "
              f"({peak / max(live, 1):.2f}x live; target <= 2x)")
        ok &= err <= 1e-4 and peak <= 2 * live
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
