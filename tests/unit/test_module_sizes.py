"""Size rules of the architecture (ARCHITECTURE.md): no module in pyinit/ over 400
lines, no class over 300. ruff checks function complexity (C90, PLR0912, PLR0915);
this checks what ruff cannot."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pyinit"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 300
MODULES = sorted(PACKAGE.rglob("*.py"))


def oversized(text: str) -> list[str]:
    """What in a module's source breaks the size rules."""
    found = []
    lines = text.count("\n")
    if lines > MAX_MODULE_LINES:
        found.append(f"{lines} lines (limit {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if size > MAX_CLASS_LINES:
                found.append(f"class {node.name}: {size} lines (limit {MAX_CLASS_LINES})")
    return found


def test_the_package_is_found() -> None:
    assert len(MODULES) > 20


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_class_sizes(path: Path) -> None:
    assert oversized(path.read_text()) == []


def test_the_checker_catches_big_modules_and_classes() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_CLASS_LINES))
    assert oversized(f"class Big:\n{body}\n") == [
        f"class Big: {MAX_CLASS_LINES + 1} lines (limit {MAX_CLASS_LINES})"
    ]
    assert oversized("x = 1\n" * (MAX_MODULE_LINES + 1)) == [
        f"{MAX_MODULE_LINES + 1} lines (limit {MAX_MODULE_LINES})"
    ]
    assert oversized("class Small:\n    x = 1\n") == []
