"""torch.nn.Module -> StableHLO MLIR text with the weights kept out of the text.

Path: torch.export.export (a plain nn.Module, no torch.jit) -> torchax turns the exported graph
into a jax function of (weights, inputs) -> jax.export lowers it -> MLIR text.

Why this shape: torchax's exported_program_to_jax hands us the program as a function whose first
arguments are the exported program's parameters and buffers, so the weights arrive in @main as
leading parameters instead of multi-megabyte dense constants in the text. We keep their names
(the module's state_dict keys) so the bundle can bind safetensors entries to parameters by name.
jax.jit drops arguments the program never reads (e.g. BatchNorm's num_batches_tracked); we follow
Exported.module_kept_var_idx so the binding list matches @main exactly.

Constraints we check, because the C runtime relies on them:
- static shapes only, one device, no platform-index argument;
- no custom_call ops except those in ALLOWED_CUSTOM_CALLS (none so far: every op must be plain
  StableHLO that the runtime's kernels implement);
- jax runs without x64, so torch's int64 index math is lowered as int32; weight arrays are cast to
  the dtype @main declares.
"""
from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np

# custom_call targets the runtime can run without checks; anything else fails the conversion.
ALLOWED_CUSTOM_CALLS: frozenset = frozenset()


class LoweringError(Exception):
    pass


@dataclasses.dataclass
class Lowered:
    text: str                      # MLIR text of the module, @main public
    params: list[str]              # state keys bound to @main's leading parameters, in order
    weights: dict                  # {key: numpy array} for params, dtype as @main declares
    input_shapes: list[list[int]]
    input_dtypes: list[np.dtype]
    output_shapes: list[list[int]]
    output_dtypes: list[np.dtype]
    custom_calls: list[str]        # custom_call targets found in the text (always allowed ones)


def _strip_debug_info(text: str) -> str:
    """Reprints the module without loc(...) annotations: smaller, and identical across runs."""
    from jax._src.interpreters import mlir as jmlir
    from jax._src.lib.mlir import ir

    with jmlir.make_ir_context():
        module = ir.Module.parse(text)
        return module.operation.get_asm(enable_debug_info=False)


def custom_call_targets(text: str) -> list[str]:
    pretty = re.findall(r"stablehlo\.custom_call\s+@([\w.$-]+)", text)
    generic = re.findall(r"call_target_name\s*=\s*\"([^\"]+)\"", text)
    return sorted(set(pretty) | set(generic))


def export_module(module, example_inputs: tuple) -> Lowered:
    """Exports `module` (eval mode, no grad) at the example inputs' static shapes."""
    import jax
    import jax.export
    import torch
    import torchax.export
    from torchax.ops import mappings

    module = module.eval()
    with torch.no_grad():
        ep = torch.export.export(module, tuple(example_inputs), strict=False)
    with warnings.catch_warnings():
        # torch's int64 index arithmetic becomes int32 without jax x64; that is intended.
        warnings.filterwarnings("ignore", message=".*Explicitly requested dtype int64.*")
        torchax.default_env()  # registers torchax's aten lowerings (export_raw skips it)
        names, states, func = torchax.export.exported_program_to_jax(ep, export_raw=True)
        if len(names) != len(states):
            raise LoweringError(
                f"the exported program has {len(states) - len(names)} unnamed lifted constants; "
                "register them as buffers so they can be bound by name")

        def aval(t):
            return jax.ShapeDtypeStruct(tuple(t.shape), mappings.t2j_dtype(t.dtype))

        state_avals = [aval(t) for t in states]
        input_avals = tuple(aval(t) for t in example_inputs)
        exp = jax.export.export(jax.jit(func), platforms=["cpu"])(state_avals, input_avals)
        text = exp.mlir_module()

    if exp.nr_devices != 1:
        raise LoweringError("the program must run on one device")
    if exp.uses_global_constants or any(not isinstance(d, int) for a in exp.in_avals
                                        for d in a.shape):
        raise LoweringError("the program uses shape polymorphism; only static shapes are supported")
    if exp.ordered_effects or exp.unordered_effects:
        raise LoweringError("the program has side effects (callbacks); it must be pure")
    kept = list(exp.module_kept_var_idx)
    n_states = len(states)
    dropped_inputs = [i - n_states for i in range(n_states, n_states + len(input_avals))
                      if i not in kept]
    if dropped_inputs:
        raise LoweringError(f"inputs {dropped_inputs} are unused by the program")
    in_avals = list(exp.in_avals)  # every argument, kept or not
    if len(in_avals) != n_states + len(input_avals):
        raise LoweringError("jax.export's argument list does not match the program's")

    params, weights = [], {}
    for idx in kept:
        if idx >= n_states:
            break
        key = names[idx]
        arr = states[idx].detach().cpu().contiguous().numpy()
        want = np.dtype(in_avals[idx].dtype)
        if arr.dtype != want:
            arr = arr.astype(want)
        if list(arr.shape) != list(in_avals[idx].shape):
            raise LoweringError(f"weight {key} has shape {arr.shape}, @main wants "
                                f"{in_avals[idx].shape}")
        params.append(key)
        weights[key] = np.ascontiguousarray(arr)

    text = _strip_debug_info(text)
    calls = custom_call_targets(text)
    bad = [c for c in calls if c not in ALLOWED_CUSTOM_CALLS]
    if bad:
        raise LoweringError(f"the program contains custom_call ops the runtime cannot run: "
                            f"{', '.join(bad)}")
    if "func.func public @main" not in text:
        raise LoweringError("the lowered module has no public @main")

    return Lowered(
        text=text, params=params, weights=weights,
        input_shapes=[list(a.shape) for a in input_avals],
        input_dtypes=[np.dtype(a.dtype) for a in input_avals],
        output_shapes=[list(a.shape) for a in exp.out_avals],
        output_dtypes=[np.dtype(a.dtype) for a in exp.out_avals],
        custom_calls=calls)
