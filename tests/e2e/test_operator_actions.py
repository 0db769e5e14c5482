"""``pyinit start|stop|restart`` for an operator (issue 14): they wait until what
they did is done (ready, or stopped), print progress, time out naming what is
still waiting; ``start`` brings back the dependants a ``stop`` took down."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import DEVNULL, PYINIT, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import LineReader
from tests.helpers.supervisor import boot, ctl, make_fifo, ok, write_fifo


def gated(fifo: Path) -> str:
    """worker is ready only once a line comes through ``fifo``, at every start."""
    return f"""
services:
  worker:
    command: {argv(*sh(f"read x < {fifo}; echo up; exec sleep 1000"))}
    ready: {{log_line: "^up$$"}}
  cleanup:
    command: {argv("sleep", "1000")}
    depends_on:
      worker: {{condition: service_ready}}
"""


def client(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], LineReader]:
    proc = subprocess.Popen([*PYINIT, *args], env=env, stdout=subprocess.PIPE, stdin=DEVNULL)
    assert proc.stdout is not None
    return proc, LineReader(proc.stdout.fileno(), f"pyinit {args[0]}")


def boot_gated(cli: Runner, tmp_path: Path, env: dict[str, str]) -> Path:
    fifo = make_fifo(tmp_path, "gate")
    boot(cli, tmp_path, env, gated(fifo))
    write_fifo(fifo, "go\n")
    ok(env, "wait", "--ready", "all", "--timeout", "10s")
    return fifo


@pytest.mark.timeout(40)
def test_restart_waits_for_ready(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``restart worker`` returns once worker and the dependant it took down are
    ready again, printing each; not before (worker waits on the fifo)."""
    fifo = boot_gated(cli, tmp_path, env)
    proc, out = client(env, "restart", "worker")
    assert out.next_line() == "restarting: worker, cleanup"
    write_fifo(fifo, "go\n")  # worker's new run has the fifo open: the restart is under way
    assert proc.poll() is None or proc.returncode == 0
    assert [out.next_line(), out.next_line(), out.next_line()] == [
        "ready: worker",
        "ready: cleanup",
        None,
    ]
    assert proc.wait(10) == 0
    assert ok(env, "restart", "cleanup", "--no-wait") == "restarting: cleanup\n"


@pytest.mark.timeout(40)
def test_restart_times_out_naming_what_waits(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    fifo = boot_gated(cli, tmp_path, env)
    done = ctl(env, "restart", "worker", "--timeout", "1s")
    assert done.returncode == 1
    assert done.stdout == "restarting: worker, cleanup\n"
    assert done.stderr == (
        "pyinit: restart: timed out after 1s; still waiting for worker, cleanup (to be ready)\n"
    )
    write_fifo(fifo, "go\n")
    ok(env, "wait", "--ready", "all", "--timeout", "10s")


@pytest.mark.timeout(40)
def test_start_brings_back_what_stop_took_down(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """``stop worker`` stops cleanup too and waits until both stopped; ``start
    worker`` starts cleanup again once worker is ready, and health is green."""
    fifo = boot_gated(cli, tmp_path, env)
    assert ok(env, "stop", "worker").splitlines() == [
        "stopping: worker, cleanup",
        "stopped: worker",
        "stopped: cleanup",
    ]
    assert ctl(env, "health").returncode == 1
    proc, out = client(env, "start", "worker")
    assert out.next_line() == "starting: worker, cleanup"
    write_fifo(fifo, "go\n")
    assert [out.next_line(), out.next_line()] == ["ready: worker", "ready: cleanup"]
    assert proc.wait(10) == 0
    assert ok(env, "health") == "healthy: 2 services\n"
