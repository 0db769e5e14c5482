"""Fault injection, hostile config section: files a config names that are endless
(``/dev/zero``), never written (a FIFO), oversized, or nested 10,000 deep, loaded
by ``pyinit check``, ``pyinit -c`` and a reload of a running PID 1.

While a reload is refused, the loop must keep working: a ticker service's lines
keep arriving, SIGTERM still stops pyinit promptly, and the running config stays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.cli import PYINIT, Proc, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import wait_line
from tests.helpers.procs import assert_no_traceback, tree
from tests.helpers.supervisor import runtime_env, start_pyinit, status_json, write_config

TICKER = argv(*sh("i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.02; done"))
RUNNING = f"""\
services:
  ticker:
    command: {TICKER}
"""
NESTED = "services:\n  a:\n    command: " + "[" * 10_000 + "]" * 10_000 + "\n"


def with_env_file(env_file: str) -> str:
    return RUNNING + f"  added:\n    command: [sleep, '1000']\n    env_file: {env_file}\n"


def boot(cli: Runner, tmp_path: Path) -> tuple[Proc, Path]:
    config = write_config(tmp_path, RUNNING)
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    wait_line(proc.out, r"^ticker +\| tick 3$", start=0)
    return proc, config


def ticks_go_on(proc: Proc, count: int = 10) -> None:
    """``count`` more ticker lines arrive, each within a second of the last."""
    assert proc.out is not None
    start = len(proc.out.lines)
    for _ in range(count):
        start = wait_line(proc.out, r"^ticker +\| tick \d+$", timeout=1.0, start=start) + 1


def stop_promptly(proc: Proc) -> str:
    """SIGTERM: pyinit exits 0 within a few seconds; its output."""
    began = time.monotonic()
    proc.signal(signal.SIGTERM)
    code, out, _ = proc.finish(timeout=5)
    assert time.monotonic() - began < 5, out[-2000:]
    assert code == 0, out[-2000:]
    assert_no_traceback(out)
    return out


def client(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYINIT, *args],
        env=runtime_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_reload_adding_an_endless_env_file(cli: Runner, tmp_path: Path, kind: str) -> None:
    """A reload (SIGHUP) adding a service whose env_file is /dev/zero, or a FIFO no
    one writes: refused with a problem line naming file:line and key; the ticker's
    lines keep coming, the running config stays, SIGTERM stops pyinit promptly."""
    env_file = "/dev/zero"
    what = "a character device"
    if kind == "fifo":
        env_file = str(tmp_path / "env.fifo")
        os.mkfifo(env_file)
        what = "a FIFO \\(named pipe\\)"
    proc, config = boot(cli, tmp_path)
    assert proc.out is not None
    config.write_text(with_env_file(env_file))
    start = len(proc.out.lines)
    proc.signal(signal.SIGHUP)
    wait_line(
        proc.out,
        rf"reload: {config}:6: services\.added\.env_file: cannot read env file "
        rf"'{env_file}': {what}, not a regular file$",
        start=start,
        timeout=5,
    )
    wait_line(proc.out, r"reload: 1 problem; keeping the running configuration$", start=start)
    ticks_go_on(proc)
    assert list(status_json(tmp_path)["services"]) == ["ticker"]
    stop_promptly(proc)


@pytest.mark.timeout(30)
def test_reload_client_answer_for_an_endless_env_file(cli: Runner, tmp_path: Path) -> None:
    """``pyinit reload`` gets the problem once the load is over: exit 1, the
    problem and 'reload refused' on stderr; the ticker never stopped."""
    proc, config = boot(cli, tmp_path)
    config.write_text(with_env_file("/dev/zero"))
    done = client(tmp_path, "reload")
    assert done.returncode == 1, done
    assert done.stderr.splitlines() == [
        f"pyinit: {config}:6: services.added.env_file: cannot read env file '/dev/zero': "
        "a character device, not a regular file",
        "pyinit: reload refused; the running configuration is kept",
    ]
    ticks_go_on(proc)
    stop_promptly(proc)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_check_on_an_endless_file(cli: Runner, tmp_path: Path, kind: str) -> None:
    """``pyinit check`` on a config whose env_file, or which itself, is /dev/zero or
    a FIFO: exit 2 at once with one problem line."""
    target = "/dev/zero"
    what = "a character device, not a regular file"
    if kind == "fifo":
        target = str(tmp_path / "x.fifo")
        os.mkfifo(target)
        what = "a FIFO (named pipe), not a regular file"
    config = write_config(tmp_path, with_env_file(target))
    done = cli.run(["check", str(config)], namespace=False, timeout=10)
    assert done.code == 2 and done.elapsed < 5, done
    assert done.err.splitlines() == [
        f"{config}:6: services.added.env_file: cannot read env file '{target}': {what}",
        f"{config}: 1 problem",
    ]
    done = cli.run(["check", target], namespace=False, timeout=10)
    assert done.code == 2 and done.elapsed < 5, done
    assert done.err.splitlines() == [f"pyinit check: cannot read {target}: {what}"]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("how", ["check", "-c"])
def test_nested_command_is_one_problem(cli: Runner, tmp_path: Path, how: str) -> None:
    """``command:`` nested 10,000 lists deep: exit 2, one problem line, no traceback."""
    config = write_config(tmp_path, NESTED)
    args = ["check", str(config)] if how == "check" else ["-c", str(config)]
    done = cli.run(args, namespace=how == "-c", timeout=10)
    assert done.code == 2, done
    assert "Traceback" not in done.err and "RecursionError" not in done.err, done.err[-2000:]
    problem = (
        f"{config}:3: services.a.command[0][0][0][0][0][0][0][0][0][0][0][0][0]...: "
        "nested deeper than 64 levels"
    )
    assert done.err.splitlines()[0] == problem
    assert len(done.err.splitlines()) == 2, done.err  # the problem, then the count


@pytest.mark.timeout(30)
def test_reload_of_a_nested_file(cli: Runner, tmp_path: Path) -> None:
    """A reload of the 10,000-deep file: one problem line, no internal error."""
    proc, config = boot(cli, tmp_path)
    assert proc.out is not None
    config.write_text(NESTED)
    start = len(proc.out.lines)
    proc.signal(signal.SIGHUP)
    wait_line(proc.out, r"nested deeper than 64 levels$", timeout=5, start=start)
    end = wait_line(proc.out, r"reload: 1 problem; keeping", start=start)
    assert not [line for line in proc.out.lines[start:end] if "Traceback" in line]
    ticks_go_on(proc)
    stop_promptly(proc)


@pytest.mark.timeout(30)
def test_reload_of_an_oversized_file(cli: Runner, tmp_path: Path) -> None:
    """A config over 4 MiB: the reload is refused with one clear line."""
    proc, config = boot(cli, tmp_path)
    assert proc.out is not None
    config.write_text(RUNNING + "#" * (4 * 1024 * 1024))
    start = len(proc.out.lines)
    proc.signal(signal.SIGHUP)
    wait_line(
        proc.out,
        rf"reload: {config}: cannot read: too large \(4\.0 MiB; the limit is 4 MiB\)$",
        start=start,
        timeout=5,
    )
    ticks_go_on(proc)
    stop_promptly(proc)


@pytest.mark.timeout(30)
def test_reload_with_many_problems_shows_fifty(cli: Runner, tmp_path: Path) -> None:
    """300 invalid services (600 problems): the log and the client show the first 50
    and '... and 550 more problems'."""
    proc, config = boot(cli, tmp_path)
    assert proc.out is not None
    config.write_text("services:\n" + "".join(f"  s{i}: {{restart: x}}\n" for i in range(300)))
    start = len(proc.out.lines)
    done = client(tmp_path, "reload")
    assert done.returncode == 1, done
    err = done.stderr.splitlines()
    assert len(err) == 52 and err[-2:] == [
        "pyinit: ... and 550 more problems",
        "pyinit: reload refused; the running configuration is kept",
    ], err[-3:]
    end = wait_line(proc.out, r"reload: 600 problems; keeping", start=start)
    logged = [line for line in proc.out.lines[start:end] if "reload: " in line]
    assert len(logged) == 51 and logged[-1].endswith("reload: ... and 550 more problems")
    ticks_go_on(proc)
    stop_promptly(proc)


@pytest.mark.timeout(60)
def test_shutdown_during_a_load_kills_the_loader(cli: Runner, tmp_path: Path) -> None:
    """SIGTERM while a slow load runs (thousands of services): the loader is killed,
    pyinit exits 0 promptly rather than after the load."""
    proc, config = boot(cli, tmp_path)
    assert proc.out is not None
    services = "".join(
        f"  s{i}:\n    command: [sleep, '1']\n    environment: [A=1, B=2, C=3, D=4]\n"
        for i in range(6000)
    )
    config.write_text(RUNNING + services)
    proc.signal(signal.SIGHUP)

    def loaders() -> list[int]:
        return [pid for pid, state, cmd in tree(proc) if "-c" in cmd and state != "Z"]

    deadline = time.monotonic() + 10
    while not loaders():  # the loader is a fork of pyinit: same command line
        assert time.monotonic() < deadline, "no loader process seen"
        proc.out.read_available()
    out = stop_promptly(proc)
    assert "reload:" not in out.split("SIGTERM received")[-1], out[-2000:]
