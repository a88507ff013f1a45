#!/usr/bin/env python3
"""The served detector against its peers, in one run on one machine (issue 6).

resnet50_fpn Faster R-CNN at 640x640 (the end-to-end tests' seeded weights, K = 1000), the same
images for every side, the same thread count (--threads, default: all cores):

  (a) torchvision eager: model.eval()([img]) with the venv's PyTorch (torch.set_num_threads);
  (b) XLA: the bundle's two StableHLO stages compiled by jax/XLA on the CPU, with the glue between
      and after them done by torchvision's own code (AnchorGenerator, BoxCoder, filter_proposals,
      MultiScaleRoIAlign, postprocess_detections): the XLA peer;
  (c) our meta run in process (`hloserve infer --repeat`, no HTTP);
  (d) our server end to end over loopback HTTP, binary tensors (KServe v2 binary extension).

Rounds interleave the four sides so that load from elsewhere hits them alike. Printed: medians,
(c)/(a), (d)/(a), (d)/(b); the FLOP floor, the model's convolution and matmul FLOPs (counted from
the bundle's StableHLO) over this machine's measured peak f32 FMA rate (bench/peak_fma.c), and
(c)/floor; then requests per second with --clients concurrent clients, ours against torchvision
(torchvision's best of one caller and --clients Python threads sharing its thread pool); then the
server's resident memory warm and its time to ready.

Usage: bench/bench_detector.py [--rounds 5] [--per-round 3] [--threads N] [--clients 4]
                               [--throughput-requests 24] [--skip-xla]
HS_BUILD_DIR selects the build (default build/); the detector is converted once into it.
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
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "tools"))
import e2e_util as E  # noqa: E402
import server_util as U  # noqa: E402

MODEL = "det_f32"
W = H = 640


def build_dir() -> Path:
    return Path(os.environ.get("HS_BUILD_DIR", REPO / "build")).resolve()


# ------------------------------------------------------------------------------------------------
# FLOPs and the machine's peak

_TENSOR = re.compile(r"tensor<([0-9x]+)x[a-z0-9]+>")


def _dims(s: str) -> list[int]:
    return [int(d) for d in s.split("x")]


def count_flops(mlir: str) -> float:
    """2 * multiply-adds of every convolution and dot_general in `mlir` (pretty-printed form)."""
    total = 0.0
    for line in mlir.splitlines():
        if "stablehlo.convolution" in line:
            types = _TENSOR.findall(line.rsplit(":", 1)[1])
            _, kernel, out = (_dims(t) for t in types[-3:])
            kspec = re.search(r"\]x\[([^\]]*)\]", line).group(1).replace(" ", "").split(",")
            o = kernel[kspec.index("o")]
            total += 2.0 * np.prod(out) * (np.prod(kernel) / o)
        elif "stablehlo.dot_general" in line:
            types = _TENSOR.findall(line.rsplit(":", 1)[1])
            lhs, _, out = (_dims(t) for t in types[-3:])
            m = re.search(r"contracting_dims = \[([0-9, ]*)\] x", line)
            contract = [int(d) for d in m.group(1).split(",") if d.strip()]
            total += 2.0 * np.prod(out) * np.prod([lhs[d] for d in contract])
    return total


def peak_gflops(threads: int, tmp: Path) -> float:
    exe = tmp / "peak_fma"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-march=native", "-pthread", str(HERE / "peak_fma.c"), "-o",
                    str(exe)], check=True)
    out = subprocess.run([str(exe), str(threads), "5"], capture_output=True, text=True,
                         check=True).stdout
    return float(re.search(r"peak_gflops ([0-9.]+)", out).group(1))


# ------------------------------------------------------------------------------------------------
# the peers


def detector_repo(bd: Path, prefix: str) -> tuple[Path, Path, Path]:
    """Converts the test detector into `bd` once; returns (its models folder, a temporary folder,
    a repository in it holding only det_f32 and its stages, as symlinks)."""
    models = E.convert(bd)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    repo = tmp / "repo"
    repo.mkdir()
    for name in (MODEL, f"{MODEL}_stage1", f"{MODEL}_stage2"):
        (repo / name).symlink_to(models / name)
    return models, tmp, repo


def images(n: int) -> list[np.ndarray]:
    """n synthetic photographs-like 640x640 images as f32 [1, 3, H, W] in [0, 1]."""
    return [E.nchw(E.synthetic(100 + i, W, H)[0]).astype(np.float32) / 255 for i in range(n)]


class Torchvision:
    def __init__(self, weights: Path, threads: int):
        import torch
        torch.set_num_threads(threads)
        self.torch = torch
        self.ref = E.Reference(E.MODELS[MODEL], weights)
        t = self.ref.model.transform
        mn, mx = E.torchvision_config((W, H), W, H)
        t.min_size, t.max_size = (mn,), mx
        self.model = self.ref.model.eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            out = self.model([self.torch.from_numpy(x[0])])[0]
        return out["boxes"].numpy()


class XlaPeer:
    """Stage 1 and stage 2 compiled by XLA; torchvision's glue between them."""

    def __init__(self, repo: Path, tv: Torchvision):
        import jax
        import torch
        from hloserve_export import xla_run
        self.torch, self.model = torch, tv.model
        self.jax = jax
        s1, s2 = repo / f"{MODEL}_stage1", repo / f"{MODEL}_stage2"
        m1, w1 = xla_run.load_weights(s1)
        m2, w2 = xla_run.load_weights(s2)
        prog = next(p for p in m1["programs"] if p["file"] == f"model_{W}x{H}.mlir")
        self.exe1 = xla_run.compile_text((s1 / prog["file"]).read_text())
        self.exe2 = xla_run.compile_text((s2 / m2["programs"][0]["file"]).read_text())
        dev = self.exe1.local_devices()[0]
        self.dev = dev
        self.w1 = [jax.device_put(np.ascontiguousarray(a), dev) for a in w1]
        self.w2 = [jax.device_put(np.ascontiguousarray(a), dev) for a in w2]
        self.out1 = [t["name"] for t in m1["outputs"]]
        self.k = m2["inputs"][0]["shape"][0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        torch, model = self.torch, self.model
        from torchvision.models.detection.image_list import ImageList
        from torchvision.models.detection.rpn import concat_box_prediction_layers
        outs = self.exe1.execute(self.w1 + [self.jax.device_put(x, self.dev)])
        o = {n: torch.from_numpy(np.array(a)) for n, a in zip(self.out1, outs)}
        feats = [o[f"feat_{i}"] for i in range(4)]
        objs = [o[f"obj_{i}"] for i in range(5)]
        dels = [o[f"delta_{i}"] for i in range(5)]
        with torch.no_grad():
            rpn, heads = model.rpn, model.roi_heads
            il = ImageList(torch.from_numpy(x), [(H, W)])
            grids = [torch.empty(1, 1, *t.shape[2:]) for t in objs]
            anchors = rpn.anchor_generator(il, grids)
            napl = [t[0].numel() for t in objs]
            obj, deltas = concat_box_prediction_layers(objs, dels)
            props = rpn.box_coder.decode(deltas, anchors).view(1, -1, 4)
            boxes, _ = rpn.filter_proposals(props, obj, il.image_sizes, napl)
            fmap = {str(i): f for i, f in enumerate(feats)}
            pooled = heads.box_roi_pool(fmap, boxes, il.image_sizes)
            n = pooled.shape[0]
            rois = np.zeros((self.k, *pooled.shape[1:]), np.float32)
            rois[:n] = pooled.numpy()
            cls, box = self.exe2.execute(self.w2 + [self.jax.device_put(rois, self.dev)])
            cls = torch.from_numpy(np.asarray(cls)[:n])
            box = torch.from_numpy(np.asarray(box)[:n])
            det, _, _ = heads.postprocess_detections(cls, box, boxes, il.image_sizes)
        return det[0].numpy()


def binary_request(x: np.ndarray):
    return U.infer_body([("INPUT__0", x)], binary=True, params={"binary_data_output": True})


def server_infer(conn: http.client.HTTPConnection, body, headers) -> np.ndarray:
    conn.request("POST", f"/v2/models/{MODEL}/infer", body, headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"server answered {r.status}: {data[:300]!r}")
    return U.decode_response(dict(r.getheaders()), data)["arrays"]["OUTPUT__0"]


def in_process(exe: Path, repo: Path, npy: Path, repeat: int, threads: int) -> float:
    p = subprocess.run([str(exe), "infer", "--model-repository", str(repo), "--model", MODEL,
                        "--input", f"INPUT__0={npy}", "--repeat", str(repeat),
                        "--intra-op-threads", str(threads)],
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return float(re.search(r"median_ms=([0-9.]+)", p.stdout).group(1))


def timed(fn, x) -> float:
    t0 = time.perf_counter()
    fn(x)
    return (time.perf_counter() - t0) * 1e3


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------------------------------
# throughput


def throughput(call, xs, clients: int, total: int) -> float:
    """Requests per second of `clients` threads sharing `total` calls of call(conn_index, x)."""
    lock = threading.Lock()
    left = [total]
    errors = []

    def worker(i):
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
                k = left[0]
            try:
                call(i, xs[k % len(xs)])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return total / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--throughput-requests", type=int, default=24)
    ap.add_argument("--skip-xla", action="store_true")
    ap.add_argument("--server-args", default="",
                    help="extra `serve` options (default: --threads 1 --intra-op-threads THREADS)")
    args = ap.parse_args()
    T = args.threads
    bd = build_dir()
    exe = bd / "hloserve"
    models, tmp, repo = detector_repo(bd, "bench-detector-")

    flops1 = count_flops((models / f"{MODEL}_stage1" / f"model_{W}x{H}.mlir").read_text())
    flops2 = count_flops((models / f"{MODEL}_stage2" / "model.mlir").read_text())
    peak = peak_gflops(T, tmp)
    floor_ms = (flops1 + flops2) / (peak * 1e9) * 1e3
    print(f"threads {T}; model FLOPs: stage1 {flops1 / 1e9:.1f} G, stage2 {flops2 / 1e9:.1f} G "
          f"(K = 1000); peak f32 FMA {peak:.1f} GFLOP/s -> floor {floor_ms:.1f} ms", flush=True)

    xs = images(3)
    npys = []
    for i, x in enumerate(xs):
        npys.append(tmp / f"img{i}.npy")
        np.save(npys[-1], x)
    tv = Torchvision(models.parent / "weights.pth", T)
    xla = None if args.skip_xla else XlaPeer(models, tv)
    server_args = args.server_args.split() or ["--threads", "1", "--intra-op-threads", str(T)]

    t_start = time.perf_counter()
    srv = U.Server(exe, repo, *server_args, log=tmp / "server.log")
    ready_s = time.perf_counter() - t_start
    res = {"a": [], "b": [], "c": [], "d": []}
    try:
        conn = srv.conn(timeout=600)
        reqs = [binary_request(x) for x in xs]
        for k in range(2):  # warm-up of every side
            tv(xs[k])
            if xla:
                xla(xs[k])
            server_infer(conn, *reqs[k])
        rss_warm = rss_kib(srv.proc.pid)
        for r in range(args.rounds):
            k = r % len(xs)
            res["a"].append(np.median([timed(tv, xs[k]) for _ in range(args.per_round)]))
            if xla:
                res["b"].append(np.median([timed(xla, xs[k]) for _ in range(args.per_round)]))
            res["c"].append(in_process(exe, repo, npys[k], args.per_round, T))
            res["d"].append(np.median([timed(lambda x: server_infer(conn, *x), reqs[k])
                                       for _ in range(args.per_round)]))
            print(f"  round {r + 1}: " + "  ".join(f"({s}) {v[-1]:7.1f} ms" for s, v in res.items()
                                                     if v), flush=True)
        med = {s: float(np.median(v)) for s, v in res.items() if v}
        print("\nmedians: " + ", ".join(f"({s}) {v:.1f} ms" for s, v in med.items()))
        print(f"(c)/(a) = {med['c'] / med['a']:.3f}   (d)/(a) = {med['d'] / med['a']:.3f} "
              f"(target <= 0.75)" + (f"   (d)/(b) = {med['d'] / med['b']:.3f}" if xla else ""))
        print(f"floor {floor_ms:.1f} ms: (c)/floor = {med['c'] / floor_ms:.2f} (target <= 1.5), "
              f"(a)/floor = {med['a'] / floor_ms:.2f}")

        # throughput: ours with `clients` connections, torchvision with one caller and `clients`
        conns = [srv.conn(timeout=600) for _ in range(args.clients)]
        ours = throughput(lambda i, req: server_infer(conns[i], *req), reqs, args.clients,
                          args.throughput_requests)
        tv1 = throughput(lambda i, x: tv(x), xs, 1, max(4, args.throughput_requests // 3))
        tvn = throughput(lambda i, x: tv(x), xs, args.clients, args.throughput_requests)
        best = max(tv1, tvn)
        print(f"\nthroughput, {args.clients} concurrent clients: ours {ours:.2f} req/s; torchvision "
              f"{tv1:.2f} req/s (1 caller), {tvn:.2f} req/s ({args.clients} callers); "
              f"ours / best torchvision = {ours / best:.2f} (target >= 1.33)")
        for c in conns:
            c.close()
        rss_after = rss_kib(srv.proc.pid)
        print(f"server: ready {ready_s:.2f} s after start (target <= 5), resident memory warm "
              f"{rss_warm / 1024:.0f} MiB, after the throughput run {rss_after / 1024:.0f} MiB "
              f"(target <= 1229 MiB = 1.2 GiB); serve {' '.join(server_args)}")
        conn.close()
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
