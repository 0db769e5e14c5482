"""Supervisor mode end to end: start order, dependency failures, exit codes, the main command.

Each test runs the installed CLI as PID 1 of a fresh PID namespace with a
services.yaml written to tmp_path, and observes the services through the files
they write and the lines pyinit prints.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers.cli import PYTHON, Runner, run_raw
from tests.helpers.commands import argv, recorder, sh, sig_lines
from tests.helpers.deadlines import file_lines, wait_for_file, wait_for_lines
from tests.helpers.supervisor import start, write_config


def _index(lines: list[str], pattern: str) -> int:
    """Index of the first line containing ``pattern``; fails when absent."""
    for i, line in enumerate(lines):
        if pattern in line:
            return i
    pytest.fail(f"{pattern!r} not in {lines!r}")


def _wait_then(log: Path, peer: str, me: str) -> str:
    """sh: note ``me`` started, wait (up to 5 s) for ``peer`` to start, note it, stay up."""
    return argv(*sh(
        f"echo '{me} start' >> {log}; i=0; "
        f"while ! grep -qx '{peer} start' {log}; do "
        f"i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.05; done; "
        f"grep -qx '{peer} start' {log} && echo '{me} saw {peer}' >> {log}; "
        "exec sleep 1000"
    ))


@pytest.mark.timeout(20)
def test_start_order_and_parallel_start(cli: Runner, tmp_path: Path) -> None:
    """A oneshot gates its service_completed_successfully dependants: they start only
    after it completed. Independent services start at once (each sees the other
    running before it goes on). ``b`` depends on ``a`` with service_started: when
    ``b`` starts, ``a``'s process has already exec'ed."""
    log = tmp_path / "order.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          setup:
            type: oneshot
            command: {
            argv(*sh(f"echo 'setup start' >> {log}; sleep 0.2; echo 'setup done' >> {log}"))
        }
          x:
            command: {_wait_then(log, "y", "x")}
            depends_on: {{setup: {{condition: service_completed_successfully}}}}
          y:
            command: {_wait_then(log, "x", "y")}
            depends_on: {{setup: {{condition: service_completed_successfully}}}}
          a:
            command: {argv(PYTHON, "-c", "import time; time.sleep(1000)", "a-marker")}
          b:
            command: {
            argv(*sh(
                f"grep -qs 'a-marke[r]' /proc/[0-9]*/cmdline && echo 'b saw a' >> {log}; "
                f"echo 'b start' >> {log}; exec sleep 1000"
            ))
        }
            depends_on: [a]
        """,
    )
    proc = start(cli, config)
    lines = wait_for_lines(log, ["x saw y", "y saw x", "b start"])
    assert lines.index("setup start") < lines.index("setup done")
    assert lines.index("setup done") < lines.index("x start")
    assert lines.index("setup done") < lines.index("y start")
    assert "b saw a" in lines, f"b started before a exec'ed: {lines!r}"
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    events = err.splitlines()
    assert _index(events, "a: started") < _index(events, "b: started")
    assert _index(events, "setup: completed") < _index(events, "x: started")
    assert code == 0, err


@pytest.mark.timeout(20)
def test_dependency_that_cannot_hold_fails_dependant(tmp_path: Path) -> None:
    """A oneshot that exits 1 can never satisfy service_completed_successfully: its
    dependant is failed (never started) with a line naming the dependency and why,
    the other services run on, and pyinit exits 1 once nothing is left to run."""
    ran = tmp_path / "web-ran"
    config = write_config(
        tmp_path,
        f"""
        services:
          setup:
            type: oneshot
            command: {argv(*sh("exit 1"))}
          web:
            command: {argv(*sh(f"touch {ran}"))}
            depends_on:
              setup: {{condition: service_completed_successfully}}
          other:
            command: {argv("sleep", "0.3")}
        """,
    )
    done = run_raw(config)
    err = done.err.decode()
    events = err.splitlines()
    assert not ran.exists(), "web started although its dependency failed"
    assert (
        "pyinit: web: failed (dependency setup did not complete successfully (status 1))" in events
    ), err
    assert _index(events, "other: exited (status 0)") < _index(events, "no service left to run")
    assert "Traceback" not in err
    assert done.code == 1, err


