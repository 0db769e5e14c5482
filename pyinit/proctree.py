"""Finding and signalling every process below pyinit, from /proc (no psutil needed)."""

from __future__ import annotations

import os

# Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ...
PPID, SESSION = 1, 3


def stat_field(pid: int, index: int) -> int | None:
    """A numeric field of /proc/<pid>/stat (PPID, SESSION), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces or parentheses: the fields resume after
    # the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[index])
    except (IndexError, ValueError):
        return None


def descendants(root: int | None = None) -> list[int]:
    """Every live process whose chain of parents reaches ``root`` (default: us)."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        ppid = stat_field(pid, PPID)
        if ppid is not None:
            children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def signal_descendants(signum: int) -> int:
    """Send ``signum`` to every process below pyinit; return how many were sent.

    As PID 1 of a namespace, ``kill(-1)`` reaches every process but us in one
    call, with no window for a fork between listing and signalling. Anywhere
    else ``kill(-1)`` would hit the whole user's session, so we walk /proc.
    """
    if os.getpid() == 1:
        targets = descendants(1)
        if targets:
            try:
                os.kill(-1, signum)
            except ProcessLookupError:
                return 0
        return len(targets)
    sent = 0
    for pid in descendants():
        try:
            os.kill(pid, signum)
            sent += 1
        except ProcessLookupError:
            pass
    return sent
