"""Unit tests for scheduled-job bookkeeping (pyinit.jobs): what a due time means
in each state, run results, and records. No processes."""

from __future__ import annotations

import pytest

from pyinit.jobs import Concurrency, Due, Jobs, run_result, when_due
from pyinit.loop import EventLoop
from pyinit.schedule import parse_schedule
from pyinit.service import State


@pytest.mark.parametrize(
    ("state", "forbid", "replace"),
    [
        (State.PENDING, Due.START, Due.START),
        (State.COMPLETED, Due.START, Due.START),
        (State.FAILED, Due.START, Due.START),
        (State.STOPPED, Due.START, Due.START),
        (State.STARTING, Due.SKIP, Due.REPLACE),
        (State.RUNNING, Due.SKIP, Due.REPLACE),
        (State.BACKOFF, Due.SKIP, Due.REPLACE),
        (State.STOPPING, Due.SKIP, Due.SKIP),  # already on its way out
    ],
)
def test_when_due(state: State, forbid: Due, replace: Due) -> None:
    """A run still going (or waiting to be retried) is skipped under forbid and
    replaced under replace; otherwise the job starts."""
    assert when_due(state, Concurrency.FORBID) is forbid
    assert when_due(state, Concurrency.REPLACE) is replace


@pytest.mark.parametrize(
    ("before", "after", "result"),
    [
        (State.RUNNING, State.COMPLETED, "success"),
        (State.STARTING, State.COMPLETED, "success"),
        (State.RUNNING, State.FAILED, "failure"),
        (State.RUNNING, State.BACKOFF, "failure"),
        (State.STOPPING, State.STOPPED, "stopped"),
        (State.STOPPING, State.FAILED, "failure"),
        (State.PENDING, State.STARTING, None),
        (State.STARTING, State.RUNNING, None),
        (State.BACKOFF, State.STARTING, None),
        (State.BACKOFF, State.STOPPED, None),
    ],
)
def test_run_result(before: State, after: State, result: str | None) -> None:
    assert run_result(before, after) == result


def test_records_and_next_run() -> None:
    """Counters per result, the last result and success times; next_run while timed."""
    now = [1000.0]
    loop = EventLoop()
    jobs = Jobs(loop, lambda name: None, wall=lambda: now[0])
    jobs.add("backup", parse_schedule("@every 30s"))
    assert "backup" in jobs and jobs.schedule("backup") == "@every 30s"
    assert jobs.next_run("backup") == pytest.approx(1030.0, abs=0.5)
    jobs.started("backup")
    now[0] = 1002.0
    jobs.finished("backup", "success", 0)
    now[0] = 1032.0
    jobs.finished("backup", "failure", 3)
    jobs.skipped("backup")
    record = jobs.records["backup"]
    assert record.runs == {"success": 1, "failure": 1, "stopped": 0, "skipped": 1}
    assert (record.last_result, record.last_exit) == ("failure", 3)
    assert (record.last_success, record.last_finished) == (1002.0, 1032.0)
    jobs.add("backup", parse_schedule("@hourly"))  # a reload keeps the history
    assert jobs.records["backup"].runs["success"] == 1
    jobs.remove("backup")
    assert jobs.next_run("backup") is None and "backup" not in jobs
    loop.close()
