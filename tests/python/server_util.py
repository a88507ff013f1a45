"""Helpers for the `hloserve serve` tests and benchmarks: hand-written bundles, a server process
on an ephemeral loopback port, and raw KServe v2 requests.

Bundles are written the way the converter writes them (docs/bundles.md): files first, bundle.json
last. The tiny dense models are MLIR text written here, so the tests need neither torch nor jax.
"""
from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

# ------------------------------------------------------------------------------------------------
# bundles


def write_bundle(folder: Path, manifest: dict, files: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (files or {}).items():
        mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
        with open(folder / name, mode) as f:
            f.write(data)
    (folder / "bundle.json").write_text(json.dumps(manifest, indent=1))
    return folder


def spec(name: str, datatype: str, shape) -> dict:
    return {"name": name, "datatype": datatype, "shape": list(shape)}


TINY_W = np.array([1.0, 2.0, 3.0, 4.0], np.float32)


def tiny_mlir(rows: int) -> str:
    """@main(w[4], x[rows,4]) -> (y = x + w, s = sum(y, axis 1))."""
    return f"""module @tiny {{
  func.func public @main(%w: tensor<4xf32>, %x: tensor<{rows}x4xf32>) -> (tensor<{rows}x4xf32>, tensor<{rows}xf32>) {{
    %b = stablehlo.broadcast_in_dim %w, dims = [1] : (tensor<4xf32>) -> tensor<{rows}x4xf32>
    %y = stablehlo.add %x, %b : tensor<{rows}x4xf32>
    %z = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %s = stablehlo.reduce(%y init: %z) applies stablehlo.add across dimensions = [1] : (tensor<{rows}x4xf32>, tensor<f32>) -> tensor<{rows}xf32>
    return %y, %s : tensor<{rows}x4xf32>, tensor<{rows}xf32>
  }}
}}
"""


def tiny_reference(x: np.ndarray):
    y = (x + TINY_W).astype(np.float32)
    return y, y.sum(axis=1, dtype=np.float32)


def write_tiny_dense(root: Path, name: str = "tiny", rows=(2, 3)) -> Path:
    """A dense bundle with weights and one program per row count (inputs x [-1, 4])."""
    from safetensors.numpy import save_file
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"w": TINY_W}, str(folder / "weights.safetensors"))
    files, programs = {}, []
    for r in rows:
        files[f"model_{r}.mlir"] = tiny_mlir(r)
        programs.append({"file": f"model_{r}.mlir", "input_shapes": [[r, 4]],
                         "output_shapes": [[r, 4], [r]]})
    manifest = {"format_version": 1, "kind": "dense", "name": name,
                "inputs": [spec("x", "FP32", [-1 if len(rows) > 1 else rows[0], 4])],
                "outputs": [spec("y", "FP32", [-1 if len(rows) > 1 else rows[0], 4]),
                            spec("s", "FP32", [-1 if len(rows) > 1 else rows[0]])],
                "weights": {"file": "weights.safetensors", "params": ["w"]},
                "programs": programs}
    return write_bundle(folder, manifest, files)


INT_MLIR = """module @tiny_int {
  func.func public @main(%x: tensor<3xi32>) -> (tensor<3xi32>, tensor<3xi1>) {
    %c = stablehlo.constant dense<2> : tensor<3xi32>
    %y = stablehlo.multiply %x, %c : tensor<3xi32>
    %z = stablehlo.constant dense<0> : tensor<3xi32>
    %p = stablehlo.compare GT, %x, %z, SIGNED : (tensor<3xi32>, tensor<3xi32>) -> tensor<3xi1>
    return %y, %p : tensor<3xi32>, tensor<3xi1>
  }
}
"""


def write_tiny_int(root: Path, name: str = "tiny_int") -> Path:
    """A dense bundle without weights: INT32 [3] -> (2x INT32, x > 0 BOOL)."""
    manifest = {"format_version": 1, "kind": "dense", "name": name,
                "inputs": [spec("x", "INT32", [3])],
                "outputs": [spec("twice", "INT32", [3]), spec("positive", "BOOL", [3])],
                "weights": {"file": None, "params": []},
                "programs": [{"file": "model.mlir", "input_shapes": [[3]],
                              "output_shapes": [[3], [3]]}]}
    return write_bundle(root / name, manifest, {"model.mlir": INT_MLIR})


def write_meta(root: Path, name: str, group: list, inputs: list, outputs: list, source: str) -> Path:
    manifest = {"format_version": 1, "kind": "meta", "name": name, "group": group,
                "inputs": inputs, "outputs": outputs, "source": "model.c", "config": {}}
    return write_bundle(root / name, manifest, {"model.c": source})


