#!/usr/bin/env python3
"""The detector through a 2-worker fleet against the single-process server and the in-process run
(issue 7 part B), in one run on one machine.

resnet50_fpn Faster R-CNN at 640x640 (the end-to-end tests' detector `det_f32`, converted once into
the build folder as bench/bench_detector.py does), the same images and the same threads on every
side, one request at a time:

  (c) in process: `hloserve infer --repeat` (no HTTP, no queue);
  (s) `hloserve serve --threads 1 --intra-op-threads T` over loopback HTTP, binary tensors;
  (f) `hloserve serve --workers 2 --threads 2 --intra-op-threads T`: the detector and its two
      stages on worker 0 (the only worker with models, so it gets every core), worker 1 idle;
      the image goes to the worker and the boxes come back through shared memory.

Rounds interleave the sides so that load from elsewhere hits them alike. Printed: per-round and
median latencies, (f)/(c) (target <= 1.05), (f)/(s), and the fleet's counters: tensor bytes through
the control channel (must be 0) and by shared-memory reference.

Usage: bench/bench_fleet.py [--rounds 5] [--per-round 3] [--threads N]
HS_BUILD_DIR selects the build (default build/).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "python"))
import bench_detector as BD  # noqa: E402
import server_util as U  # noqa: E402

MODEL = BD.MODEL


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    T = args.threads
    bd = BD.build_dir()
    exe = bd / "hloserve"
    _, tmp, repo = BD.detector_repo(bd, "bench-fleet-")
    xs = BD.images(3)
    npys = []
    for i, x in enumerate(xs):
        npys.append(tmp / f"img{i}.npy")
        np.save(npys[-1], x)
    reqs = [BD.binary_request(x) for x in xs]

    single_args = ["--threads", "1", "--intra-op-threads", str(T)]
    fleet_args = ["--workers", "2", "--threads", "2", "--intra-op-threads", str(T)]
    single = U.Server(exe, repo, *single_args, log=tmp / "single.log")
    t0 = time.perf_counter()
    fleet = U.Server(exe, repo, *fleet_args, log=tmp / "fleet.log")
    fleet_ready = time.perf_counter() - t0
    res = {"c": [], "s": [], "f": []}
    try:
        cs, cf = single.conn(timeout=600), fleet.conn(timeout=600)
        for k in range(2):  # warm-up; the answers must agree
            a = BD.server_infer(cs, *reqs[k])
            b = BD.server_infer(cf, *reqs[k])
            if not np.array_equal(a, b):
                raise AssertionError("the fleet's boxes differ from the single-process server's")
        m0 = fleet.metrics()
        for r in range(args.rounds):
            k = r % len(xs)
            res["c"].append(BD.in_process(exe, repo, npys[k], args.per_round, T))
            res["s"].append(np.median([BD.timed(lambda x: BD.server_infer(cs, *x), reqs[k])
                                       for _ in range(args.per_round)]))
            res["f"].append(np.median([BD.timed(lambda x: BD.server_infer(cf, *x), reqs[k])
                                       for _ in range(args.per_round)]))
            print(f"  round {r + 1}: " + "  ".join(f"({s}) {v[-1]:7.1f} ms" for s, v in res.items()),
                  flush=True)
        m1 = fleet.metrics()
        med = {s: float(np.median(v)) for s, v in res.items()}
        print("\nthreads %d; medians: in process (c) %.1f ms, single-process server (s) %.1f ms, "
              "2-worker fleet (f) %.1f ms" % (T, med["c"], med["s"], med["f"]))
        print(f"(f)/(c) = {med['f'] / med['c']:.3f} (target <= 1.05)   "
              f"(f)/(s) = {med['f'] / med['s']:.3f}   (s)/(c) = {med['s'] / med['c']:.3f}")

        def counter(text, name):
            return int(U.metric_value(text, name) or 0)

        n = args.rounds * args.per_round
        ch = counter(m1, "hloserve_fleet_channel_tensor_bytes_total")
        shm = (counter(m1, "hloserve_fleet_shm_tensor_bytes_total")
               - counter(m0, "hloserve_fleet_shm_tensor_bytes_total"))
        print(f"fleet counters: channel tensor bytes {ch} (must be 0); shared-memory bytes "
              f"{shm} over {n} requests ({shm / max(n, 1) / 1e6:.2f} MB each); fleet ready "
              f"{fleet_ready:.2f} s after start")
        cs.close()
        cf.close()
    finally:
        single.stop()
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
