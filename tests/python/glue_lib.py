"""ctypes bindings for libhloserve_glue.so (DetectionGlue), for tests and benchmarks.

The library is found in $HS_BUILD_DIR, else /work/main/build (the lead's build), else next to
this checkout's build-glue/ directory.  Every wrapper takes and returns numpy arrays; an error
status from the C side becomes GlueError carrying the status code name and message.

Design: the wrappers are thin on purpose (one C call each, arguments passed straight through)
so that the parity tests exercise the C functions themselves, including their argument checks.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[2]


def library_path() -> Path:
    candidates = []
    if os.environ.get("HS_BUILD_DIR"):
        candidates.append(Path(os.environ["HS_BUILD_DIR"]))
    candidates += [Path("/work/main/build"), _REPO / "build", _REPO / "build-glue"]
    for d in candidates:
        p = d / "libhloserve_glue.so"
        if p.exists():
            return p
    raise FileNotFoundError(
        "libhloserve_glue.so not found; build it and set HS_BUILD_DIR (tried %s)"
        % ", ".join(str(c) for c in candidates))


_lib = None

c_f32p = ctypes.POINTER(ctypes.c_float)
c_i64p = ctypes.POINTER(ctypes.c_int64)
c_i32p = ctypes.POINTER(ctypes.c_int32)


class Config(ctypes.Structure):
    _fields_ = [("max_boxes", ctypes.c_int64), ("max_level_anchors", ctypes.c_int64),
                ("max_classes", ctypes.c_int64), ("num_threads", ctypes.c_int)]


class RpnLevel(ctypes.Structure):
    _fields_ = [("num_anchors", ctypes.c_int64), ("objectness", c_f32p), ("boxes", c_f32p),
                ("deltas", c_f32p), ("anchors", c_f32p)]


class RpnParams(ctypes.Structure):
    _fields_ = [("pre_nms_top_n", ctypes.c_int64), ("post_nms_top_n", ctypes.c_int64),
                ("nms_thresh", ctypes.c_double), ("score_thresh", ctypes.c_double),
                ("min_size", ctypes.c_double), ("weights", ctypes.c_float * 4),
                ("bbox_xform_clip", ctypes.c_double)]


class Feature(ctypes.Structure):
    _fields_ = [("data", c_f32p), ("channels", ctypes.c_int64), ("height", ctypes.c_int64),
                ("width", ctypes.c_int64), ("layout", ctypes.c_int),
                ("spatial_scale", ctypes.c_double)]


class RoiParams(ctypes.Structure):
    _fields_ = [("pooled_height", ctypes.c_int64), ("pooled_width", ctypes.c_int64),
                ("sampling_ratio", ctypes.c_int64), ("aligned", ctypes.c_bool)]


class FastRcnnParams(ctypes.Structure):
    _fields_ = [("score_thresh", ctypes.c_double), ("nms_thresh", ctypes.c_double),
                ("detections_per_img", ctypes.c_int64), ("weights", ctypes.c_float * 4),
                ("bbox_xform_clip", ctypes.c_double), ("bg_first", ctypes.c_bool),
                ("min_size", ctypes.c_double)]


CHW, HWC = 0, 1
BBOX_XFORM_CLIP = 4.135166556742356


class GlueError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def lib():
    global _lib
    if _lib is not None:
        return _lib
    L = ctypes.CDLL(str(library_path()))
    vp = ctypes.c_void_p
    L.hs_status_code_of.restype = ctypes.c_int
    L.hs_status_code_of.argtypes = [vp]
    L.hs_status_message.restype = ctypes.c_char_p
    L.hs_status_message.argtypes = [vp]
    L.hs_status_code_name.restype = ctypes.c_char_p
    L.hs_status_code_name.argtypes = [ctypes.c_int]
    L.hs_status_free.argtypes = [vp]
    L.hs_status_free.restype = None
    sigs = {
        "hs_glue_workspace_create": [ctypes.POINTER(Config), ctypes.POINTER(vp)],
        "hs_glue_cell_anchors": [c_f32p, ctypes.c_int64, c_f32p, ctypes.c_int64, c_f32p,
                                 ctypes.c_int64],
        "hs_glue_generate_anchors": [c_f32p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_int64, c_f32p, ctypes.c_int64],
        "hs_glue_flatten_objectness": [c_f32p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                       c_f32p, ctypes.c_int64],
        "hs_glue_flatten_deltas": [c_f32p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                   c_f32p, ctypes.c_int64],
        "hs_glue_feature_to_hwc": [vp, c_f32p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                   c_f32p, ctypes.c_int64],
        "hs_glue_decode_boxes": [c_f32p, c_f32p, ctypes.c_int64, ctypes.c_int64, c_f32p,
                                 ctypes.c_double, c_f32p, ctypes.c_int64],
        "hs_glue_clip_boxes": [c_f32p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64],
        "hs_glue_remove_small_boxes": [c_f32p, ctypes.c_int64, ctypes.c_double, c_i64p,
                                       ctypes.c_int64, c_i64p],
        "hs_glue_nms": [vp, c_f32p, c_f32p, ctypes.c_int64, ctypes.c_double, c_i64p,
                        ctypes.c_int64, c_i64p],
        "hs_glue_batched_nms": [vp, c_f32p, c_f32p, c_i64p, ctypes.c_int64, ctypes.c_double,
                                c_i64p, ctypes.c_int64, c_i64p],
        "hs_glue_select_rpn_proposals": [vp, ctypes.POINTER(RpnLevel), ctypes.c_int,
                                         ctypes.c_int64, ctypes.c_int64,
                                         ctypes.POINTER(RpnParams), c_f32p, c_f32p,
                                         ctypes.c_int64, c_i64p],
        "hs_glue_level_range": [ctypes.c_double, ctypes.c_double, ctypes.POINTER(ctypes.c_int),
                                ctypes.POINTER(ctypes.c_int)],
        "hs_glue_assign_levels": [c_f32p, ctypes.c_int64, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_double, ctypes.c_int, ctypes.c_double, c_i32p],
        "hs_glue_roi_align": [vp, ctypes.POINTER(Feature), c_f32p, c_i64p, ctypes.c_int64,
                              ctypes.POINTER(RoiParams), c_f32p, ctypes.c_int64],
        "hs_glue_multiscale_roi_align": [vp, ctypes.POINTER(Feature), ctypes.c_int, c_f32p,
                                         ctypes.c_int64, ctypes.POINTER(RoiParams), c_f32p,
                                         ctypes.c_int64, c_i32p],
        "hs_glue_fast_rcnn_inference": [vp, c_f32p, c_f32p, c_f32p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.POINTER(FastRcnnParams), c_f32p, ctypes.c_int64,
                                        ctypes.c_int, c_i64p],
    }
    for name, args in sigs.items():
        f = getattr(L, name)
        f.argtypes = args
        f.restype = vp
    L.hs_glue_workspace_destroy.argtypes = [vp]
    L.hs_glue_workspace_destroy.restype = None
    L.hs_glue_infer_scale.argtypes = [ctypes.c_int64, ctypes.c_int64]
    L.hs_glue_infer_scale.restype = ctypes.c_double
    # internal helpers exported for tests
    L.hs_glue_topk.argtypes = [vp, ctypes.c_int64, ctypes.c_int64]
    L.hs_glue_topk.restype = None
    _lib = L
    return L


def _check(st):
    if st:
        L = lib()
        code = L.hs_status_code_name(L.hs_status_code_of(st)).decode()
        msg = L.hs_status_message(st).decode()
        L.hs_status_free(st)
        raise GlueError(code, msg)


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def i64(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.int64))


def fp(a):
    return None if a is None else a.ctypes.data_as(c_f32p)


def ip(a):
    return None if a is None else a.ctypes.data_as(c_i64p)


class Workspace:
    """An hs_glue_workspace; close() (or garbage collection) destroys it."""

    def __init__(self, max_boxes=90000, max_level_anchors=76800, max_classes=91, num_threads=1):
        self.config = Config(max_boxes, max_level_anchors, max_classes, num_threads)
        h = ctypes.c_void_p()
        _check(lib().hs_glue_workspace_create(ctypes.byref(self.config), ctypes.byref(h)))
        self.handle = h

    def close(self):
        if self.handle:
            lib().hs_glue_workspace_destroy(self.handle)
            self.handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- NMS ---------------------------------------------------------------------------------
    def nms(self, boxes, scores, iou_threshold, keep_cap=None):
        boxes, scores = f32(boxes).reshape(-1, 4), f32(scores).reshape(-1)
        n = boxes.shape[0]
        cap = n if keep_cap is None else keep_cap
        keep = np.zeros(max(cap, 1), np.int64)
        cnt = ctypes.c_int64()
        _check(lib().hs_glue_nms(self.handle, fp(boxes), fp(scores), n, iou_threshold, ip(keep),
                                 cap, ctypes.byref(cnt)))
        return keep[:cnt.value]

    def batched_nms(self, boxes, scores, idxs, iou_threshold, keep_cap=None):
        boxes, scores, idxs = f32(boxes).reshape(-1, 4), f32(scores).reshape(-1), i64(idxs)
        n = boxes.shape[0]
        cap = n if keep_cap is None else keep_cap
        keep = np.zeros(max(cap, 1), np.int64)
        cnt = ctypes.c_int64()
        _check(lib().hs_glue_batched_nms(self.handle, fp(boxes), fp(scores), ip(idxs), n,
                                         iou_threshold, ip(keep), cap, ctypes.byref(cnt)))
        return keep[:cnt.value]

    # -- RPN ---------------------------------------------------------------------------------
    def select_rpn_proposals(self, objectness, boxes=None, deltas=None, anchors=None,
                             image_size=(640, 640), pre_nms_top_n=1000, post_nms_top_n=1000,
                             nms_thresh=0.7, score_thresh=0.0, min_size=1e-3,
                             weights=(1.0, 1.0, 1.0, 1.0), out_rows=None):
        """objectness: list of [N_l] arrays; boxes or (deltas and anchors): lists of [N_l, 4]."""
        L = len(objectness)
        keep_alive = []
        levels = (RpnLevel * max(L, 1))()
        for l in range(L):
            o = f32(objectness[l]).reshape(-1)
            keep_alive.append(o)
            lv = levels[l]
            lv.num_anchors = o.shape[0]
            lv.objectness = fp(o)
            if boxes is not None:
                b = f32(boxes[l]).reshape(-1, 4)
                keep_alive.append(b)
                lv.boxes = fp(b)
            else:
                d, a = f32(deltas[l]).reshape(-1, 4), f32(anchors[l]).reshape(-1, 4)
                keep_alive += [d, a]
                lv.deltas, lv.anchors = fp(d), fp(a)
        p = RpnParams(pre_nms_top_n, post_nms_top_n, nms_thresh, score_thresh, min_size,
                      (ctypes.c_float * 4)(*weights), BBOX_XFORM_CLIP)
        rows = post_nms_top_n if out_rows is None else out_rows
        ob = np.zeros((max(rows, 1), 4), np.float32)
        os_ = np.zeros(max(rows, 1), np.float32)
        cnt = ctypes.c_int64()
        _check(lib().hs_glue_select_rpn_proposals(self.handle, levels, L, image_size[0],
                                                  image_size[1], ctypes.byref(p), fp(ob),
                                                  fp(os_), rows, ctypes.byref(cnt)))
        return ob[:cnt.value], os_[:cnt.value]

    # -- ROI heads -----------------------------------------------------------------------------
    def fast_rcnn_inference(self, class_logits, box_regression, proposals, image_size,
                            score_thresh=0.05, nms_thresh=0.5, detections_per_img=100,
                            weights=(10.0, 10.0, 5.0, 5.0), bg_first=True, min_size=1e-2,
                            out_cols=6):
        cl, br, pr = f32(class_logits), f32(box_regression), f32(proposals).reshape(-1, 4)
        R = pr.shape[0]
        C = cl.shape[1] if cl.ndim == 2 and cl.size else (cl.size // R if R else 0)
        p = FastRcnnParams(score_thresh, nms_thresh, detections_per_img,
                           (ctypes.c_float * 4)(*weights), BBOX_XFORM_CLIP, bg_first, min_size)
        rows = detections_per_img
        out = np.zeros((max(rows, 1), out_cols), np.float32)
        cnt = ctypes.c_int64()
        _check(lib().hs_glue_fast_rcnn_inference(self.handle, fp(cl), fp(br), fp(pr), R, C,
                                                 image_size[0], image_size[1], ctypes.byref(p),
                                                 fp(out), rows, out_cols, ctypes.byref(cnt)))
        return out[:cnt.value]

    # -- ROIAlign ------------------------------------------------------------------------------
    def roi_align(self, feature, boxes, spatial_scale, output_size=(7, 7), sampling_ratio=2,
                  aligned=False, layout=CHW, rows=None, out=None):
        """feature: [C, H, W] (CHW) or [H, W, C] (HWC) array."""
        feat = f32(feature)
        if layout == CHW:
            C, H, W = feat.shape
        else:
            H, W, C = feat.shape
        boxes = f32(boxes).reshape(-1, 4)
        n = boxes.shape[0]
        f = Feature(fp(feat), C, H, W, layout, spatial_scale)
        prm = RoiParams(output_size[0], output_size[1], sampling_ratio, aligned)
        if out is None:
            out = np.zeros((n, C, output_size[0], output_size[1]), np.float32)
        r = None if rows is None else i64(rows)
        _check(lib().hs_glue_roi_align(self._h(), ctypes.byref(f), fp(boxes), ip(r), n,
                                       ctypes.byref(prm), fp(out), out.shape[0]))
        return out

    def multiscale_roi_align(self, features, scales, boxes, output_size=(7, 7),
                             sampling_ratio=2, layout=CHW):
        feats = [f32(x) for x in features]
        arr = (Feature * len(feats))()
        for i, x in enumerate(feats):
            if layout == CHW:
                C, H, W = x.shape
            else:
                H, W, C = x.shape
            arr[i] = Feature(fp(x), C, H, W, layout, scales[i])
        boxes = f32(boxes).reshape(-1, 4)
        n = boxes.shape[0]
        C = arr[0].channels
        out = np.zeros((n, C, output_size[0], output_size[1]), np.float32)
        levels = np.zeros(max(n, 1), np.int32)
        prm = RoiParams(output_size[0], output_size[1], sampling_ratio, False)
        _check(lib().hs_glue_multiscale_roi_align(self._h(), arr, len(feats), fp(boxes), n,
                                                  ctypes.byref(prm), fp(out), n,
                                                  levels.ctypes.data_as(c_i32p)))
        return out, levels[:n]

    def feature_to_hwc(self, chw):
        chw = f32(chw)
        C, H, W = chw.shape
        out = np.zeros((H, W, C), np.float32)
        _check(lib().hs_glue_feature_to_hwc(self._h(), fp(chw), C, H, W, fp(out), out.size))
        return out

    def _h(self):
        return self.handle


# -- workspace-free helpers ------------------------------------------------------------------

def cell_anchors(scales, ratios):
    s, r = f32(scales), f32(ratios)
    out = np.zeros((len(s) * len(r), 4), np.float32)
    _check(lib().hs_glue_cell_anchors(fp(s), len(s), fp(r), len(r), fp(out), out.shape[0]))
    return out


def generate_anchors(cell, grid_h, grid_w, stride_h, stride_w):
    cell = f32(cell).reshape(-1, 4)
    out = np.zeros((grid_h * grid_w * cell.shape[0], 4), np.float32)
    _check(lib().hs_glue_generate_anchors(fp(cell), cell.shape[0], grid_h, grid_w, stride_h,
                                          stride_w, fp(out), out.shape[0]))
    return out


def flatten_objectness(obj):
    obj = f32(obj)
    _, A, H, W = obj.shape
    out = np.zeros(A * H * W, np.float32)
    _check(lib().hs_glue_flatten_objectness(fp(obj), A, H, W, fp(out), out.size))
    return out


def flatten_deltas(d):
    d = f32(d)
    _, A4, H, W = d.shape
    A = A4 // 4
    out = np.zeros((A * H * W, 4), np.float32)
    _check(lib().hs_glue_flatten_deltas(fp(d), A, H, W, fp(out), out.shape[0]))
    return out


def decode_boxes(deltas, boxes, weights=(1.0, 1.0, 1.0, 1.0), clip=BBOX_XFORM_CLIP):
    boxes = f32(boxes).reshape(-1, 4)
    n = boxes.shape[0]
    deltas = f32(deltas).reshape(n, -1)
    k = deltas.shape[1] // 4 if n else 0
    out = np.zeros_like(deltas)
    w = (ctypes.c_float * 4)(*weights)
    _check(lib().hs_glue_decode_boxes(fp(deltas), fp(boxes), n, k,
                                      ctypes.cast(w, c_f32p), clip, fp(out), n))
    return out


def clip_boxes(boxes, height, width):
    b = f32(boxes).reshape(-1, 4).copy()
    _check(lib().hs_glue_clip_boxes(fp(b), b.shape[0], height, width))
    return b


def remove_small_boxes(boxes, min_size):
    b = f32(boxes).reshape(-1, 4)
    keep = np.zeros(max(b.shape[0], 1), np.int64)
    cnt = ctypes.c_int64()
    _check(lib().hs_glue_remove_small_boxes(fp(b), b.shape[0], min_size, ip(keep), b.shape[0],
                                            ctypes.byref(cnt)))
    return keep[:cnt.value]


def level_range(first_scale, last_scale):
    a, b = ctypes.c_int(), ctypes.c_int()
    _check(lib().hs_glue_level_range(first_scale, last_scale, ctypes.byref(a), ctypes.byref(b)))
    return a.value, b.value


def assign_levels(boxes, k_min, k_max, canonical_scale=224, canonical_level=4, eps=1e-6):
    b = f32(boxes).reshape(-1, 4)
    out = np.zeros(max(b.shape[0], 1), np.int32)
    _check(lib().hs_glue_assign_levels(fp(b), b.shape[0], k_min, k_max, canonical_scale,
                                       canonical_level, eps, out.ctypes.data_as(c_i32p)))
    return out[:b.shape[0]]


def infer_scale(feature_size, image_size):
    return lib().hs_glue_infer_scale(feature_size, image_size)


def topk(values, k):
    """The library's torch.topk replica (internal helper): indices in torch's order."""
    v = f32(values)
    q = np.zeros(len(v), dtype=[("v", np.float32), ("i", np.int32)])
    q["v"] = v
    q["i"] = np.arange(len(v), dtype=np.int32)
    lib().hs_glue_topk(q.ctypes.data, len(v), k)
    return q["i"][:k].astype(np.int64)
