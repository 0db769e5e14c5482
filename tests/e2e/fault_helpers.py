"""Helpers for the fault-injection end-to-end tests (tests/e2e/test_faults*.py).

Every process of a PID namespace descends from its init, so from the host the
namespace is the process tree below the init's host pid: that is where these
helpers look for zombies, for a service's processes (by a marker in their
command line) and for the init's own file descriptors.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEFAULT_TIMEOUT, PYINIT, LineReader, Proc, wait_until
from tests.e2e.health_helpers import runtime_env


def tree(proc: Proc) -> list[tuple[int, str, str]]:
    """(host pid, state letter, command line) of every process below the init."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[tuple[int, str, str]] = []
    stack = [proc.init_pid]
    while stack:
        for pid in children.get(stack.pop(), []):
            stack.append(pid)
            try:
                raw = Path(f"/proc/{pid}/stat").read_bytes()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            state = raw[raw.rfind(b")") + 2 :].split()[0].decode()
            found.append((pid, state, cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def zombies(proc: Proc) -> list[tuple[int, str, str]]:
    return [p for p in tree(proc) if p[1] == "Z"]


def assert_no_zombies(proc: Proc, timeout: float = 5.0) -> None:
    """No zombie in the namespace (one that exited just now gets ``timeout`` to be
    reaped: there is no event for "reaped" to wait on)."""
    wait_until(lambda: not zombies(proc), "no zombie in the namespace", timeout)


def live(proc: Proc, marker: str) -> list[int]:
    """Host pids of the live (not zombie) processes whose command line holds ``marker``."""
    return [pid for pid, state, cmd in tree(proc) if marker in cmd and state != "Z"]


def one_live(proc: Proc, marker: str, other_than: int = 0, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Wait for exactly one live process with ``marker`` (not ``other_than``): its pid."""

    def check() -> int | None:
        if proc.out is not None:
            proc.out.read_available()  # keep pyinit's output pipe from filling up
        pids = [p for p in live(proc, marker) if p != other_than]
        return pids[0] if len(pids) == 1 else None

    pid: int = wait_until(check, f"a process running {marker!r}", timeout)
    return pid


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def status(tmp_path: Path, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
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


def count_lines(path: Path, text: str) -> int:
    try:
        return path.read_text().splitlines().count(text)
    except FileNotFoundError:
        return 0


def assert_no_traceback(output: str, injected: int = 0) -> None:
    """pyinit did not crash nor report an internal error, but for ``injected`` faults."""
    assert output.count("Traceback (most recent call last)") == injected, output[-4000:]
    assert output.count("internal error") == injected, output[-4000:]


def fail_with(proc: Proc, message: str) -> None:
    lines = proc.out.lines[-40:] if proc.out is not None else []
    pytest.fail(f"{message}; last lines: {lines!r}")


def wait_line_after(
    reader: LineReader, pattern: str, start: int, timeout: float = DEFAULT_TIMEOUT
) -> int:
    """Index of the first line at or after ``start`` matching ``pattern`` (re.search),
    reading more as it comes (``start = len(reader.lines)``: a line still to come)."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    checked = start
    while True:
        for i in range(checked, len(reader.lines)):
            if regex.search(reader.lines[i]):
                return i
        checked = max(checked, len(reader.lines))
        remaining = deadline - time.monotonic()
        if reader.eof or remaining <= 0:
            pytest.fail(f"{pattern!r} not seen in {timeout}s; got {reader.lines[start:]!r}")
        if select.select([reader.fd], [], [], remaining)[0]:
            reader.read_available()
