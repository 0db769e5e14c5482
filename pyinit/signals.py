"""Signal names and numbers, and the two ways pyinit takes signals.

Supervisor mode: handlers do nothing but let CPython write the signal number to a
non-blocking wake-up pipe (``signal.set_wakeup_fd``), which the loop reads like any
other fd (``SignalIntake``). Wrapper mode has nothing else to watch, so it blocks
its signals and takes them one at a time with ``sigtimedwait`` (``SignalWaiter``).
"""

from __future__ import annotations

import os

from pyinit.exitstatus import SIGNAL_NUMBERS
from pyinit.exitstatus import signal_name as signal_name

TYPE_CHECKING = False  # typing costs start-up time; annotations only
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable, Iterable
else:
    # The C module behind ``signal``: the same functions and constants, without
    # the IntEnum wrappers whose import (enum, functools, collections) would cost
    # wrapper mode about 9 ms of start-up. Type checkers see the public module.
    import _signal as signal

# Other wrapper-path modules import the module from here for the same reason.
sigmod = signal

# Names and numbers live with the pure exit-status code, which needs them too.
_NUMBERS = SIGNAL_NUMBERS

# Faults the kernel raises synchronously for pyinit's own bugs. A handler would
# turn a crash into a hang, so none is ever installed for them. Wrapper mode does
# block them, to take the ones another process sends with kill(2) and forward
# them: the kernel delivers a genuine fault even when it is blocked, with the
# default action (it unblocks the signal and resets the handler first).
SYNCHRONOUS_FAULTS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL})
UNCATCHABLE = frozenset({signal.SIGKILL, signal.SIGSTOP})
JOB_CONTROL_STOPS = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
SHUTDOWN_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def job_stop_rewrites() -> dict[int, int]:
    """dumb-init's job control: TSTP/TTIN/TTOU are forwarded as SIGSTOP, which the
    job cannot catch and ignore by accident (an orphaned group ignores TSTP)."""
    return {s: signal.SIGSTOP for s in JOB_CONTROL_STOPS}


def catchable_signals() -> list[int]:
    """Every signal pyinit may install a handler for, in numeric order."""
    excluded = SYNCHRONOUS_FAULTS | UNCATCHABLE
    return sorted(int(s) for s in signal.valid_signals() if s not in excluded)


def waitable_signals() -> list[int]:
    """Every signal wrapper mode blocks and takes with sigtimedwait: all but
    KILL and STOP, the faults included (see SYNCHRONOUS_FAULTS)."""
    return sorted(int(s) for s in signal.valid_signals() if s not in UNCATCHABLE)


def sent_by_a_process(info: signal.struct_siginfo) -> bool:
    """Whether kill(2), tgkill(2) or sigqueue(3) sent it (si_code SI_USER, SI_TKILL,
    SI_QUEUE: zero or less), rather than the kernel reporting an event of ours."""
    return info.si_code <= 0


def parse_signal(text: str, *, allow_zero: bool = False) -> int:
    """Accept ``TERM``, ``SIGTERM``, ``sigterm``, ``15`` or ``RTMIN+1``.

    Raises ValueError with a message suitable for the user.
    """
    raw = text.strip()
    if raw.isascii() and raw.isdigit():  # not '²' (a digit to isdigit(), not to int())
        num = int(raw) if len(raw) <= 20 else -1  # int() refuses 4300+ digits
        if num == 0 and allow_zero:
            return 0
        if num in signal.valid_signals() or num in UNCATCHABLE:
            return num
        raise ValueError(f"unknown signal number {raw}")
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
        base = signal.SIGRTMIN if name.startswith("SIGRTMIN") else signal.SIGRTMAX
        offset_text = name[8:]
        digits = offset_text[1:] if offset_text[:1] in ("+", "-") else offset_text
        if offset_text and not (digits.isascii() and digits.isdigit() and len(digits) <= 20):
            raise ValueError(f"unknown signal {text!r}")
        offset = int(offset_text) if offset_text else 0
        num = base + offset
        if signal.SIGRTMIN <= num <= signal.SIGRTMAX:
            return int(num)
        raise ValueError(f"real-time signal out of range: {text!r}")
    found = _NUMBERS.get(name)
    if found is None:
        raise ValueError(f"unknown signal {text!r}")
    return found


