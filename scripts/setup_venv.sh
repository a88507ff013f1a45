#!/usr/bin/env bash
# Creates (or reuses) the project's Python virtual environment at <repo>/.venv and installs
# requirements.txt into it.
#
# Design: the venv is expensive (torch brings ~3 GB of wheels), so the script is idempotent. After
# a successful install it writes .venv/.requirements.sha256, the hash of requirements.txt plus the
# interpreter version; a later run whose hash matches does nothing. A changed requirements file
# reinstalls into the same venv (pip only touches what changed). A venv left broken by an
# interrupted install has no stamp, so the next run simply installs again.
#
# Usage: scripts/setup_venv.sh [--force]      (HS_PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
req="$repo/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${HS_PYTHON:-python3}"

force=0
if [ "${1:-}" = "--force" ]; then force=1; fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup_venv: $python not found (set HS_PYTHON to a Python >= 3.11)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "setup_venv: $python is older than 3.11 (torchax needs 3.11+)" >&2
    exit 1
fi

want="$( { cat "$req"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

if [ $force -eq 0 ] && [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "setup_venv: $venv is up to date"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "setup_venv: creating $venv"
    "$python" -m venv "$venv"
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
"$venv/bin/python" -m pip install --disable-pip-version-check -r "$req"
# Fail here, not in the first test, if the set does not import together.
"$venv/bin/python" - <<'PY'
import torch, torchvision, torchax, jax, yaml, safetensors, numpy, pytest  # noqa: F401
print("setup_venv: torch", torch.__version__, "torchvision", torchvision.__version__,
      "torchax", torchax.__version__, "jax", jax.__version__)
PY
echo "$want" > "$stamp"
echo "setup_venv: $venv ready"
