"""Supervisor mode end to end: bad config files and services that cannot start."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers.cli import Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import wait_for_lines
from tests.helpers.supervisor import start, write_config

BAD = """\
services:
  web:
    comand: ["sleep", "1"]
    restart: sometimes
  db:
    command: {touch}
    depends_on: [nope]
"""

EXPECTED_PROBLEMS = [
    "{path}:2: services.web.command: required key missing",
    "{path}:3: services.web.comand: unknown key; did you mean 'command'?",
    "{path}:4: services.web.restart: expected one of no, on-failure, always, unless-stopped; "
    "got 'sometimes'",
    "{path}:7: services.db.depends_on.nope: no service named 'nope'",
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["run", "check"])
def test_bad_config_exits_2_with_file_line_key(cli: Runner, tmp_path: Path, mode: str) -> None:
    """``pyinit -c bad.yaml`` and ``pyinit check bad.yaml`` exit 2 and print every
    problem as ``file:line: key: message``, with no traceback; ``-c`` starts nothing."""
    started = tmp_path / "started"
    path = tmp_path / "bad.yaml"
    path.write_text(BAD.format(touch=argv("touch", started)))
    if mode == "run":
        done = cli.run(["-c", str(path)])
    else:
        done = cli.run(["check", str(path)], namespace=False)
    lines = done.err.splitlines()
    for expected in EXPECTED_PROBLEMS:
        assert expected.format(path=path) in lines, done.err
    assert "Traceback" not in done.err + done.out
    assert not started.exists(), "a service started from an invalid file"
    assert done.code == 2, done


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            f"command: {argv('/nonexistent/cmd')}",
            "broken: failed (cannot run '/nonexistent/cmd': No such file or directory)",
        ),
        (
            f"command: {argv('true')}\n    user: nosuchuser",
            "broken: failed (cannot start: unknown user 'nosuchuser')",
        ),
        (
            f"command: {argv('true')}\n    working_dir: /nonexistent",
            "broken: failed (cannot run 'true': working directory /nonexistent: "
            "No such file or directory)",
        ),
    ],
    ids=["missing-command", "unknown-user", "missing-working-dir"],
)
def test_failed_start_is_reported_and_others_keep_running(
    cli: Runner, tmp_path: Path, settings: str, message: str
) -> None:
    """A service that cannot start (no such command, unknown user, missing working
    directory) is a failed start with one clear line saying why; pyinit keeps
    running the other services until it is told to stop."""
    log = tmp_path / "keeper.log"
    config = write_config(
        tmp_path,
        f"""
services:
  keeper:
    command: {
    argv(*sh(f"trap 'echo stop >> {log}; exit 0' TERM; echo up >> {log}; sleep 1000 & wait"))
}
  broken:
    {settings}
""",
    )
    proc = start(cli, config)
    assert proc.err is not None
    proc.err.expect("^pyinit: " + _literal(message) + "$")
    wait_for_lines(log, ["up"])
    assert proc.popen.poll() is None, "pyinit exited although keeper still runs"
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert "stop" in (log.read_text().split()), err
    assert "Traceback" not in err
    assert "no service left to run" not in err


def _literal(text: str) -> str:
    import re

    return re.escape(text)
