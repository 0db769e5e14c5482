"""Supervisor mode's signals that need their sender: the faults and SIGPIPE.

Supervisor mode takes signals with Python handlers, which cannot tell who sent a
signal. For ILL, BUS, FPE and SEGV that matters: a handler for a genuine fault
returns to the faulting instruction, which faults again, forever. Without one,
a fault signal sent with kill(2) (``kill -SEGV 1``, to get a core dump of the
app) would kill pyinit instead. And SIGPIPE from pyinit's own write to a closed
stdout must not be forwarded, while one sent with kill must be.

So these are blocked and read from a signalfd, which reports each one's
``si_code`` and sender, in the selector like any other fd. The kernel still
delivers a genuine synchronous fault with its default action while it is
blocked (it unblocks the signal first): pyinit's own crash stays a crash.
Children start with an empty signal mask (spawn), so none of this reaches them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
from collections.abc import Callable, Iterable

_SIGINFO_SIZE = 128  # struct signalfd_siginfo
# ssi_signo, ssi_errno, ssi_code, ssi_pid: the first four fields.
_HEAD = struct.Struct("IiiI")


class SignalFd:
    """The given signals, blocked and readable from ``fd`` with who sent each."""

    def __init__(self, signums: Iterable[int]) -> None:
        self._signums = sorted(set(signums))
        bits = 0
        for signum in self._signums:
            bits |= 1 << (signum - 1)
        # glibc's sigset_t is 1024 bits; signals 1-64 are the first word.
        sigset = (ctypes.c_ulong * (1024 // (8 * ctypes.sizeof(ctypes.c_ulong))))(bits)
        libc = ctypes.CDLL(None, use_errno=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, self._signums)
        fd = libc.signalfd(-1, ctypes.byref(sigset), os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self._signums)
            raise OSError(err, os.strerror(err))
        self.fd: int = fd

    def drain(self, deliver: Callable[[int, int, int], None]) -> None:
        """Hand every pending signal to ``deliver(signum, si_code, sender pid)``."""
        while True:
            try:
                data = os.read(self.fd, _SIGINFO_SIZE * 16)
            except BlockingIOError:
                return
            if not data:
                return
            for offset in range(0, len(data) - _SIGINFO_SIZE + 1, _SIGINFO_SIZE):
                signum, _, code, pid = _HEAD.unpack_from(data, offset)
                deliver(signum, code, pid)

    def close(self) -> None:
        # The signals stay blocked: unblocked, one sent since the last read would
        # take its default action and kill pyinit on its way out.
        os.close(self.fd)


def not_a_request(signum: int, code: int, sender: int) -> str | None:
    """Why a signal read from the signalfd is not to be acted on, or None."""
    if signum == signal.SIGPIPE:
        # The kernel raises it "from" us when we write to a closed pipe.
        return "pyinit's own write to a closed pipe" if sender == os.getpid() else None
    # Not a request from anyone (si_code SI_USER, SI_TKILL, SI_QUEUE are zero or
    # less): the kernel reporting an event in pyinit, such as an "action optional"
    # memory error. Genuine faults never get here.
    return f"from the kernel (code {code})" if code > 0 else None
