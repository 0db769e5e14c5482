"""Per-service sampling: which processes are a service's, and how their CPU adds up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pyinit.resources import Proc, Sampler, attribute, parse_stat, read_proc, scan, self_usage
from tests.helpers.deadlines import wait_until

TICKS = os.sysconf("SC_CLK_TCK")


def proc(
    pid: int,
    ppid: int = 1,
    session: int | None = None,
    pgrp: int | None = None,
    cpu: float = 0.0,
    rss: int = 1000,
    start: int = 0,
) -> Proc:
    session = pid if session is None else session
    return Proc(pid, ppid, session if pgrp is None else pgrp, session, cpu, cpu, rss, start)


def test_parse_stat_reads_a_name_with_spaces_and_parentheses() -> None:
    line = b"42 (a (b) c) S 1 40 40 0 -1 4194560 0 0 0 0 300 200 10 5 20 0 1 0 777 9 12 0"
    p = parse_stat(42, line)
    assert p is not None
    assert (p.ppid, p.pgrp, p.session, p.start) == (1, 40, 40, 777)
    assert p.own_cpu == pytest.approx(500 / TICKS)
    assert p.cpu == pytest.approx(515 / TICKS)
    assert p.rss == 12 * os.sysconf("SC_PAGE_SIZE")
    assert parse_stat(42, b"42 (x) S 1") is None


def test_session_members_orphans_and_escaped_descendants_belong_to_the_service() -> None:
    procs = [
        proc(1, ppid=0),  # pyinit
        proc(10),  # web: a session leader
        proc(11, ppid=10, session=10),  # its worker
        proc(12, ppid=1, session=10),  # an orphan of web, re-parented to pyinit
        proc(13, ppid=11),  # a worker's child that called setsid
        proc(14, ppid=13, session=13),  # ... and its child
        proc(20, pgrp=20, session=1),  # db: new-group isolation
        proc(21, ppid=20, pgrp=20, session=1),
        proc(30, ppid=1),  # a health probe of pyinit: nobody's
        proc(31, ppid=1, session=1),  # in pyinit's session, not a service's group
    ]
    members = attribute(procs, {"web": 10, "db": 20, "gone": 99})
    assert sorted(p.pid for p in members["web"]) == [10, 11, 12, 13, 14]
    assert sorted(p.pid for p in members["db"]) == [20, 21]
    assert members["gone"] == []


def test_a_main_process_that_leads_nothing_counts_its_descendants_only() -> None:
    procs = [proc(1, ppid=0), proc(40, session=1, pgrp=1), proc(41, ppid=40, session=1, pgrp=1)]
    members = attribute(procs, {"inherit": 40})
    assert sorted(p.pid for p in members["inherit"]) == [40, 41]


class FakeProcs:
    def __init__(self) -> None:
        self.procs: list[Proc] = []
        self.now = 100.0

    def scan(self) -> list[Proc]:
        return list(self.procs)

    def clock(self) -> float:
        return self.now


def test_cpu_counter_and_percent_across_samples() -> None:
    fake = FakeProcs()
    sampler = Sampler(clock=fake.clock, scanner=fake.scan, since_boot=lambda: 50.0)
    # started 10 s after boot, sampled at 50 s: 4 CPU seconds over 40 s of life
    fake.procs = [proc(10, cpu=3.0, start=10 * TICKS), proc(11, ppid=10, session=10, cpu=1.0)]
    first = sampler.sample({"web": 10, "down": None})
    assert set(first) == {"web"}
    assert first["web"].cpu_seconds == 4.0
    assert first["web"].cpu_percent == 10.0
    assert first["web"].processes == 2 and first["web"].rss_bytes == 2000

    # 2 s later: the worker used 1 more second, then a new one appeared with 0.5
    fake.now += 2
    fake.procs = [
        proc(10, cpu=3.0, start=10 * TICKS),
        proc(11, ppid=10, session=10, cpu=2.0),
        proc(12, ppid=10, session=10, cpu=0.5),
    ]
    second = sampler.sample({"web": 10})["web"]
    assert second.cpu_seconds == 5.5
    assert second.cpu_percent == 75.0
    assert second.processes == 3

    # a worker ended: the counter does not fall back
    fake.now += 1
    fake.procs = [proc(10, cpu=3.0, start=10 * TICKS), proc(12, ppid=10, session=10, cpu=0.5)]
    third = sampler.sample({"web": 10})["web"]
    assert third.cpu_seconds == 5.5 and third.cpu_percent == 0.0

    # pid 12 reused by another process (another start time): all of its time is new
    fake.now += 1
    fake.procs = [
        proc(10, cpu=3.0, start=10 * TICKS),
        proc(12, ppid=10, session=10, cpu=0.25, start=999),
    ]
    assert sampler.sample({"web": 10})["web"].cpu_seconds == 5.75


def test_a_removed_service_is_forgotten() -> None:
    fake = FakeProcs()
    sampler = Sampler(clock=fake.clock, scanner=fake.scan, since_boot=lambda: 1.0)
    fake.procs = [proc(10, cpu=1.0)]
    sampler.sample({"web": 10})
    sampler.sample({})
    fake.procs = [proc(10, cpu=1.0)]
    assert sampler.sample({"web": 10})["web"].cpu_seconds == 1.0  # counted afresh


def test_no_scan_without_a_live_service() -> None:
    def boom() -> list[Proc]:
        raise AssertionError("scanned")

    assert Sampler(scanner=boom).sample({"a": None}) == {}


def test_real_processes_of_a_session() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import os, time; os.fork(); os.fork(); time.sleep(60)"],
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(attribute(scan(), {"s": child.pid})["s"]) == 4, "4 processes")
        usage = Sampler().sample({"s": child.pid})["s"]
        assert usage.processes == 4
        assert usage.rss_bytes > 4 * 1024 * 1024
        assert usage.cpu_percent is not None and usage.cpu_percent >= 0
    finally:
        os.killpg(child.pid, 9)
        child.wait()


def test_a_vanished_pid_is_no_error() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert read_proc(child.pid) is None
    assert Sampler().sample({"gone": child.pid}) == {}


def test_self_usage() -> None:
    me = self_usage()
    assert me is not None
    assert me.rss_bytes > 1024 * 1024 and me.open_fds >= 3
    with open(f"/proc/{os.getpid()}/stat", "rb") as f:
        own = parse_stat(os.getpid(), f.read())
    assert own is not None and me.cpu_seconds <= own.own_cpu + 0.05
    import time

    assert abs(me.start_time - time.time()) < 3600  # the test process started recently


def test_start_up_imports_no_sampler_psutil_or_textual() -> None:
    """Sampling is on the request path only: neither the wrapper, the supervisor nor
    its servers load the sampler, psutil or Textual when they start."""
    heavy = ("psutil", "textual", "pyinit.resources", "pyinit.top")
    code = (
        "import sys; import pyinit.cli, pyinit.wrapper, pyinit.supervisor, pyinit.control,"
        f" pyinit.httpd; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_figures_are_in_a_sampled_snapshot_only() -> None:
    """The status file (an unsampled snapshot) keeps its keys; a sampled one adds the
    four figures, and they come back from JSON."""
    from pyinit.snapshot import ServiceSnapshot, ServiceState

    plain = ServiceSnapshot("longrun", ServiceState.RUNNING, pid=7)
    assert "processes" not in plain.to_json() and "cpu_seconds" not in plain.to_json()
    sampled = ServiceSnapshot(
        "longrun", ServiceState.RUNNING, pid=7, cpu_seconds=1.5, cpu_percent=None,
        memory_rss_bytes=4096, processes=2,
    )  # fmt: skip
    doc = sampled.to_json()
    assert {k: doc[k] for k in ("cpu_seconds", "cpu_percent", "memory_rss_bytes", "processes")} == {
        "cpu_seconds": 1.5, "cpu_percent": None, "memory_rss_bytes": 4096, "processes": 2,
    }  # fmt: skip
    assert ServiceSnapshot.from_json(doc) == sampled
