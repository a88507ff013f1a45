"""A tiny fake KServe v2 object detector for testing `hloserve-detect` without a real model.

It answers GET /v2/models/{m} (metadata), POST /v2/models/{m}/infer and POST/GET
/v2/repository/index on an ephemeral loopback port, from a thread of the test process. The
detections are fixed boxes placed at fractions of the received image's size (so they are in the
image's own pixels), answered in binary or JSON (flat or nested) form; every request it got is
recorded (header JSON and the decoded input tensor) so tests can check what the client sent.
Knobs on the server object change its behaviour between requests (error answers, garbage, other
outputs before ours, other dtypes).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

# Boxes as fractions of (W, H, W, H), with a score and a COCO class id. Integer pixel corners after
# scaling keep the drawn lines on whole pixels. The third is below the default --score-min.
DEFAULT_BOXES = [
    ((0.10, 0.15, 0.45, 0.60), 0.97, 1),    # person
    ((0.55, 0.50, 0.92, 0.90), 0.81, 17),   # cat
    ((0.60, 0.10, 0.90, 0.30), 0.30, 3),    # car, under 0.5
]


def boxes_for(width: int, height: int, boxes=DEFAULT_BOXES, cols: int = 6) -> np.ndarray:
    rows = []
    for (fx1, fy1, fx2, fy2), score, cls in boxes:
        r = [round(fx1 * width), round(fy1 * height), round(fx2 * width), round(fy2 * height), score]
        if cols == 6:
            r.append(cls)
        rows.append(r)
    return np.array(rows, np.float32).reshape(len(rows), cols)


class FakeDetector:
    """Configuration and recordings of one fake server (attributes may change between calls)."""

    def __init__(self, model="detector", input_name="INPUT__0", input_dtype="UINT8",
                 output_name="OUTPUT__0"):
        self.model = model
        self.input_name = input_name
        self.input_dtype = input_dtype
        self.output_name = output_name
        self.mode = "binary"         # binary | json | nested (JSON data as nested lists)
        self.cols = 6
        self.boxes = DEFAULT_BOXES
        self.out_dtype = "FP32"
        self.extra_output_first = False   # a binary output before ours in the tail
        self.infer_error = None           # (status, body bytes) answered to infer
        self.metadata_error = None        # (status, body bytes) answered to metadata
        self.index = None                 # list answered by the repository index (None: [model])
        self.delay_s = 0.0                # infer answers wait this long
        self.drop = False                 # infer closes the connection without an answer
        self.parameters = {"stage1_us": 1234, "glue_us": 56, "stage2_us": 789}
        self.requests = []                # (header dict, input ndarray)
        self.answers = []                 # the rows answered, per infer
        self.lock = threading.Lock()

    # -- answers ----------------------------------------------------------------------------------

    def metadata(self):
        shape = [1, 3, -1, -1]
        return {"name": self.model, "versions": ["1"], "platform": "fake",
                "inputs": [{"name": self.input_name, "datatype": self.input_dtype, "shape": shape}],
                "outputs": [{"name": "extra", "datatype": "INT32", "shape": [2]},
                            {"name": self.output_name, "datatype": self.out_dtype,
                             "shape": [-1, self.cols]}]}

    def infer(self, header: dict, tail: bytes):
        inp = header["inputs"][0]
        assert inp["name"] == self.input_name, inp
        shape = inp["shape"]
        dt = {"UINT8": np.uint8, "FP32": np.float32}[inp["datatype"]]
        size = inp["parameters"]["binary_data_size"]
        x = np.frombuffer(tail[:size], dt).reshape(shape)
        with self.lock:
            self.requests.append((header, x))
        h, w = shape[2], shape[3]
        rows = boxes_for(w, h, self.boxes, self.cols)
        with self.lock:
            self.answers.append(rows)
        np_dt = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16}[self.out_dtype]
        data = rows.astype(np_dt)
        out = {"name": self.output_name, "datatype": self.out_dtype, "shape": list(rows.shape)}
        extra = {"name": "extra", "datatype": "INT32", "shape": [2]}
        blobs = []
        if self.extra_output_first:
            eb = np.array([7, 8], np.int32).tobytes()
            extra["parameters"] = {"binary_data_size": len(eb)}
            blobs.append(eb)
        else:
            extra["data"] = [7, 8]
        if self.mode == "binary":
            b = data.tobytes()
            out["parameters"] = {"binary_data_size": len(b)}
            blobs.append(b)
        elif self.mode == "nested":
            out["data"] = data.astype(np.float64).tolist()
        else:
            out["data"] = data.astype(np.float64).reshape(-1).tolist()
        body = {"model_name": self.model, "model_version": "1", "outputs": [extra, out]}
        if self.parameters:
            body["parameters"] = self.parameters
        js = json.dumps(body).encode()
        if blobs:
            return js + b"".join(blobs), len(js)
        return js, None


def _make_handler(fake: FakeDetector):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def handle(self):  # a client that gave up (timeout test) is not an error here
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _send(self, status, body: bytes, header_len=None, ctype="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if header_len is not None:
                self.send_header("Inference-Header-Content-Length", str(header_len))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status, msg):
            self._send(status, json.dumps({"error": msg}).encode())

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length", "0"))
            return self.rfile.read(n) if n else b""

        def do_GET(self):
            path = self.path.rstrip("/")
            if path == "/v2/repository/index":
                return self._index()
            if path.startswith("/v2/models/"):
                name = path[len("/v2/models/"):]
                if fake.metadata_error:
                    return self._send(*fake.metadata_error)
                if name != fake.model:
                    return self._error(404, f"unknown model '{name}'")
                return self._send(200, json.dumps(fake.metadata()).encode())
            self._error(404, "not found")

        def _index(self):
            idx = fake.index if fake.index is not None else [
                {"name": fake.model, "version": "1", "state": "READY"}]
            self._send(200, json.dumps(idx).encode())

        def do_POST(self):
            body = self._body()
            path = self.path.rstrip("/")
            if path == "/v2/repository/index":
                return self._index()
            prefix, suffix = "/v2/models/", "/infer"
            if not (path.startswith(prefix) and path.endswith(suffix)):
                return self._error(404, "not found")
            name = path[len(prefix):-len(suffix)]
            if name != fake.model:
                return self._error(404, f"unknown model '{name}'")
            if fake.delay_s:
                time.sleep(fake.delay_s)
            if fake.drop:
                self.close_connection = True
                return
            if fake.infer_error:
                return self._send(*fake.infer_error)
            hl = self.headers.get("Inference-Header-Content-Length")
            if hl is None:
                return self._error(400, "the fake wants a binary request")
            hl = int(hl)
            header = json.loads(body[:hl])
            ans, ans_hl = fake.infer(header, body[hl:])
            self._send(200, ans, ans_hl,
                       "application/octet-stream" if ans_hl is not None else "application/json")

    return Handler


class FakeServer:
    """Context manager: `with FakeServer(FakeDetector()) as s: s.url`."""

    def __init__(self, fake: FakeDetector):
        self.fake = fake
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
