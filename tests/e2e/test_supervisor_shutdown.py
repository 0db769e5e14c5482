"""Supervisor mode end to end: graceful shutdown on SIGTERM."""

from __future__ import annotations

import re
import signal
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers.cli import PYTHON, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import file_lines, wait_for_lines
from tests.helpers.supervisor import start, write_config


def _trapping(name: str, log: Path) -> str:
    """sh: note ``up NAME``; on SIGTERM note ``stop NAME`` and exit 0."""
    return argv(*sh(
        f"trap 'echo stop {name} >> {log}; exit 0' TERM; echo up {name} >> {log}; sleep 1000 & wait"
    ))


@pytest.mark.timeout(20)
def test_sigterm_stops_in_reverse_dependency_order_and_exits_zero(
    cli: Runner, tmp_path: Path
) -> None:
    """On SIGTERM, a service is stopped only after its dependants exited (``web``
    depends on ``db``: web stops first), and pyinit exits 0 because every service
    stopped cleanly: exiting 0 on the stop signal, or dying of the SIGTERM sent
    to it (``plain``), both count as clean."""
    log = tmp_path / "stops.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          db:
            command: {_trapping("db", log)}
          web:
            command: {_trapping("web", log)}
            depends_on: [db]
          plain:
            command: {argv("sleep", "1000")}
        """,
    )
    proc = start(cli, config)
    assert proc.err is not None
    wait_for_lines(log, ["up db", "up web"])
    proc.err.expect(r"plain: started")
    asked = time.monotonic()
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    took = time.monotonic() - asked
    lines = file_lines(log)
    assert lines.index("stop web") < lines.index("stop db"), lines
    assert re.search(r"plain: stopped in [\d.]+s \(killed by SIGTERM\)", err), err
    assert code == 0, err
    assert took < 5.0, f"shutdown took {took:.2f}s"


ORPHAN = """\
import os, signal, sys

log = sys.argv[1]

def note(text):
    with open(log, "a") as f:
        f.write(text + "\\n")

if os.fork() == 0:
    os.setsid()  # its own session: the service's process group signal misses it
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, lambda *_: note("orphan got TERM"))
        note("orphan up")
        while True:
            signal.pause()
    os._exit(0)
os.wait()
"""


@pytest.mark.timeout(30)
def test_sigterm_kills_stubborn_service_and_sweeps_escaped_orphan(
    cli: Runner, tmp_path: Path
) -> None:
    """A service that ignores SIGTERM is SIGKILLed once its ``stop_grace_period``
    (1s) is over, with a line saying it had to be killed; a process that escaped
    its service's session (double fork + setsid, TERM handled but survived) is
    sent SIGTERM then SIGKILL by the final sweep; the whole shutdown is bounded;
    a kill is not a clean stop, so the exit status is not 0."""
    log = tmp_path / "events.log"
    orphan = tmp_path / "orphan.py"
    orphan.write_text(textwrap.dedent(ORPHAN))
    # stubborn is one process (exec): a child SIGKILLed with its group could still be
    # exiting when the sweep counts leftovers, and be counted (seen under load).
    config = write_config(
        tmp_path,
        f"""
        settings:
          shutdown_timeout: 20s
        services:
          stubborn:
            command: {argv(*sh(f"trap '' TERM; echo up stubborn >> {log}; exec sleep 1000"))}
            stop_grace_period: 1s
          escaper:
            command: {
            argv(*sh(f"{PYTHON} {orphan} {log}; echo up escaper >> {log}; exec sleep 1000"))
        }
            stop_grace_period: 1s
        """,
    )
    proc = start(cli, config)
    wait_for_lines(log, ["up stubborn", "up escaper", "orphan up"])
    asked = time.monotonic()
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish(timeout=15)
    took = time.monotonic() - asked
    assert "stubborn: still running 1s after stop signal; sending SIGKILL" in err, err
    assert re.search(r"stubborn: stopped in 1\.\d+s \(killed by SIGKILL; had to be killed\)", err)
    assert re.search(r"escaper: stopped in [\d.]+s \(killed by SIGTERM\)", err), err
    assert re.search(r"1 leftover process\(es\) sent SIGTERM", err), err
    assert "orphan got TERM" in file_lines(log), "the sweep did not signal the orphan"
    assert re.search(r"sent SIGKILL to 1 process\(es\)", err), err
    assert 1.0 <= took < 8.0, f"shutdown took {took:.2f}s"
    assert code != 0, err


@pytest.mark.timeout(20)
def test_second_sigterm_kills_at_once(cli: Runner, tmp_path: Path) -> None:
    """A second SIGTERM while a service takes its time to stop (grace 10s) skips
    the rest of the grace period: everything is SIGKILLed and pyinit exits at once."""
    log = tmp_path / "events.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          slow:
            command: {
            argv(*sh(
                f"trap 'echo got TERM >> {log}' TERM; echo up >> {log}; "
                "while :; do sleep 1000 & wait; done"
            ))
        }
            stop_grace_period: 10s
        """,
    )
    proc = start(cli, config)
    wait_for_lines(log, ["up"])
    proc.signal(signal.SIGTERM)
    wait_for_lines(log, ["got TERM"])
    again = time.monotonic()
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    took = time.monotonic() - again
    assert "SIGTERM received again; killing everything now" in err, err
    assert "slow: stopped" in err and "had to be killed" in err, err
    assert took < 2.0, f"pyinit took {took:.2f}s after the second SIGTERM"
    assert code == 128 + signal.SIGKILL, err


