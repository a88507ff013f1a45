"""Helpers for the end-to-end detector tests (tests/python/test_e2e_*.py, issue 5): the test
detector's weights and conversion (cached per build folder), the test images, torchvision's own
model configured the way the served wrapper letterboxes, and the one-to-one matching of two sets
of detections.

Why the reference is configured per image: the served detector letterboxes into one compiled
shape W x H (docs/bundles.md). torchvision's GeneralizedRCNNTransform resizes by
min(min_size / min(h, w), max_size / max(h, w)) and pads the batch to a multiple of 32. The same
run in torchvision is therefore: (min_size, max_size) chosen so that its formula picks the same
ratio (the same double division, so the same resized size), and the batch padded to W x H
instead of the next multiple of 32 (padding changes what the convolutions see near the edge, so
a different pad is a different computation, not a different rounding).
"""
from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
HANDLER = REPO / "tools" / "handlers" / "torchvision_frcnn_detector.py"
CONVERTER = REPO / "tools" / "convert_to_stablehlo.py"

# The test detector: resnet50_fpn at 640 plus one non-square entry (W x H = 512 x 384), torchvision's
# default thresholds. Two metas over the same weights, one per client dtype.
SHAPES = [[640, 640], [512, 384]]
BASE_OPTIONS = {"arch": "resnet50_fpn", "weights": "weights.pth", "num_classes": 91,
                "image_size": 640, "input_shapes": [[512, 384]], "output_cols": 6}
MODELS = {"det_u8": {**BASE_OPTIONS, "input_dtype": "u8"},
          "det_f32": {**BASE_OPTIONS, "input_dtype": "f32"}}
WEIGHTS_SEED = 0
WEIGHTS_VERSION = 1  # bump when make_weights changes


def handler():
    sys.path.insert(0, str(REPO / "tools"))
    sys.path.insert(0, str(REPO / "tools" / "handlers"))
    import torchvision_frcnn_detector as H
    return H


def make_weights(path: Path) -> None:
    """A seeded random resnet50_fpn whose detections are plentiful and well spread.

    torchvision's random initialisation already scores many boxes (the random backbone's features
    are large), but its RPN objectness is nearly flat (head weights of std 0.01), so which
    proposals make the top-n would hinge on the last bits of the float arithmetic; and its final
    scores crowd just under 1.0 in a few classes (gaps of 1e-6 between neighbours, so the top-100
    cut would too). Scaling the RPN head's objectness layer spreads the proposals' scores; a box
    predictor whose logits vary by about 2 across ROIs, with a bias that favours a third of the
    classes, spreads the final scores over 0.05..0.5 across some 20 labels: every image has
    hundreds of candidates above the 0.05 threshold and the 100 kept are well separated."""
    import torch
    H = handler()
    o = H._validate({"arch": "resnet50_fpn", "weights": "none", "seed": WEIGHTS_SEED,
                     "image_size": 640})
    model = H.build_model(o)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        model.rpn.head.cls_logits.weight.mul_(10.0)
        cls = model.roi_heads.box_predictor.cls_score
        cls.weight.copy_(torch.randn(cls.weight.shape, generator=g) * 0.01)
        bias = torch.zeros(cls.bias.shape)
        bias[1::3] = 1.0
        cls.bias.copy_(bias)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(sd, buf)
    data = buf.getvalue()
    # rewrite only when different: the converter's up-to-date check includes the file's mtime
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def convert(build_dir: Path) -> Path:
    """Converts the test detectors once per build folder; returns the model repository."""
    folder = Path(build_dir) / "test-e2e-models"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "weights.version"
    if not (folder / "weights.pth").exists() or not stamp.exists() or \
            stamp.read_text() != str(WEIGHTS_VERSION):
        make_weights(folder / "weights.pth")
        stamp.write_text(str(WEIGHTS_VERSION))
    lines = ["output_root: models", "handlers:"]
    for name, opts in MODELS.items():
        lines += [f"  - file: {HANDLER}", f"    models: [{name}]",
                  f"    options: {json.dumps(opts)}"]
    (folder / "config.yaml").write_text("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, str(CONVERTER), str(folder / "config.yaml")],
                       capture_output=True, text=True, cwd=REPO, timeout=1800)
    if r.returncode != 0:
        raise AssertionError(f"converter failed:\n{r.stdout}\n{r.stderr}")
    return folder / "models"


