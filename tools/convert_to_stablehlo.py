#!/usr/bin/env python3
"""Converts models to hloserve bundles, driven by a YAML config (docs/converter.md).

    tools/convert_to_stablehlo.py CONFIG.yaml [--only NAME ...] [--dry-run] [--force]

Design:
- Two phases. Phase one reads the config, loads every handler file it names and calls each
  selected model's handler `plan(model, options, ctx)`, which validates the options without
  importing torch. Any problem in phase one is reported (all of them, each naming the model, the
  option and what is wrong) before any work starts, and the run exits with status 2. --dry-run
  stops after phase one and prints what a real run would do; it never imports torch.
- Phase two builds the models that are not up to date. A model is up to date when each of its
  bundles is complete on disk (docs/bundles.md) and carries the fingerprint of the handler
  source and options that made it; --force rebuilds anyway. Each bundle is written into a hidden
  temporary folder beside its final place and renamed into place only when all of the model's
  bundles are complete, so a failed or interrupted run never leaves a half bundle.
- Relative paths in the config (file:, output_root, weights when a path, and any option whose
  key ends in _dir or _path) resolve against the config file's folder, not the working directory.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))

from hloserve_export import api, bundle  # noqa: E402  (light: no torch)

EXIT_CONFIG = 2
EXIT_BUILD = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TOP_KEYS = {"output_root", "handlers"}
_ENTRY_KEYS = {"file", "models", "options"}


class _Model:
    def __init__(self, name, handler_file, handler_mod, handler_hash, options):
        self.name = name
        self.handler_file = handler_file
        self.handler = handler_mod
        self.handler_hash = handler_hash
        self.options = options
        self.plan: api.ModelPlan | None = None
        self.fingerprint = ""


def _resolve(base: Path, value) -> Path:
    p = Path(os.path.expanduser(str(value)))
    return Path(os.path.normpath(p if p.is_absolute() else (base / p)))


def _resolve_options(base: Path, options: dict) -> dict:
    out = dict(options)
    for key, value in options.items():
        if not isinstance(value, str) or not value:
            continue
        if key == "weights":
            if value.upper() != "DEFAULT" and value.lower() != "none":
                out[key] = str(_resolve(base, value))
        elif key.endswith("_dir") or key.endswith("_path"):
            out[key] = str(_resolve(base, value))
    return out


def _load_handler(path: Path, cache: dict):
    """Imports a handler file once; returns (module, sha256 of its source)."""
    key = str(path.resolve())
    if key in cache:
        return cache[key]
    source = path.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    mod_name = "hloserve_handler_" + hashlib.sha1(key.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise api.ConfigError(f"handler {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[mod_name]
        raise api.ConfigError(f"handler {path} failed to load: {type(e).__name__}: {e}") from None
    if not callable(getattr(module, "plan", None)):
        raise api.ConfigError(f"handler {path} has no plan(model, options, ctx) function")
    cache[key] = (module, digest)
    return cache[key]


def load_config(config_path: Path) -> tuple[Path, list[_Model]]:
    """Parses and checks the config; loads the handlers. Raises ConfigError."""
    import yaml

    try:
        text = config_path.read_text()
    except OSError as e:
        raise api.ConfigError(f"cannot read config {config_path}: {e.strerror or e}") from None
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise api.ConfigError(f"{config_path} is not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise api.ConfigError(f"{config_path}: the config must be a mapping with output_root "
                              "and handlers")
    unknown = sorted(set(map(str, cfg)) - _TOP_KEYS)
    if unknown:
        raise api.ConfigError(f"{config_path}: unknown top-level key(s) {', '.join(unknown)} "
                              f"(known: output_root, handlers)")
    base = config_path.resolve().parent
    root = cfg.get("output_root")
    if not isinstance(root, str) or not root:
        raise api.ConfigError(f"{config_path}: output_root must be a path")
    output_root = _resolve(base, root)
    entries = cfg.get("handlers")
    if not isinstance(entries, list) or not entries:
        raise api.ConfigError(f"{config_path}: handlers must be a non-empty list")

    cache: dict = {}
    models: list[_Model] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"{config_path}: handlers[{i}]"
        if not isinstance(entry, dict):
            raise api.ConfigError(f"{where} must be a mapping with file, models and options")
        unknown = sorted(set(map(str, entry)) - _ENTRY_KEYS)
        if unknown:
            raise api.ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                                  "(known: file, models, options)")
        f = entry.get("file")
        if not isinstance(f, str) or not f:
            raise api.ConfigError(f"{where}: file must be the path of a handler .py file")
        hpath = _resolve(base, f)
        if not hpath.is_file():
            raise api.ConfigError(f"{where}: handler file {hpath} does not exist")
        names = entry.get("models")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise api.ConfigError(f"{where}: models must be a non-empty list of names")
        options = entry.get("options") or {}
        if not isinstance(options, dict):
            raise api.ConfigError(f"{where}: options must be a mapping")
        if any(not isinstance(k, str) for k in options):
            raise api.ConfigError(f"{where}: option names must be strings")
        module, digest = _load_handler(hpath, cache)
        for name in names:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise api.ConfigError(f"{where}: model name {name!r} is not a valid folder name "
                                      "(letters, digits, _ . -; not starting with . or -)")
            if name in seen:
                raise api.ConfigError(f"{where}: model {name} is already defined in "
                                      f"handlers[{seen[name]}]")
            seen[name] = i
            models.append(_Model(name, hpath, module, digest, _resolve_options(base, options)))
    return output_root, models


def plan_models(models: list[_Model], ctx: api.HandlerContext) -> list[str]:
    """Calls each handler's plan(); returns the error messages (empty when all is well)."""
    errors = []
    owners: dict[str, str] = {}
    for m in models:
        try:
            p = m.handler.plan(m.name, dict(m.options), ctx)
        except api.OptionError as e:
            errors.append(f"model '{m.name}': option '{e.option}': {e.problem}")
            continue
        except Exception as e:
            errors.append(f"model '{m.name}': handler {m.handler_file.name} failed in plan(): "
                          f"{type(e).__name__}: {e}")
            continue
        if not isinstance(p, api.ModelPlan) or not p.bundles:
            errors.append(f"model '{m.name}': handler {m.handler_file.name} plan() did not "
                          "return a ModelPlan with bundles")
            continue
        bad = [b for b in p.bundles if not isinstance(b, str) or not _NAME_RE.match(b)]
        if bad:
            errors.append(f"model '{m.name}': bundle name {bad[0]!r} is not a valid folder name")
            continue
        for b in p.bundles:
            if b in owners:
                errors.append(f"model '{m.name}': bundle {b} is also written by model "
                              f"'{owners[b]}'")
            owners[b] = m.name
        m.plan = p
        stamp = {"handler_sha256": m.handler_hash, "fingerprint": p.fingerprint}
        m.fingerprint = hashlib.sha256(
            json.dumps(stamp, sort_keys=True, default=str).encode()).hexdigest()
    return errors


