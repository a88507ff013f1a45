"""End-to-end tests of `hloserve serve` (issue 4): a real server on an ephemeral loopback port.

What is covered: every endpoint; JSON and binary inference (both directions, per-output choice);
tritonclient[http] unchanged on a dense bundle and on the detector; stages are 404; malformed and
mismatched requests (status + message, and the server keeps serving); oversized and truncated
bodies; a deadline that expires inside a meta run; a full queue; the meta gate; 64 concurrent
clients mixing good and bad requests; a meta model that fails mid-run (its scratch is returned);
broken bundles (logged, not ready, with the reason); graceful shutdown; /metrics.

The models: tiny dense bundles written here as MLIR text (server_util.py), meta bundles whose
model.c is written here too (they sleep, poll their deadline, call a stage, or fail on demand),
and the torchvision detector converted once per build folder (resnet50_fpn at 256x256, random
weights; cached under $HS_BUILD_DIR/test-server-models).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_util as U  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MAX_BODY = 1 << 20  # --max-request-bytes of the main server


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    U.write_tiny_dense(root, "tiny", rows=(2, 3))
    U.write_tiny_int(root, "tiny_int")
    U.write_tiny_dense(root, "inner", rows=(2,))          # a stage: only reachable by metas
    U.write_test_meta(root, "slow", "inner")
    # broken bundles: each is logged and listed as not ready, with the reason
    U.write_tiny_dense(root, "missing_file", rows=(2,))
    (root / "missing_file" / "model_2.mlir").unlink()
    bad = U.write_tiny_dense(root, "bad_mlir", rows=(2,))
    (bad / "model_2.mlir").write_text("module { this is not mlir }\n")
    U.write_meta(root, "bad_c", ["inner"], [U.spec("x", "FP32", [2, 4])],
                 [U.spec("OUT", "FP32", [2, 4])], "this is not C;\n")
    U.write_test_meta(root, "lonely", "no_such_stage")
    (root / "bad_json").mkdir()
    (root / "bad_json" / "bundle.json").write_text("{not json")
    (root / "not_a_bundle").mkdir()
    return root


@pytest.fixture(scope="module")
def server(hloserve, repo):
    # HS_TEST_SERVE_ARGS: extra `serve` options (test_fleet.py runs this module with --workers 2)
    with U.Server(hloserve, repo, "--threads", "2", "--max-queue", "128",
                  "--max-request-bytes", str(MAX_BODY),
                  *os.environ.get("HS_TEST_SERVE_ARGS", "").split()) as s:
        yield s
        assert s.stop() == 0


X2 = np.arange(8, dtype=np.float32).reshape(2, 4)
X3 = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5


# ------------------------------------------------------------------------------------------------
# endpoints


def test_health_and_server_metadata(server):
    assert server.get_json("/v2/health/live") == (200, {"live": True})
    assert server.get_json("/v2/health/ready") == (200, {"ready": True})
    status, meta = server.get_json("/v2")
    assert status == 200 and meta["name"] == "hloserve"
    assert "binary_tensor_data" in meta["extensions"]
    assert server.get_json("/v2/")[0] == 200


def test_model_metadata_and_ready(server):
    status, m = server.get_json("/v2/models/tiny")
    assert status == 200
    assert m["name"] == "tiny" and m["versions"] == ["1"]
    assert m["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in m["outputs"]] == ["y", "s"]
    status, m = server.get_json("/v2/models/slow")
    assert status == 200 and m["platform"] == "hloserve_meta"
    assert server.get_json("/v2/models/tiny/ready") == (200, {"name": "tiny", "ready": True})
    assert server.get_json("/v2/models/tiny/versions/1/ready")[0] == 200
    assert server.get_json("/v2/models/tiny/versions/1")[0] == 200
    status, body = server.get_json("/v2/models/tiny/versions/2")
    assert status == 404 and "version" in body["error"]


def test_repository_index_lists_addressable_models_only(server):
    status, _, body = server.request("POST", "/v2/repository/index", b"{}")
    assert status == 200
    index = {e["name"]: e for e in json.loads(body)}
    assert {"tiny", "tiny_int", "slow"} <= set(index)
    assert "inner" not in index and "no_such_stage" not in index
    assert "not_a_bundle" not in index
    assert index["tiny"]["state"] == "READY"
    for broken in ("missing_file", "bad_mlir", "bad_c", "lonely", "bad_json"):
        assert index[broken]["state"] == "UNAVAILABLE" and index[broken]["reason"], broken


@pytest.mark.parametrize("name,reason", [
    ("missing_file", "model_2.mlir is missing"),
    ("bad_mlir", "model_2.mlir"),
    ("bad_c", "compiling"),
    ("lonely", "no_such_stage is not in the repository"),
    ("bad_json", "bundle.json"),
])
def test_broken_bundles_are_not_ready_with_reason(server, name, reason):
    status, body = server.get_json(f"/v2/models/{name}/ready")
    assert status == 503 and body["ready"] is False and reason in body["reason"], body
    status, body = server.infer(name, [("x", X2)])
    assert status == 503 and "not ready" in body["error"] and reason in body["error"]
    assert name in server.log()  # logged with its name and reason


def test_stages_are_not_reachable(server):
    for path in ("/v2/models/inner", "/v2/models/inner/ready", "/v2/models/inner/versions/1"):
        status, body = server.get_json(path)
        assert status == 404 and body == {"error": "unknown model 'inner'"}
    status, body = server.infer("inner", [("x", X2)])
    assert status == 404 and body == {"error": "unknown model 'inner'"}
    # exactly the answer a model that does not exist gets
    status, body = server.infer("nonexistent", [("x", X2)])
    assert status == 404 and body == {"error": "unknown model 'nonexistent'"}


def test_routes_and_methods(server):
    status, _, body = server.request("GET", "/v2/nothing/here")
    assert status == 404 and "no route" in json.loads(body)["error"]
    status, _, body = server.request("GET", "/v2/models/tiny/infer")
    assert status == 405 and "POST" in json.loads(body)["error"]
    status, _, body = server.request("POST", "/v2/health/live", b"")
    assert status == 405


def test_metrics_endpoint(server):
    server.infer("tiny", [("x", X2)])
    server.infer("slow", U.meta_inputs(X2))
    server.infer("tiny", [("x", np.zeros((5, 4), np.float32))])
    text = server.metrics()
    assert U.metric_value(text, "hloserve_requests_total", 'model="tiny",code="200"') >= 1
    assert U.metric_value(text, "hloserve_requests_total", 'model="tiny",code="400"') >= 1
    assert U.metric_value(text, "hloserve_request_duration_seconds_count", 'model="tiny"') >= 2
    assert U.metric_value(text, "hloserve_stage_duration_seconds_count",
                          'model="slow",stage="inner"') >= 1
    assert U.metric_value(text, "hloserve_glue_duration_seconds_count", 'model="slow"') >= 1
    assert U.metric_value(text, "hloserve_queue_depth") == 0
    assert U.metric_value(text, "hloserve_model_ready", 'model="bad_c"') == 0
    assert U.metric_value(text, "hloserve_model_ready", 'model="tiny"') == 1
    assert 'model="inner"' not in text.split("hloserve_stage_duration_seconds")[0]


# ------------------------------------------------------------------------------------------------
# inference


def test_infer_json(server):
    status, r = server.infer("tiny", [("x", X2)], request_id="req-42")
    assert status == 200, r
    assert r["id"] == "req-42" and r["model_name"] == "tiny"
    y, s = U.tiny_reference(X2)
    np.testing.assert_array_equal(r["arrays"]["y"], y)
    np.testing.assert_array_equal(r["arrays"]["s"], s)
    assert all("data" in o for o in r["outputs"])


def test_infer_picks_the_program_for_the_shape(server):
    status, r = server.infer("tiny", [("x", X3)], binary=True)
    assert status == 200, r
    np.testing.assert_array_equal(r["arrays"]["y"], U.tiny_reference(X3)[0])
    status, r = server.infer("tiny", [("x", np.zeros((4, 4), np.float32))])
    assert status == 400 and "match no compiled program" in r["error"]


def test_infer_binary_both_ways(server):
    status, r = server.infer("tiny", [("x", X2)], binary=True, params={"binary_data_output": True})
    assert status == 200
    assert all(o["parameters"]["binary_data_size"] > 0 for o in r["outputs"])
    np.testing.assert_array_equal(r["arrays"]["y"], U.tiny_reference(X2)[0])
    # per-output choice and output selection: only s, as JSON, from a binary request
    status, r = server.infer("tiny", [("x", X2)], binary=True, outputs=["s"], binary_outputs=False)
    assert status == 200 and [o["name"] for o in r["outputs"]] == ["s"]
    assert "data" in r["outputs"][0]
    status, r = server.infer("tiny", [("x", X2)], outputs=["y"], binary_outputs=True)
    assert status == 200 and list(r["arrays"]) == ["y"]
    assert r["outputs"][0]["parameters"]["binary_data_size"] == 32


def test_infer_int_and_bool(server):
    x = np.array([5, -7, 0], np.int32)
    for binary in (False, True):
        status, r = server.infer("tiny_int", [("x", x)], binary=binary,
                                 params={"binary_data_output": binary})
        assert status == 200, r
        np.testing.assert_array_equal(r["arrays"]["twice"], 2 * x)
        np.testing.assert_array_equal(r["arrays"]["positive"], x > 0)


def test_infer_meta(server):
    status, r = server.infer("slow", U.meta_inputs(X2), request_id="m1")
    assert status == 200, r
    np.testing.assert_array_equal(r["arrays"]["OUT"], U.tiny_reference(X2)[0])


def test_tritonclient_dense(server):
    import tritonclient.http as httpclient
    c = httpclient.InferenceServerClient(server.url)
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("tiny") and not c.is_model_ready("inner")
    assert not c.is_model_ready("bad_c")
    md = c.get_model_metadata("tiny")
    assert md["inputs"][0]["name"] == "x"
    for binary in (False, True):
        inp = httpclient.InferInput("x", list(X3.shape), "FP32")
        inp.set_data_from_numpy(X3, binary_data=binary)
        outs = [httpclient.InferRequestedOutput("y", binary_data=binary),
                httpclient.InferRequestedOutput("s", binary_data=not binary)]
        r = c.infer("tiny", [inp], outputs=outs, request_id=f"t{binary}")
        y, s = U.tiny_reference(X3)
        np.testing.assert_array_equal(r.as_numpy("y"), y)
        np.testing.assert_array_equal(r.as_numpy("s"), s)
        assert r.get_response()["id"] == f"t{binary}"
    # no outputs named: tritonclient asks for all of them in binary
    inp = httpclient.InferInput("x", list(X2.shape), "FP32")
    inp.set_data_from_numpy(X2)
    r = c.infer("tiny", [inp])
    np.testing.assert_array_equal(r.as_numpy("s"), U.tiny_reference(X2)[1])
    from tritonclient.utils import InferenceServerException
    with pytest.raises(InferenceServerException, match="unknown model"):
        c.infer("inner", [inp])
    c.close()


# ------------------------------------------------------------------------------------------------
# bad requests: each gets its status and message, and the server keeps serving

BAD_REQUESTS = [
    # (name, body, headers, status, message fragment)
    ("not json", b"{inputs: [}", {}, 400, "malformed JSON"),
    ("empty body", b"", {}, 400, "empty request body"),
    ("not an object", b"[1, 2]", {}, 400, "must be a JSON object"),
    ("trailing garbage", b'{"inputs": []} x', {}, 400, "trailing characters"),
    ("no inputs key", b'{"outputs": []}', {}, 400, 'no "inputs"'),
    ("inputs not a list", b'{"inputs": {}}', {}, 400, "inputs must be an array"),
    ("missing input", b'{"inputs": []}', {}, 400, "missing input 'x'"),
    ("unknown input", b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", '
     b'"data": [0,0,0,0,0,0,0,0]}, {"name": "q", "shape": [1], "datatype": "FP32", "data": [1]}]}',
     {}, 400, "has no input 'q'"),
    ("wrong dtype", b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "INT32", '
     b'"data": [0,0,0,0,0,0,0,0]}]}', {}, 400, "must be FP32, got INT32"),
    ("wrong rank", b'{"inputs": [{"name": "x", "shape": [8], "datatype": "FP32", '
     b'"data": [0,0,0,0,0,0,0,0]}]}', {}, 400, "must have shape [-1, 4], got [8]"),
    ("count mismatch", b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", '
     b'"data": [1, 2, 3]}]}', {}, 400, "data has 3 elements but shape [2, 4] needs 8"),
    ("unknown datatype", b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP99", '
     b'"data": []}]}', {}, 400, "unknown datatype"),
    ("bytes tensor", b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", '
     b'"data": ["a"]}]}', {}, 400, "BYTES"),
    ("string in data", b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", '
     b'"data": ["a"]}]}', {}, 400, "holds a string"),
    ("negative dim", b'{"inputs": [{"name": "x", "shape": [-2, 4], "datatype": "FP32", '
     b'"data": []}]}', {}, 400, "shape dim 0"),
    ("huge shape", b'{"inputs": [{"name": "x", "shape": [4611686018427387904, 4611686018427387904],'
     b' "datatype": "FP32", "data": []}]}', {}, 400, "too large"),
    ("no data", b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32"}]}', {}, 400,
     "neither data nor"),
    ("unknown output", b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", '
     b'"data": [0,0,0,0,0,0,0,0]}], "outputs": [{"name": "zz"}]}', {}, 400, "unknown output 'zz'"),
    ("deep nesting", b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b', "inputs": []}', {}, 400,
     "nested too deeply"),
    ("invalid utf-8", b'{"id": "\xff\xfe", "inputs": []}', {}, 400, "invalid UTF-8"),
    ("bad timeout", b'{"parameters": {"timeout": "soon"}, "inputs": []}', {}, 400, "timeout"),
    ("header length past body", b'{"inputs": []}', {"Inference-Header-Content-Length": "999"}, 400,
     "truncated body"),
    ("header length not a number", b'{"inputs": []}', {"Inference-Header-Content-Length": "ab"},
     400, "Inference-Header-Content-Length"),
    ("binary without header", b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", '
     b'"parameters": {"binary_data_size": 32}}]}' + bytes(32), {}, 400, "malformed JSON"),
    ("compressed body", b'{"inputs": []}', {"Content-Encoding": "gzip"}, 400, "Content-Encoding"),
]


def _binary(json_obj, tail: bytes, header_len=None):
    head = json.dumps(json_obj).encode()
    n = len(head) if header_len is None else header_len
    return head + tail, {"Inference-Header-Content-Length": str(n)}


def _bin_input(size):
    return {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                        "parameters": {"binary_data_size": size}}]}


BINARY_BAD = [
    ("binary size vs shape", *_binary(_bin_input(16), bytes(16)), 400,
     "binary_data_size is 16 bytes but FP32 [2, 4] needs 32"),
    ("truncated binary tail", *_binary(_bin_input(32), bytes(20)), 400, "run past the end"),
    ("extra binary bytes", *_binary(_bin_input(32), bytes(40)), 400, "add up to 32"),
    ("tail but no binary input", *_binary({"inputs": [{"name": "x", "shape": [2, 4],
                                                        "datatype": "FP32", "data": [0] * 8}]},
                                          bytes(8)), 400, "binary data after the JSON header"),
    ("header cuts the JSON", *_binary(_bin_input(32), bytes(32), header_len=20), 400,
     "malformed JSON"),
]


@pytest.mark.parametrize("name,body,headers,status,message", BAD_REQUESTS + BINARY_BAD,
                         ids=[b[0] for b in BAD_REQUESTS + BINARY_BAD])
def test_bad_request(server, name, body, headers, status, message):
    got, h, data = server.request("POST", "/v2/models/tiny/infer", body, headers)
    doc = json.loads(data)
    assert got == status, doc
    assert set(doc) == {"error"} and message in doc["error"], doc
    # and the server keeps serving
    status, r = server.infer("tiny", [("x", X2)])
    assert status == 200 and np.array_equal(r["arrays"]["s"], U.tiny_reference(X2)[1])


def test_bad_requests_on_one_keepalive_connection(server):
    c = server.conn()
    for name, body, headers, status, message in BAD_REQUESTS[:8] + BINARY_BAD:
        got, _, data = server.request("POST", "/v2/models/tiny/infer", body, headers, conn=c)
        assert got == status and message in json.loads(data)["error"], name
        got, r = server.infer("tiny", [("x", X2)], binary=True, conn=c)
        assert got == 200
    c.close()


def test_oversized_bodies(server):
    big = np.zeros((MAX_BODY // 16 + 1, 4), np.float32)  # > MAX_BODY bytes in binary
    body, headers = U.infer_body([("x", big)], binary=True)
    assert len(body) > MAX_BODY
    status, _, data = server.request("POST", "/v2/models/tiny/infer", body, headers)
    assert status == 413 and "--max-request-bytes" in json.loads(data)["error"]
    # with Expect: 100-continue the answer comes before the body (curl's way)
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    s.sendall(b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
              b"Expect: 100-continue\r\n\r\n" % (10 * MAX_BODY))
    reply = s.recv(65536)
    s.close()
    assert reply.startswith(b"HTTP/1.1 413") and b"max-request-bytes" in reply
    # chunked upload (no Content-Length) past the limit
    c = server.conn()
    chunks = (bytes(65536) for _ in range(MAX_BODY // 65536 + 4))
    c.request("POST", "/v2/models/tiny/infer", body=chunks, encode_chunked=True)
    r = c.getresponse()
    assert r.status == 413 and "max-request-bytes" in json.loads(r.read())["error"]
    c.close()
    assert server.infer("tiny", [("x", X2)])[0] == 200


def test_truncated_body_on_the_wire(server):
    """A client that declares more bytes than it sends and hangs up: no answer is possible, but
    the server must drop the connection cleanly and keep serving."""
    body, _ = U.infer_body([("x", X2)])
    for cut in (0, 5, len(body) - 1):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body[:cut])
        s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        try:
            rest = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            rest = b""
        s.close()
        assert rest == b"" or rest.startswith(b"HTTP/1.1 4")
    # a truncated header block
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    s.sendall(b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Le")
    s.close()
    assert server.infer("tiny", [("x", X2)])[0] == 200


# ------------------------------------------------------------------------------------------------
# meta runs: deadlines, failures, the gate, the queue


def test_deadline_expires_inside_a_meta_run(server):
    t0 = time.time()
    status, r = server.infer("slow", U.meta_inputs(X2, ms=3000), params={"timeout": 300_000})
    elapsed = time.time() - t0
    assert status == 504, r
    assert "deadline exceeded" in r["error"] and "slow" in r["error"]
    assert elapsed < 2.0, elapsed  # answered at the deadline, not when the run ended
    # the run notices at its next check and gives everything back
    for _ in range(100):
        text = server.metrics()
        if U.metric_value(text, "hloserve_running_requests") == 0:
            break
        time.sleep(0.05)
    assert U.metric_value(text, "hloserve_scratch_in_use_bytes") == 0
    status, r = server.infer("slow", U.meta_inputs(X2), params={"timeout": 5_000_000})
    assert status == 200


def test_deadline_in_the_queue_and_generous_deadlines(server):
    status, r = server.infer("tiny", [("x", X2)], params={"timeout": 10_000_000})
    assert status == 200
    # a 1 us deadline has passed before any worker can start it
    status, r = server.infer("tiny", [("x", X2)], params={"timeout": 1})
    assert status == 504 and "deadline exceeded" in r["error"]


def test_meta_failure_mid_run_returns_scratch(server):
    before = U.metric_value(server.metrics(), "hloserve_scratch_pooled_bytes")
    for _ in range(3):
        status, r = server.infer("slow", U.meta_inputs(X2, fail=1))
        assert status == 500 and r["error"] == "slow: intentional failure after calling inner"
        text = server.metrics()
        assert U.metric_value(text, "hloserve_scratch_in_use_bytes") == 0
    status, r = server.infer("slow", U.meta_inputs(X2))
    assert status == 200 and np.array_equal(r["arrays"]["OUT"], U.tiny_reference(X2)[0])
    # pooled buffers are reused: repeated failures do not grow the pool without bound
    after = U.metric_value(server.metrics(), "hloserve_scratch_pooled_bytes")
    assert after <= max(before, 1) + (16 << 20)


def test_meta_calling_outside_its_group(server):
    status, r = server.infer("slow", U.meta_inputs(X2, fail=2))
    assert status == 500 and "not in its placement group" in r["error"]
    assert server.infer("slow", U.meta_inputs(X2))[0] == 200


def _post_async(server, model, inputs, params=None, results=None, key=None):
    def go():
        results[key] = server.infer(model, inputs, params=params)
    t = threading.Thread(target=go)
    t.start()
    return t


def _wait_running(server, n, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if U.metric_value(server.metrics(), "hloserve_running_requests") >= n:
            return
        time.sleep(0.01)
    raise AssertionError("requests did not start")


def test_full_queue_is_503(hloserve, repo, tmp_path):
    with U.Server(hloserve, repo, "--threads", "1", "--max-queue", "1",
                  log=tmp_path / "q.log") as s:
        results = {}
        a = _post_async(s, "slow", U.meta_inputs(X2, ms=1500), results=results, key="a")
        _wait_running(s, 1)
        b = _post_async(s, "tiny", [("x", X2)], results=results, key="b")
        end = time.time() + 10
        while U.metric_value(s.metrics(), "hloserve_queue_depth") < 1 and time.time() < end:
            time.sleep(0.01)
        status, r = s.infer("tiny", [("x", X2)])
        assert status == 503 and "queue is full" in r["error"]
        a.join()
        b.join()
        assert results["a"][0] == 200 and results["b"][0] == 200
        assert s.infer("tiny", [("x", X2)])[0] == 200
        assert s.stop() == 0


def test_meta_gate(hloserve, repo, tmp_path):
    """One meta slot, two workers: a second meta waits for the slot while dense requests pass it;
    a full queue never blocks the running meta's sub-calls."""
    with U.Server(hloserve, repo, "--threads", "2", "--meta-slots", "1", "--max-queue", "2",
                  log=tmp_path / "gate.log") as s:
        results = {}
        t0 = time.time()
        a = _post_async(s, "slow", U.meta_inputs(X2, ms=800), results=results, key="a")
        _wait_running(s, 1)
        b = _post_async(s, "slow", U.meta_inputs(X2, ms=800), results=results, key="b")
        time.sleep(0.1)
        text = s.metrics()
        assert U.metric_value(text, "hloserve_meta_slots_in_use") == 1
        assert U.metric_value(text, "hloserve_queue_depth") == 1  # b waits at the gate
        # a dense request is not held back by the waiting meta
        t1 = time.time()
        assert s.infer("tiny", [("x", X2)])[0] == 200
        assert time.time() - t1 < 0.5
        a.join()
        b.join()
        assert results["a"][0] == 200 and results["b"][0] == 200
        assert time.time() - t0 >= 1.6  # the metas ran one after the other
        assert s.stop() == 0


