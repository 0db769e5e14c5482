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


BASE = """
services:
  web:
    command: [sh, -c, "echo web $$MODE $$LEVEL; exec sleep 1000"]
    environment:
      MODE: base
      LEVEL: info
  db:
    command: [sleep, "1000"]
"""
OVERRIDE = """
services:
  web:
    environment:
      MODE: override
  tools:
    command: [sh, -c, "echo tools here; exec sleep 1000"]
"""


@pytest.mark.timeout(30)
def test_config_files_merge_in_order(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``-c base.yaml -c override.yaml``: maps merge key by key, the later file
    wins; ``check --print`` shows the merge; a map against a list names both."""
    base = write_config(tmp_path, BASE, "base.yaml")
    override = write_config(tmp_path, OVERRIDE, "override.yaml")
    proc = start(cli, base, "-c", str(override), env=env, stdin=DEVNULL)
    assert proc.out is not None
    proc.out.expect_all(["web   | web override info", "tools | tools here"])
    assert sorted(line.split()[0] for line in ok(env, "status").splitlines()[1:]) == [
        "db",
        "tools",
        "web",
    ]
    shown = subprocess.run(
        [*PYINIT, "check", "--print", str(base), str(override)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0
    assert "MODE: override" in shown.stdout and "LEVEL: info" in shown.stdout
    clash = write_config(tmp_path, "services:\n  web:\n    environment: [MODE=x]\n", "clash.yaml")
    done = subprocess.run(
        [*PYINIT, "check", str(base), str(clash)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"{clash}:3: services.web.environment: a list here, but a mapping at {base}:5;"
        " files merge only like with like"
    )
