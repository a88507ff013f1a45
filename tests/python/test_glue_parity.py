"""Parity of DetectionGlue (libhloserve_glue.so) with torchvision, over thousands of random and
adversarial cases.

What is compared, and how strictly (docs/detection_glue.md explains each rule):
  * torch.topk order, nms, LevelMapper, anchors, layout helpers, clip, remove_small_boxes,
    roi_align / MultiScaleRoIAlign: identical results (roi_align is in fact bit-identical; the
    acceptance bound is 1e-5 absolute).
  * batched_nms: identical kept indices in identical order on both of torchvision's paths (on
    the per-category one, > 1000 boxes, equal scores in the order of PyTorch's unstable sort).
  * RPN filter_proposals and RoIHeads.postprocess_detections, through torchvision's own code:
    the same proposals / detections, scores to 1e-6 relative, boxes to 1e-6 of the image extent
    (torch.exp in BoxCoder is MKL's, which differs from a correctly rounded expf by one ulp in
    about 1% of inputs), rows within a group of equal scores compared as a set.
The library is loaded from $HS_BUILD_DIR (default /work/main/build).
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
import glue_lib as G  # noqa: E402
from torchvision.models.detection import _utils as det_utils  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402
from torchvision.models.detection.roi_heads import RoIHeads  # noqa: E402
from torchvision.models.detection.rpn import (AnchorGenerator, RegionProposalNetwork,  # noqa: E402
                                              concat_box_prediction_layers)
from torchvision.ops import MultiScaleRoIAlign, batched_nms, nms, roi_align  # noqa: E402
from torchvision.ops import boxes as box_ops  # noqa: E402
from torchvision.ops.poolers import initLevelMapper  # noqa: E402

torch.set_grad_enabled(False)


@pytest.fixture(scope="module")
def ws():
    try:
        w = G.Workspace(num_threads=2)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield w
    w.close()


def rng_for(name):
    return np.random.default_rng([ord(c) for c in name])


# ------------------------------------------------------------------------------------------------
# random and adversarial inputs

def random_boxes(rng, n, extent=300.0, size=80.0, adversarial=False):
    xy = rng.random((n, 2)) * extent - (0.1 * extent if adversarial else 0)
    wh = rng.random((n, 2)) * size
    b = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    if adversarial and n:
        k = rng.integers(0, 6)
        pick = rng.random(n)
        if k == 0:
            b[pick < 0.2, 2:] = b[pick < 0.2, :2]                 # zero-area
        elif k == 1:
            b[pick < 0.2] = b[pick < 0.2][:, [2, 3, 0, 1]]        # inverted
        elif k == 2:
            b[pick < 0.1] = b[0]                                  # duplicates
        elif k == 3:
            b *= 40.0                                             # far outside the image
        elif k == 4:
            b = np.round(b)                                       # integer grid: exact IoUs
        else:
            b[pick < 0.05, rng.integers(0, 4)] = np.nan           # NaN coordinates
    return b


def random_scores(rng, n, mode):
    if mode == "ties":
        return rng.integers(0, 4, n).astype(np.float32)
    s = rng.random(n).astype(np.float32)
    if mode == "nonfinite" and n:
        p = rng.random(n)
        s[p < 0.05] = np.nan
        s[(p >= 0.05) & (p < 0.1)] = np.inf
        s[(p >= 0.1) & (p < 0.15)] = -np.inf
    return s


def tie_groups(scores):
    """[start, end) runs of equal consecutive scores (NaN equal to NaN)."""
    groups, i, n = [], 0, len(scores)
    while i < n:
        j = i + 1
        while j < n and (scores[j] == scores[i] or (np.isnan(scores[j]) and np.isnan(scores[i]))):
            j += 1
        groups.append((i, j))
        i = j
    return groups


def assert_ranked_rows_match(t_rows, t_scores, o_rows, o_scores, cap, atol, what):
    """Same rows in the same score order; inside a run of equal scores any order; a run cut by
    the cap (len == cap) may hold different rows."""
    assert len(o_scores) == len(t_scores), f"{what}: {len(o_scores)} rows vs {len(t_scores)}"
    np.testing.assert_allclose(o_scores, t_scores, rtol=1e-6, atol=0, err_msg=what)
    for (a, b) in tie_groups(t_scores):
        if b == len(t_scores) and len(t_scores) == cap:
            continue
        tg, og = t_rows[a:b], o_rows[a:b]
        if b - a > 1:
            tg = tg[np.lexsort(tg.T[::-1])]
            og = og[np.lexsort(og.T[::-1])]
        np.testing.assert_allclose(og, tg, rtol=0, atol=atol, err_msg=f"{what} rows {a}:{b}")


# ------------------------------------------------------------------------------------------------
# torch.topk (the RPN's per-level selection)

def test_topk_order_matches_torch():
    rng = rng_for("topk")
    for trial in range(1000):
        n = int(rng.integers(1, 4000))
        k = int(rng.integers(1, n + 1)) if trial % 2 else min(n, int(rng.integers(1, 70)))
        v = rng.integers(0, 5, n).astype(np.float32) if trial % 3 else \
            rng.standard_normal(n).astype(np.float32)
        if trial % 7 == 0:
            v[rng.random(n) < 0.1] = np.nan
        t = torch.from_numpy(v).reshape(1, -1).topk(k, dim=1)[1].numpy().ravel()
        assert np.array_equal(G.topk(v, k), t), f"trial {trial} n={n} k={k}"


# ------------------------------------------------------------------------------------------------
# NMS

@pytest.mark.parametrize("mode", ["random", "ties", "nonfinite"])
def test_nms_matches_torchvision(ws, mode):
    rng = rng_for("nms" + mode)
    for trial in range(500):
        n = int(rng.choice([0, 1, 2, int(rng.integers(3, 60)), int(rng.integers(60, 1200))]))
        b = random_boxes(rng, n, adversarial=trial % 2 == 1)
        s = random_scores(rng, n, mode)
        thr = float(rng.choice([0.0, 0.3, 0.5, 0.7, 1.0, -0.1]))
        t = nms(torch.from_numpy(b), torch.from_numpy(s), thr).numpy()
        o = ws.nms(b, s, thr)
        assert np.array_equal(o, t), f"trial {trial}: n={n} thr={thr}"
        if len(t) > 3:  # the early stop returns the prefix
            assert np.array_equal(ws.nms(b, s, thr, keep_cap=3), t[:3])


@pytest.mark.parametrize("mode", ["random", "ties", "nonfinite"])
def test_batched_nms_matches_torchvision(ws, mode):
    rng = rng_for("bnms" + mode)
    for trial in range(300):
        n = int(rng.choice([0, 1, int(rng.integers(2, 1001)), int(rng.integers(1001, 3000))]))
        b = random_boxes(rng, n, adversarial=trial % 2 == 1)
        s = random_scores(rng, n, mode)
        ncat = int(rng.choice([1, 3, 20]))
        idx = rng.integers(0, ncat, n) * int(rng.choice([1, 7, 100003]))
        thr = float(rng.choice([0.3, 0.5, 0.7]))
        t = batched_nms(torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(idx),
                        thr).numpy()
        o = ws.batched_nms(b, s, idx, thr)
        # both paths (coordinate trick up to 1000 boxes, per-category loop and torch's unstable
        # sort beyond) give identical indices, ties and NaN scores included
        assert np.array_equal(o, t), f"trial {trial}: n={n}"


# ------------------------------------------------------------------------------------------------
# Box ops, anchors, layouts, level mapper

def test_box_coder_decode(ws):
    rng = rng_for("decode")
    for trial in range(300):
        n = int(rng.integers(0, 2000))
        k = int(rng.choice([1, 2, 91]))
        weights = [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)][trial % 2]
        boxes = random_boxes(rng, n, adversarial=trial % 3 == 0)
        rel = (rng.standard_normal((n, 4 * k)) * float(rng.choice([0.1, 1.0, 10.0]))).astype(np.float32)
        if trial % 5 == 0 and n:
            rel[rng.random((n, 4 * k)) < 0.02] = np.inf
            rel[rng.random((n, 4 * k)) < 0.02] = -np.inf
        coder = det_utils.BoxCoder(weights)
        t = coder.decode_single(torch.from_numpy(rel), torch.from_numpy(boxes)).numpy()
        o = G.decode_boxes(rel, boxes, weights)
        fin = np.isfinite(t)
        assert np.array_equal(np.isfinite(o), fin) and np.array_equal(np.isnan(o), np.isnan(t))
        assert np.array_equal(o[~fin & ~np.isnan(t)], t[~fin & ~np.isnan(t)])
        # relative to the box's own extent: x1 = ctr - w/2 may cancel to near zero
        mag = np.abs(np.where(fin, t, 0)).reshape(n, k, 4).max(2, keepdims=True)
        scale = np.broadcast_to(np.maximum(mag, 1.0), (n, k, 4)).reshape(n, 4 * k)
        assert np.all(np.abs(o[fin] - t[fin]) <= 1e-6 * scale[fin]), f"trial {trial}"


def test_clip_and_remove_small():
    rng = rng_for("clip")
    for trial in range(300):
        n = int(rng.integers(0, 500))
        b = random_boxes(rng, n, extent=700, adversarial=True)
        h, w = int(rng.integers(1, 800)), int(rng.integers(1, 800))
        t = box_ops.clip_boxes_to_image(torch.from_numpy(b), (h, w)).numpy()
        o = G.clip_boxes(b, h, w)
        assert np.array_equal(o, t, equal_nan=True)
        ms = float(rng.choice([1e-3, 1e-2, 1.0, 5.5]))
        assert np.array_equal(G.remove_small_boxes(o, ms),
                              box_ops.remove_small_boxes(torch.from_numpy(t), ms).numpy())


def test_anchor_generator_and_layouts():
    rng = rng_for("anchors")
    sizes = ((32,), (64,), (128,), (256,), (512,))
    ratios = ((0.5, 1.0, 2.0),) * 5
    for trial in range(40):
        if trial % 2:
            sizes = tuple((int(rng.integers(8, 600)), int(rng.integers(8, 600))) for _ in range(5))
            ratios = (tuple(float(r) for r in rng.random(3) * 3 + 0.1),) * 5
        ag = AnchorGenerator(sizes, ratios)
        H, W = int(rng.integers(1, 12)) * 64, int(rng.integers(1, 12)) * 64
        grids = [(H // s, W // s) for s in (4, 8, 16, 32, 64)]
        feats = [torch.zeros(1, 1, g[0], g[1]) for g in grids]
        anchors = ag(ImageList(torch.zeros(1, 3, H, W), [(H, W)]), feats)[0].numpy()
        A = len(sizes[0]) * len(ratios[0])
        ours, objs, dls, tob, tdl = [], [], [], [], []
        for l, g in enumerate(grids):
            cell = G.cell_anchors(sizes[l], ratios[l])
            assert np.array_equal(cell, ag.cell_anchors[l].numpy())
            ours.append(G.generate_anchors(cell, g[0], g[1], H // g[0], W // g[1]))
            o = rng.standard_normal((1, A, g[0], g[1])).astype(np.float32)
            d = rng.standard_normal((1, A * 4, g[0], g[1])).astype(np.float32)
            tob.append(torch.from_numpy(o))
            tdl.append(torch.from_numpy(d))
            objs.append(G.flatten_objectness(o))
            dls.append(G.flatten_deltas(d))
        assert np.array_equal(np.concatenate(ours), anchors)
        to, td = concat_box_prediction_layers(tob, tdl)
        assert np.array_equal(np.concatenate(objs), to.numpy().ravel())
        assert np.array_equal(np.concatenate(dls), td.numpy())


def test_level_mapper():
    rng = rng_for("levels")
    mapper = initLevelMapper(2, 5)
    assert G.level_range(0.25, 1 / 32) == (2, 5)
    for trial in range(100):
        n = 2000
        xy = rng.random((n, 2)) * 600
        wh = rng.random((n, 2)) ** 3 * 900
        if trial % 3 == 0:
            wh = np.round(wh / 7) * 7    # sizes near powers of two
        b = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        t = mapper([torch.from_numpy(b)]).numpy()
        assert np.array_equal(G.assign_levels(b, 2, 5), t), f"trial {trial}"
    for f, i in [(160, 640), (80, 640), (20, 640), (13, 800), (100, 333)]:
        from torchvision.ops.poolers import _infer_scale
        assert G.infer_scale(f, i) == _infer_scale(torch.zeros(1, 1, f, f), [i, i])


# ------------------------------------------------------------------------------------------------
# ROIAlign

def test_roi_align_matches_torchvision(ws):
    rng = rng_for("roi_align")
    worst = 0.0
    cases = 0
    for trial in range(1000):
        C, H, W = int(rng.integers(1, 12)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
        feat = rng.standard_normal((C, H, W)).astype(np.float32)
        scale = float(rng.choice([1.0, 0.5, 0.25, 0.125, 0.3]))
        n = int(rng.choice([0, 1, int(rng.integers(2, 40))]))
        xy = (rng.random((n, 2)) * 1.6 - 0.3) * np.array([W, H]) / scale
        wh = (rng.random((n, 2)) * 1.3 - 0.15) * np.array([W, H]) / scale
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        if trial % 10 == 0 and n:
            boxes[0] = [-50, -50, -40, -40]             # fully outside
        sr = int(rng.choice([-1, 0, 1, 2, 3]))
        aligned = bool(rng.integers(0, 2))
        ps = (int(rng.integers(1, 8)), int(rng.integers(1, 8)))
        rois = torch.cat([torch.zeros(n, 1), torch.from_numpy(boxes)], 1)
        try:
            t = roi_align(torch.from_numpy(feat)[None], rois, ps, scale, sr, aligned).numpy()
        except (RuntimeError, ValueError):
            # aligned=True with an inverted ROI and an adaptive grid: torchvision fails to
            # allocate a negative-size buffer; we define the result as zeros for those ROIs.
            t = None
        o1 = ws.roi_align(feat, boxes, scale, ps, sr, aligned, G.CHW)
        o2 = ws.roi_align(np.ascontiguousarray(feat.transpose(1, 2, 0)), boxes, scale, ps, sr,
                          aligned, G.HWC)
        assert np.array_equal(o1, o2)
        if t is None:
            continue
        cases += 1
        if n:
            worst = max(worst, float(np.abs(t - o1).max()))
        np.testing.assert_allclose(o1, t, rtol=0, atol=1e-5, err_msg=f"trial {trial}")
    assert cases > 800
    print(f"roi_align: {cases} cases, worst abs diff {worst}")


def test_roi_align_nonfinite_features(ws):
    # NaN/Inf features propagate exactly as in torchvision (0 * NaN for out-of-map samples).
    rng = rng_for("roi_nan")
    for trial in range(50):
        feat = rng.standard_normal((3, 10, 10)).astype(np.float32)
        feat[0, 0, 0] = np.nan
        feat[1, rng.integers(0, 10), rng.integers(0, 10)] = np.inf
        boxes = random_boxes(rng, 10, extent=50, size=40, adversarial=False) - 10
        t = roi_align(torch.from_numpy(feat)[None],
                      torch.cat([torch.zeros(10, 1), torch.from_numpy(boxes)], 1),
                      (7, 7), 0.25, 2, False).numpy()
        o = ws.roi_align(feat, boxes, 0.25)
        assert np.array_equal(np.isnan(o), np.isnan(t))
        np.testing.assert_array_equal(o[~np.isnan(t)], t[~np.isnan(t)])


def test_multiscale_roi_align_matches_torchvision(ws):
    rng = rng_for("msroi")
    for trial in range(60):
        H = W = int(rng.choice([128, 256, 320]))
        C = int(rng.choice([1, 8, 17]))
        names = ["0", "1", "2", "3"]
        feats = {k: torch.from_numpy(rng.standard_normal((1, C, H // s, W // s)).astype(np.float32))
                 for k, s in zip(names, (4, 8, 16, 32))}
        n = int(rng.integers(0, 300))
        boxes = random_boxes(rng, n, extent=H, size=H * float(rng.choice([0.1, 0.5, 1.0])))
        boxes = np.clip(boxes, 0, H)
        pool = MultiScaleRoIAlign(names, 7, 2)
        t = pool(feats, [torch.from_numpy(boxes)], [(H, W)]).numpy()
        layout = G.HWC if trial % 2 else G.CHW
        fl = [f[0].numpy() for f in feats.values()]
        if layout == G.HWC:
            fl = [ws.feature_to_hwc(f) for f in fl]
        o, _ = ws.multiscale_roi_align(fl, [0.25, 0.125, 0.0625, 0.03125], boxes, layout=layout)
        np.testing.assert_allclose(o, t, rtol=0, atol=1e-5, err_msg=f"trial {trial}")


def test_multiscale_roi_align_maps_sharing_a_scale(ws):
    # mobilenet_v3_large_320_fpn pools from two maps of the same size: torchvision's LevelMapper
    # then has a single level and every box goes to the first map.
    rng = rng_for("msroi-same")
    for trial in range(10):
        H = W = 320
        C = 8
        names = ["0", "1"]
        feats = {k: torch.from_numpy(rng.standard_normal((1, C, 10, 10)).astype(np.float32)) for k in names}
        boxes = np.clip(random_boxes(rng, 50, extent=H, size=H * 0.5), 0, H)
        t = MultiScaleRoIAlign(names, 7, 2)(feats, [torch.from_numpy(boxes)], [(H, W)]).numpy()
        fl = [ws.feature_to_hwc(f[0].numpy()) for f in feats.values()]
        o, _ = ws.multiscale_roi_align(fl, [1 / 32, 1 / 32], boxes, layout=G.HWC)
        np.testing.assert_allclose(o, t, rtol=0, atol=1e-5, err_msg=f"trial {trial}")


# ------------------------------------------------------------------------------------------------
# RPN: torchvision's RegionProposalNetwork forward (its head replaced by fixed outputs)

class FixedHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.out = None

    def forward(self, features):
        return self.out


SIZES = (32, 64, 128, 256, 512)


def make_rpn(pre, post, nms_thresh, score_thresh):
    ag = AnchorGenerator(tuple((s,) for s in SIZES), ((0.5, 1.0, 2.0),) * 5)
    return RegionProposalNetwork(ag, FixedHead(), 0.7, 0.3, 256, 0.5,
                                 dict(training=pre, testing=pre), dict(training=post, testing=post),
                                 nms_thresh, score_thresh=score_thresh).eval()


def rpn_case(rng, trial):
    H = int(rng.choice([64, 128, 256, 320, 640]))
    W = int(rng.choice([64, 128, 256, 320, 640]))
    grids = [(H // s, W // s) for s in (4, 8, 16, 32, 64)]
    kind = trial % 6
    obj, dl = [], []
    for g in grids:
        o = (rng.standard_normal((1, 3, g[0], g[1])) * float(rng.choice([1, 3, 12]))).astype(np.float32)
        if kind == 1:
            o = np.round(o)                                    # many equal logits
        if kind == 2:
            p = rng.random(o.shape)
            o[p < 0.02] = np.nan
            o[(p >= 0.02) & (p < 0.04)] = np.inf
            o[(p >= 0.04) & (p < 0.06)] = -np.inf
        d = (rng.standard_normal((1, 12, g[0], g[1])) * float(rng.choice([0.1, 0.5, 3.0]))).astype(np.float32)
        if kind == 3:
            d[:, 2::4] = -8.0                                   # tiny boxes: remove_small_boxes
        obj.append(o)
        dl.append(d)
    pre = int(rng.choice([1, 50, 1000]))
    post = int(rng.choice([1, 100, 1000]))
    nms_t = float(rng.choice([0.5, 0.7]))
    score_t = float(rng.choice([0.0, 0.0, 0.3]))
    return H, W, grids, obj, dl, pre, post, nms_t, score_t


def test_rpn_filter_proposals_matches_torchvision(ws):
    rng = rng_for("rpn")
    for trial in range(150):
        H, W, grids, obj, dl, pre, post, nms_t, score_t = rpn_case(rng, trial)
        rpn = make_rpn(pre, post, nms_t, score_t)
        rpn.head.out = ([torch.from_numpy(o) for o in obj], [torch.from_numpy(d) for d in dl])
        il = ImageList(torch.zeros(1, 3, H, W), [(H, W)])
        feats = {str(i): torch.zeros(1, 1, g[0], g[1]) for i, g in enumerate(grids)}
        # the same pipeline step by step, to get the scores torchvision computed
        anchors = rpn.anchor_generator(il, list(feats.values()))
        to, td = concat_box_prediction_layers(rpn.head.out[0], rpn.head.out[1])
        props = rpn.box_coder.decode(td, anchors).view(1, -1, 4)
        napl = [o.size for o in obj]
        tb, ts = rpn.filter_proposals(props, to, il.image_sizes, napl)
        tb, ts = tb[0].numpy(), ts[0].numpy()
        fwd, _ = rpn(il, feats)
        assert np.array_equal(fwd[0].numpy(), tb)

        objs = [G.flatten_objectness(o) for o in obj]
        deltas = [G.flatten_deltas(d) for d in dl]
        anc = [G.generate_anchors(G.cell_anchors([SIZES[l]], [0.5, 1.0, 2.0]), g[0], g[1],
                                  H // g[0], W // g[1]) for l, g in enumerate(grids)]
        kw = dict(image_size=(H, W), pre_nms_top_n=pre, post_nms_top_n=post, nms_thresh=nms_t,
                  score_thresh=score_t)
        ob, os_ = ws.select_rpn_proposals(objs, deltas=deltas, anchors=anc, **kw)
        assert_ranked_rows_match(tb, ts, ob, os_, post, 1e-6 * max(H, W), f"rpn trial {trial}")
        # with torchvision's own decoded boxes the selection is exact, row for row, equal scores
        # and the post_nms_top_n cut through them included
        pb = props[0].numpy()
        cuts = np.cumsum([0] + napl)
        ob2, os2 = ws.select_rpn_proposals(objs, boxes=[pb[cuts[i]:cuts[i + 1]] for i in range(5)],
                                           **kw)
        assert np.array_equal(ob2, tb) and np.array_equal(os2, ts), f"rpn(boxes) trial {trial}"


# ------------------------------------------------------------------------------------------------
# RoIHeads.postprocess_detections

def test_postprocess_detections_matches_torchvision(ws):
    rng = rng_for("roiheads")
    for trial in range(300):
        R = int(rng.choice([0, 1, int(rng.integers(2, 50)), int(rng.integers(50, 1000))]))
        C = int(rng.choice([2, 5, 21, 91]))
        H, W = int(rng.integers(32, 800)), int(rng.integers(32, 800))
        props = np.clip(random_boxes(rng, R, extent=max(H, W), size=200), 0, max(H, W))
        scale = float(rng.choice([1, 3, 8]))
        logits = (rng.standard_normal((R, C)) * scale).astype(np.float32)
        deltas = (rng.standard_normal((R, C * 4)) * float(rng.choice([0.2, 1.0, 5.0]))).astype(np.float32)
        kind = trial % 5
        if kind == 1 and R:
            logits = np.round(logits)                           # equal scores across rows
            logits[: R // 2] = logits[0]
        if kind == 2 and R:
            p = rng.random((R, C))
            logits[p < 0.02] = np.nan
            logits[(p > 0.02) & (p < 0.03)] = np.inf
            logits[(p > 0.03) & (p < 0.05)] = -np.inf
        if kind == 3 and R:
            props[: R // 2, 2:] = props[: R // 2, :2]           # degenerate proposals
        score_t = float(rng.choice([0.05, 0.0, 0.5]))
        nms_t = float(rng.choice([0.5, 0.3]))
        dpi = int(rng.choice([100, 10, 1]))
        rh = RoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, (10.0, 10.0, 5.0, 5.0), score_t,
                      nms_t, dpi).eval()
        b, s, l = rh.postprocess_detections(torch.from_numpy(logits), torch.from_numpy(deltas),
                                            [torch.from_numpy(props)], [(H, W)])
        t_rows = np.concatenate([b[0].numpy(), l[0].numpy()[:, None].astype(np.float32)], 1)
        o = ws.fast_rcnn_inference(logits, deltas, props, (H, W), score_thresh=score_t,
                                   nms_thresh=nms_t, detections_per_img=dpi)
        o_rows = np.concatenate([o[:, :4], o[:, 5:6]], 1)
        assert_ranked_rows_match(t_rows, s[0].numpy(), o_rows, o[:, 4], dpi, 1e-6 * max(H, W),
                                 f"roiheads trial {trial} R={R} C={C}")


# ------------------------------------------------------------------------------------------------
# argument checks through the C API

def test_invalid_arguments_are_errors(ws):
    L = G.lib()
    cell, out = np.zeros((3, 4), np.float32), np.zeros((8, 4), np.float32)
    with pytest.raises(G.GlueError) as e:
        G._check(L.hs_glue_generate_anchors(G.fp(cell), 3, -1, 2, 4, 4, G.fp(out), 8))
    assert e.value.code == "INVALID_ARGUMENT"
    with pytest.raises(G.GlueError, match="rows"):
        G._check(L.hs_glue_generate_anchors(G.fp(cell), 3, 2, 2, 4, 4, G.fp(out), 8))
    keep = np.zeros(4, np.int64)
    cnt = G.ctypes.c_int64()
    b = np.zeros((4, 4), np.float32)
    st = L.hs_glue_nms(ws.handle, G.fp(b), G.fp(b[:, 0].copy()), -3, 0.5, G.ip(keep), 4,
                       G.ctypes.byref(cnt))
    with pytest.raises(G.GlueError, match="negative"):
        G._check(st)
    small = G.Workspace(max_boxes=10, max_level_anchors=10, max_classes=3)
    with pytest.raises(G.GlueError) as e:
        small.nms(np.zeros((11, 4)), np.zeros(11), 0.5)
    assert e.value.code == "RESOURCE_EXHAUSTED"
    with pytest.raises(G.GlueError) as e:
        small.fast_rcnn_inference(np.zeros((2, 5)), np.zeros((2, 20)), np.zeros((2, 4)), (10, 10))
    assert e.value.code == "RESOURCE_EXHAUSTED"
    with pytest.raises(G.GlueError):
        ws.roi_align(np.zeros((2, 4, 4)), np.zeros((3, 4)), 0.25, rows=[0, 1, 7],
                     out=np.zeros((3, 2, 7, 7), np.float32))
    small.close()