@pytest.mark.timeout(20)
def test_critical_service_exit_code_ends_container(tmp_path: Path) -> None:
    """A ``critical: true`` service that ends for good with status 7 stops the other
    services (they get their stop signal) and gives the container exit code 7."""
    log = tmp_path / "events.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          helper:
            command: {
            argv(
                *sh(
                    f"trap 'echo stopped >> {log}; exit 0' TERM; echo up >> {log}; "
                    "sleep 1000 & wait"
                )
            )
        }
          crit:
            critical: true
            command: {
            argv(*sh(
                f"i=0; while ! grep -qx up {log} && [ $i -lt 100 ]; do "
                "i=$((i+1)); sleep 0.05; done; exit 7"
            ))
        }
        """,
    )
    done = run_raw(config)
    err = done.err.decode()
    assert file_lines(log) == ["up", "stopped"], err
    assert "crit is critical and ended (failed); stopping the container with status 7" in err
    assert done.code == 7, err


@pytest.mark.timeout(20)
def test_only_successful_oneshots_exit_zero(tmp_path: Path) -> None:
    """When every service is a oneshot and all succeed (in dependency order), pyinit
    exits 0 as soon as the last one completed."""
    log = tmp_path / "steps.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          first:
            type: oneshot
            command: {argv(*sh(f"echo first >> {log}"))}
          second:
            type: oneshot
            command: {argv(*sh(f"echo second >> {log}"))}
            depends_on: {{first: {{condition: service_completed_successfully}}}}
          third:
            type: oneshot
            command: {argv(*sh(f"echo third >> {log}"))}
            depends_on: {{second: {{condition: service_completed_successfully}}}}
        """,
    )
    done = run_raw(config)
    assert file_lines(log) == ["first", "second", "third"]
    assert done.code == 0, done.err
    assert done.elapsed < 5.0


@pytest.mark.timeout(20)
def test_main_command_runs_after_services_and_owns_exit_and_signals(
    cli: Runner, tmp_path: Path
) -> None:
    """``pyinit -c FILE -- CMD``: CMD starts once the services are up (it sees the
    file a oneshot wrote), a SIGUSR1 sent to pyinit reaches CMD and not the
    services, and the container exits with CMD's status (5)."""
    ready = tmp_path / "prepared"
    log = tmp_path / "helper.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          setup:
            type: oneshot
            command: {argv(*sh(f"sleep 0.2; echo ok > {ready}"))}
          helper:
            command: {
            argv(*recorder(signal.SIGUSR1, role="helper", log=log, exit_on=signal.SIGTERM))
        }
        """,
    )
    main = (
        f"test -f {ready} || {{ echo 'main: setup did not run first'; exit 99; }}; "
        "trap 'echo main got USR1; exit 5' USR1; echo main ready; "
        "while :; do sleep 1000 & wait; done"
    )
    proc = start(cli, config, "--", "sh", "-c", main)
    assert proc.out is not None and proc.err is not None
    proc.out.expect("^main ready$")
    wait_for_file(log, "ready helper ")
    proc.signal(signal.SIGUSR1)
    proc.out.expect("^main got USR1$")
    code, _, err = proc.finish()
    reached = sig_lines("helper", [signal.SIGUSR1])[0] in file_lines(log)
    assert not reached, "the signal reached a service"
    events = err.splitlines()
    assert _index(events, "setup: completed") < _index(events, "main command sh started")
    assert code == 5, err


@pytest.mark.timeout(20)
def test_main_command_waits_for_failed_oneshot_never_starts(tmp_path: Path) -> None:
    """When a oneshot the main command waits for fails, the main command is never
    started, a line says why, and the container exits 1."""
    ran = tmp_path / "main-ran"
    config = write_config(
        tmp_path,
        f"""
        services:
          setup:
            type: oneshot
            command: {argv(*sh("exit 4"))}
        """,
    )
    done = run_raw(config, "--", "touch", str(ran))
    err = done.err.decode()
    assert not ran.exists(), "the main command ran although setup failed"
    assert "main command not started: dependency setup did not complete successfully" in err
    assert done.code == 1, err


@pytest.mark.timeout(20)
def test_main_command_not_found_exits_127(tmp_path: Path) -> None:
    """A main command that does not exist ends the container with 127 (as a shell
    would), after a line naming it; the services are stopped."""
    log = tmp_path / "helper.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          helper:
            command: {argv(*sh(f"trap 'echo stopped >> {log}; exit 0' TERM; sleep 1000 & wait"))}
        """,
    )
    done = run_raw(config, "--", "/nonexistent/main")
    err = done.err.decode()
    assert "cannot run '/nonexistent/main': No such file or directory" in err
    assert "helper: stopped" in err, err
    assert done.code == 127, err


@pytest.mark.timeout(20)
def test_signal_without_main_command_reaches_every_service(cli: Runner, tmp_path: Path) -> None:
    """With no main command, a signal pyinit does not act on itself (SIGUSR1) is
    forwarded to every running service."""
    log = tmp_path / "events.log"

    config = write_config(
        tmp_path,
        f"""
        services:
          one:
            command: {argv(*recorder(signal.SIGUSR1, role="one", log=log, exit_on=signal.SIGTERM))}
          two:
            command: {argv(*recorder(signal.SIGUSR1, role="two", log=log, exit_on=signal.SIGTERM))}
        """,
    )
    proc = start(cli, config)
    wait_for_file(log, "ready one ")
    wait_for_file(log, "ready two ")
    proc.signal(signal.SIGUSR1)
    wait_for_lines(log, [*sig_lines("one", [signal.SIGUSR1]), *sig_lines("two", [signal.SIGUSR1])])
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err
