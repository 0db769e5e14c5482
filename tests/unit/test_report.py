"""Unit tests for the termination report (pyinit/report.py): the per-service lines,
the JSON for /dev/termination-log and its 4096-byte limit, the run clock, the writer."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pyinit.config.model import RestartPolicy, ServiceConfig
from pyinit.exitstatus import ExitStatus
from pyinit.report import (
    MESSAGE_LIMIT,
    emit_report,
    format_seconds,
    report_json,
    report_lines,
    run_lengths,
    service_line,
    termination_log_path,
    write_termination_log,
)
from pyinit.service import Event, EventKind, ServiceMachine
from pyinit.snapshot import ServiceSnapshot, Snapshot


def svc(**over: Any) -> ServiceSnapshot:
    base: dict[str, Any] = {
        "type": "longrun",
        "state": "stopped",
        "pid": None,
        "ready": False,
        "restarts": 0,
        "last_exit": 0,
        "reason": "",
        "uptime": None,
    }
    base.update(over)
    return ServiceSnapshot.from_json(base)


def snap(services: dict[str, ServiceSnapshot]) -> Snapshot:
    return Snapshot(pid=1, stopping=True, started=0.0, services=services)


def test_service_line_format() -> None:
    """name: state (status N), R restarts, ran T; a failure's reason follows its status."""
    assert service_line("web", svc(restarts=2), 12.34) == (
        "web: stopped (status 0), 2 restarts, ran 12.3s"
    )
    assert service_line("web", svc(restarts=1, last_exit=143), 0.04) == (
        "web: stopped (status 143), 1 restart, ran 0.0s"
    )
    failed = svc(state="failed", last_exit=1, restarts=5, reason="status 1; start limit reached")
    assert service_line("db", failed, 0.2) == (
        "db: failed (status 1; start limit reached), 5 restarts, ran 0.2s"
    )
    failed = svc(state="failed", last_exit=127, reason="cannot start: no such file")
    assert service_line("x", failed, None) == (
        "x: failed (status 127; cannot start: no such file), 0 restarts, never ran"
    )
    quiet = svc(reason="shown only for a failure")
    assert service_line("y", quiet, 1.0) == "y: stopped (status 0), 0 restarts, ran 1.0s"
    assert service_line("api", svc(last_exit=None), None) == "api: stopped, 0 restarts, never ran"