def model_status(m: _Model, output_root: Path) -> tuple[bool, str]:
    """(up to date?, why not)."""
    for b in m.plan.bundles:
        manifest, why = bundle.read_complete(output_root / b)
        if manifest is None:
            return False, f"{b}: {why}"
        if (manifest.get("converter") or {}).get("fingerprint") != m.fingerprint:
            return False, f"{b}: built from other options or handler code"
    return True, ""


def _stamp_manifest(folder: Path, m: _Model) -> None:
    """Records where the bundle came from (for up-to-date checks) in its bundle.json."""
    path = folder / bundle.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["converter"] = {
        "model": m.name,
        "handler": m.handler_file.name,
        "fingerprint": m.fingerprint,
    }
    bundle.write_json(path, manifest)


def build_model(m: _Model, output_root: Path, log) -> None:
    output_root.mkdir(parents=True, exist_ok=True)
    tmp = {}
    for b in m.plan.bundles:
        for stale in output_root.glob(f".tmp-{b}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp[b] = output_root / f".tmp-{b}-{os.getpid()}"
        tmp[b].mkdir()
    try:
        m.plan.build(dict(tmp))
        for b, d in tmp.items():
            manifest, why = bundle.read_complete(d)
            if manifest is None:
                raise api.BuildError(f"handler left bundle {b} incomplete ({why})")
            _stamp_manifest(d, m)
        for b, d in tmp.items():
            bundle.install(d, output_root / b)
    finally:
        for d in tmp.values():
            if d.exists():
                shutil.rmtree(d, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="convert_to_stablehlo.py",
        description="Convert models to hloserve bundles (StableHLO dense bundles and meta "
                    "bundles), driven by a YAML config.")
    ap.add_argument("config", type=Path, help="the YAML config")
    ap.add_argument("--only", nargs="+", metavar="NAME", action="extend", default=None,
                    help="convert only these models")
    ap.add_argument("--dry-run", action="store_true",
                    help="validate the config and load the handlers, without importing torch")
    ap.add_argument("--force", action="store_true", help="rebuild bundles that are up to date")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    def fail(msgs: list[str]) -> int:
        for msg in msgs:
            print(f"error: {msg}", file=sys.stderr)
        return EXIT_CONFIG

    try:
        output_root, models = load_config(args.config)
    except api.ConfigError as e:
        return fail([str(e)])
    if args.only:
        known = {m.name for m in models}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            return fail([f"--only: no model named {n} in {args.config} (models: "
                         f"{', '.join(sorted(known))})" for n in unknown])
        models = [m for m in models if m.name in set(args.only)]

    ctx = api.HandlerContext(config_dir=args.config.resolve().parent, output_root=output_root,
                             log=log)
    errors = plan_models(models, ctx)
    if errors:
        return fail(errors)

    if args.dry_run:
        for m in models:
            ok, why = model_status(m, output_root)
            if ok:
                state = "would rebuild (--force)" if args.force else "up to date"
            else:
                state = f"would build ({why})"
            log(f"{m.name}: {m.plan.summary}")
            log(f"  bundles: {', '.join(m.plan.bundles)} -> {output_root}")
            log(f"  {state}")
        log(f"dry run: config OK, {len(models)} model(s)")
        return 0

    failed = 0
    for m in models:
        ok, why = model_status(m, output_root)
        if ok and not args.force:
            log(f"{m.name}: up to date ({', '.join(m.plan.bundles)})")
            continue
        log(f"{m.name}: building ({m.plan.summary}){'' if ok else f'; {why}'}")
        t0 = time.monotonic()
        try:
            build_model(m, output_root, log)
        except api.BuildError as e:
            where = f"option '{e.option}': " if e.option else ""
            print(f"error: model '{m.name}': {where}{e.problem}", file=sys.stderr)
            failed += 1
            continue
        except KeyboardInterrupt:
            print(f"error: model '{m.name}': interrupted; no bundle was changed",
                  file=sys.stderr)
            return 130
        except Exception as e:
            traceback.print_exc()
            print(f"error: model '{m.name}': conversion failed: {type(e).__name__}: {e}",
                  file=sys.stderr)
            failed += 1
            continue
        log(f"{m.name}: wrote {', '.join(m.plan.bundles)} in {time.monotonic() - t0:.1f} s")
    return EXIT_BUILD if failed else 0


if __name__ == "__main__":
    sys.exit(main())
