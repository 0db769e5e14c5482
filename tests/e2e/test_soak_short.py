"""The soak run (bench/soak.py) in its short form: 10 services, 12 s of seeded chaos.

pyinit runs as PID 1 of a fresh PID namespace while services are SIGKILLed,
restarted over the control socket, replaced by reloads, flipped unhealthy and
made to flood their logs. The script checks that no zombie outlives a sample,
that pyinit's RSS and fd count stay flat, that every log line arrives in order
per (service, stream, pid), that every start a service recorded is accounted for
by ``pyinit status --json`` restarts plus the operator's restarts and reloads
(with ``/metrics`` agreeing), and that SIGTERM ends everything with status 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import unshare_prefix

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.mark.timeout(90)
def test_soak_short() -> None:
    if unshare_prefix() != ["unshare", "--pid", "--fork", "--mount-proc"]:
        pytest.skip("the soak run needs root's plain unshare --pid")
    done = subprocess.run(
        [sys.executable, str(SOAK), "--seconds", "12", "--services", "10", "--seed", "7"]
        + ["--quiet"],
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, f"soak failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    assert "**FAIL**" not in done.stdout
    checks = ("zombies", "pyinit RSS", "pyinit fds", "log lines in order", "restarts reconciled")
    for check in checks:
        assert f"| {check} | pass |" in done.stdout
