#!/usr/bin/env python3
"""Soak of the fleet (issue 7): mixed good and bad load for a long time, no growth, nothing lost.

`hloserve serve --workers N` over small hand-written bundles (tests/python/server_util.py): the
tiny dense models, a test meta with a sub-call and scratch (`slow`, here without sleeping), and
`bomb`, a meta that aborts (MODE 1) or hangs (MODE 2) its worker. --clients threads send, at
random (seeded): good requests (JSON and binary, dense and meta), bad ones (malformed JSON, a
wrong shape, an unknown model, a body cut short); a fault thread crashes a worker (bomb MODE 1),
hangs one (MODE 2, with a deadline), or SIGKILLs one, every --fault-every-s seconds.

Every request must get an HTTP answer (a crash's in-flight requests get a clear 500/503, which
counts as an answer); a request with no answer on a fresh connection is "lost" (cut-short bodies
excepted: we close those ourselves). A request whose kept-alive connection the server had closed
for idleness is sent again once, as HTTP clients do ("stale_keepalive"). Every --sample-s the front end's and the workers' resident memory and open
file descriptors are read from /proc. Printed at the end: requests by kind and status, lost
requests, faults and restarts, and growth: the mean of the last third of the samples against
the first third (after the warm-up).

Usage: bench/soak_fleet.py [--minutes 30] [--workers 2] [--clients 6] [--sample-s 30]
                           [--fault-every-s 60] [--seed 1] [--pause-ms 0]
HS_BUILD_DIR selects the build (default build/).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "python"))
import server_util as U  # noqa: E402

X2 = np.arange(8, dtype=np.float32).reshape(2, 4)
X3 = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5


def build_dir() -> Path:
    return Path(os.environ.get("HS_BUILD_DIR", HERE.parent / "build")).resolve()


def proc_stats(pid: int):
    """(RSS KiB, open fds) of pid, or None when it is gone."""
    try:
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None


def worker_pids(s, workers: int) -> list[int]:
    """The workers' pids from /metrics ([] when /metrics did not answer: counted by the caller)."""
    try:
        text = s.metrics()
    except (OSError, http.client.HTTPException):
        return []
    return [int(U.metric_value(text, "hloserve_fleet_worker_pid", f'worker="{k}"') or 0)
            for k in range(workers)]


def make_repo(root: Path) -> Path:
    U.write_tiny_dense(root, "tiny", rows=(2, 3))
    U.write_tiny_int(root, "tiny_int")
    U.write_tiny_dense(root, "inner", rows=(2,))
    U.write_test_meta(root, "slow", "inner")
    U.write_bomb_meta(root)
    return root


def bomb_inputs(mode: int):
    return [("x", X2), ("MODE", np.array([mode], np.int32))]


