"""Shared pytest fixtures for hloserve's Python tests (run with .venv/bin/pytest tests/python).

Keep this small and generic: fixtures that more than one test file needs. Markers:
  slow  - long-running (deselect with -m "not slow")
"""
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (deselect with -m 'not slow')")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding CMakeLists.txt)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def venv_python() -> str:
    """The interpreter running the tests (the project venv's python when run from .venv)."""
    return sys.executable


@pytest.fixture(scope="session")
def build_dir() -> Path:
    """The CMake build folder to test against: $HS_BUILD_DIR, else <repo>/build."""
    return Path(os.environ.get("HS_BUILD_DIR", REPO_ROOT / "build"))


def _built(build_dir: Path, name: str) -> Path:
    exe = Path(build_dir) / name
    if not exe.exists():
        pytest.skip(f"{exe} is not built (set HS_BUILD_DIR)")
    return exe


@pytest.fixture(scope="session")
def hloserve(build_dir) -> Path:
    """The built `hloserve` executable (the test is skipped when it is not built)."""
    return _built(build_dir, "hloserve")


@pytest.fixture(scope="session")
def detect(build_dir) -> Path:
    """The built `hloserve-detect` client."""
    return _built(build_dir, "hloserve-detect")
