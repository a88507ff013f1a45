"""torchvision's ResNet-50, exported with torch.export + torchax, runs on hloserve's runtime and
matches torch eager within 1e-4 relative (batch 1, 224x224 and 640x640; bench/bench_resnet50.py
times it)."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchax")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import bench_resnet50 as br  # noqa: E402


@pytest.mark.parametrize("size", [224, 640])
def test_resnet50_matches_torch_eager(tmp_path, size):
    model, x = br.export_resnet50(size, tmp_path / f"resnet50_{size}")
    with torch.no_grad():
        want = model(x).numpy().astype(np.float64)
    got, _ = br.run_ours(tmp_path / f"resnet50_{size}", threads=os.cpu_count() or 1, repeat=0)
    assert got.shape == want.shape
    assert br.rel_error(got, want) <= 1e-4
