"""deploy/nginx/hloserve.conf, tested: nginx (run by this test as the current user, with its own
prefix, pid file and logs, `daemon off;`, on a free loopback port) balances two `hloserve serve`
instances; one instance is killed, in flight and idle, and every later request still succeeds
through the other.

Skipped only when the nginx binary is missing (scripts/setup_system.sh installs it).
"""
from __future__ import annotations

import getpass
import json
import os
import shutil
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
CONF = REPO / "deploy" / "nginx" / "hloserve.conf"
X2 = np.arange(8, dtype=np.float32).reshape(2, 4)


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


@pytest.fixture(scope="module")
def nginx_bin() -> str:
    exe = find_nginx()
    if not exe:
        pytest.skip("nginx is not installed (scripts/setup_system.sh installs the Debian package)")
    return exe


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nginx") / "repo"
    U.write_tiny_dense(root, "tiny", rows=(2, 3))
    U.write_tiny_dense(root, "inner", rows=(2,))
    U.write_test_meta(root, "slow", "inner")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx in the foreground with deploy/nginx/hloserve.conf, its addresses replaced."""

    def __init__(self, exe: str, prefix: Path, port: int, upstreams: list[int]):
        self.prefix, self.port = prefix, port
        prefix.mkdir(parents=True, exist_ok=True)
        text = CONF.read_text()
        for placeholder in ("listen 127.0.0.1:8000;", "server 127.0.0.1:8001 ",
                            "server 127.0.0.1:8002 "):
            assert placeholder in text, f"{CONF} no longer has '{placeholder}'"
        text = text.replace("listen 127.0.0.1:8000;", f"listen 127.0.0.1:{port};")
        text = text.replace("server 127.0.0.1:8001 ", f"server 127.0.0.1:{upstreams[0]} ")
        text = text.replace("server 127.0.0.1:8002 ", f"server 127.0.0.1:{upstreams[1]} ")
        (prefix / "hloserve.conf").write_text(text)
        built = subprocess.run([exe, "-V"], capture_output=True, text=True).stderr
        temp = [f"client_body_temp_path {prefix}/client_body;", f"proxy_temp_path {prefix}/proxy;"]
        for module in ("fastcgi", "uwsgi", "scgi"):  # each compiled-in module wants its temp dir
            if f"--without-http_{module}_module" not in built:
                temp.append(f"{module}_temp_path {prefix}/{module};")
        # As root, nginx's workers would switch to `nobody`; keep them the current user.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(f"""
daemon off;
master_process on;
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    {' '.join(temp)}
    include {prefix}/hloserve.conf;
}}
""")
        self.proc = subprocess.Popen([exe, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                      "-e", str(prefix / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.time() + 15
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: " + self.proc.stderr.read().decode(errors="replace")
                                   + self.error_log())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening:\n" + self.error_log())

    def error_log(self) -> str:
        p = self.prefix / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()

    def request(self, method, path, body=None, headers=None, conn=None):
        return U.Server.request(self, method, path, body, headers, conn)

    def conn(self, timeout=60.0):
        import http.client
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def infer(self, model, inputs, **kw):
        return U.Server.infer(self, model, inputs, **kw)


def served(server) -> float:
    return U.metric_value(server.metrics(), "hloserve_requests_total",
                          'model="tiny",code="200"') or 0


def test_nginx_balances_and_survives_a_killed_instance(nginx_bin, hloserve, repo, tmp_path):
    a = U.Server(hloserve, repo, "--threads", "2", log=tmp_path / "a.log")
    b = U.Server(hloserve, repo, "--threads", "2", log=tmp_path / "b.log")
    ngx = None
    try:
        ngx = Nginx(nginx_bin, tmp_path / "nginx", free_port(), [a.port, b.port])
        want_y, want_s = U.tiny_reference(X2)

        # both instances serve, through one address
        assert json.loads(ngx.request("GET", "/v2/health/ready")[2]) == {"ready": True}
        for i in range(20):
            st, r = ngx.infer("tiny", [("x", X2)], binary=i % 2 == 1)
            assert st == 200, r
            assert np.array_equal(r["arrays"]["y"], want_y) and np.array_equal(r["arrays"]["s"], want_s)
        assert served(a) >= 5 and served(b) >= 5, (served(a), served(b))
        # errors pass through unchanged (not retried: they are answers)
        st, _, data = ngx.request("GET", "/v2/models/nonexistent/ready")
        assert st == 404 and "unknown model" in json.loads(data)["error"]

        # two slow requests in flight, one on each instance; then instance a dies
        results = {}

        def slow(key):
            results[key] = ngx.infer("slow", U.meta_inputs(X2, ms=1500))
        threads = [threading.Thread(target=slow, args=(k,)) for k in ("s1", "s2")]
        for t in threads:
            t.start()
        end = time.time() + 10
        while time.time() < end and not all(
                U.metric_value(s.metrics(), "hloserve_running_requests") for s in (a, b)):
            time.sleep(0.01)
        # round robin: one on each (so one is cut off mid-run)
        assert all(U.metric_value(s.metrics(), "hloserve_running_requests") for s in (a, b))
        a.proc.kill()  # SIGKILL: no drain, connections reset
        a.proc.wait()
        b_before = served(b)

        # every later request succeeds through b
        for i in range(30):
            st, r = ngx.infer("tiny", [("x", X2)], binary=i % 2 == 0)
            assert st == 200, (i, r)
            assert np.array_equal(r["arrays"]["y"], want_y)
            assert ngx.request("GET", "/v2/health/ready")[0] == 200
        for t in threads:
            t.join(30)
        # the request that was running on a was resent to b (POST retried: non_idempotent)
        assert results["s1"][0] == 200 and results["s2"][0] == 200, results
        assert served(b) - b_before >= 30
        log = ngx.error_log()
        assert "Connection refused" in log, log[-2000:]  # later requests tried a first
        assert "prematurely closed" in log or "reset by peer" in log, log[-2000:]  # in flight
    finally:
        if ngx:
            ngx.stop()
        a.stop()
        assert b.stop() == 0
