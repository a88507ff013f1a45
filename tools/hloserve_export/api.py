"""The handler API: what a handler file receives and returns (documented in docs/converter.md).

A handler is a Python file with one entry point, `plan(model, options, ctx) -> ModelPlan`. The
converter calls it for every selected model, in dry runs too, before any work is done, so `plan`
must validate every option and must not import torch. The heavy work sits behind the returned
plan's `build` callable, which the converter calls only in a real run, with a fresh temporary
folder per bundle. Splitting validation from building is what lets a bad option fail in well under
a second with a message that names the model and the option, instead of after a minute of torch.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping


class ConfigError(Exception):
    """A problem with the config as a whole (not tied to one option)."""


class OptionError(Exception):
    """A bad option value. `plan` raises it; the converter adds the model name."""

    def __init__(self, option: str, problem: str):
        super().__init__(f"option '{option}': {problem}")
        self.option = option
        self.problem = problem


class BuildError(Exception):
    """A failure while building bundles that is the user's to fix (missing weights, bad file)."""

    def __init__(self, problem: str, option: str | None = None):
        super().__init__(f"option '{option}': {problem}" if option else problem)
        self.option = option
        self.problem = problem


@dataclasses.dataclass
class HandlerContext:
    """What the converter tells a handler about the run."""

    config_dir: Path          # the config file's folder; relative paths were resolved against it
    output_root: Path         # where bundles end up (build writes to temporary folders instead)
    log: Callable[[str], None] = print


@dataclasses.dataclass
class ModelPlan:
    """What `plan` returns for one model.

    bundles: the bundle (folder) names this model produces, in build order.
    build: build(dirs) writes each bundle into dirs[name] (an empty temporary folder); the
        converter renames the folders into place only after build returns and every bundle is
        complete. It may raise BuildError for problems the user must fix.
    fingerprint: JSON-serialisable description of everything the bundles depend on (normalised
        options, the weights file's size and mtime...). A complete bundle whose stored
        fingerprint matches is up to date; any change rebuilds it.
    summary: one line for the converter's report, e.g. "resnet50_fpn, weights none, 640x640".
    """

    bundles: list[str]
    build: Callable[[Mapping[str, Path]], None]
    fingerprint: Any
    summary: str = ""


# ---- option helpers: small checks shared by handlers -------------------------------------------

def take_int(options: dict, key: str, default: int, *, minimum: int | None = None,
             maximum: int | None = None) -> int:
    v = options.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise OptionError(key, f"must be an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise OptionError(key, f"must be at least {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise OptionError(key, f"must be at most {maximum}, got {v}")
    return v


def take_float(options: dict, key: str, default: float | None, *, minimum: float | None = None,
               maximum: float | None = None) -> float | None:
    v = options.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise OptionError(key, f"must be a number, got {v!r}")
    v = float(v)
    if v != v:
        raise OptionError(key, "must be a number, got NaN")
    if minimum is not None and v < minimum:
        raise OptionError(key, f"must be at least {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise OptionError(key, f"must be at most {maximum}, got {v}")
    return v


def take_choice(options: dict, key: str, default: str, choices: list[str]) -> str:
    v = options.get(key, default)
    if not isinstance(v, str) or v not in choices:
        raise OptionError(key, f"must be one of {', '.join(choices)}; got {v!r}")
    return v


def file_stamp(path: Path) -> dict:
    """Size and mtime of a file: cheap enough for dry runs, and changes when the file does."""
    st = os.stat(path)
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
