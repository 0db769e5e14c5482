"""Compose's file habits (issue 14): ``.env`` next to the config feeds ``${VAR}``,
``--env-file`` picks another, the environment wins; ``pyinit check`` warns about
shell syntax in a string command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import DEVNULL, PYINIT, Runner
from tests.helpers.supervisor import ok, start, write_config

CONFIG = """
services:
  hello:
    command: [sh, -c, "echo ${GREETING} ${WHO:-nobody}; exec sleep 1000"]
"""


@pytest.mark.timeout(30)
def test_dotenv_and_env_file(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / ".env").write_text("GREETING=hello\nWHO=dotenv\n")
    (tmp_path / "other.env").write_text("GREETING=bonjour\n")
    config = write_config(tmp_path, CONFIG)
    proc = start(cli, config, env={**env, "WHO": "environment"}, stdin=DEVNULL)
    assert proc.out is not None
    proc.out.expect(r"^hello \| hello environment$")
    proc.destroy()
    proc = start(cli, config, "--env-file", str(tmp_path / "other.env"), env=env, stdin=DEVNULL)
    assert proc.out is not None
    proc.out.expect(r"^hello \| bonjour nobody$")
    assert "bonjour" in ok(env, "logs", "hello")


def test_check_warns_about_shell_syntax(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'services:\n  build:\n    command: "make && ./run"\n')
    done = subprocess.run(
        [*PYINIT, "check", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stderr == (
        f"{config}:3: warning: services.build.command holds shell syntax ('&&') but runs"
        ' without a shell; to run it in one, write ["sh", "-c", "make && ./run"]\n'
    )
