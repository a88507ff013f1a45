"""Shared Python code for tools/convert_to_stablehlo.py and its handlers.

Modules that the converter imports on every run (`api`, `bundle`, `pth`) never import torch or
jax, so `--dry-run` stays fast; `lower` (torch.export -> StableHLO) imports them lazily and is
only loaded by a handler's build step.
"""