@pytest.mark.timeout(20)
def test_shutdown_timeout_caps_grace_period(cli: Runner, tmp_path: Path) -> None:
    """``settings.shutdown_timeout`` (1s) bounds the whole stop: a service whose own
    ``stop_grace_period`` (30s) is longer is SIGKILLed when the budget runs out."""
    log = tmp_path / "events.log"
    config = write_config(
        tmp_path,
        f"""
        settings:
          shutdown_timeout: 1s
        services:
          stubborn:
            command: {argv(*sh(f"trap '' TERM; echo up >> {log}; sleep 1000 & wait"))}
            stop_grace_period: 30s
        """,
    )
    proc = start(cli, config)
    wait_for_lines(log, ["up"])
    asked = time.monotonic()
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    took = time.monotonic() - asked
    assert 0.9 <= took < 3.0, f"shutdown took {took:.2f}s with a 1s budget"
    assert "had to be killed" in err, err
    assert code == 128 + signal.SIGKILL, err


@pytest.mark.timeout(20)
def test_main_command_stops_before_services(cli: Runner, tmp_path: Path) -> None:
    """On SIGTERM with a main command, the main command (which depends on every
    service) is stopped first, then the services; when all of them stop as asked
    the container exits 0."""
    log = tmp_path / "stops.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          db:
            command: {_trapping("db", log)}
        """,
    )
    main = (
        f"trap 'echo stop main >> {log}; exit 0' TERM; echo up main >> {log}; "
        "sleep 1000 & wait"
    )
    proc = start(cli, config, "--", "sh", "-c", main)
    wait_for_lines(log, ["up db", "up main"])
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    lines = file_lines(log)
    assert lines.index("stop main") < lines.index("stop db"), lines
    assert code == 0, err


@pytest.mark.timeout(30)
def test_stubborn_main_command_is_killed_in_time_and_reported(cli: Runner, tmp_path: Path) -> None:
    """A main command that ignores SIGTERM gets at most half of shutdown_timeout:
    then it is SIGKILLed, the services still get their own stop signal (they are
    not swept up by the budget's SIGKILL), and the container exits 137, not 0."""
    log = tmp_path / "stops.log"
    config = write_config(
        tmp_path,
        f"""
        settings:
          shutdown_timeout: 4s
        services:
          db:
            command: {_trapping("db", log)}
        """,
    )
    main = f"trap '' TERM; echo up main >> {log}; while :; do sleep 0.1; done"
    proc = start(cli, config, "--", "sh", "-c", main)
    wait_for_lines(log, ["up db", "up main"])
    began = time.monotonic()
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    took = time.monotonic() - began
    assert "still running" in err and "SIGKILL" in err, err
    assert "stop db" in file_lines(log)  # db got its TERM after the main command died
    assert code == 137, err
    assert 1.5 < took < 4.5, took
