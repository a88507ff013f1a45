"""Tests of the detection client `hloserve-detect` against a fake KServe v2 detector (issue 5).

The fake (fake_kserve.py) runs in this process on an ephemeral loopback port and answers fixed boxes
at fractions of the received image's size, in binary or JSON form. What is checked: the tensor the
client sent (UINT8 and FP32, NCHW, the image's own size, equal to Pillow's decoding), the printed
table, --json equal to what the server sent (after --score-min), the drawn image (decodes, the
input's size, differs from the input only near the boxes), several images, label sets, and the
failures: unreachable server, 404 and 400 answers, garbage answers, unreadable images, bad usage.

Sample images are scikit-image's data images written to tmp with Pillow. The binary is found in
$HS_BUILD_DIR (default <repo>/build).
"""
from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_kserve import FakeDetector, FakeServer, boxes_for  # noqa: E402

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("images")
    out = {}
    astronaut = skdata.astronaut()       # 512x512 RGB
    chelsea = skdata.chelsea()           # 451x300 RGB
    coffee = skdata.coffee()             # 600x400 RGB
    camera = skdata.camera()             # 512x512 gray
    Image.fromarray(astronaut).save(d / "astronaut.png")
    Image.fromarray(chelsea).save(d / "chelsea.png")
    Image.fromarray(coffee).save(d / "coffee.jpg", quality=92)
    Image.fromarray(camera).save(d / "camera_gray.png")
    rgba = np.dstack([chelsea, np.linspace(0, 255, chelsea.shape[1], dtype=np.uint8)[None, :]
                      .repeat(chelsea.shape[0], 0)])
    Image.fromarray(rgba).save(d / "chelsea_rgba.png")
    Image.fromarray(coffee).convert("P", palette=Image.ADAPTIVE, colors=64).save(d / "coffee_pal.png")
    for k, v in {"astronaut": "astronaut.png", "chelsea": "chelsea.png", "coffee": "coffee.jpg",
                 "gray": "camera_gray.png", "rgba": "chelsea_rgba.png",
                 "palette": "coffee_pal.png"}.items():
        out[k] = d / v
    (d / "notes.txt").write_text("this is not an image\n")
    out["text"] = d / "notes.txt"
    data = (d / "coffee.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    out["truncated"] = d / "truncated.jpg"
    return out


@pytest.fixture()
def fake():
    f = FakeDetector()
    with FakeServer(f) as s:
        f.url = s.url
        yield f


def run(detect, *args, cwd=None, timeout=60):
    r = subprocess.run([str(detect), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       timeout=timeout)
    # a sanitizer build (-DHS_SANITIZE=ON) reports leaks and memory errors on stderr
    assert "Sanitizer" not in r.stderr and "runtime error:" not in r.stderr, r.stderr
    return r


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def expected_rows(img: np.ndarray, fake: FakeDetector, score_min=0.5) -> np.ndarray:
    rows = boxes_for(img.shape[1], img.shape[0], fake.boxes, fake.cols)
    return rows[rows[:, 4] >= score_min]


def near_boxes_mask(shape, rows, margin=6, label_h=40, label_w=220) -> np.ndarray:
    """Pixels allowed to change: each box's outline grown by margin, and a label band at its top."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in rows[:, :4]:
        outer = (xx >= x1 - margin) & (xx <= x2 + margin) & (yy >= y1 - margin) & (yy <= y2 + margin)
        inner = (xx > x1 + margin) & (xx < x2 - margin) & (yy > y1 + margin) & (yy < y2 - margin)
        label = ((xx >= x1 - margin) & (xx <= max(x2, x1 + label_w)) &
                 (yy >= y1 - label_h) & (yy <= y1 + label_h))
        m |= (outer & ~inner) | label
    return m


# ------------------------------------------------------------------------------------------------
# the request


@pytest.mark.parametrize("kind", ["astronaut", "chelsea", "coffee", "gray", "rgba", "palette"])
def test_sends_the_image_as_uint8_nchw(detect, fake, images, tmp_path, kind):
    r = run(detect, images[kind], "--url", fake.url, "--model", "detector", "--no-draw")
    assert r.returncode == 0, r.stderr
    header, x = fake.requests[-1]
    ref = rgb(images[kind])
    assert x.dtype == np.uint8 and x.shape == (1, 3, ref.shape[0], ref.shape[1])
    inp = header["inputs"][0]
    assert inp["name"] == "INPUT__0" and inp["datatype"] == "UINT8"
    assert header["outputs"] == [{"name": "OUTPUT__0", "parameters": {"binary_data": True}}]
    if kind == "coffee":  # JPEG: libjpeg-turbo on both sides, allow for a different IDCT
        assert np.abs(x[0].transpose(1, 2, 0).astype(int) - ref).max() <= 2
    else:
        np.testing.assert_array_equal(x[0].transpose(1, 2, 0), ref)


def test_sends_fp32_when_the_model_wants_it(detect, images):
    f = FakeDetector(input_name="images", input_dtype="FP32")
    with FakeServer(f) as s:
        r = run(detect, images["chelsea"], "--url", s.url, "--model", "detector", "--no-draw")
    assert r.returncode == 0, r.stderr
    header, x = f.requests[-1]
    assert header["inputs"][0]["name"] == "images" and x.dtype == np.float32
    ref = rgb(images["chelsea"]).transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(x, ref)


# ------------------------------------------------------------------------------------------------
# printing


def test_table(detect, fake, images, tmp_path):
    out = tmp_path / "det.png"
    r = run(detect, images["astronaut"], "--url", fake.url, "--model", "detector", "-o", out)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{images['astronaut']} (512x512): 2 detections with score >= 0.5 "
                               "(of 3), model detector")
    rows = expected_rows(rgb(images["astronaut"]), fake)
    body = [ln.split() for ln in lines[2:4]]
    assert [b[0] for b in body] == ["person", "cat"]
    for b, row in zip(body, rows):
        assert float(b[1]) == pytest.approx(row[4], abs=5e-4)
        assert [float(v) for v in b[2:6]] == pytest.approx(row[:4].tolist(), abs=0.05)
    assert "stage1_us" in r.stdout            # the server's response parameters
    assert lines[-1] == f"wrote {out}"


def test_score_min_filters(detect, fake, images):
    r = run(detect, images["astronaut"], "--url", fake.url, "--no-draw", "--score-min", "0.9")
    assert r.returncode == 0, r.stderr
    assert "1 detection with score >= 0.9 (of 3)" in r.stdout
    assert "person" in r.stdout and "cat" not in r.stdout
    r = run(detect, images["astronaut"], "--url", fake.url, "--no-draw", "--score-min", "0")
    assert "3 detections" in r.stdout and "car" in r.stdout


@pytest.mark.parametrize("mode", ["binary", "json", "nested"])
def test_json_equals_what_the_server_sent(detect, fake, images, mode):
    fake.mode = mode
    fake.extra_output_first = mode == "binary"
    r = run(detect, images["chelsea"], images["astronaut"], "--url", fake.url, "--json",
            "--no-draw")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc) == 2 and len(fake.answers) == 2
    names = ["__background__", "person"] + [""] * 15 + ["cat"]
    for obj, sent, path in zip(doc, fake.answers, [images["chelsea"], images["astronaut"]]):
        img = rgb(path)
        assert obj["image"] == str(path)
        assert (obj["width"], obj["height"]) == (img.shape[1], img.shape[0])
        assert obj["model"] == "detector" and obj["output"] == "OUTPUT__0"
        kept = sent[sent[:, 4] >= 0.5]
        assert obj["count"] == len(kept) == len(obj["detections"]) == 2
        for det, row in zip(obj["detections"], kept):
            assert np.float32(det["box"]).tolist() == row[:4].tolist()   # exact, as float32
            assert np.float32(det["score"]) == row[4]
            assert det["label"] == int(row[5])
            assert det["label_name"] == names[int(row[5])]
        assert obj["parameters"] == fake.parameters


def test_json_with_five_columns_and_other_dtypes(detect, fake, images):
    fake.cols = 5
    fake.out_dtype = "FP64"
    r = run(detect, images["chelsea"], "--url", fake.url, "--json", "--no-draw", "--score-min",
            "0.25")
    assert r.returncode == 0, r.stderr
    dets = json.loads(r.stdout)[0]["detections"]
    sent = fake.answers[-1]
    assert len(dets) == 3
    for det, row in zip(dets, sent):
        assert "label" not in det
        assert np.float32(det["box"]).tolist() == row[:4].tolist()


def test_default_model_from_the_index(detect, fake, images):
    r = run(detect, images["chelsea"], "--url", fake.url, "--no-draw")   # no --model
    assert r.returncode == 0, r.stderr
    assert "model detector" in r.stdout
    fake.index = [{"name": "a", "state": "READY"}, {"name": "b", "state": "READY"},
                  {"name": "c", "state": "UNAVAILABLE"}]
    r = run(detect, images["chelsea"], "--url", fake.url, "--no-draw")
    assert r.returncode == 1
    assert "2 models (a, b): name one with --model" in r.stderr


def test_label_sets(detect, fake, images, tmp_path):
    # built-in COCO names are torchvision's weights' categories
    tv = pytest.importorskip("torchvision.models.detection")
    cats = tv.FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]
    fake.boxes = [((0.1, 0.1, 0.5, 0.5), 0.9, c) for c in range(1, 95)]
    r = run(detect, images["chelsea"], "--url", fake.url, "--json", "--no-draw")
    assert r.returncode == 0, r.stderr
    got = [d["label_name"] for d in json.loads(r.stdout)[0]["detections"]]
    assert got[:90] == cats[1:91]
    assert got[90:] == ["class 91", "class 92", "class 93", "class 94"]
    # a labels file: one name per line, line 1 is class 0
    labels = tmp_path / "labels.txt"
    labels.write_text("bg\nwidget\n" + "\n" * 15 + "gizmo\n")
    fake.boxes = [((0.1, 0.1, 0.5, 0.5), 0.9, 1), ((0.5, 0.5, 0.9, 0.9), 0.8, 17)]
    r = run(detect, images["chelsea"], "--url", fake.url, "--labels", labels, "--no-draw")
    assert r.returncode == 0, r.stderr
    assert "widget" in r.stdout and "gizmo" in r.stdout
    r = run(detect, images["chelsea"], "--url", fake.url, "--labels", tmp_path / "none.txt")
    assert r.returncode == 1 and "none.txt" in r.stderr and "No such file" in r.stderr


# ------------------------------------------------------------------------------------------------
# drawing


@pytest.mark.parametrize("kind", ["astronaut", "chelsea", "gray"])
def test_drawn_png_differs_only_near_the_boxes(detect, fake, images, tmp_path, kind):
    out = tmp_path / "out.png"
    r = run(detect, images[kind], "--url", fake.url, "-o", out)
    assert r.returncode == 0, r.stderr
    src, drawn = rgb(images[kind]), rgb(out)
    assert drawn.shape == src.shape
    changed = np.any(drawn != src, axis=2)
    rows = expected_rows(src, fake)
    allowed = near_boxes_mask(src.shape, rows)
    assert not np.any(changed & ~allowed), np.argwhere(changed & ~allowed)[:10]
    # every drawn box is there: its outline's pixels changed on all four sides
    for x1, y1, x2, y2 in rows[:, :4].astype(int):
        ym, xm = (y1 + y2) // 2, (x1 + x2) // 2
        assert changed[ym, x1] and changed[ym, x2 - 1] and changed[y2 - 1, xm]
        assert changed[y1 - 1:y1 + 1, xm + 40].any()
    # the box under --score-min is not drawn
    car = boxes_for(src.shape[1], src.shape[0], fake.boxes)[2].astype(int)
    assert not changed[(car[1] + car[3]) // 2, car[2]]


def test_several_images_and_jpeg_output(detect, fake, images, tmp_path):
    r = run(detect, images["astronaut"], images["coffee"], images["palette"], "--url", fake.url,
            "-o", tmp_path / "det.jpg")
    assert r.returncode == 0, r.stderr
    for i, kind in enumerate(["astronaut", "coffee", "palette"]):
        out = tmp_path / f"det_{i}.jpg"
        assert f"wrote {out}" in r.stdout
        with Image.open(out) as im:
            assert im.format == "JPEG"
        src, drawn = rgb(images[kind]).astype(int), rgb(out).astype(int)
        assert drawn.shape == src.shape
        # JPEG re-encoding touches every pixel a little (as much as Pillow re-encoding the
        # undrawn image at quality 90 does); the boxes change the pixels near them a lot.
        # The margin covers a 16x16 chroma block either side of a line.
        far = ~near_boxes_mask(src.shape, expected_rows(rgb(images[kind]), fake), margin=16,
                               label_h=48)
        buf = io.BytesIO()
        Image.fromarray(src.astype(np.uint8)).save(buf, "JPEG", quality=90)
        baseline = np.abs(np.asarray(Image.open(buf)).astype(int) - src).mean(axis=2)
        diff = np.abs(drawn - src).mean(axis=2)
        assert diff[far].mean() < 1.25 * baseline[far].mean() + 0.5
        assert diff[~far].mean() > 3 * diff[far].mean()


# ------------------------------------------------------------------------------------------------
# failures


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_server(detect, images, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    r = run(detect, images["chelsea"], "--url", url, "-o", tmp_path / "x.jpg")
    assert r.returncode == 1
    assert "cannot reach the server at " + url in r.stderr
    assert not (tmp_path / "x.jpg").exists()
    r = run(detect, images["chelsea"], "--url", "ftp://example.invalid")
    assert r.returncode == 1 and "not http:// or https://" in r.stderr


def test_unknown_model_404(detect, fake, images):
    r = run(detect, images["chelsea"], "--url", fake.url, "--model", "nope")
    assert r.returncode == 1
    assert "HTTP 404" in r.stderr and "unknown model 'nope'" in r.stderr


def test_infer_400_and_500(detect, fake, images, tmp_path):
    fake.infer_error = (400, json.dumps({"error": "input 'INPUT__0': bad shape"}).encode())
    r = run(detect, images["chelsea"], "--url", fake.url, "-o", tmp_path / "x.png")
    assert r.returncode == 1
    assert "HTTP 400" in r.stderr and "input 'INPUT__0': bad shape" in r.stderr
    assert not (tmp_path / "x.png").exists()
    fake.infer_error = (500, b"<html>Internal Server Error</html>")
    r = run(detect, images["chelsea"], "--url", fake.url, "--no-draw")
    assert r.returncode == 1 and "HTTP 500" in r.stderr and "Internal Server Error" in r.stderr


def test_timeout_and_dropped_connection(detect, fake, images):
    fake.delay_s = 3
    r = run(detect, images["chelsea"], "--url", fake.url, "--no-draw", "--timeout", "0.5")
    assert r.returncode == 1 and "no answer within the time limit" in r.stderr
    fake.delay_s = 0
    fake.drop = True
    r = run(detect, images["chelsea"], "--url", fake.url, "--no-draw")
    assert r.returncode == 1 and "/v2/models/detector/infer failed" in r.stderr


@pytest.mark.parametrize("body,message", [
    (b"this is not json", "not JSON"),
    (b'{"outputs": []}', "no outputs"),
    (b'{"outputs": [{"name": "OUTPUT__0", "datatype": "FP32", "shape": [2, 4], "data": [1,2,3,4,5,6,7,8]}]}',
     "[N, 5] or [N, 6]"),
    (b'{"error": "worker crashed"}', "worker crashed"),
])
def test_garbage_answers(detect, fake, images, body, message):
    fake.infer_error = (200, body)
    r = run(detect, images["chelsea"], "--url", fake.url, "--no-draw")
    assert r.returncode == 1
    assert message in r.stderr


def test_bad_metadata(detect, fake, images):
    fake.input_dtype = "BYTES"
    r = run(detect, images["chelsea"], "--url", fake.url, "--no-draw")
    assert r.returncode == 1 and "UINT8 or FP32" in r.stderr


def test_unreadable_images_are_reported_and_skipped(detect, fake, images, tmp_path):
    missing = tmp_path / "missing.jpg"
    r = run(detect, images["text"], missing, images["truncated"], images["chelsea"], "--url",
            fake.url, "--json", "-o", tmp_path / "o.png")
    assert r.returncode == 1
    assert f"image '{images['text']}': not a JPEG or PNG image" in r.stderr
    assert f"cannot open image '{missing}'" in r.stderr
    assert f"image '{images['truncated']}'" in r.stderr and "truncated" in r.stderr
    doc = json.loads(r.stdout)     # the good image still ran; stdout is still one JSON document
    assert [o["image"] for o in doc] == [str(images["chelsea"])]
    assert (tmp_path / "o_3.png").exists()


@pytest.mark.parametrize("args,message", [
    ([], "no image given"),
    (["x.png", "--score-min", "abc"], "--score-min"),
    (["x.png", "-o", "out.gif"], "name it .jpg, .jpeg or .png"),
    (["x.png", "--bogus"], "usage"),
])
def test_usage_errors(detect, args, message):
    r = run(detect, *args)
    assert r.returncode == 2 and message in r.stderr


def test_help(detect):
    r = run(detect, "--help")
    assert r.returncode == 0 and "--score-min" in r.stdout
