"""Unit tests for ``pyinit check``: summary on success, every problem and exit 2 otherwise."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pyinit.check import check_main

VALID = """\
settings:
  shutdown_timeout: 20s
services:
  migrate:
    command: ["python", "manage.py", "migrate"]
    type: oneshot
  cache:
    command: redis-server --save ""
    restart: always
  web:
    command: ["gunicorn", "app:app"]
    depends_on:
      migrate: {condition: service_completed_successfully}
      cache: {condition: service_started}
    environment: {SECRET_KEY: hunter2, PORT: "8000"}
    restart: on-failure
    critical: true
"""


def write(tmp_path: Path, text: str, name: str = "services.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_valid_file_prints_summary_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A valid file: exit 0, one line per service and the start order as tiers."""
    path = write(tmp_path, VALID)
    assert check_main([path]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == (
        f"{path}: valid, 3 services (shutdown_timeout 20s, log_format text)\n"
        "  migrate  oneshot, restart no, no dependencies\n"
        "  cache    longrun, restart always, no dependencies\n"
        "  web      longrun, restart on-failure, depends on migrate "
        "(service_completed_successfully), cache (service_started), critical, "
        "2 environment variables\n"
        "start order: [migrate, cache] -> [web]\n"
    )


def test_summary_never_prints_environment_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Environment values may be secrets: only their count appears."""
    assert check_main([write(tmp_path, VALID)]) == 0
    out, _ = capsys.readouterr()
    assert "hunter2" not in out and "SECRET_KEY" not in out


def test_problems_go_to_stderr_with_a_count_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid file: every problem on stderr, one a line, then a count; exit 2."""
    path = write(
        tmp_path,
        """\
        services:
          web:
            comand: [a]
            restart: allways
        """,
    )
    assert check_main([path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:2: services.web.command: required key missing",
        f"{path}:3: services.web.comand: unknown key; did you mean 'command'?",
        f"{path}:4: services.web.restart: expected one of no, on-failure, always, "
        "unless-stopped; got 'allways'; did you mean 'always'?",
        f"{path}: 3 problems",
    ]


def test_syntax_error_is_one_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A YAML syntax error is reported like any problem, with no traceback."""
    path = write(tmp_path, "services: [\n")
    assert check_main([path]) == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert err.splitlines()[-1] == f"{path}: 1 problem"
    assert err.startswith(f"{path}:2: YAML syntax error: ")


def test_missing_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that cannot be read: one line on stderr, exit 2."""
    path = str(tmp_path / "nope.yaml")
    assert check_main([path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"pyinit check: cannot read {path}: No such file or directory\n"


def test_default_file_comes_from_pyinit_config_then_services_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without FILE, $PYINIT_CONFIG is checked, else ./services.yaml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYINIT_CONFIG", raising=False)
    assert check_main([]) == 2
    assert "cannot read services.yaml" in capsys.readouterr().err
    write(tmp_path, "services: {a: {command: [a]}}\n", "other.yaml")
    monkeypatch.setenv("PYINIT_CONFIG", "other.yaml")
    assert check_main([]) == 0
    assert capsys.readouterr().out.startswith("other.yaml: valid, 1 service ")


def test_usage_errors_exit_2_and_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown option is a usage error; --help prints usage. (Two files merge:
    missing ones are named.)"""
    assert check_main(["a.yaml", "b.yaml"]) == 2
    assert "a.yaml: cannot read" in capsys.readouterr().err
    assert check_main(["--bogus"]) == 2
    assert "unknown option" in capsys.readouterr().err
    assert check_main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("Usage: pyinit check [--print] [FILE...]")


def test_summary_shows_ready_source_and_healthcheck(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each service's readiness source and healthcheck appear briefly; long probe
    commands are cut."""
    path = write(
        tmp_path,
        """\
        services:
          cache:
            command: [redis-server]
            ready: {tcp: 6379}
            healthcheck: {test: [CMD, redis-cli, ping], interval: 10s}
          api:
            command: [api]
            ready: {notify: true, watchdog: 30s, timeout: 0}
            healthcheck:
              test: ["CMD-SHELL", "curl -f http://localhost:8000/health || exit 1"]
          web:
            command: [web]
            ready: {http: "http://127.0.0.1:8080/ready", expect_status: 204, interval: 500ms}
            depends_on:
              cache: {condition: service_ready}
              api: {condition: service_healthy}
          logs:
            command: [logs]
            ready: {log_line: "listening on \\\\d+", timeout: 2m}
          fd:
            command: [fd]
            ready: {fd: 3}
        """,
    )
    assert check_main([path]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[1:6] == [
        "  cache  longrun, restart no, no dependencies, ready: tcp 127.0.0.1:6379 every 1s, "
        "healthcheck: exec redis-cli ping every 10s",
        "  api    longrun, restart no, no dependencies, ready: notify (watchdog 30s, "
        "no timeout), healthcheck: exec sh -c 'curl -f http://localhost:8000/ ... every 30s",
        "  web    longrun, restart no, depends on cache (service_ready), api "
        "(service_healthy), ready: http http://127.0.0.1:8080/ready every 500ms (expect 204)",
        '  logs   longrun, restart no, no dependencies, ready: log_line "listening on \\d+" '
        "(timeout 120s)",
        "  fd     longrun, restart no, no dependencies, ready: fd 3",
    ]
