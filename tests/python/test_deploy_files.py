"""deploy/: the files that cannot run here (no docker, no Kubernetes on the test machine) are at
least checked: the KServe manifests parse as YAML and name port 8000 and the health endpoints,
every `hloserve` option they and the Dockerfile pass is one `hloserve serve` accepts, and the
Dockerfile builds with the project's own setup script. The nginx configuration is exercised for
real by test_nginx.py.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path


import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_util as U  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def load_all(name: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all((DEPLOY / "kserve" / name).read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)
    return docs


def serving_containers() -> list[dict]:
    """The hloserve containers of every manifest (InferenceService predictors and runtimes)."""
    out = []
    for name in ("inferenceservice.yaml", "servingruntime.yaml"):
        for doc in load_all(name):
            if doc["kind"] == "InferenceService":
                out += doc["spec"]["predictor"].get("containers", [])
            elif doc["kind"] == "ServingRuntime":
                out += doc["spec"]["containers"]
    return out


def serve_options(hloserve: Path) -> set[str]:
    help_text = subprocess.run([str(hloserve), "serve", "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    return set(re.findall(r"(?:^\s+|^usage: hloserve serve )(--[a-z0-9-]+)", help_text, re.M))


def test_manifests_parse_and_name_kinds():
    kinds = [(d["apiVersion"], d["kind"]) for d in load_all("inferenceservice.yaml")]
    assert kinds == [("serving.kserve.io/v1beta1", "InferenceService")]
    kinds = [(d["apiVersion"], d["kind"]) for d in load_all("servingruntime.yaml")]
    assert kinds == [("serving.kserve.io/v1alpha1", "ServingRuntime"),
                     ("serving.kserve.io/v1beta1", "InferenceService")]
    runtime, isvc = load_all("servingruntime.yaml")
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    formats = [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] in formats
    assert runtime["spec"]["protocolVersions"] == ["v2"]


def test_containers_port_probes_resources():
    containers = serving_containers()
    assert len(containers) == 2
    for c in containers:
        assert c["name"] == "kserve-container"
        assert [(p["containerPort"], p["protocol"]) for p in c["ports"]] == [(8000, "TCP")]
        args = c["args"]
        assert args[0] == "serve"
        assert args[args.index("--http-port") + 1] == "8000"
        assert args[args.index("--host") + 1] == "0.0.0.0"
        assert args[args.index("--model-repository") + 1] == "/mnt/models"
        assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8000}
        assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8000}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind])
        # worker threads follow the CPU limit, not the node's CPU count
        assert args[args.index("--threads") + 1] == str(c["resources"]["limits"]["cpu"])


def test_inferenceservice_mounts_the_model_repository():
    (isvc,) = load_all("inferenceservice.yaml")
    pred = isvc["spec"]["predictor"]
    (c,) = pred["containers"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pred["volumes"]}
    assert mounts["models"]["mountPath"] == "/mnt/models" and mounts["models"]["readOnly"] is True
    assert "persistentVolumeClaim" in volumes["models"]
    cache = c["args"][c["args"].index("--meta-cache") + 1]
    assert mounts["meta-cache"]["mountPath"] == cache and "emptyDir" in volumes["meta-cache"]


def dockerfile_cmd() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("CMD ")]
    return yaml.safe_load(line[4:])  # a JSON array


def test_dockerfile():
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms == ["debian:12", "debian:12"]
    assert "scripts/setup_system.sh" in text and "cmake --build" in text
    assert (REPO / "scripts" / "setup_system.sh").exists()
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["hloserve"\]$', text, re.M)
    cmd = dockerfile_cmd()
    assert cmd[0] == "serve"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--model-repository") + 1] == "/models"
    assert cmd[cmd.index("--http-port") + 1] == "8000"
    assert (DEPLOY / "Dockerfile.dockerignore").exists()


def test_every_option_passed_is_one_serve_accepts(build_dir, tmp_path):
    """The command lines of the Dockerfile and the manifests start a real server (on loopback:
    the listen address, port, repository and cache are swapped for local ones)."""
    hloserve = Path(build_dir) / "hloserve"
    if not hloserve.exists():
        pytest.skip(f"{hloserve} is not built (set HS_BUILD_DIR)")
    known = serve_options(hloserve)
    assert {"--host", "--max-connections", "--header-timeout"} <= known
    lines = [dockerfile_cmd()] + [c["args"] for c in serving_containers()]
    unknown = sorted({a for args in lines for a in args if a.startswith("--")} - known)
    assert not unknown, unknown
    repo = tmp_path / "models"
    U.write_tiny_dense(repo, "tiny", rows=(2,))
    swap = {"0.0.0.0": "127.0.0.1", "8000": "0", "/models": str(repo), "/mnt/models": str(repo)}
    for i, args in enumerate(lines):
        args = [swap.get(a, a) for a in args]
        cache = args.index("--meta-cache") + 1
        args[cache] = str(tmp_path / "cache")
        with U.Server(hloserve, repo, *args[1:], log=tmp_path / f"s{i}.log") as s:
            assert s.get_json("/v2/models/tiny/ready")[0] == 200, shlex.join(args)
            assert s.stop() == 0


def test_nginx_conf_shape():
    text = (DEPLOY / "nginx" / "hloserve.conf").read_text()
    code = "\n".join(ln.split("#", 1)[0] for ln in text.splitlines())
    assert re.search(r"upstream hloserve \{", code)
    servers = re.findall(r"^\s*server (127\.0\.0\.1:\d+) (.*);", code, re.M)
    assert [s[0] for s in servers] == ["127.0.0.1:8001", "127.0.0.1:8002"]
    assert all("max_fails=" in s[1] and "fail_timeout=" in s[1] for s in servers)
    assert re.search(r"listen 127\.0\.0\.1:8000;", code)
    assert re.search(r"proxy_pass http://hloserve;", code)
    nu = re.search(r"proxy_next_upstream ([^;]+);", code).group(1).split()
    assert {"error", "timeout", "http_503", "non_idempotent"} <= set(nu) and "http_504" not in nu
