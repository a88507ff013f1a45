#!/usr/bin/env python3
"""DetectionGlue vs torchvision on the same machine, same thread count, same run.

Three workloads from issue 8, each timed as the median of several runs after a warm-up:
  nms        torchvision.ops.nms of 4000 boxes  vs  hs_glue_nms
  rpn        RegionProposalNetwork's path after the head at 640x640 (resnet50_fpn levels,
             pre_nms_top_n 1000, post 1000): anchors, concat_box_prediction_layers, decode,
             filter_proposals  vs  hs_glue_generate_anchors + flatten + select_rpn_proposals
  roi_align  MultiScaleRoIAlign of 1000 ROIs over four 256-channel FPN maps at 640x640
             (strides 4, 8, 16, 32)  vs  hs_glue_feature_to_hwc + multiscale_roi_align
             (and, for reference, the CHW path without the transpose)
Prints our time, torchvision's time and the ratio (target: <= 0.5).  Our buffers are allocated
once, as a server's workspace and scratch tensors are; torchvision allocates per call as it
always does.

Usage: bench/bench_glue.py [--threads N] [--repeat R]   (HS_BUILD_DIR selects the library)
"""
from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import glue_lib as G  # noqa: E402
import torch  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork  # noqa: E402
from torchvision.ops import MultiScaleRoIAlign, nms  # noqa: E402


def timeit(fns, repeat):
    """Median time of each function; runs are interleaved so that load from other processes
    on the machine hits both sides alike."""
    for f in fns:
        f()
    ts = [[] for _ in fns]
    for _ in range(repeat):
        for f, t in zip(fns, ts):
            t0 = time.perf_counter()
            f()
            t.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in ts]


def report(name, ours, theirs):
    print(f"{name:<36} ours {ours * 1e3:9.3f} ms   torchvision {theirs * 1e3:9.3f} ms   "
          f"ratio {ours / theirs:6.3f}")


def bench_nms(ws, rng, repeat):
    n = 4000
    xy = rng.random((n, 2)) * 600
    wh = 16 + rng.random((n, 2)) * 200
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.random(n).astype(np.float32)
    tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
    keep = np.zeros(n, np.int64)
    cnt = ctypes.c_int64()
    L = G.lib()
    for thr in (0.5, 0.7):
        def ours():
            G._check(L.hs_glue_nms(ws.handle, G.fp(boxes), G.fp(scores), n, thr, G.ip(keep), n,
                                   ctypes.byref(cnt)))
        theirs = lambda: nms(tb, ts, thr)  # noqa: E731
        ref = theirs().numpy()
        ours()
        assert np.array_equal(keep[:cnt.value], ref)
        report(f"nms 4000 boxes (iou {thr}, kept {len(ref)})", *timeit([ours, theirs], repeat))


class FixedHead(torch.nn.Module):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, features):
        return self.out


