"""Unit tests for the snapshot's job and log-file entries (pyinit/snapshot.py): they
round-trip through JSON, appear only on the services that have them, and a
damaged entry is a SnapshotError."""

from __future__ import annotations

import json

import pytest

from pyinit.snapshot import (
    JobSnapshot,
    LogFileSnapshot,
    ServiceSnapshot,
    ServiceState,
    Snapshot,
    SnapshotError,
)


def test_round_trip_and_absent_keys() -> None:
    job = JobSnapshot(
        schedule="@every 30s",
        next_run=1_800_000_030.5,
        last_result="failure",
        last_exit=3,
        last_started=1_800_000_000.0,
        last_finished=1_800_000_001.25,
        last_success=1_799_999_970.0,
        runs={"success": 4, "failure": 1, "stopped": 0, "skipped": 2},
    )
    sink = LogFileSnapshot("/var/log/web.log", errors=2, dropped_lines=120, rotations=7)
    snapshot = Snapshot(
        pid=1,
        services={
            "backup": ServiceSnapshot("oneshot", ServiceState.COMPLETED, job=job),
            "web": ServiceSnapshot("longrun", ServiceState.RUNNING, log_file=sink),
            "plain": ServiceSnapshot("longrun", ServiceState.RUNNING),
        },
    )
    doc = json.loads(json.dumps(snapshot.to_json()))
    assert "job" not in doc["services"]["plain"] and "log_file" not in doc["services"]["plain"]
    back = Snapshot.from_json(doc)
    assert back.services["backup"].job == job
    assert back.services["web"].log_file == sink
    assert back.services["plain"].job is None


@pytest.mark.parametrize(
    "entry",
    [
        {"job": "daily"},
        {"job": {"schedule": "@daily", "runs": {"success": "many"}}},
        {"job": {"schedule": "@daily", "paused": "no"}},
        {"log_file": {"path": "/x", "errors": -0.5}},
    ],
)
def test_damaged_entries(entry: dict[str, object]) -> None:
    with pytest.raises(SnapshotError):
        ServiceSnapshot.from_json({"state": "running", **entry})
