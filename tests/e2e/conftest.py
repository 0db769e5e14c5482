"""Fixtures of the end-to-end tests (the shared library is tests/helpers/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of pyinit and of its clients: the runtime dir in tmp_path."""
    return {**os.environ, "PYINIT_RUNTIME_DIR": str(tmp_path / "run")}