# A meta that sleeps MS milliseconds in 5 ms steps (polling its deadline), then calls its stage
# and returns the stage's y. FAIL != 0 makes it fail after the stage call, holding scratch.
TEST_META_C = r"""
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>
#include "hloserve/meta.h"

#define NAME "%(name)s"
#define STAGE "%(stage)s"

static const hs_named_tensor *find(const hs_named_tensor *t, int n, const char *name) {
  for (int i = 0; i < n; i++) if (strcmp(t[i].name, name) == 0) return &t[i];
  return NULL;
}

static hs_status *run(hs_meta_ctx *ctx, const hs_named_tensor *in, int n) {
  const hs_named_tensor *x = find(in, n, "x"), *ms = find(in, n, "MS"), *fail = find(in, n, "FAIL");
  if (!x || !ms || !fail) return hs_status_new(HS_INVALID_ARGUMENT, NAME ": needs x, MS, FAIL");
  int32_t wait_ms = *(const int32_t *)ms->tensor.data;
  for (int32_t t = 0; t < wait_ms; t += 5) {
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
    HS_RETURN_IF_ERROR(hs_meta_check_deadline(ctx));
  }
  /* Scratch that a failing run must give back. */
  hs_shape big = {1, {1 << 20}};
  hs_tensor scratch;
  HS_RETURN_IF_ERROR(hs_meta_scratch(ctx, HS_F32, &big, &scratch));
  memset(scratch.data, 0, 4u << 20);
  hs_named_tensor call_in = {"x", x->tensor};
  const hs_named_tensor *out = NULL;
  int n_out = 0;
  HS_RETURN_IF_ERROR(hs_meta_call(ctx, STAGE, &call_in, 1, &out, &n_out));
  if (*(const int32_t *)fail->tensor.data == 1)
    return hs_status_new(HS_INTERNAL, NAME ": intentional failure after calling " STAGE);
  if (*(const int32_t *)fail->tensor.data == 2) {
    /* a model outside the group */
    return hs_meta_call(ctx, "tiny", &call_in, 1, &out, &n_out);
  }
  const hs_named_tensor *y = find(out, n_out, "y");
  if (!y) return hs_status_new(HS_INTERNAL, NAME ": stage returned no y");
  hs_tensor o;
  HS_RETURN_IF_ERROR(hs_meta_output(ctx, "OUT", HS_F32, &y->tensor.shape, &o));
  memcpy(o.data, y->tensor.data, hs_tensor_nbytes(&y->tensor));
  return NULL;
}

hs_status *hs_meta_bundle_register(void) { return hs_meta_register(NAME, run); }
"""


def write_test_meta(root: Path, name: str, stage: str) -> Path:
    return write_meta(root, name, [stage],
                      [spec("x", "FP32", [-1, 4]), spec("MS", "INT32", [1]),
                       spec("FAIL", "INT32", [1])],
                      [spec("OUT", "FP32", [-1, 4])],
                      TEST_META_C % {"name": name, "stage": stage})


def meta_inputs(x: np.ndarray, ms: int = 0, fail: int = 0) -> list:
    return [("x", x), ("MS", np.array([ms], np.int32)), ("FAIL", np.array([fail], np.int32))]


# ------------------------------------------------------------------------------------------------
# the server process


