"""The termination report carries the last lines of the service that ended the
container (issue 14): writing the file turns off Kubernetes'
FallbackToLogsOnError, so the message must hold what the log would have shown."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.cli import DEVNULL, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.supervisor import start, write_config


@pytest.mark.timeout(30)
def test_report_has_the_last_lines_of_the_critical_service(cli: Runner, tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    crash = "for i in $(seq 1 30); do echo line $i; done; echo fatal: no database; exit 3"
    config = write_config(
        tmp_path,
        f"""
services:
  other:
    command: {argv("sleep", "1000")}
  app:
    command: {argv(*sh(crash))}
    critical: true
""",
    )
    env = dict(os.environ, PYINIT_TERMINATION_LOG=str(log))
    proc = start(cli, config, env=env, stdin=DEVNULL)
    code, _out, _err = proc.finish()
    assert code == 3
    report = json.loads(log.read_text())
    assert len(log.read_bytes()) <= 4096
    assert report["output"]["service"] == "app"
    lines = report["output"]["lines"]
    assert len(lines) == 20 and lines[-1] == "fatal: no database"
    assert lines[0] == "line 12"
