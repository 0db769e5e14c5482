"""Helpers for the health and readiness end-to-end tests: free ports, a private
runtime directory per run (status file, notify sockets), fifos the test writes
to release a service, the status file and ``pyinit health``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    DEFAULT_TIMEOUT,
    PYINIT,
    LineReader,
    Proc,
    Runner,
    helper,
    wait_until,
)
from tests.e2e.supervisor_helpers import argv


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def sdnotify(*args: object) -> str:
    """A ``command:`` value running tests/helpers/sdnotify.py."""
    return argv(*helper("sdnotify.py", *args))


def notify_address(path: str) -> str:
    """The sendto() address of a $NOTIFY_SOCKET value (``@``: abstract)."""
    return "\0" + path[1:] if path.startswith("@") else path


def send_datagram(path: str, message: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message, notify_address(path))


def descendants(pid: int) -> list[tuple[int, str]]:
    """(host pid, cmdline) of every descendant of ``pid``: in a PID namespace, all of
    its processes descend from its init."""
    import psutil

    found = []
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for kid in kids:
        try:
            found.append((kid.pid, " ".join(kid.cmdline())))
        except psutil.NoSuchProcess:
            continue
    return found


def wait_line(reader: LineReader, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Index of the first line ever read that matches ``pattern`` (re.search), reading
    more as it comes; unlike ``expect`` it also finds lines already consumed, so
    indexes can be compared to check the order of events."""
    import time

    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    checked = 0
    while True:
        for i in range(checked, len(reader.lines)):
            if regex.search(reader.lines[i]):
                return i
        checked = len(reader.lines)
        if reader.eof:
            pytest.fail(f"EOF before {pattern!r}; got {reader.lines!r}")
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([reader.fd], [], [], remaining)[0]:
            pytest.fail(f"{pattern!r} not seen in {timeout}s; got {reader.lines!r}")
        reader.read_available()