def test_64_concurrent_clients(server):
    """Every request gets exactly one well-formed answer; the good ones are correct."""
    rng = np.random.default_rng(0)
    kinds = ["json", "binary", "meta", "bad_json", "bad_shape", "stage", "unknown", "int"]
    answers = [None] * 64
    errors = []

    def client(i):
        kind = kinds[i % len(kinds)]
        x = rng.standard_normal((2, 4)).astype(np.float32) if kind != "int" else None
        c = server.conn(timeout=120)
        try:
            for k in range(3):  # keep-alive: several requests per connection
                if kind == "json":
                    got = server.infer("tiny", [("x", x)], conn=c, request_id=f"{i}-{k}")
                elif kind == "binary":
                    got = server.infer("tiny", [("x", x)], binary=True, conn=c,
                                       params={"binary_data_output": True}, request_id=f"{i}-{k}")
                elif kind == "meta":
                    got = server.infer("slow", U.meta_inputs(x, ms=20), conn=c, request_id=f"{i}-{k}")
                elif kind == "int":
                    xi = np.array([i, -k, 3], np.int32)
                    got = server.infer("tiny_int", [("x", xi)], conn=c, request_id=f"{i}-{k}")
                elif kind == "bad_json":
                    st, h, d = server.request("POST", "/v2/models/tiny/infer", b'{"inputs": [',
                                              conn=c)
                    got = (st, json.loads(d))
                elif kind == "bad_shape":
                    got = server.infer("tiny", [("x", np.zeros((9, 4), np.float32))], conn=c)
                elif kind == "stage":
                    got = server.infer("inner", [("x", x)], conn=c)
                else:
                    got = server.infer("nope", [("x", x)], conn=c)
                status, doc = got
                if kind in ("json", "binary"):
                    assert status == 200 and doc["id"] == f"{i}-{k}", doc
                    np.testing.assert_array_equal(doc["arrays"]["y"], U.tiny_reference(x)[0])
                elif kind == "meta":
                    assert status == 200 and doc["id"] == f"{i}-{k}", doc
                    np.testing.assert_array_equal(doc["arrays"]["OUT"], U.tiny_reference(x)[0])
                elif kind == "int":
                    assert status == 200, doc
                    np.testing.assert_array_equal(doc["arrays"]["twice"], 2 * xi)
                elif kind in ("bad_json", "bad_shape"):
                    assert status == 400 and set(doc) == {"error"}, doc
                else:
                    assert status == 404 and set(doc) == {"error"}, doc
            answers[i] = kind
        except Exception as e:  # noqa: BLE001
            errors.append(f"client {i} ({kind}): {e!r}")
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors[:5]
    assert all(a is not None for a in answers)
    assert U.metric_value(server.metrics(), "hloserve_queue_depth") == 0