def bench_rpn(ws, rng, repeat):
    H = W = 640
    sizes = (32, 64, 128, 256, 512)
    grids = [(H // s, W // s) for s in (4, 8, 16, 32, 64)]
    obj = [(rng.standard_normal((1, 3, g[0], g[1])) * 3).astype(np.float32) for g in grids]
    dl = [(rng.standard_normal((1, 12, g[0], g[1])) * 0.3).astype(np.float32) for g in grids]
    head_out = ([torch.from_numpy(o) for o in obj], [torch.from_numpy(d) for d in dl])
    ag = AnchorGenerator(tuple((s,) for s in sizes), ((0.5, 1.0, 2.0),) * 5)
    rpn = RegionProposalNetwork(ag, FixedHead(head_out), 0.7, 0.3, 256, 0.5,
                                dict(training=2000, testing=1000), dict(training=2000, testing=1000),
                                0.7).eval()
    il = ImageList(torch.zeros(1, 3, H, W), [(H, W)])
    feats = {str(i): torch.zeros(1, 1, g[0], g[1]) for i, g in enumerate(grids)}

    def theirs():
        with torch.no_grad():
            return rpn(il, feats)[0][0]

    L = G.lib()
    cells = [G.cell_anchors([s], [0.5, 1.0, 2.0]) for s in sizes]
    n_l = [g[0] * g[1] * 3 for g in grids]
    anchors = [np.zeros((n, 4), np.float32) for n in n_l]
    objf = [np.zeros(n, np.float32) for n in n_l]
    delf = [np.zeros((n, 4), np.float32) for n in n_l]
    levels = (G.RpnLevel * 5)()
    for l in range(5):
        levels[l] = G.RpnLevel(n_l[l], G.fp(objf[l]), None, G.fp(delf[l]), G.fp(anchors[l]))
    params = G.RpnParams(1000, 1000, 0.7, 0.0, 1e-3, (ctypes.c_float * 4)(1, 1, 1, 1),
                         G.BBOX_XFORM_CLIP)
    ob = np.zeros((1000, 4), np.float32)
    os_ = np.zeros(1000, np.float32)
    cnt = ctypes.c_int64()

    def ours():
        for l, g in enumerate(grids):
            G._check(L.hs_glue_generate_anchors(G.fp(cells[l]), 3, g[0], g[1], H // g[0],
                                                W // g[1], G.fp(anchors[l]), n_l[l]))
            G._check(L.hs_glue_flatten_objectness(G.fp(obj[l]), 3, g[0], g[1], G.fp(objf[l]),
                                                  n_l[l]))
            G._check(L.hs_glue_flatten_deltas(G.fp(dl[l]), 3, g[0], g[1], G.fp(delf[l]), n_l[l]))
        G._check(L.hs_glue_select_rpn_proposals(ws.handle, levels, 5, H, W, ctypes.byref(params),
                                                G.fp(ob), G.fp(os_), 1000, ctypes.byref(cnt)))

    ref = theirs().numpy()
    ours()
    assert cnt.value == len(ref)
    report("select_rpn_proposals path 640x640", *timeit([ours, theirs], repeat))


def bench_roi_align(ws, rng, repeat):
    H = W = 640
    C, K = 256, 1000
    strides = (4, 8, 16, 32)
    names = ["0", "1", "2", "3"]
    chw = [rng.standard_normal((C, H // s, W // s)).astype(np.float32) for s in strides]
    feats = {k: torch.from_numpy(f[None]) for k, f in zip(names, chw)}
    xy = rng.random((K, 2)) * 560
    wh = 8 + rng.random((K, 2)) ** 2 * 400
    boxes = np.clip(np.concatenate([xy, xy + wh], 1), 0, 640).astype(np.float32)
    pool = MultiScaleRoIAlign(names, 7, 2)
    tboxes = [torch.from_numpy(boxes)]

    def theirs():
        with torch.no_grad():
            return pool(feats, tboxes, [(H, W)])

    L = G.lib()
    hwc = [np.zeros((f.shape[1], f.shape[2], C), np.float32) for f in chw]
    scales = [1.0 / s for s in strides]
    fa_hwc = (G.Feature * 4)(*[G.Feature(G.fp(h), C, h.shape[0], h.shape[1], G.HWC, sc)
                              for h, sc in zip(hwc, scales)])
    fa_chw = (G.Feature * 4)(*[G.Feature(G.fp(f), C, f.shape[1], f.shape[2], G.CHW, sc)
                              for f, sc in zip(chw, scales)])
    out = np.zeros((K, C, 7, 7), np.float32)
    prm = G.RoiParams(7, 7, 2, False)

    def ours_hwc():
        for f, h in zip(chw, hwc):
            G._check(L.hs_glue_feature_to_hwc(ws.handle, G.fp(f), C, f.shape[1], f.shape[2],
                                              G.fp(h), h.size))
        G._check(L.hs_glue_multiscale_roi_align(ws.handle, fa_hwc, 4, G.fp(boxes), K,
                                                ctypes.byref(prm), G.fp(out), K, None))

    def ours_chw():
        G._check(L.hs_glue_multiscale_roi_align(ws.handle, fa_chw, 4, G.fp(boxes), K,
                                                ctypes.byref(prm), G.fp(out), K, None))

    ref = theirs().numpy()
    ours_hwc()
    assert np.abs(out - ref).max() <= 1e-5
    ours_chw()
    assert np.abs(out - ref).max() <= 1e-5
    t_hwc, t_chw, t_theirs = timeit([ours_hwc, ours_chw, theirs], repeat)
    report("roi_align 1000 ROIs, FPN 640 (HWC)", t_hwc, t_theirs)
    report("roi_align 1000 ROIs, FPN 640 (CHW)", t_chw, t_theirs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ws = G.Workspace(num_threads=args.threads)
    rng = np.random.default_rng(0)
    print(f"threads {args.threads} (torch.get_num_threads() = {torch.get_num_threads()}), "
          f"library {G.library_path()}, torch {torch.__version__}")
    bench_nms(ws, rng, args.repeat)
    bench_rpn(ws, rng, args.repeat)
    bench_roi_align(ws, rng, max(3, args.repeat // 3))
    ws.close()


if __name__ == "__main__":
    main()