def test_report_lines_keep_the_snapshot_order() -> None:
    """One line per service, in config order; services with no recorded run 'never ran'."""
    lines = report_lines(
        snap({"b": svc(), "a": svc(state="completed")}),
        {"b": 1.0, "a": 2.0},
    )
    assert lines == [
        "b: stopped (status 0), 0 restarts, ran 1.0s",
        "a: completed (status 0), 0 restarts, ran 2.0s",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0.0s"), (12.34, "12.3s"), (59.96, "60.0s"), (61.0, "1m01.0s"), (7384, "2h03m")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_report_json_fields() -> None:
    """The JSON has the exit code and, per service, name/state/last_exit/restarts/ran,
    plus the reason of a failure; failed services come first."""
    services = {
        "web": svc(restarts=2),
        "db": svc(state="failed", last_exit=1, reason="start limit reached"),
        "api": svc(last_exit=None),
    }
    doc = json.loads(report_json(snap(services), {"web": 12.34, "db": 0.25}, 1))
    assert doc == {
        "exit_code": 1,
        "services": [
            {
                "name": "db",
                "state": "failed",
                "last_exit": 1,
                "restarts": 0,
                "ran": 0.2,
                "reason": "start limit reached",
            },
            {"name": "web", "state": "stopped", "last_exit": 0, "restarts": 2, "ran": 12.3},
            {"name": "api", "state": "stopped", "last_exit": None, "restarts": 0, "ran": None},
        ],
    }


def test_report_json_fits_the_kubernetes_limit() -> None:
    """However many services and however long their reasons, the JSON stays within
    4096 bytes: reasons are shortened first, then services left out (failed ones are
    kept) and counted in 'omitted'."""
    services = {
        f"service-{i:03d}": svc(state="failed" if i % 7 == 0 else "stopped", reason="x" * 500)
        for i in range(200)
    }
    text = report_json(snap(services), {}, 1)
    assert len(text.encode()) <= MESSAGE_LIMIT
    doc = json.loads(text)
    kept = doc["services"]
    assert doc["omitted"] == 200 - len(kept) > 0
    assert all(entry["state"] == "failed" for entry in kept[:10])
    # A few services with long reasons: all kept, reasons shortened.
    few = {f"s{i}": svc(state="failed", reason="é" * 1000) for i in range(5)}
    text = report_json(snap(few), {}, 1)
    doc = json.loads(text)
    assert len(text.encode()) <= MESSAGE_LIMIT
    assert len(doc["services"]) == 5 and "omitted" not in doc
    assert 0 < len(doc["services"][0]["reason"]) <= 200


def test_run_lengths_are_the_last_run_of_each_machine() -> None:
    """A machine keeps when its last run started and ended (a new spawn starts a
    new run); one still running counts until now; one never run is absent."""
    cfg = ServiceConfig(name="web", command=("web",), restart=RestartPolicy.NO)
    web, idle = ServiceMachine(cfg), ServiceMachine(replace(cfg, name="idle"))
    web.handle(Event(EventKind.START), 98.0)
    web.handle(Event(EventKind.SPAWNED, pid=5), 98.0)
    web.handle(Event(EventKind.EXITED, pid=5, status=ExitStatus(code=1)), 111.0)
    machines = {"web": web, "idle": idle}
    assert run_lengths(machines, 120.0) == {"web": pytest.approx(13.0)}
    web.handle(Event(EventKind.START), 119.5)
    web.handle(Event(EventKind.SPAWNED, pid=6), 119.5)
    assert run_lengths(machines, 125.0) == {"web": pytest.approx(5.5)}


def test_termination_log_path(tmp_path: Path) -> None:
    """$PYINIT_TERMINATION_LOG wins (created if missing; empty turns it off); else
    /dev/termination-log only when it exists and is writable."""
    path = str(tmp_path / "t.json")
    assert termination_log_path({"PYINIT_TERMINATION_LOG": path}) == (path, True)
    assert termination_log_path({"PYINIT_TERMINATION_LOG": ""}) is None
    default = termination_log_path({})
    expected = os.access("/dev/termination-log", os.W_OK)
    assert (default == ("/dev/termination-log", False)) if expected else default is None


def test_write_termination_log_replaces_content_and_never_blocks(tmp_path: Path) -> None:
    """The file is truncated and rewritten; a FIFO nobody reads fails at once (ENXIO)
    instead of blocking PID 1; without create, a missing file is an error."""
    target = tmp_path / "termination-log"
    target.write_text("old content that is longer\n")
    write_termination_log(str(target), '{"a":1}', create=False)
    assert target.read_text() == '{"a":1}'
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError):
        write_termination_log(str(fifo), "x", create=False)
    with pytest.raises(FileNotFoundError):
        write_termination_log(str(tmp_path / "missing"), "x", create=False)


def test_emit_report_logs_lines_and_writes_json(tmp_path: Path) -> None:
    """emit_report: each line through the log as 'report: ...', the JSON to the file;
    a file it cannot write is one log line, not an exception."""
    logged: list[str] = []
    target = tmp_path / "t.json"
    env = {"PYINIT_TERMINATION_LOG": str(target)}
    emit_report(snap({"web": svc()}), {"web": 1.0}, 0, logged.append, env)
    assert logged == ["report: web: stopped (status 0), 0 restarts, ran 1.0s"]
    assert json.loads(target.read_text())["services"][0]["name"] == "web"
    logged.clear()
    env = {"PYINIT_TERMINATION_LOG": str(tmp_path / "no" / "such" / "dir")}
    emit_report(snap({"web": svc()}), {}, 0, logged.append, env)
    assert logged[-1].startswith("report: cannot write ")
