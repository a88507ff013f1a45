"""The served detector end to end (issue 5): converter -> bundles -> `hloserve serve` (the meta's
letterbox, stage1, DetectionGlue, stage2, the mapping back) -> `hloserve-detect`.

What is checked, against one server per module:
- parity with torchvision: the same weights and the same image through torchvision's
  model.eval()([img]) (configured to the same size and thresholds: e2e_util.Reference) and through
  the served detector give the same detections, matched one to one (same label, IoU >= 0.99,
  scores within 1e-3) for >= 99% of them, over 20 images per compiled shape (image_size 640 and
  the non-square input_shapes entry 512x384; real photos from scikit-image and synthetic ones, of
  sizes other than the compiled ones and of exactly the compiled ones), each with >= 20
  detections, for u8 and for f32 input. The weights are a seeded random resnet50_fpn whose
  detections are made plentiful (e2e_util.make_weights), converted with weights: that .pth.
- the letterbox lands boxes on the objects in the client's pixels: an analytic detector
  (toy_detector.py, served through the same template) finds white rectangles in images of sizes
  other than every compiled shape (landscape, portrait, tiny, huge); each object is found once with
  IoU >= 0.9 and nothing else is.
- the client against the real server: the drawing decodes, differs from the input only near the
  boxes, and --json equals what the server answers to the same pixels (u8 and f32 models).
- response parameters (stage1_us, glue_us, stage2_us) and the /metrics series that count them;
  bad images are clear 400s.

The conversion (two resnet50_fpn metas at 640 and 512x384, ~40 s) and the toy bundles are cached
under $HS_BUILD_DIR/test-e2e-models; the parity run takes 2-4 minutes on 2 cores.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import e2e_util as E  # noqa: E402
import server_util as U  # noqa: E402

pytest.importorskip("torch")
pytest.importorskip("skimage")
Image = pytest.importorskip("PIL.Image")

TOY_SHAPES = [[640, 640], [512, 384], [384, 512]]


@pytest.fixture(scope="module")
def repo(build_dir) -> Path:
    root = E.convert(build_dir)
    import toy_detector as T
    stamp = root.parent / "toy.stamp"
    key = E.source_key([Path(T.__file__), E.HANDLER], TOY_SHAPES)
    if not stamp.exists() or stamp.read_text() != key:
        for name, dtype in (("toy", "u8"), ("toy_f32", "f32")):
            T.write(root, name, TOY_SHAPES, dtype)
        stamp.write_text(key)
    return root


def gpu_unavailable(hloserve) -> str:
    """Why `--device cuda:0` cannot be used here ('' when it can): a build without the CUDA
    backend, or a machine without a GPU (CI's)."""
    r = subprocess.run([str(hloserve), "check-hlo", "--device", "cuda:0", "--help"],
                       capture_output=True, text=True, timeout=60)
    return "" if r.returncode == 0 else (r.stderr.strip() or f"exit status {r.returncode}")


# Every test of this module runs against the detector served on the CPU, and again on the GPU
# where one is present (the same bundles, `serve --device cuda:0`; same tolerances).
@pytest.fixture(scope="module", params=["cpu", "cuda:0"])
def server(request, hloserve, repo, tmp_path_factory):
    device = request.param
    if device != "cpu":
        why = gpu_unavailable(hloserve)
        if why:
            pytest.skip(f"served on {device}: no usable GPU here ({why})")
    log = tmp_path_factory.mktemp("e2e") / "server.log"
    with U.Server(hloserve, repo, "--threads", "1", "--intra-op-threads", "2", "--device", device,
                  log=log) as s:
        yield s
        assert s.stop() == 0, s.log()


@pytest.fixture(scope="module")
def reference(repo):
    return E.Reference(E.MODELS["det_u8"], repo.parent / "weights.pth")


def infer(server, model: str, x: np.ndarray):
    status, doc = server.infer(model, [("INPUT__0", x)], binary=True,
                               params={"binary_data_output": True})
    assert status == 200, doc
    return doc["arrays"]["OUTPUT__0"], doc.get("parameters")


# ------------------------------------------------------------------------------------------------
# parity with torchvision


@pytest.mark.slow
@pytest.mark.parametrize("shape", E.SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_parity_with_torchvision(server, reference, shape):
    images = E.parity_images(shape)
    assert len(images) >= 20
    stats = {"det_u8": [0, 0], "det_f32": [0, 0]}  # [detections, matched one to one]
    report = []
    for name, img in images:
        h, w = img.shape[:2]
        chosen = E.choose_shape(E.SHAPES, w, h)
        assert chosen[0] == shape, f"{name} ({w}x{h}) would be letterboxed into {chosen[0]}"
        ref = reference(img, shape)
        assert len(ref) >= 20, f"{name}: only {len(ref)} reference detections"
        x8 = E.nchw(img)
        for model, x in (("det_u8", x8), ("det_f32", x8.astype(np.float32) / np.float32(255))):
            got, params = infer(server, model, x)
            assert set(params) == {"stage1_us", "glue_us", "stage2_us"}
            pairs, miss_ref, miss_got = E.match(ref, got)
            stats[model][0] += max(len(ref), len(got))  # an extra served detection counts too
            stats[model][1] += len(pairs)
            if miss_ref or miss_got:
                report.append(f"{model} {name} {w}x{h}: {len(miss_ref)} of {len(ref)} reference "
                              f"detections unmatched, {len(miss_got)} of {len(got)} served")
    for model, (n, matched) in stats.items():
        assert matched >= 0.99 * n, f"{model}: {matched} of {n} matched\n" + "\n".join(report)
    print(f"\nparity {shape}: " + ", ".join(f"{m} {k}/{n}" for m, (n, k) in stats.items()))


# ------------------------------------------------------------------------------------------------
# the letterbox: torchvision's resize, and boxes on the objects in the client's pixels

HARNESS_C = r"""
#include "model.c"
#include <stdio.h>
#include <stdlib.h>
/* stdin: "w h\n" and the image (u8 [3, h, w]); stdout: "W H rw rh\n" and the letterboxed
 * float32 [3, H, W]. Only the letterbox's static functions run; the rest is never called. */
int main(void) {
  long long w, h;
  if (scanf("%lld %lld", &w, &h) != 2 || getchar() != '\n') return 2;
  size_t n = (size_t)(3 * w * h);
  unsigned char *img = malloc(n);
  if (!img || fread(img, 1, n, stdin) != n) return 3;
  letterbox lb = choose_shape(w, h);
  int64_t W = lb.shape->width, H = lb.shape->height;
  int64_t *ix = malloc(sizeof(int64_t) * 2 * (size_t)(MAX_SHAPE_W + MAX_SHAPE_H));
  float *wt = malloc(sizeof(float) * 2 * (size_t)(MAX_SHAPE_W + MAX_SHAPE_H));
  float *out = malloc(sizeof(float) * (size_t)(3 * H * W));
  if (!ix || !wt || !out) return 4;
  int64_t *xi0 = ix, *xi1 = xi0 + lb.rw, *yi0 = xi1 + lb.rw, *yi1 = yi0 + lb.rh;
  float *xl0 = wt, *xl1 = xl0 + lb.rw, *yl0 = xl1 + lb.rw, *yl1 = yl0 + lb.rh;
  axis_weights(w, lb.rw, xi0, xi1, xl0, xl1);
  axis_weights(h, lb.rh, yi0, yi1, yl0, yl1);
  letterbox_image(img, h, w, &lb, xi0, xi1, xl0, xl1, yi0, yi1, yl0, yl1, out);
  printf("%lld %lld %lld %lld\n", (long long)W, (long long)H, (long long)lb.rw, (long long)lb.rh);
  fwrite(out, sizeof(float), (size_t)(3 * H * W), stdout);
  free(img);
  free(ix);
  free(wt);
  free(out);
  return 0;
}
"""


def test_letterbox_is_torchvisions_resize_and_pad(repo, build_dir, tmp_path):
    """The generated model.c's letterbox, compiled alone: the shape it picks, the resized size
    and the pixels equal F.interpolate(bilinear, align_corners=False, recompute_scale_factor)
    of torchvision's transform (within one float32 rounding: ATen's AVX2 kernel fuses the
    multiply-adds), and the padding is the ImageNet mean."""
    import shutil
    import torch
    import torch.nn.functional as F
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    libs = [Path(build_dir) / f"libhs_{n}.a" for n in ("meta", "glue", "base")]
    if not all(p.exists() for p in libs):
        pytest.skip(f"the hloserve libraries are not built in {build_dir}")
    cache = (Path(build_dir) / "CMakeCache.txt").read_text(errors="replace")
    sanitize = ["-fsanitize=address,undefined"] if "HS_SANITIZE:BOOL=ON" in cache else []
    shutil.copy(repo / "det_u8" / "model.c", tmp_path / "model.c")
    (tmp_path / "harness.c").write_text(HARNESS_C)
    r = subprocess.run([cc, "-std=c11", "-O2", *sanitize, f"-I{E.REPO / 'include'}", f"-I{tmp_path}",
                        str(tmp_path / "harness.c"), "-o", str(tmp_path / "harness"),
                        *map(str, libs), "-lm", "-lpthread"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    mean = np.array(json.loads((repo / "det_u8" / "bundle.json").read_text())["config"]
                    ["image_mean"], np.float32)
    for seed, (w, h) in enumerate([(300, 200), (1000, 750), (250, 400), (700, 700), (457, 123),
                                   (512, 384), (640, 640), (97, 71), (601, 599), (2000, 30)]):
        img = np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8)
        p = subprocess.run([str(tmp_path / "harness")], input=f"{w} {h}\n".encode() + img.tobytes(),
                           capture_output=True, timeout=60)
        assert p.returncode == 0
        head, _, rest = p.stdout.partition(b"\n")
        W, H, rw, rh = map(int, head.split())
        shape, erw, erh, _ = E.choose_shape(E.SHAPES, w, h)
        assert (W, H, rw, rh) == (shape[0], shape[1], erw, erh)
        out = np.frombuffer(rest, np.float32).reshape(3, H, W)
        x = torch.from_numpy(img).float() / 255
        mn, mx = E.torchvision_config(shape, w, h)
        scale = min(mn / min(h, w), mx / max(h, w))            # torchvision's formula
        ref = F.interpolate(x[None], scale_factor=scale, mode="bilinear",
                            recompute_scale_factor=True, align_corners=False)[0].numpy()
        assert ref.shape == (3, rh, rw)
        assert np.abs(out[:, :rh, :rw] - ref).max() <= 1.2e-7, (w, h)
        if (rw, rh) == (w, h):
            np.testing.assert_array_equal(out[:, :rh, :rw], x.numpy())
        for c in range(3):
            assert np.all(out[c, rh:, :] == mean[c]) and np.all(out[c, :, rw:] == mean[c])



@pytest.mark.parametrize("model", ["toy", "toy_f32"])
@pytest.mark.parametrize("size", [(300, 200), (1000, 750), (250, 400), (700, 700), (457, 123),
                                  (1500, 400), (333, 333), (200, 900), (97, 71), (640, 640),
                                  (384, 512)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_letterboxed_boxes_land_on_the_objects(server, model, size):
    w, h = size
    shape, rw, rh, _ = E.choose_shape(TOY_SHAPES, w, h)
    img, objects = __import__("toy_detector").scene(sum(size), w, h, 4, rw / w)
    assert len(objects) >= 2
    x = E.nchw(img)
    if model == "toy_f32":
        x = x.astype(np.float32) / np.float32(255)
    got, _ = infer(server, model, x)
    assert got.shape[1] == 6 and np.all(got[:, 5] == 1)
    iou = E.iou_matrix(objects, got[:, :4])
    # each object found exactly once, nothing else found
    assert len(got) == len(objects), f"{len(got)} detections for {len(objects)} objects:\n{got}"
    best = iou.max(axis=1)
    assert np.all(best >= 0.9), f"objects {objects.tolist()}\ndetections {got[:, :4].tolist()}"
    assert sorted(iou.argmax(axis=1).tolist()) == list(range(len(got)))
    assert np.all(got[:, [0, 2]] >= 0) and np.all(got[:, [0, 2]] <= w)
    assert np.all(got[:, [1, 3]] >= 0) and np.all(got[:, [1, 3]] <= h)


def test_exact_size_image_is_not_resized(server, reference):
    """An image at a compiled size goes through unchanged (no interpolation), padding nothing:
    the same answer as torchvision with that size."""
    img, _ = E.synthetic(99, 512, 384)
    got, _ = infer(server, "det_u8", E.nchw(img))
    ref = reference(img, [512, 384])
    pairs, miss_ref, miss_got = E.match(ref, got)
    assert len(pairs) >= 0.99 * len(ref) and len(ref) >= 20


# ------------------------------------------------------------------------------------------------
# the client against the real server


def _run(detect, *args, timeout=300):
    r = subprocess.run([str(detect), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    assert "Sanitizer" not in r.stderr and "runtime error:" not in r.stderr, r.stderr
    return r


def test_client_draws_only_near_the_boxes(server, detect, tmp_path):
    img, objects = __import__("toy_detector").scene(5, 700, 500, 4, 512 / 700)
    src, out = tmp_path / "scene.png", tmp_path / "drawn.png"
    Image.fromarray(img).save(src)
    r = _run(detect, src, "--url", server.url, "--model", "toy", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)[0]
    assert doc["drawn"] == str(out) and doc["count"] == len(objects)
    boxes = np.array([d["box"] for d in doc["detections"]], np.float64)
    assert np.all(E.iou_matrix(objects, boxes).max(axis=1) >= 0.9)
    drawn = np.asarray(Image.open(out).convert("RGB"))
    assert drawn.shape == img.shape
    changed = np.any(drawn != img, axis=2)
    assert changed.sum() > 100                        # something was drawn
    allowed = E.near_boxes_mask(img.shape, boxes)
    assert not np.any(changed & ~allowed), "pixels changed away from the boxes"
    # every box's outline is drawn
    for x1, y1, x2, y2 in boxes.round().astype(int):
        assert changed[y1:y2, max(x1 - 1, 0):x1 + 2].mean() > 0.5


@pytest.mark.parametrize("model", ["det_u8", "det_f32"])
def test_client_json_equals_the_servers_answer(server, detect, tmp_path, model):
    from skimage import data
    img = data.chelsea()
    src = tmp_path / "chelsea.png"
    Image.fromarray(img).save(src)
    r = _run(detect, src, "--url", server.url, "--model", model, "--json", "--score-min", "0",
             "-o", tmp_path / "chelsea_det.jpg")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)[0]
    x = E.nchw(img)
    if model == "det_f32":
        x = x.astype(np.float32) / np.float32(255)
    want, _ = infer(server, model, x)
    assert doc["count"] == len(want) == len(doc["detections"]) >= 20
    for det, row in zip(doc["detections"], want):
        assert np.float32(det["box"]).tolist() == row[:4].tolist()     # exact, as float32
        assert np.float32(det["score"]) == row[4]
        assert det["label"] == int(row[5])
    assert set(doc["parameters"]) == {"stage1_us", "glue_us", "stage2_us"}
    drawn = Image.open(tmp_path / "chelsea_det.jpg")
    assert drawn.size == (img.shape[1], img.shape[0])


# ------------------------------------------------------------------------------------------------
# timing, metrics, errors


def test_timing_parameters_and_metrics(server):
    before = server.metrics()
    key = 'model="toy",stage="toy_stage1"'
    n0 = U.metric_value(before, "hloserve_stage_duration_seconds_count", key) or 0
    g0 = U.metric_value(before, "hloserve_glue_duration_seconds_count", 'model="toy"') or 0
    img, _ = __import__("toy_detector").scene(1, 300, 200, 2, 512 / 300)
    for _ in range(3):
        _, params = infer(server, "toy", E.nchw(img))
        assert list(params) == ["stage1_us", "stage2_us", "glue_us"]
        assert all(isinstance(v, int) and v >= 0 for v in params.values())
        assert params["stage1_us"] > 0
    after = server.metrics()
    assert U.metric_value(after, "hloserve_stage_duration_seconds_count", key) == n0 + 3
    assert U.metric_value(after, "hloserve_stage_duration_seconds_count",
                          'model="toy",stage="toy_stage2"') >= 3
    assert U.metric_value(after, "hloserve_glue_duration_seconds_count", 'model="toy"') == g0 + 3
    # a tiny image is letterboxed up (8x8 -> 640x640) and finds nothing in the dark
    got, params = infer(server, "toy", np.zeros((1, 3, 8, 8), np.uint8))
    assert got.shape == (0, 6) and params["stage1_us"] > 0


@pytest.mark.parametrize("model,x,message", [
    ("toy", np.zeros((1, 3, 0, 50), np.uint8), "[1, 3, H, W]"),
    ("toy", np.zeros((1, 3, 1, 5000), np.uint8), "too thin to letterbox"),
    ("toy", np.zeros((1, 4, 50, 50), np.uint8), "[1, 3, -1, -1]"),
    ("toy", np.zeros((1, 3, 50, 50), np.float32), "UINT8"),
    ("toy_f32", np.full((1, 3, 20, 20), np.nan, np.float32), "non-finite"),
    ("toy_f32", np.full((1, 3, 20, 20), np.inf, np.float32), "non-finite"),
])
def test_bad_images_are_400(server, model, x, message):
    status, doc = server.infer(model, [("INPUT__0", x)], binary=True)
    assert status == 400, doc
    assert message in doc["error"]
    assert server.get_json("/v2/health/ready")[0] == 200