# ------------------------------------------------------------------------------------------------
# letterbox arithmetic (what the generated model.c does), for the test's expectations


def fit(shape, w: int, h: int):
    """(resized w, resized h, wasted pixels) for compiled shape [W, H]."""
    W, H = shape
    s = min(H / h, W / w)
    rw, rh = min(int(w * s), W), min(int(h * s), H)
    return rw, rh, W * H - rw * rh


def choose_shape(shapes, w: int, h: int):
    """The compiled shape the wrapper picks: least waste, the first on ties."""
    best = None
    for shp in shapes:
        rw, rh, waste = fit(shp, w, h)
        if rw < 1 or rh < 1:
            continue
        if best is None or waste < best[3]:
            best = (shp, rw, rh, waste)
    return best


# ------------------------------------------------------------------------------------------------
# torchvision's own model, configured like the served wrapper


def _pad_to(shape_hw, images, size_divisible=32):
    """GeneralizedRCNNTransform.batch_images, padding to the compiled shape (zeros after
    normalisation, as torchvision pads)."""
    import torch
    H, W = shape_hw
    out = images[0].new_full([len(images), images[0].shape[0], H, W], 0)
    for i, img in enumerate(images):
        out[i, :, :img.shape[1], :img.shape[2]].copy_(img)
    return out


def torchvision_config(shape, w: int, h: int):
    """(min_size, max_size) that make torchvision's scale the wrapper's min(H / h, W / w), as the
    same double division: the binding ratio X / d goes in the slot whose divisor is d (min_size
    divides by min(h, w), max_size by max(h, w)); the other slot gets an edge large enough never
    to bind."""
    W, H = shape
    big = 1 << 30
    X, d = (H, h) if H / h <= W / w else (W, w)
    if d == min(h, w):
        return X, big
    return big, X


class Reference:
    """torchvision's Faster R-CNN with the test weights and the converter's options."""

    def __init__(self, options: dict, weights: Path):
        import torch
        H = handler()
        o = H._validate({**options, "weights": str(weights)})
        self.model = H.build_model(o)
        self.torch = torch

    def __call__(self, image_u8_hwc: np.ndarray, shape) -> np.ndarray:
        """Detections [N, 6] for an RGB u8 image [h, w, 3], letterboxed into `shape` [W, H]."""
        torch = self.torch
        h, w = image_u8_hwc.shape[:2]
        t = self.model.transform
        mn, mx = torchvision_config(shape, w, h)
        t.min_size, t.max_size = (mn,), mx
        t.batch_images = functools.partial(_pad_to, (shape[1], shape[0]))
        x = torch.from_numpy(np.ascontiguousarray(image_u8_hwc.transpose(2, 0, 1))).float() / 255
        with torch.no_grad():
            out = self.model([x])[0]
        return np.concatenate([out["boxes"].numpy(), out["scores"].numpy()[:, None],
                               out["labels"].numpy()[:, None].astype(np.float32)], axis=1)


# ------------------------------------------------------------------------------------------------
# matching


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, (np.abs(a[:, None, :4] - b[None, :, :4]).max(-1)
                                                  == 0).astype(np.float64))
    return iou


def match(ref: np.ndarray, got: np.ndarray, iou_min=0.99, score_tol=1e-3):
    """One-to-one matching of reference detections to served ones: same label, IoU >= iou_min,
    scores within score_tol; greedy by IoU (each reference row, best score first, takes its best
    free partner). Returns (matched pairs, unmatched ref indices, unmatched got indices)."""
    pairs, used = [], np.zeros(len(got), bool)
    if len(ref) and len(got):
        iou = iou_matrix(ref[:, :4], got[:, :4])
        ok = ((ref[:, None, 5] == got[None, :, 5]) & (iou >= iou_min)
              & (np.abs(ref[:, None, 4] - got[None, :, 4]) <= score_tol))
        for i in np.argsort(-ref[:, 4], kind="stable"):
            cand = np.where(ok[i] & ~used)[0]
            if len(cand):
                j = cand[np.argmax(iou[i, cand])]
                used[j] = True
                pairs.append((int(i), int(j)))
    done = {i for i, _ in pairs}
    return pairs, [i for i in range(len(ref)) if i not in done], \
        [j for j in range(len(got)) if not used[j]]