def _ignore(signum: int, frame: object) -> None:
    """The Python-level handler: the C handler already wrote to the wake-up fd."""


class HeldChildSignals:
    """SIGCHLD blocked for the span of a ``with``: the exits in the meantime stay
    pending as one SIGCHLD, delivered (one wake-up byte) when it ends. Nothing is
    lost: the next reap collects every child that exited."""

    def __enter__(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGCHLD,))

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGCHLD,))


class SignalIntake:
    """Routes the given signals through a wake-up pipe the loop can select on."""

    def __init__(self, signums: Iterable[int]) -> None:
        self.read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._signums = list(signums)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in self._signums:
            signal.signal(signum, _ignore)
        # A blocked mask survives exec: a launcher that blocked, say, SIGTERM
        # would leave it pending in pyinit forever (tini and dumb-init sigwait
        # for theirs, so they do not care). Handlers only help if unblocked.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self._signums)

    def drain(self, deliver: Callable[[int], None]) -> None:
        """Read every pending signal number and hand each to ``deliver`` in order."""
        while True:
            try:
                data = os.read(self.read_fd, 4096)
            except BlockingIOError:
                return
            if not data:
                return
            for signum in data:
                deliver(signum)

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        for signum in self._signums:
            signal.signal(signum, signal.SIG_DFL)
        os.close(self.read_fd)
        os.close(self._write_fd)


class SignalWaiter:
    """Signals as a queue: blocked, then taken one batch at a time with sigtimedwait.

    Wrapper mode has nothing to watch but signals and a timer or two, so it waits
    the way tini does: no handler, no wake-up pipe, no selector. That is three
    system calls per orphan reaped instead of eight, and the lowest forwarding
    latency Python can offer. Blocked signals are never discarded by the kernel,
    even for PID 1 (which otherwise drops signals it has no handler for), and
    spawn() clears the mask in every child.
    """

    def __init__(self, signums: Iterable[int]) -> None:
        # A tuple, not a set: every wait converts it to a sigset_t, and iterating
        # a tuple of ~60 numbers is 1.4 us faster (measured), once per orphan reaped.
        self.signals = tuple(sorted(set(signums)))
        signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)

    def wait(self, timeout: float | None) -> signal.struct_siginfo | None:
        """Block until a signal is pending or ``timeout`` passes; return what
        the kernel says of it (queued real-time signals in arrival order), or None
        on timeout."""
        if timeout is None:
            return signal.sigwaitinfo(self.signals)
        return signal.sigtimedwait(self.signals, max(0.0, timeout))


def ignored_during(signums: Iterable[int]) -> _IgnoredDuring:
    return _IgnoredDuring(list(signums))


class _IgnoredDuring:
    """Context manager: ignore signals for the span of a syscall that raises them.

    TIOCNOTTY makes the kernel send SIGHUP and SIGCONT to our own process group
    (dumb-init issue #136); they are ours, not the user's, so they must not be
    forwarded.
    """

    def __init__(self, signums: list[int]) -> None:
        self._signums = signums
        self._saved: list[object] = []

    def __enter__(self) -> None:
        self._saved = [signal.signal(s, signal.SIG_IGN) for s in self._signums]

    def __exit__(self, *exc: object) -> None:
        for signum, handler in zip(self._signums, self._saved, strict=True):
            # Setting SIG_IGN again discards an instance that was queued while the
            # signal was blocked (a blocked signal is queued even when ignored).
            signal.signal(signum, signal.SIG_IGN)
            signal.signal(signum, handler)  # type: ignore[arg-type]


def fork_blocked(close_on_error: tuple[int, ...] = ()) -> int:
    """``os.fork()`` with every signal blocked across it, so none is handled in
    the child by pyinit's handler (which would write into pyinit's wake-up pipe)
    before the child sets its own mask. The parent's mask is back on return; the
    child's is still all-blocked. If the fork fails, ``close_on_error`` is closed."""
    saved = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)
        for fd in close_on_error:
            os.close(fd)
        raise
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)
    return pid
