"""The termination report's ``output``: the last lines, within the 4 KiB limit."""

from __future__ import annotations

import json

from pyinit.report import report_json
from pyinit.snapshot import ServiceSnapshot, ServiceState, Snapshot

SNAP = Snapshot(services={"app": ServiceSnapshot("longrun", ServiceState.FAILED, last_exit=3)})


def test_last_twenty_lines_kept() -> None:
    lines = [f"line {i}" for i in range(30)]
    doc = json.loads(report_json(SNAP, {}, 3, output=("app", lines)))
    assert doc["output"] == {"service": "app", "lines": lines[-20:]}


def test_oldest_lines_go_first_to_fit() -> None:
    lines = ["x" * 300 for _ in range(20)] + ["the end"]
    text = report_json(SNAP, {}, 3, output=("app", lines))
    doc = json.loads(text)
    assert len(text.encode()) <= 4096
    assert doc["output"]["lines"][-1] == "the end"
    assert all(len(line) <= 200 for line in doc["output"]["lines"])
    assert doc["services"][0]["name"] == "app"  # the services are kept whole
