"""Every module of pyinit is placed in the import-linter layers contract
(pyproject.toml): a module left out would escape the layer check unseen."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def listed_in_layers() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    return {name for layer in layers for name in re.split(r"\s*[|:]\s*", layer.strip())}


def top_level_modules() -> set[str]:
    package = ROOT / "pyinit"
    found = {f"pyinit.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    found |= {f"pyinit.{p.parent.name}" for p in package.glob("*/__init__.py")}
    return found


def test_every_module_has_a_layer() -> None:
    assert top_level_modules() - listed_in_layers() == set()


def test_no_layer_names_a_module_that_is_gone() -> None:
    assert listed_in_layers() - top_level_modules() == set()
