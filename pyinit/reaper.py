"""The only caller of ``waitpid`` in pyinit, and the decoded form of an exit status."""

from __future__ import annotations

import os

from pyinit.signals import signal_name


class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it. Immutable.

    A plain class rather than a dataclass: importing dataclasses costs wrapper
    mode several milliseconds of start-up.
    """

    __slots__ = ("code", "signal", "core_dumped")
    code: int | None
    signal: int | None
    core_dumped: bool

    def __init__(
        self, code: int | None = None, signal: int | None = None, core_dumped: bool = False
    ) -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "signal", signal)
        object.__setattr__(self, "core_dumped", core_dumped)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ExitStatus is immutable; cannot set {name}")

    def _key(self) -> tuple[int | None, int | None, bool]:
        return (self.code, self.signal, self.core_dumped)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExitStatus) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = f"code={self.code!r}, signal={self.signal!r}, core_dumped={self.core_dumped!r}"
        return f"ExitStatus({fields})"

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status), core_dumped=os.WCOREDUMP(status))
        return cls(code=os.waitstatus_to_exitcode(status))

    @property
    def shell_code(self) -> int:
        """The code a shell would report: the exit code, or 128+N for signal N."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code if self.code is not None else 0

    @property
    def success(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        if self.signal is not None:
            core = ", core dumped" if self.core_dumped else ""
            return f"killed by {signal_name(self.signal)}{core}"
        return f"status {self.code}"


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
