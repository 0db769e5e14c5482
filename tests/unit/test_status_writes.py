"""The status file as the supervisor writes it (supervisor/status.py): the whole
snapshot as sorted JSON, rewritten when anything but an uptime changed, left
alone when only time went by. Driven through tests/helpers/fakesup.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pyinit.status import STATUS_FILE
from tests.unit.conftest import MakeFake

TWO = """
    services:
      db:
        command: ["db"]
      web:
        command: ["web"]
"""


def _status(tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "rt" / STATUS_FILE
    return os.stat(path).st_ino, path.read_text()  # each write renames a new file in


def _without_uptimes(doc: dict[str, Any]) -> dict[str, Any]:
    for entry in doc["services"].values():
        assert entry["uptime"] is None or entry["uptime"] >= 0
        entry["uptime"] = None
    return doc


def test_written_on_a_change_not_when_only_uptimes_move(fakesup: MakeFake, tmp_path: Path) -> None:
    fake = fakesup(TWO)
    inode, text = _status(tmp_path)
    assert list(json.loads(text)) == sorted(json.loads(text))  # sorted keys
    assert _without_uptimes(json.loads(text)) == fake.sup.snapshot().stable_json()
    assert json.loads(text)["services"]["web"]["uptime"] is not None  # written with them

    fake.advance(5.0)  # only uptimes moved: no write
    fake.sup.reconcile()
    fake.settle()
    assert _status(tmp_path) == (inode, text)

    fake.procs.exit("web", 3)  # a real change: written again
    fake.settle()
    inode2, text2 = _status(tmp_path)
    assert inode2 != inode
    assert json.loads(text2)["services"]["web"]["last_exit"] == 3
    assert _without_uptimes(json.loads(text2)) == fake.sup.snapshot().stable_json()
