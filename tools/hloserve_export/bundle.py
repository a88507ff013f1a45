"""Bundle folders: writing manifests, checking completeness, installing atomically.

The format itself is documented in docs/bundles.md; this module is its one writer on the Python
side. Design points:
- bundle.json is written last by the handler and lists every file of the bundle, so "complete"
  means: the manifest parses, has a known format_version, and every file it names exists. The
  converter never installs an incomplete folder, and treats one on disk as missing.
- Bundles are built in a hidden temporary folder beside their final place (same filesystem) and
  renamed into place, so readers never see half a bundle, and an interrupted run leaves at most a
  '.tmp-*' folder that the next run removes.
- JSON is written deterministically (fixed key order, no timestamps) so that converting the same
  model twice gives byte-identical bundles.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "bundle.json"
WEIGHTS_FILE = "weights.safetensors"

# numpy dtype name -> KServe v2 datatype name (the names the manifest and the wire use)
_KSERVE = {
    "bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "float16": "FP16", "bfloat16": "BF16", "float32": "FP32", "float64": "FP64",
}


def kserve_dtype(dtype) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    try:
        return _KSERVE[name]
    except KeyError:
        raise ValueError(f"dtype {name} has no KServe v2 name") from None


def tensor_spec(name: str, dtype, shape) -> dict:
    return {"name": name, "datatype": kserve_dtype(dtype), "shape": [int(d) for d in shape]}


def merged_shape(shapes: list[list[int]]) -> list[int]:
    """One shape for a tensor across programs: dims that differ become -1."""
    first = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(first):
            raise ValueError("programs disagree on a tensor's rank")
        first = [a if a == b else -1 for a, b in zip(first, s)]
    return first


def _dumps(obj, indent: int) -> str:
    """json.dumps with 2-space nesting, but a list of scalars (a shape, a box) on one line."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in obj):
            return "[" + ", ".join(json.dumps(v, allow_nan=False) for v in obj) + "]"
        if all(isinstance(v, (list, tuple)) and
               all(not isinstance(x, (dict, list, tuple)) for x in v) for v in obj) \
                and sum(len(v) for v in obj) <= 16:
            return "[" + ", ".join(_dumps(v, 0) for v in obj) + "]"
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def write_json(path: Path, obj) -> None:
    Path(path).write_text(_dumps(obj, 0) + "\n")


def write_dense_bundle(folder: Path, *, name: str, programs: list[dict], params: list[str],
                       weights: dict, extra: dict | None = None) -> dict:
    """Writes a dense bundle into `folder` (an existing empty folder).

    programs: [{"file": "model.mlir", "text": MLIR text,
                "inputs": [tensor_spec...], "outputs": [tensor_spec...]}, ...]; every program
              has the same input and output names, dtypes and order (shapes may differ).
    params: safetensors keys bound, in order, to @main's leading parameters (shared by all).
    weights: {key: numpy array} (exactly the keys in params).
    Returns the manifest it wrote.
    """
    from safetensors.numpy import save_file  # numpy only; no torch

    folder = Path(folder)
    if not programs:
        raise ValueError("a dense bundle needs at least one program")
    if sorted(params) != sorted(weights) or len(set(params)) != len(params):
        raise ValueError("weights and params disagree")
    sig = [(t["name"], t["datatype"]) for t in programs[0]["inputs"]], \
          [(t["name"], t["datatype"]) for t in programs[0]["outputs"]]
    for p in programs[1:]:
        if ([(t["name"], t["datatype"]) for t in p["inputs"]],
                [(t["name"], t["datatype"]) for t in p["outputs"]]) != sig:
            raise ValueError("programs of one bundle must share input/output names and dtypes")

    def merged(kind):
        out = []
        for i, t in enumerate(programs[0][kind]):
            out.append({"name": t["name"], "datatype": t["datatype"],
                        "shape": merged_shape([p[kind][i]["shape"] for p in programs])})
        return out

    for p in programs:
        (folder / p["file"]).write_text(p["text"])
    if weights:
        save_file(weights, str(folder / WEIGHTS_FILE))
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "dense",
        "name": name,
        "inputs": merged("inputs"),
        "outputs": merged("outputs"),
        "weights": {"file": WEIGHTS_FILE if weights else None, "params": list(params)},
        "programs": [
            {"file": p["file"],
             "input_shapes": [t["shape"] for t in p["inputs"]],
             "output_shapes": [t["shape"] for t in p["outputs"]]}
            for p in programs
        ],
    }
    if extra:
        manifest.update(extra)
    write_json(folder / MANIFEST, manifest)
    return manifest


def write_meta_bundle(folder: Path, *, name: str, group: list[str], inputs: list[dict],
                      outputs: list[dict], source_file: str, source_text: str, config: dict,
                      extra: dict | None = None) -> dict:
    folder = Path(folder)
    (folder / source_file).write_text(source_text)
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "meta",
        "name": name,
        "group": list(group),
        "inputs": inputs,
        "outputs": outputs,
        "source": source_file,
        "config": config,
    }
    if extra:
        manifest.update(extra)
    write_json(folder / MANIFEST, manifest)
    return manifest


def manifest_files(manifest: dict) -> list[str]:
    """Every file a manifest names (relative to the bundle folder)."""
    files = [MANIFEST]
    if manifest.get("kind") == "dense":
        w = manifest.get("weights") or {}
        if w.get("file"):
            files.append(w["file"])
        files += [p["file"] for p in manifest.get("programs", [])]
    elif manifest.get("kind") == "meta":
        files.append(manifest["source"])
    return files


def read_complete(folder: Path) -> tuple[dict | None, str]:
    """(manifest, "") when `folder` holds a complete bundle, else (None, why not)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        return None, "missing"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"no {MANIFEST}"
    except (OSError, ValueError) as e:
        return None, f"unreadable {MANIFEST} ({e})"
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        return None, "unknown format_version"
    if manifest.get("kind") not in ("dense", "meta"):
        return None, "unknown kind"
    try:
        files = manifest_files(manifest)
    except (KeyError, TypeError):
        return None, "malformed manifest"
    for f in files:
        if not isinstance(f, str) or "/" in f or f.startswith(".") or not (folder / f).is_file():
            return None, f"missing file {f}"
    return manifest, ""


def install(tmp: Path, final: Path) -> None:
    """Moves a finished bundle folder into place, replacing any old one.

    Each rename is atomic; between the two, the old bundle sits under a hidden name, so a crash
    there loses the old bundle but never exposes a half-written one."""
    tmp, final = Path(tmp), Path(final)
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
