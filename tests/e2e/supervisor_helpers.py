"""Helpers for supervisor-mode end-to-end tests: write a services.yaml, start
``pyinit -c`` as PID 1 of a fresh PID namespace, and observe what the services
did through the files they write.

Service commands are written as JSON lists (valid YAML flow sequences) so no
YAML quoting is involved; every ``$`` is doubled because the config loader
interpolates ``$VAR`` and rejects a bare ``$!``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEFAULT_TIMEOUT, PYINIT, Proc, Runner, unshare_prefix, wait_until

PY = sys.executable  # the real interpreter: the pyenv shim for python3 is slow to start


def sh(script: str) -> str:
    """A ``command:`` value running ``script`` with sh, ``$`` escaped for the loader."""
    return json.dumps(["sh", "-c", script.replace("$", "$$")])


def argv(*args: object) -> str:
    """A ``command:`` value for an argv list."""
    return json.dumps([str(a).replace("$", "$$") for a in args])


def py(code: str) -> str:
    """A ``command:`` value running Python ``code`` with this interpreter."""
    return argv(PY, "-c", textwrap.dedent(code))


def write_config(tmp_path: Path, text: str, name: str = "services.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def start(runner: Runner, config: Path, *args: str, **kwargs: Any) -> Proc:
    """``pyinit -c CONFIG ARGS`` as PID 1 of a new PID namespace."""
    return runner.start(["-c", str(config), *args], **kwargs)


@dataclass
class RawDone:
    code: int
    out: bytes
    err: bytes
    elapsed: float


def run_raw(
    config: Path, *args: str, timeout: float = DEFAULT_TIMEOUT, namespace: bool = True
) -> RawDone:
    """Run ``pyinit -c CONFIG ARGS`` to completion; stdout and stderr as bytes."""
    prefix = unshare_prefix() if namespace else []
    began = time.monotonic()
    try:
        done = subprocess.run(
            [*prefix, *PYINIT, "-c", str(config), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"pyinit still running after {timeout}s; stderr: {exc.stderr!r}")
    return RawDone(done.returncode, done.stdout, done.stderr, time.monotonic() - began)


def file_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_for_lines(
    path: Path, wanted: Sequence[str], timeout: float = DEFAULT_TIMEOUT
) -> list[str]:
    """Wait until every line in ``wanted`` is in ``path``; return all its lines.

    Services write these files; there is no event to wait on from outside the
    namespace, so this polls with a deadline.
    """

    def check() -> list[str] | None:
        lines = file_lines(path)
        return lines if all(w in lines for w in wanted) else None

    result: list[str] = wait_until(check, f"{list(wanted)} in {path}", timeout)
    return result


def wait_for_count(path: Path, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Wait until ``path`` holds at least ``count`` lines."""

    def check() -> list[str] | None:
        lines = file_lines(path)
        return lines if len(lines) >= count else None

    result: list[str] = wait_until(check, f"{count} lines in {path}", timeout)
    return result


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (host pid), from /proc/PID/stat."""
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    fields = raw[raw.rfind(b")") + 2 :].split()
    # After the command name: state is field 3, utime 14, stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def blocked_writing(pid: int) -> bool:
    """Whether ``pid`` sleeps in write(2) on a full pipe."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text().strip()
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    if wchan in ("pipe_write", "pipe_wait", "pipe_wait_writable"):
        return True
    # wchan may be hidden ("0"); /proc/PID/syscall names the blocking call
    # (1 is write on x86_64, 64 on arm64) and its fd (1, the pipe to pyinit).
    return bool(syscall) and syscall[0] in ("1", "64") and syscall[1] == "0x1"


def host_pids_running(cmdline_marker: str) -> list[int]:
    """Host pids whose command line contains ``cmdline_marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline_marker.encode() in cmdline:
            found.append(int(entry))
    return found


RECORDER = """
import os, signal, sys
name, log, names = sys.argv[1], sys.argv[2], sys.argv[3:]

def note(text):
    with open(log, "a") as f:
        f.write(f"{name} {text}\\n")

def on_signal(signum, frame):
    note("got " + signal.Signals(signum).name)

for sig in names:
    signal.signal(signal.Signals[sig], on_signal)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
note("up")
while True:
    signal.pause()
"""


def recorder(name: str, log: Path, *signals: str) -> str:
    """A ``command:`` value for a service that notes ``NAME up`` in ``log`` once
    its handlers are in place, ``NAME got SIGX`` for each of ``signals``, and
    exits 0 on SIGTERM. One process, no children: no signal can fall between a
    fork and an exec, as it can in a shell's ``while :; do sleep & wait; done``."""
    return argv(PY, "-c", RECORDER, name, log, *signals)