# ------------------------------------------------------------------------------------------------
# shutdown


def test_graceful_shutdown(hloserve, repo, tmp_path):
    s = U.Server(hloserve, repo, "--threads", "1", log=tmp_path / "stop.log")
    results = {}
    a = _post_async(s, "slow", U.meta_inputs(X2, ms=1000), results=results, key="a")
    _wait_running(s, 1)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    # new connections are refused soon after the signal
    refused = False
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
        except OSError:
            refused = True
            break
        time.sleep(0.02)
    a.join()
    assert results["a"][0] == 200  # the in-flight request finished
    assert s.stop(timeout=30) == 0
    assert refused
    assert time.time() - t0 < 10
    log = s.log()
    assert "SIGTERM received" in log and "stopped" in log


def test_shutdown_answers_what_is_left_after_the_grace(hloserve, repo, tmp_path):
    s = U.Server(hloserve, repo, "--threads", "1", "--grace-ms", "300", log=tmp_path / "g.log")
    results = {}
    a = _post_async(s, "slow", U.meta_inputs(X2, ms=5000), results=results, key="a")
    _wait_running(s, 1)
    b = _post_async(s, "tiny", [("x", X2)], results=results, key="b")
    time.sleep(0.1)
    s.proc.send_signal(signal.SIGINT)
    a.join()
    b.join()
    assert results["a"][0] == 503 and "shutting down" in results["a"][1]["error"]
    assert results["b"][0] == 503
    assert s.stop(timeout=30) == 0


