"""pyinit's own stdout and stderr, written from the loop without ever blocking it:
a queue with high and low water marks that push back on the services' pipes."""

from __future__ import annotations

import os
import select
import stat
import time
from collections import deque
from collections.abc import Callable

from pyinit.loop import EventLoop

HIGH_WATER = 1024 * 1024  # queued output that pauses reading the services
LOW_WATER = 256 * 1024
PIPE_BUF = 4096  # a write this small to a writable pipe never blocks
PIPE_SIZE = 1024 * 1024


def _private_nonblocking(fd: int) -> tuple[int, bool]:
    """A non-blocking handle on ``fd`` that does not change it for anyone else.

    O_NONBLOCK lives on the open file description, which pyinit shares with
    ``logging: inherit`` services and with whoever started it; setting it there
    would hand them EAGAIN. Re-opening a pipe or tty through /proc gives a
    description of our own. Sockets cannot be re-opened: for those (and on any
    failure) we keep the blocking fd and write at most PIPE_BUF once select says
    it is writable.
    """
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
            private = os.open(f"/proc/self/fd/{fd}", flags)
            if stat.S_ISFIFO(mode):
                _grow_pipe(private)
            return private, True
        if stat.S_ISREG(mode):
            # Regular files are always writable; a blocking write is brief.
            return fd, True
    except OSError:
        pass
    return fd, False


def _grow_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (the default 64 KiB is smaller than one prefixed
    64 KiB read, so every chunk would cost a short write and an extra wake-up)."""
    import fcntl

    try:
        if fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < PIPE_SIZE:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # over the user's pipe quota or pipe-max-size: keep the default


class OutputSink:
    """pyinit's stdout or stderr, written from the loop without blocking it."""

    def __init__(self, loop: EventLoop, fd: int, on_pressure: Callable[[bool], None]) -> None:
        self.loop = loop
        self.fd, self._nonblocking = _private_nonblocking(fd)
        self.isatty = os.isatty(fd)
        self._queue: deque[bytes] = deque()
        self.pending = 0
        self._watching = False
        self._on_pressure = on_pressure
        self.pressured = False
        self.broken = False  # the reader went away: output is discarded
        try:
            os.fstat(self.fd)
        except OSError:
            self.broken = True  # started with this stream closed (`pyinit >&-`)

    def write(self, data: bytes) -> None:
        if self.broken or not data:
            return
        self._queue.append(data)
        self.pending += len(data)
        if not self._watching and self._nonblocking:
            self._flush_some()
        self._update()

    def _flush_some(self) -> None:
        while self._queue:
            chunk = self._queue[0]
            piece = chunk if self._nonblocking else chunk[:PIPE_BUF]
            try:
                written = os.write(self.fd, piece)
            except BlockingIOError:
                return
            except OSError:  # EPIPE and friends: nobody is reading any more
                self.broken = True
                self._queue.clear()
                self.pending = 0
                return
            self.pending -= written
            if written == len(chunk):
                self._queue.popleft()
            else:
                self._queue[0] = chunk[written:]
            if not self._nonblocking:
                return  # one bounded write per writable event

    def _on_writable(self) -> None:
        self._flush_some()
        self._update()

    def _update(self) -> None:
        want = bool(self._queue)
        if want != self._watching:
            if want:
                try:
                    self.loop.add_writer(self.fd, self._on_writable)
                except OSError:  # not pollable (a closed or odd fd): give up on it
                    self.broken = True
                    self._queue.clear()
                    self.pending = 0
                    want = False
            else:
                self.loop.remove_writer(self.fd)
            self._watching = want
        if not self.pressured and self.pending > HIGH_WATER:
            self.pressured = True
            self._on_pressure(True)
        elif self.pressured and self.pending <= LOW_WATER:
            self.pressured = False
            self._on_pressure(False)

    def flush(self, deadline: float) -> None:
        """Write out what is queued, waiting for the reader until ``deadline``."""
        while self._queue and not self.broken:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            _, writable, _ = select.select([], [self.fd], [], remaining)
            if writable:
                self._flush_some()
        self._update()
