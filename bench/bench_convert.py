#!/usr/bin/env python3
"""Benchmark: wall time to convert resnet50_fpn at 640x640 (weights none) with the converter.

Runs tools/convert_to_stablehlo.py in a subprocess, exactly as a user would (Python start, torch
import, build, torch.export, lowering, writing the bundles), into a temporary output root. The
issue's target is at most 3 minutes on the project's 2-core machine. Prints one result line:

    bench_convert: resnet50_fpn 640x640 weights none: 14.2 s (target <= 180 s) OK

Usage: .venv/bin/python bench/bench_convert.py [--arch A] [--image-size N] [--repeat N]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 180.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50_fpn")
    ap.add_argument("--image-size", type=int, default=640)
    ap.add_argument("--repeat", type=int, default=1, help="runs; the best is reported")
    args = ap.parse_args()
    times = []
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        cfg = Path(tmp) / "bench.yaml"
        cfg.write_text(
            f"output_root: out\nhandlers:\n"
            f"  - file: {REPO / 'tools/handlers/torchvision_frcnn_detector.py'}\n"
            f"    models: [bench]\n"
            f"    options: {{arch: {args.arch}, weights: none, image_size: {args.image_size}}}\n")
        for _ in range(args.repeat):
            t0 = time.monotonic()
            r = subprocess.run([sys.executable, str(REPO / "tools/convert_to_stablehlo.py"),
                                str(cfg), "--force"], capture_output=True, text=True)
            times.append(time.monotonic() - t0)
            if r.returncode != 0:
                print(r.stdout + r.stderr, file=sys.stderr)
                print("bench_convert: conversion failed", file=sys.stderr)
                return 1
        size = sum(f.stat().st_size for f in (Path(tmp) / "out").rglob("*") if f.is_file())
    best = min(times)
    verdict = "OK" if best <= TARGET_S else "OVER TARGET"
    print(f"bench_convert: {args.arch} {args.image_size}x{args.image_size} weights none: "
          f"{best:.1f} s (target <= {TARGET_S:.0f} s) {verdict}; bundles {size / 2**20:.0f} MiB")
    return 0 if best <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