# ------------------------------------------------------------------------------------------------
# the in-process runner


def test_infer_command(hloserve, repo, tmp_path):
    np.save(tmp_path / "x.npy", X3)
    r = subprocess.run([str(hloserve), "infer", "--model-repository", str(repo), "--model", "tiny",
                        "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "out"),
                        "--repeat", "3"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "infer: model=tiny repeat=3" in r.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), U.tiny_reference(X3)[0])
    r = subprocess.run([str(hloserve), "infer", "--model-repository", str(repo), "--model", "inner",
                        "--input", f"x={tmp_path / 'x.npy'}"], capture_output=True, text=True)
    assert r.returncode == 1 and "unknown model 'inner'" in r.stderr


# ------------------------------------------------------------------------------------------------
# the detector


DETECTOR = {"arch": "resnet50_fpn", "weights": "none", "image_size": 256,
            "rpn_pre_nms_top_n_test": 200, "rpn_post_nms_top_n_test": 100,
            "box_score_thresh": 0.0}


def convert_detector(build_dir: Path) -> Path:
    """Converts the test detector once per build folder (the converter skips it when up to date)."""
    folder = Path(build_dir) / "test-server-models"
    folder.mkdir(parents=True, exist_ok=True)
    handler = REPO / "tools" / "handlers" / "torchvision_frcnn_detector.py"
    config = folder / "config.yaml"
    config.write_text("output_root: models\nhandlers:\n"
                      f"  - file: {handler}\n    models: [detector]\n"
                      f"    options: {json.dumps(DETECTOR)}\n")
    r = subprocess.run([sys.executable, str(REPO / "tools" / "convert_to_stablehlo.py"), str(config)],
                       capture_output=True, text=True, cwd=REPO, timeout=1800)
    if r.returncode != 0:
        raise AssertionError(f"converter failed:\n{r.stdout}\n{r.stderr}")
    return folder / "models"


