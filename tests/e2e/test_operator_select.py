"""Which services run (issue 14): ``profiles:`` with ``--profile`` and
``PYINIT_PROFILES``, ``--only``, ``optional: true`` kept out of the health
verdict, and ./services.yaml found when neither -c nor a command is given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import DEVNULL, Runner
from tests.helpers.commands import argv
from tests.helpers.supervisor import ctl, ok, start, status, write_config

SELECT = f"""
services:
  db:
    command: {argv("sleep", "1000")}
  api:
    command: {argv("sleep", "1001")}
    depends_on: [db]
  debug:
    command: {argv("sleep", "1002")}
    profiles: [debug, tools]
    depends_on: [shell]
  shell:
    command: {argv("sleep", "1003")}
    profiles: [tools]
"""


def boot_with(
    cli: Runner, tmp_path: Path, env: dict[str, str], text: str, *args: str
) -> dict[str, str]:
    proc = start(cli, write_config(tmp_path, text), *args, env=env, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(r": started \(pid \d+\)")
    return {n: s["state"] for n, s in status(env).items()}


def states(env: dict[str, str]) -> dict[str, str]:
    return {n: s["state"] for n, s in status(env).items()}


@pytest.mark.timeout(40)
def test_profiles_inactive_stay_stopped_until_started(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """Without an active profile, debug and shell are not started and health is
    green; ``pyinit start debug`` starts it with shell, which it depends on."""
    boot_with(cli, tmp_path, env, SELECT)
    ok(env, "wait", "--ready", "db", "api", "--timeout", "10s")
    assert states(env) == {
        "db": "running",
        "api": "running",
        "debug": "stopped",
        "shell": "stopped",
    }
    assert ok(env, "health") == "healthy: 4 services\n"
    assert ok(env, "start", "debug") == "starting: shell, debug\nready: shell\nready: debug\n"
    assert set(states(env).values()) == {"running"}


@pytest.mark.timeout(40)
def test_profile_flag_and_env(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    boot_with(cli, tmp_path, {**env, "PYINIT_PROFILES": "tools"}, SELECT)
    ok(env, "wait", "--ready", "all", "--timeout", "10s")  # every one started


@pytest.mark.timeout(40)
def test_only_runs_those_and_dependencies(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    boot_with(cli, tmp_path, env, SELECT, "--only", "api")
    ok(env, "wait", "--ready", "api", "db", "--timeout", "10s")
    assert states(env)["debug"] == states(env)["shell"] == "stopped"


def test_bad_selection_is_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path, SELECT)
    done = ctl(env, "-c", str(config), "--only", "api,dbb", "--profile", "tool")
    assert done.returncode == 2
    assert done.stderr == (
        "pyinit: --profile tool: no service has this profile (profiles: debug, tools)\n"
        "pyinit: --only dbb: no such service; did you mean 'db'?\n"
    )


@pytest.mark.timeout(40)
def test_optional_helper_out_of_health(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """A failed ``optional: true`` helper leaves ``pyinit health`` green."""
    text = f"""
services:
  app:
    command: {argv("sleep", "1000")}
  helper:
    command: {argv("false")}
    optional: true
"""
    boot_with(cli, tmp_path, env, text)
    ok(env, "wait", "--ready", "app", "--timeout", "10s")
    assert ok(env, "health") == "healthy: 2 services\n"
    assert status(env)["helper"]["optional"] is True


@pytest.mark.timeout(40)
def test_services_yaml_found_in_working_dir(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    write_config(tmp_path, f"services:\n  web:\n    command: {argv('sleep', '1000')}\n")
    proc = cli.start([], env=env, stdin=DEVNULL, cwd=str(tmp_path))
    assert proc.err is not None
    proc.err.expect(r"^pyinit: no -c and no command: running services.yaml$")
    proc.err.expect(r"web: started \(pid \d+\)")
    assert ctl(env, "status").returncode == 0
    assert os.path.exists(tmp_path / "services.yaml")


def test_service_name_as_command_points_at_only(tmp_path: Path, env: dict[str, str]) -> None:
    """``pyinit -c FILE api`` was a main command that does not exist (exit 127
    after starting everything); now it says how to run only some services."""
    config = write_config(tmp_path, SELECT)
    done = ctl(env, "-c", str(config), "api")
    assert done.returncode == 2
    assert done.stderr == (
        "pyinit: 'api' is a service, not a command; to run only some services:"
        " pyinit -c FILE --only api\n"
    )


@pytest.mark.timeout(40)
def test_reload_adds_inactive_profile_stopped(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """A service a reload adds follows the boot's selection: one of an inactive
    profile is added stopped (as at boot), one without profiles starts, and
    ``pyinit start`` starts the held one."""
    config = write_config(tmp_path, SELECT)
    proc = start(cli, config, env=env, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(r": started \(pid \d+\)")
    ok(env, "wait", "--ready", "db", "api", "--timeout", "10s")
    config.write_text(
        SELECT
        + f"""
  extra:
    command: {argv("sleep", "1004")}
    profiles: [tools]
  plain:
    command: {argv("sleep", "1005")}
"""
    )
    ok(env, "reload")
    ok(env, "wait", "--ready", "plain", "--timeout", "10s")
    proc.err.expect(r"^pyinit: reload: not started \(profiles, --only; .*\): extra$")
    assert states(env)["extra"] == "stopped"
    assert ok(env, "health") == "healthy: 6 services\n"
    assert ok(env, "start", "extra") == "starting: extra\nready: extra\n"