class Server:
    """`hloserve serve` on 127.0.0.1 with an ephemeral port; stderr goes to a log file."""

    def __init__(self, hloserve: Path, repo: Path, *args: str, log: Path | None = None,
                 start_timeout: float = 300.0):
        self.log_path = Path(log or (Path(repo).parent / f"server-{os.getpid()}-{time.time_ns()}.log"))
        self._log = open(self.log_path, "wb")
        cmd = [str(hloserve), "serve", "--model-repository", str(repo), "--http-port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log)
        self.port = None
        deadline = time.time() + start_timeout
        line = b""
        while time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                line = self.proc.stdout.readline()
                if line.startswith(b"hloserve: serving"):
                    self.port = int(line.strip().rsplit(b":", 1)[1])
                    break
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        if self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"server did not start ({line!r}):\n{self.log()}")
        self.url = f"127.0.0.1:{self.port}"

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()

    def conn(self, timeout: float = 120.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                conn: http.client.HTTPConnection | None = None):
        """(status, headers, body bytes); a fresh connection unless one is given."""
        c = conn or self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            if conn is None:
                c.close()

    def get_json(self, path: str):
        status, _, body = self.request("GET", path)
        return status, json.loads(body)

    def metrics(self) -> str:
        return self.request("GET", "/metrics")[2].decode()

    def infer(self, model: str, inputs, binary: bool = False, outputs=None, params=None,
              request_id=None, conn=None, binary_outputs=None):
        body, headers = infer_body(inputs, binary=binary, outputs=outputs, params=params,
                                   request_id=request_id, binary_outputs=binary_outputs)
        status, h, data = self.request("POST", f"/v2/models/{model}/infer", body, headers, conn)
        return status, decode_response(h, data)


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """The value of series name{labels} in Prometheus text (labels as written, or '')."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


# ------------------------------------------------------------------------------------------------
# KServe v2 bodies

DTYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64", np.dtype(np.float16): "FP16",
          np.dtype(np.int8): "INT8", np.dtype(np.int16): "INT16", np.dtype(np.int32): "INT32",
          np.dtype(np.int64): "INT64", np.dtype(np.uint8): "UINT8", np.dtype(np.uint16): "UINT16",
          np.dtype(np.uint32): "UINT32", np.dtype(np.uint64): "UINT64", np.dtype(np.bool_): "BOOL"}
NP = {v: k for k, v in DTYPES.items()}


def infer_body(inputs, binary=False, outputs=None, params=None, request_id=None,
               binary_outputs=None):
    """inputs: [(name, array)]. Returns (body, headers)."""
    req, tail = {"inputs": []}, []
    if request_id is not None:
        req["id"] = request_id
    for name, a in inputs:
        a = np.ascontiguousarray(a)
        t = {"name": name, "shape": list(a.shape), "datatype": DTYPES[a.dtype]}
        if binary:
            raw = a.tobytes()
            t["parameters"] = {"binary_data_size": len(raw)}
            tail.append(raw)
        else:
            t["data"] = a.flatten().tolist()
        req["inputs"].append(t)
    if outputs is not None:
        req["outputs"] = [{"name": o} if binary_outputs is None else
                          {"name": o, "parameters": {"binary_data": binary_outputs}}
                          for o in outputs]
    if params:
        req["parameters"] = params
    head = json.dumps(req).encode()
    headers = {"Content-Type": "application/json"}
    if binary:
        headers["Inference-Header-Content-Length"] = str(len(head))
    return head + b"".join(tail), headers


def decode_response(headers: dict, data: bytes):
    """The JSON part (with 'arrays': {name: np.ndarray} for outputs), or the raw bytes if the body
    is not KServe JSON."""
    hl = {k.lower(): v for k, v in headers.items()}.get("inference-header-content-length")
    n = int(hl) if hl is not None else len(data)
    doc = json.loads(data[:n])
    if isinstance(doc, dict) and "outputs" in doc:
        off, arrays = n, {}
        for o in doc["outputs"]:
            dt = NP[o["datatype"]]
            size = o.get("parameters", {}).get("binary_data_size")
            if size is not None:
                arrays[o["name"]] = np.frombuffer(data[off:off + size], dt).reshape(o["shape"])
                off += size
            else:
                arrays[o["name"]] = np.array(o["data"], dt).reshape(o["shape"])
        assert off == len(data), "binary tail not fully used"
        doc["arrays"] = arrays
    return doc


# `bomb`: a meta that aborts its worker (MODE 1), hangs it without ever checking its deadline
# (MODE 2), or else calls its stage `bomb_stage` with 1 MiB of scratch that stays in the worker
# (MODE 0); for the fleet's fault tests and bench/soak_fleet.py.
BOMB_C = r"""
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hloserve/meta.h"

static hs_status *run(hs_meta_ctx *ctx, const hs_named_tensor *in, int n) {
  const hs_named_tensor *x = NULL, *mode = NULL;
  for (int i = 0; i < n; i++) {
    if (strcmp(in[i].name, "x") == 0) x = &in[i];
    if (strcmp(in[i].name, "MODE") == 0) mode = &in[i];
  }
  if (!x || !mode) return hs_status_new(HS_INVALID_ARGUMENT, "bomb: needs x and MODE");
  int32_t m = *(const int32_t *)mode->tensor.data;
  if (m == 1) abort();
  while (m == 2) { /* hangs: never checks its deadline */
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  /* scratch that stays in the worker process */
  hs_shape big = {1, {1 << 18}};
  hs_tensor scratch;
  HS_RETURN_IF_ERROR(hs_meta_scratch(ctx, HS_F32, &big, &scratch));
  memset(scratch.data, 0, 1u << 20);
  hs_named_tensor call_in = {"x", x->tensor};
  const hs_named_tensor *out = NULL;
  int n_out = 0;
  HS_RETURN_IF_ERROR(hs_meta_call(ctx, "bomb_stage", &call_in, 1, &out, &n_out));
  hs_tensor o;
  HS_RETURN_IF_ERROR(hs_meta_output(ctx, "OUT", HS_F32, &out[0].tensor.shape, &o));
  memcpy(o.data, out[0].tensor.data, hs_tensor_nbytes(&out[0].tensor));
  return NULL;
}

hs_status *hs_meta_bundle_register(void) { return hs_meta_register("bomb", run); }
"""


def write_bomb_meta(root: Path) -> Path:
    """Writes `bomb_stage` (a tiny dense model) and the `bomb` meta over it; returns root."""
    write_tiny_dense(root, "bomb_stage", rows=(2,))
    write_meta(root, "bomb", ["bomb_stage"], [spec("x", "FP32", [2, 4]), spec("MODE", "INT32", [1])],
               [spec("OUT", "FP32", [2, 4])], BOMB_C)
    return root