@pytest.fixture(scope="module")
def detector_repo(build_dir):
    pytest.importorskip("torch")
    return convert_detector(build_dir)


def detector_image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (1, 3, 256, 256), dtype=np.uint8)


def test_detector_with_tritonclient(hloserve, detector_repo, tmp_path):
    import tritonclient.http as httpclient
    image = detector_image()
    np.save(tmp_path / "image.npy", image)
    r = subprocess.run([str(hloserve), "infer", "--model-repository", str(detector_repo),
                        "--model", "detector", "--input", f"INPUT__0={tmp_path / 'image.npy'}",
                        "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    local = np.load(tmp_path / "OUTPUT__0.npy")
    with U.Server(hloserve, detector_repo, "--threads", "2", log=tmp_path / "det.log") as s:
        c = httpclient.InferenceServerClient(s.url, network_timeout=300)
        assert c.is_model_ready("detector")
        for stage in ("detector_stage1", "detector_stage2"):
            assert not c.is_model_ready(stage)
        md = c.get_model_metadata("detector")
        assert md["inputs"][0]["shape"] == [1, 3, -1, -1]  # any image size: the meta letterboxes
        got = {}
        for binary in (True, False):
            inp = httpclient.InferInput("INPUT__0", list(image.shape), "UINT8")
            inp.set_data_from_numpy(image, binary_data=binary)
            out = httpclient.InferRequestedOutput("OUTPUT__0", binary_data=binary)
            res = c.infer("detector", [inp], outputs=[out], request_id="det")
            got[binary] = res.as_numpy("OUTPUT__0")
        det = got[True]
        assert det.dtype == np.float32 and det.ndim == 2 and det.shape[1] == 6
        assert 0 < det.shape[0] <= 100
        assert np.all(np.isfinite(det))
        assert np.all(det[:, :4] >= 0) and np.all(det[:, :4] <= 256)
        assert np.all(det[:, 2] >= det[:, 0]) and np.all(det[:, 3] >= det[:, 1])
        assert np.all((det[:, 5] >= 1) & (det[:, 5] <= 90))
        # JSON and binary carry the same float32 values; the server runs what runs in process
        np.testing.assert_array_equal(got[False], det)
        np.testing.assert_array_equal(local, det)
        # the response carries where the time went (docs/server.md)
        params = res.get_response().get("parameters", {})
        assert set(params) == {"stage1_us", "stage2_us", "glue_us"}, params
        assert all(isinstance(v, int) and v >= 0 for v in params.values())
        # a stage is not reachable; a wrong image is a 400 from the manifest check (4 channels)
        # or from the meta's own check (an empty image)
        from tritonclient.utils import InferenceServerException
        bad = httpclient.InferInput("INPUT__0", [1, 4, 128, 128], "UINT8")
        bad.set_data_from_numpy(np.zeros((1, 4, 128, 128), np.uint8))
        with pytest.raises(InferenceServerException, match=r"\[400\].*\[1, 3, -1, -1\]"):
            c.infer("detector", [bad])
        empty = httpclient.InferInput("INPUT__0", [1, 3, 0, 128], "UINT8")
        empty.set_data_from_numpy(np.zeros((1, 3, 0, 128), np.uint8))
        with pytest.raises(InferenceServerException, match=r"\[400\].*\[1, 3, H, W\]"):
            c.infer("detector", [empty])
        with pytest.raises(InferenceServerException, match="unknown model"):
            c.infer("detector_stage1", [inp])
        text = s.metrics()
        for stage in ("detector_stage1", "detector_stage2"):
            assert U.metric_value(text, "hloserve_stage_duration_seconds_count",
                                  f'model="detector",stage="{stage}"') == 2
        c.close()
        assert s.stop() == 0
