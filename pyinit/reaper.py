"""The only caller of ``waitpid`` in pyinit. The decoded form of an exit status is
``pyinit.exitstatus.ExitStatus`` (pure), re-exported here for existing importers."""

from __future__ import annotations

import os

from pyinit.exitstatus import ExitStatus as ExitStatus


class Reaped:
    __slots__ = ("pid", "status")

    def __init__(self, pid: int, status: ExitStatus) -> None:
        self.pid = pid
        self.status = status


def reap_raw() -> tuple[list[tuple[int, int]], bool]:
    """Collect every child that has exited, without blocking: (pid, wait status)
    pairs, and whether no child at all is left (ECHILD), which is how pyinit
    knows the container is empty: orphans are re-parented to PID 1 (or to a
    subreaper) before their parent's exit is reported. Statuses stay raw so that
    wrapper mode decodes only the one it reports (2,000 orphans, 2,000 objects
    saved)."""
    reaped: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped, True
        if pid == 0:
            return reaped, False
        reaped.append((pid, status))


# Bound once: reap_watching runs once per orphan in a storm, and a module
# attribute lookup per waitpid is measurable there.
_waitpid = os.waitpid
_WNOHANG = os.WNOHANG


def reap_watching(watched: int | None) -> tuple[int | None, bool]:
    """``reap_raw`` for wrapper mode, which reports one pid only: collect every
    exited child; return the wait status of ``watched`` if it was among them
    (else None), and whether no child is left. Nothing is allocated per orphan."""
    found = None
    while True:
        try:
            pid, status = _waitpid(-1, _WNOHANG)
        except ChildProcessError:
            return found, True
        if pid == 0:
            return found, False
        if pid == watched:
            found = status


def reap() -> tuple[list[Reaped], bool]:
    """``reap_raw`` with each status decoded."""
    raw, none_left = reap_raw()
    return [Reaped(pid, ExitStatus.from_wait_status(status)) for pid, status in raw], none_left


def children_left() -> bool:
    """Whether any child exists, without taking a status ``reap`` has not routed.

    WNOWAIT leaves an exited child in place for the next ``reap``.
    """
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def prctl(option: int, value: int) -> None:
    """Call prctl(2); ctypes is imported only when a caller needs it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def become_subreaper() -> None:
    """Have orphans of our descendants re-parented to us even when we are not PID 1."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)
