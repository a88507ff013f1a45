#!/usr/bin/env python3
"""`hloserve serve` overhead and throughput (issue 4).

1. detector: the torchvision detector (meta model) through the server over loopback with a stock
   client (tritonclient, binary tensors) against the same meta run called in process
   (`hloserve infer --repeat`, the worker's code path without HTTP or the queue). Both use one
   worker thread and one intra-op thread; blocks of runs are interleaved so that load from other
   processes hits both sides alike. Reports medians and the server's overhead (target <= 3%).
2. tiny dense: the throughput of a tiny dense model with --threads 2 under C concurrent
   keep-alive clients (binary requests), with p50/p99 latency.

The detector is the test suite's (tests/python/test_server.py: resnet50_fpn, 256x256, random
weights, K=100), converted once under $HS_BUILD_DIR/test-server-models; --detector-repo points
at another repository holding a meta model named `detector`.

Usage: bench/bench_server.py [--rounds 5] [--per-round 10] [--seconds 10] [--clients 4]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "python"))
import server_util as U  # noqa: E402


def build_dir() -> Path:
    return Path(os.environ.get("HS_BUILD_DIR", HERE.parent / "build"))


def detector_bench(exe: Path, repo: Path, rounds: int, per_round: int, tmp: Path):
    import tritonclient.http as httpclient
    meta = json.loads((repo / "detector" / "bundle.json").read_text())
    shape = meta["inputs"][0]["shape"]
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.save(tmp / "image.npy", image)
    local, remote = [], []
    with U.Server(exe, repo, "--threads", "1", "--intra-op-threads", "1",
                  log=tmp / "detector-server.log") as s:
        c = httpclient.InferenceServerClient(s.url, network_timeout=600)
        inp = httpclient.InferInput("INPUT__0", list(image.shape), "UINT8")
        inp.set_data_from_numpy(image, binary_data=True)
        out = [httpclient.InferRequestedOutput("OUTPUT__0", binary_data=True)]
        for _ in range(3):  # warm-up: the pool grows on the first request
            c.infer("detector", [inp], outputs=out)
        for r in range(rounds):
            p = subprocess.run([str(exe), "infer", "--model-repository", str(repo), "--model",
                                "detector", "--input", f"INPUT__0={tmp / 'image.npy'}",
                                "--repeat", str(per_round)], capture_output=True, text=True,
                               timeout=3600)
            if p.returncode != 0:
                raise RuntimeError(p.stderr)
            # the per-run times are not printed; the block's median stands for the block
            m = re.search(r"median_ms=([0-9.]+)", p.stdout)
            local.append(float(m.group(1)))
            ts = []
            for _ in range(per_round):
                t0 = time.perf_counter()
                c.infer("detector", [inp], outputs=out)
                ts.append((time.perf_counter() - t0) * 1e3)
            remote.append(float(np.median(ts)))
            print(f"  round {r + 1}: in process {local[-1]:8.2f} ms   server {remote[-1]:8.2f} ms",
                  flush=True)
        c.close()
        s.stop()
    lo, re_ = float(np.median(local)), float(np.median(remote))
    print(f"detector {shape}: in process median {lo:.2f} ms, through the server (loopback, "
          f"tritonclient binary) median {re_:.2f} ms, overhead {(re_ - lo) / lo * 100:+.2f}% "
          f"({re_ - lo:+.2f} ms)")
    return lo, re_


def tiny_bench(exe: Path, tmp: Path, seconds: float, clients: int):
    repo = tmp / "tiny-repo"
    repo.mkdir(exist_ok=True)
    U.write_tiny_dense(repo, "tiny", rows=(2,))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    body, headers = U.infer_body([("x", x)], binary=True, params={"binary_data_output": True})
    lat = [[] for _ in range(clients)]
    errors = []
    with U.Server(exe, repo, "--threads", "2", "--max-queue", "1024",
                  log=tmp / "tiny-server.log") as s:
        stop = time.perf_counter() + seconds

        def client(i):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            try:
                while time.perf_counter() < stop:
                    t0 = time.perf_counter()
                    c.request("POST", "/v2/models/tiny/infer", body, headers)
                    r = c.getresponse()
                    data = r.read()
                    if r.status != 200 or len(data) < 40:
                        errors.append(r.status)
                    lat[i].append(time.perf_counter() - t0)
            finally:
                c.close()

        for _ in range(200):  # warm-up
            s.request("POST", "/v2/models/tiny/infer", body, headers)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        s.stop()
    all_lat = np.array([v for l in lat for v in l]) * 1e3
    n = len(all_lat)
    print(f"tiny dense (2x4 FP32, binary), --threads 2, {clients} keep-alive clients, "
          f"{elapsed:.1f} s: {n / elapsed:.0f} requests/s, latency p50 {np.percentile(all_lat, 50):.3f} ms, "
          f"p99 {np.percentile(all_lat, 99):.3f} ms, errors {len(errors)}")
    return n / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--detector-repo", type=Path, default=None)
    ap.add_argument("--skip-detector", action="store_true")
    args = ap.parse_args()
    exe = build_dir() / "hloserve"
    if not exe.exists():
        sys.exit(f"{exe} not found: build it and set HS_BUILD_DIR")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_detector:
            repo = args.detector_repo
            if repo is None:
                import test_server
                repo = test_server.convert_detector(build_dir())
            detector_bench(exe, repo, args.rounds, args.per_round, tmp)
        tiny_bench(exe, tmp, args.seconds, args.clients)


if __name__ == "__main__":
    main()
