"""An operator's stop or restart that arrives while pyinit is already stopping a
service because its healthcheck failed (found by the soak run, bench/soak.py).

The service takes 1 s to exit on SIGTERM, so the request lands in that window.
Before the fix the request was dropped: the exit was handled as the failure's
automatic restart, so ``pyinit stop`` left the service running again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import Runner
from tests.helpers.commands import argv, sh
from tests.helpers.supervisor import boot, ok, status, stop_pyinit


def config(flag: Path) -> str:
    return f"""
services:
  slow:
    command: {argv(*sh("trap 'sleep 1; exit 0' TERM; while :; do sleep 0.1; done"))}
    restart: on-failure
    healthcheck: {{exec: {argv("test", "-f", flag)}, interval: 200ms, retries: 1}}
"""


@pytest.mark.timeout(30)
def test_stop_while_stopping_failing(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    flag = tmp_path / "healthy"
    flag.touch()
    proc = boot(cli, tmp_path, env, config(flag), "slow")
    assert proc.err is not None
    flag.unlink()
    proc.err.expect(r"slow: unhealthy .*; restarting")
    assert ok(env, "stop", "--no-wait", "slow") == "stopping: slow\n"
    proc.err.expect(r"slow: stopped in")
    flag.touch()
    svc = status(env)["slow"]
    assert (svc["state"], svc["pid"], svc["restarts"]) == ("stopped", None, 0)
    assert stop_pyinit(proc) == 0


@pytest.mark.timeout(30)
def test_restart_while_stopping_failing(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    flag = tmp_path / "healthy"
    flag.touch()
    proc = boot(cli, tmp_path, env, config(flag), "slow")
    assert proc.err is not None
    first = status(env)["slow"]["pid"]
    flag.unlink()
    proc.err.expect(r"slow: unhealthy .*; restarting")
    assert ok(env, "restart", "--no-wait", "slow") == "restarting: slow\n"
    flag.touch()
    proc.err.expect(r"slow: stopped in")  # an operator's stop, not a crash
    ok(env, "wait", "--ready", "slow", "--timeout", "10s")
    svc = status(env)["slow"]
    assert svc["pid"] not in (None, first) and svc["restarts"] == 0
    assert stop_pyinit(proc) == 0
