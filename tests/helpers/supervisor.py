"""Supervisor mode from the outside: write a services.yaml, start ``pyinit -c``
as PID 1 with a runtime directory of the test's own, release services through
fifos, and ask the running pyinit how it is doing (status file, control-socket
clients run on the host: the socket is a file in the test's directory).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from tests.helpers.cli import DEVNULL, PYINIT, Proc, Runner
from tests.helpers.deadlines import DEFAULT_TIMEOUT, wait_until


def write_config(tmp_path: Path, text: str, name: str = "services.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def start(runner: Runner, config: Path, *args: str, **kwargs: Any) -> Proc:
    """``pyinit -c CONFIG ARGS`` as PID 1 of a new PID namespace."""
    return runner.start(["-c", str(config), *args], **kwargs)


def runtime_env(tmp_path: Path) -> dict[str, str]:
    """The environment for pyinit and `pyinit health`: a runtime dir of this test's own."""
    rt = tmp_path / "rt"
    rt.mkdir(exist_ok=True)
    return {**os.environ, "PYINIT_RUNTIME_DIR": str(rt)}


def start_pyinit(cli: Runner, tmp_path: Path, config: Path, *args: str) -> Proc:
    """``pyinit -c CONFIG ARGS`` as PID 1 with its own runtime dir; stderr (pyinit's
    events) merged into stdout (the services' lines), so ``proc.out`` keeps the order."""
    return cli.start(
        ["-c", str(config), *args], env=runtime_env(tmp_path), stderr=subprocess.STDOUT
    )


def make_fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def write_fifo(path: Path, text: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Write ``text`` to a fifo once a reader has it open (ENXIO until then)."""

    def try_open() -> int | None:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return None
            raise

    fd: int = wait_until(lambda: try_open(), f"a reader on {path}", timeout)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def read_status(tmp_path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((tmp_path / "rt" / "status.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data


def service_status(tmp_path: Path, name: str) -> dict[str, Any]:
    status = read_status(tmp_path)
    assert status is not None, "no status file"
    entry: dict[str, Any] = status["services"][name]
    return entry


def wait_status(tmp_path: Path, name: str, timeout: float = DEFAULT_TIMEOUT, **want: Any) -> Any:
    """Wait until service ``name`` in the status file has every field in ``want``.

    The status file has no change notification; this polls with a deadline."""

    def check() -> dict[str, Any] | None:
        status = read_status(tmp_path)
        if status is None or name not in status.get("services", {}):
            return None
        entry: dict[str, Any] = status["services"][name]
        return entry if all(entry.get(k) == v for k, v in want.items()) else None

    return wait_until(check, f"{name} with {want} in the status file", timeout)


def pyinit_health(tmp_path: Path) -> tuple[int, str]:
    """Run ``pyinit health`` on the host against this test's runtime dir."""
    done = subprocess.run(
        [*PYINIT, "health"],
        env=runtime_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def status_json(tmp_path: Path, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """``pyinit status --json`` of the pyinit using this test's runtime dir; must answer."""
    done = subprocess.run(
        [*PYINIT, "status", "--json"],
        env=runtime_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"pyinit status: {done.returncode}: {done.stdout}{done.stderr}"
    data: dict[str, Any] = json.loads(done.stdout)
    return data


CLIENT_TIMEOUT = 15.0


def ctl(env: dict[str, str], *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the client ``pyinit ARGS`` to completion."""
    return subprocess.run(
        [*PYINIT, *args],
        env=env,
        stdin=DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
        **kwargs,
    )


def ok(env: dict[str, str], *args: str) -> str:
    """``pyinit ARGS`` that must exit 0; its stdout."""
    done = ctl(env, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def status(env: dict[str, str]) -> dict[str, Any]:
    """The services of ``pyinit status --json`` (a client with ``env``)."""
    services: dict[str, Any] = json.loads(ok(env, "status", "--json"))["services"]
    return services


def pids(env: dict[str, str]) -> dict[str, int | None]:
    return {name: svc["pid"] for name, svc in status(env).items()}


def boot(runner: Runner, tmp_path: Path, env: dict[str, str], text: str, *ready: str) -> Proc:
    """Start ``pyinit -c`` with ``text`` as services.yaml and wait until ``ready``
    are. The socket exists before the first service starts, so the first
    ``started`` line means the clients can connect."""
    config = write_config(tmp_path, text)
    proc = start(runner, config, env=env, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(r": started \(pid \d+\)")
    if ready:
        ok(env, "wait", "--ready", *ready, "--timeout", "10s")
    return proc


def stop_pyinit(proc: Proc) -> int:
    proc.signal(15)
    code, _out, _err = proc.finish()
    return code