class Client:
    """One keep-alive connection that reconnects after errors; records every outcome."""

    def __init__(self, port: int, rng: random.Random, tally: Counter, lock: threading.Lock):
        self.port, self.rng, self.tally, self.lock = port, rng, tally, lock
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return self.conn

    def _count(self, key):
        with self.lock:
            self.tally[key] += 1

    def send(self, kind: str, path: str, body: bytes, headers: dict):
        # A kept-alive connection may have been closed by the server's idle timeout
        # (--connection-timeout) while we did not use it: like any HTTP client, send again once on
        # a fresh connection when a reused one fails before any answer. A failure on a fresh
        # connection is a lost request.
        for attempt in range(2):
            reused = self.conn is not None
            try:
                c = self._conn()
                c.request("POST", path, body, headers)
                r = c.getresponse()
                r.read()
                self._count((kind, r.status))
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    self.conn = None
                return
            except (OSError, http.client.HTTPException) as e:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if reused and attempt == 0:
                    self._count(("stale_keepalive", "resent"))
                    continue
                self._count((kind, "lost:" + type(e).__name__))
                return

    def cut_short(self):
        """A body shorter than its Content-Length, then close: answered or not, never lost."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sk:
            sk.sendall(b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"inp")
        self._count(("cut_short", "sent"))

    def one(self):
        r = self.rng.random()
        if r < 0.25:
            body, h = U.infer_body([("x", X2)])
            self.send("tiny_json", "/v2/models/tiny/infer", body, h)
        elif r < 0.45:
            body, h = U.infer_body([("x", X3)], binary=True, params={"binary_data_output": True})
            self.send("tiny_binary", "/v2/models/tiny/infer", body, h)
        elif r < 0.55:
            body, h = U.infer_body([("x", np.array([-1, 0, 7], np.int32))])
            self.send("tiny_int", "/v2/models/tiny_int/infer", body, h)
        elif r < 0.67:
            body, h = U.infer_body(U.meta_inputs(X2))
            self.send("slow_meta", "/v2/models/slow/infer", body, h)
        elif r < 0.77:
            body, h = U.infer_body(bomb_inputs(0), binary=True)
            self.send("bomb_ok", "/v2/models/bomb/infer", body, h)
        elif r < 0.84:
            self.send("bad_json", "/v2/models/tiny/infer", b'{"inputs": [{"name": "x", "shap',
                      {"Content-Type": "application/json"})
        elif r < 0.91:
            body, h = U.infer_body([("x", np.zeros((2, 5), np.float32))])
            self.send("bad_shape", "/v2/models/tiny/infer", body, h)
        elif r < 0.97:
            body, h = U.infer_body([("x", X2)])
            self.send("unknown_model", "/v2/models/nope/infer", body, h)
        else:
            self.cut_short()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--sample-s", type=float, default=30)
    ap.add_argument("--fault-every-s", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pause-ms", type=float, default=0,
                    help="each client's pause between requests (0: as fast as it can)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soak-fleet-"))
    repo = make_repo(tmp / "repo")
    exe = build_dir() / "hloserve"
    tally, lock = Counter(), threading.Lock()
    faults = Counter()
    samples = []
    stop = threading.Event()
    with U.Server(exe, repo, "--workers", str(args.workers), "--threads", "2",
                  "--max-queue", "256", "--worker-hang-grace-ms", "300",
                  log=tmp / "server.log", start_timeout=120) as s:
        end = time.time() + args.minutes * 60

        def client(i):
            c = Client(s.port, random.Random(args.seed * 1000 + i), tally, lock)
            while not stop.is_set() and time.time() < end:
                c.one()
                if args.pause_ms > 0:
                    time.sleep(args.pause_ms / 1000)

        def fault_loop():
            rng = random.Random(args.seed)
            f = Client(s.port, rng, tally, lock)
            while not stop.wait(args.fault_every_s) and time.time() < end:
                what = rng.choice(["abort", "hang", "kill9"])
                faults[what] += 1
                if what == "abort":
                    body, h = U.infer_body(bomb_inputs(1))
                    f.send("fault_abort", "/v2/models/bomb/infer", body, h)
                elif what == "hang":
                    body, h = U.infer_body(bomb_inputs(2), params={"timeout": 1000})
                    f.send("fault_hang", "/v2/models/bomb/infer", body, h)
                else:
                    pids = [p for p in worker_pids(s, args.workers) if p]
                    if pids:
                        os.kill(rng.choice(pids), signal.SIGKILL)

        def sampler():
            while not stop.wait(args.sample_s) and time.time() < end:
                fe = proc_stats(s.proc.pid)
                pids = worker_pids(s, args.workers)
                if not pids:
                    faults["metrics_unanswered"] += 1
                ws = [proc_stats(p) for p in pids if p]
                samples.append((time.time(), fe, ws))
                print(f"  sample {len(samples)}: front end RSS {fe[0] / 1024:.1f} MiB, fds {fe[1]}; "
                      f"workers " + ", ".join(f"{w[0] / 1024:.1f} MiB/{w[1]} fds" for w in ws if w),
                      flush=True)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        threads += [threading.Thread(target=fault_loop), threading.Thread(target=sampler)]
        t0 = time.time()
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads[:args.clients]):
                time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join()
        elapsed = time.time() - t0
        restarts = U.metric_value(s.metrics(), "hloserve_fleet_worker_restarts_total")
        copied = U.metric_value(s.metrics(), "hloserve_fleet_channel_tensor_bytes_total")
        assert s.stop() == 0, s.log()[-3000:]

    total = sum(tally.values())
    lost = sum(n for (k, st), n in tally.items() if isinstance(st, str) and st.startswith("lost"))
    print(f"\nsoak: {elapsed / 60:.1f} min, {args.workers} workers, {args.clients} clients, "
          f"{total} requests ({total / elapsed:.0f}/s), lost {lost}")
    for (k, st), n in sorted(tally.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"  {k:14s} {str(st):24s} {n}")
    print(f"faults: {dict(faults)}; worker restarts {restarts:.0f}; tensor bytes through the "
          f"channel {copied:.0f}")
    if len(samples) >= 6:
        third = len(samples) // 3
        first, last = samples[1:1 + third], samples[-third:]  # skip the warm-up sample

        def mean(rows, f):
            return sum(f(r) for r in rows) / len(rows)

        for label, f in (("front end RSS MiB", lambda r: r[1][0] / 1024),
                         ("front end fds", lambda r: r[1][1]),
                         ("workers' RSS MiB (sum)", lambda r: sum(w[0] for w in r[2] if w) / 1024),
                         ("workers' fds (sum)", lambda r: sum(w[1] for w in r[2] if w))):
            a, b = mean(first, f), mean(last, f)
            print(f"growth {label}: first third {a:.1f}, last third {b:.1f} ({b - a:+.1f})")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
