"""Supervisor mode end to end: restart with backoff, the start limit, crash loops."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.cli import Runner, run_raw
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import file_lines, wait_for_count
from tests.helpers.procs import cpu_seconds
from tests.helpers.supervisor import start, write_config


@pytest.mark.timeout(20)
def test_restart_delays_grow(tmp_path: Path) -> None:
    """A crashing ``restart: on-failure`` service is restarted after 100ms, 200ms,
    400ms (initial 100ms, multiplier 2, no jitter): the gaps between its own start
    times, recorded by the service, grow and are never shorter than the delay."""
    starts = tmp_path / "starts"
    config = write_config(
        tmp_path,
        f"""
        services:
          crash:
            command: {argv(*sh(f"date +%s.%N >> {starts}; exit 3"))}
            restart: on-failure
            backoff: {{initial: 100ms, multiplier: 2, jitter: 0}}
            start_limit: {{burst: 4, interval: 60s}}
        """,
    )
    done = run_raw(config)
    err = done.err.decode()
    times = [float(t) for t in file_lines(starts)]
    assert len(times) == 4, err
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Never early; late only by process start-up (generous for a loaded machine).
    for gap, delay in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert delay - 0.005 <= gap < delay + 1.0, (gaps, err)
    assert gaps[0] < gaps[1] < gaps[2], gaps
    for n, delay in ((1, "0.1"), (2, "0.2"), (3, "0.4")):
        assert f"crash: exited (status 3); restart {n} in {delay}s" in err
    assert done.code == 1, err


@pytest.mark.timeout(20)
def test_start_limit_fails_service(tmp_path: Path) -> None:
    """``start_limit: {burst: 3, interval: 60s}``: after its third start the crashing
    service is not restarted again but ``failed``, with a line saying the start
    limit was reached; with nothing left to run pyinit exits 1."""
    starts = tmp_path / "starts"
    config = write_config(
        tmp_path,
        f"""
        services:
          crash:
            command: {argv(*sh(f"echo start >> {starts}; exit 3"))}
            restart: always
            backoff: {{initial: 100ms, multiplier: 1, jitter: 0}}
            start_limit: {{burst: 3, interval: 60s}}
        """,
    )
    done = run_raw(config)
    err = done.err.decode()
    assert file_lines(starts) == ["start"] * 3, err
    assert re.search(
        r"^pyinit: crash: failed \(status 3; start limit reached \(3 starts within (60s|1m)\)\)$",
        err,
        re.M,
    ), err
    assert done.code == 1, err


@pytest.mark.timeout(20)
def test_crash_loop_does_not_burn_cpu(cli: Runner, tmp_path: Path) -> None:
    """A ``restart: always`` service that exits at once is restarted no faster than
    its backoff allows, and pyinit's own CPU time (utime+stime) over the loop
    stays a small fraction of the wall time."""
    starts = tmp_path / "starts"
    config = write_config(
        tmp_path,
        f"""
        services:
          loop:
            command: {argv(*sh(f"echo start >> {starts}; exit 1"))}
            restart: always
            backoff: {{initial: 100ms, multiplier: 1, jitter: 0}}
            start_limit: {{burst: 1000, interval: 60s}}
        """,
    )
    proc = start(cli, config)
    wait_for_count(starts, 2)
    cpu_before = cpu_seconds(proc.init_pid)
    began = time.monotonic()
    wait_for_count(starts, 17)
    wall = time.monotonic() - began
    cpu = cpu_seconds(proc.init_pid) - cpu_before
    assert wall >= 15 * 0.1 * 0.95, f"15 restarts in {wall:.2f}s: faster than the backoff"
    # Generous: each restart costs a fork and a few log lines, a few ms at most.
    assert cpu < 0.25 * wall, f"pyinit used {cpu:.2f}s CPU in {wall:.2f}s of crash loop"
    proc.signal(signal.SIGTERM)
    proc.finish()
