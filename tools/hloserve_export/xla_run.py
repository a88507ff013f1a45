"""Runs StableHLO MLIR text, or a whole dense bundle, on XLA's CPU backend through jaxlib.

This is the reference the converter's tests (and anyone checking hloserve's own runtime) compare
against: it compiles exactly the text a bundle holds, binds weights.safetensors to @main's leading
parameters as bundle.json says, and returns the outputs as numpy arrays. It uses jax's backend
client directly (compile_and_load on the MLIR text) because no public jax API takes MLIR text.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def compile_text(text: str):
    import jax
    import jax.extend.backend
    from jax._src.lib import xla_client as xc

    backend = jax.extend.backend.get_backend("cpu")
    devices = xc.DeviceList(tuple(backend.local_devices()[:1]))
    return backend.compile_and_load(text, executable_devices=devices,
                                    compile_options=xc.CompileOptions())


def run_text(text: str, args: list) -> list[np.ndarray]:
    """Compiles `text` and calls @main with `args` (numpy arrays, in parameter order)."""
    import jax

    exe = compile_text(text)
    device = exe.local_devices()[0]
    bufs = [jax.device_put(np.ascontiguousarray(a), device) for a in args]
    outs = exe.execute(bufs)
    return [np.asarray(o) for o in outs]


def load_weights(bundle_dir: Path) -> tuple[dict, list[np.ndarray]]:
    from safetensors.numpy import load_file

    bundle_dir = Path(bundle_dir)
    manifest = json.loads((bundle_dir / "bundle.json").read_text())
    w = manifest["weights"]
    tensors = load_file(str(bundle_dir / w["file"])) if w.get("file") else {}
    return manifest, [tensors[k] for k in w["params"]]


def run_bundle(bundle_dir: Path, inputs: dict, program: int = 0) -> dict[str, np.ndarray]:
    """Runs program `program` of a dense bundle on {input name: array}; {output name: array}."""
    bundle_dir = Path(bundle_dir)
    manifest, weights = load_weights(bundle_dir)
    prog = manifest["programs"][program]
    args = list(weights) + [inputs[t["name"]] for t in manifest["inputs"]]
    outs = run_text((bundle_dir / prog["file"]).read_text(), args)
    return {t["name"]: o for t, o in zip(manifest["outputs"], outs)}