# ------------------------------------------------------------------------------------------------
# images


def synthetic(seed: int, w: int, h: int, shapes: int = 6):
    """A noisy background with filled rectangles and ellipses of random colours. Returns the
    image [h, w, 3] u8 and the shapes' boxes [n, 4] (x1, y1, x2, y2, in pixels)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, 3)
    img = np.clip(base[None, None, :] + rng.normal(0, 12, (h, w, 3)), 0, 255)
    boxes = []
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(shapes):
        bw = int(rng.integers(max(8, w // 10), max(9, w // 3)))
        bh = int(rng.integers(max(8, h // 10), max(9, h // 3)))
        x1 = int(rng.integers(0, w - bw))
        y1 = int(rng.integers(0, h - bh))
        colour = rng.integers(0, 256, 3)
        if rng.random() < 0.5:
            m = (xx >= x1) & (xx < x1 + bw) & (yy >= y1) & (yy < y1 + bh)
        else:
            cx, cy = x1 + bw / 2, y1 + bh / 2
            m = ((xx + 0.5 - cx) / (bw / 2)) ** 2 + ((yy + 0.5 - cy) / (bh / 2)) ** 2 <= 1
        img[m] = colour
        boxes.append([x1, y1, x1 + bw, y1 + bh])
    return img.astype(np.uint8), np.array(boxes, np.float64)


def nchw(image_hwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image_hwc.transpose(2, 0, 1)[None])


def source_key(files, *extra) -> str:
    """A key for a cache built from `files` (their contents) and `extra` values."""
    import hashlib
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    h.update(json.dumps(extra).encode())
    return h.hexdigest()


# The parity images per compiled shape: ten real images scikit-image ships and ten synthetic ones,
# with sizes that the wrapper letterboxes into that shape (one of each set at exactly its size).
_PHOTOS = {
    (640, 640): ["astronaut", "camera", "immunohistochemistry", "colorwheel", "cell", "retina",
                 "moon", "brick", "logo", "microaneurysms"],
    (512, 384): ["chelsea", "coffee", "rocket", "hubble_deep_field", "coins", "clock",
                 "motorcycle", "page", "text", "astronaut_top"],
}
_SYNTHETIC = {
    (640, 640): [(640, 640), (300, 300), (1000, 1000), (480, 520), (200, 240), (700, 650),
                 (350, 420), (128, 128), (900, 960), (610, 600)],
    (512, 384): [(512, 384), (500, 375), (800, 600), (1024, 768), (300, 200), (640, 480),
                 (256, 192), (700, 400), (1200, 700), (333, 250)],
}


def _photo(name: str) -> np.ndarray:
    from skimage import data
    if name == "motorcycle":
        a = data.stereo_motorcycle()[0]
    elif name == "astronaut_top":
        a = data.astronaut()[:300]
    else:
        a = getattr(data, name)()
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3].astype(np.uint8))


def parity_images(shape):
    key = tuple(shape)
    out = [(name, _photo(name)) for name in _PHOTOS[key]]
    for i, (w, h) in enumerate(_SYNTHETIC[key]):
        out.append((f"synthetic{i}_{w}x{h}", synthetic(1000 * shape[0] + i, w, h)[0]))
    return out


def near_boxes_mask(shape, boxes, margin=6, label_h=40, label_w=220) -> np.ndarray:
    """Pixels a drawing may change: each box's outline grown by margin, and a label band at its
    top-left corner (above the box, or inside it at the image's top edge)."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in boxes[:, :4]:
        outer = (xx >= x1 - margin) & (xx <= x2 + margin) & (yy >= y1 - margin) & (yy <= y2 + margin)
        inner = (xx > x1 + margin) & (xx < x2 - margin) & (yy > y1 + margin) & (yy < y2 - margin)
        label = ((xx >= x1 - label_w) & (xx <= max(x2, x1 + label_w)) &
                 (yy >= y1 - label_h) & (yy <= y1 + label_h))
        m |= (outer & ~inner) | label
    return m
