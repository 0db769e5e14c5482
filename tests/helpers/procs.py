"""Processes seen from the host: /proc fields, children, CPU time, what a process
is blocked in; and a PID namespace's processes, found as the tree below its
init's host pid (every process of a namespace descends from its init): zombies,
a service's processes by a marker in their command line, the init's fds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.helpers.deadlines import DEFAULT_TIMEOUT, wait_until

if TYPE_CHECKING:  # cli imports this module
    from tests.helpers.cli import Proc


def host_children(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].decode().split()


def proc_state(pid: int) -> str | None:
    fields = proc_stat(pid)
    return fields[0] if fields else None


def proc_ppid(pid: int) -> int | None:
    fields = proc_stat(pid)
    return int(fields[1]) if fields else None


def proc_status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


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


def assert_no_zombies(proc: Proc, timeout: float = DEFAULT_TIMEOUT) -> None:
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


def assert_no_traceback(output: str, injected: int = 0) -> None:
    """pyinit did not crash nor report an internal error, but for ``injected`` faults."""
    assert output.count("Traceback (most recent call last)") == injected, output[-4000:]
    assert output.count("internal error") == injected, output[-4000:]


def fail_with(proc: Proc, message: str) -> None:
    lines = proc.out.lines[-40:] if proc.out is not None else []
    pytest.fail(f"{message}; last lines: {lines!r}")
