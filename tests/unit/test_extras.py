"""Unit tests for ServiceExtras (pyinit/extras.py): jobs, watchers and log files kept
in step with the config across reloads, and the fields status and /metrics read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pyinit.config import ServiceConfig, ServiceType
from pyinit.config.model import LogFileOptions
from pyinit.extras import ServiceExtras
from pyinit.logs import LogRouter
from pyinit.loop import EventLoop
from pyinit.schedule import parse_schedule
from pyinit.watch import WatchSpec


@pytest.fixture
def extras(tmp_path: Path) -> Iterator[tuple[ServiceExtras, LogRouter, list[str]]]:
    loop = EventLoop()
    devnull = os.open(os.devnull, os.O_WRONLY)
    logs = LogRouter(loop, ["job", "web"], stdout_fd=devnull, stderr_fd=devnull)
    said: list[str] = []
    made = ServiceExtras(loop, logs, lambda name: None, lambda name, paths: None, said.append)
    yield made, logs, said
    made.close()
    loop.close()
    os.close(devnull)


def test_reload_attaches_and_detaches(
    tmp_path: Path, extras: tuple[ServiceExtras, LogRouter, list[str]]
) -> None:
    """A schedule, a watch and a log file come and go with the definitions; a
    reload that keeps a service's log options keeps its open file and counters; a
    job's history survives a changed schedule and goes with a removed service."""
    made, logs, said = extras
    job = ServiceConfig(
        "job", ("true",), type=ServiceType.ONESHOT, schedule=parse_schedule("@every 1s")
    )
    options = LogFileOptions(str(tmp_path / "web.log"), 1 << 20, 2, stdout=False)
    web = ServiceConfig("web", ("web",), watch=(WatchSpec(str(tmp_path)),), log_file=options)
    made.sync({"job": job, "web": web})
    assert "job" in made.jobs and set(made.watchers) == {"web"}
    sink = made.files["web"]
    assert logs._files["web"] is sink and "web" in logs._file_only
    made.jobs.finished("job", "success", 0)

    # Reload: job's schedule changes, web's command changes (same log options).
    job2 = replace(job, schedule=parse_schedule("@hourly"))
    web2 = replace(web, command=("web", "--new"), watch=())
    made.sync({"job": job2, "web": web2})
    assert made.jobs.schedule("job") == "@hourly"
    assert made.jobs.records["job"].runs["success"] == 1
    assert made.files["web"] is sink and made.watchers == {}
    job_status = made.job_snapshot("job")
    assert job_status is not None
    assert job_status.schedule == "@hourly" and job_status.last_result == "success"
    file_status = made.log_file_snapshot("web")
    assert file_status is not None and file_status.path == options.path

    # Reload: the log file goes to stdout again, the job is removed.
    made.sync({"web": replace(web2, log_file=None)})
    assert "job" not in made.jobs and "job" not in made.jobs.records
    assert made.files == {} and "web" not in logs._files and "web" not in logs._file_only
    assert made.log_file_snapshot("web") is None and made.job_snapshot("web") is None
    assert said == []


def test_shutdown_stops_timers_and_watchers(
    tmp_path: Path, extras: tuple[ServiceExtras, LogRouter, list[str]]
) -> None:
    made, _logs, _said = extras
    job = ServiceConfig(
        "job", ("true",), type=ServiceType.ONESHOT, schedule=parse_schedule("@daily")
    )
    web = ServiceConfig("web", ("web",), watch=(WatchSpec(str(tmp_path)),))
    made.sync({"job": job, "web": web})
    made.stop_timers()
    assert made.jobs.next_run("job") is None and made.watchers == {}
    made.sync({"job": job, "web": web, "other": replace(web, name="other")})
    assert made.watchers == {}  # nothing new after shutdown began
