"""A service's lines in a file: timestamped, rotated by size, never a blocked loop.

Each line is written as ``2026-12-07T10:00:00.123Z <line>`` (RFC 3339 in UTC,
milliseconds), without the ``name | `` prefix. When the file would grow past
``max_size``, it is rotated between two lines (``web.log`` -> ``web.log.1`` ...,
``max_files`` files in all, as Docker's json-file driver counts them; with one
file it is truncated), so a line is never split across files. A single line
longer than ``max_size`` is written whole.

Writes go straight to the file from the loop. A regular file takes a write into
the page cache without waiting for the disk, and pipes are what can stall a
writer, so the path must be a regular file (opened with O_NOFOLLOW, never a
FIFO or device). Holding chunks back to write them later would not make the
write call any cheaper; the router already hands over one block per pipe read.
A write that fails (a full disk, EIO, a quota) or a file that cannot be opened
is one clear error line and a counter; its lines are dropped from the file
while the failure lasts (the service and its stdout copy go on), a recovery is
one more line, and opening is retried at most every RETRY seconds. A write that
stops short is cut back to its last whole line, so the file never ends mid-line.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable

RETRY = 1.0  # seconds between attempts to open a file that could not be opened
FILE_MODE = 0o640
DIR_MODE = 0o755
_OPEN_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    | os.O_NOCTTY
)  # fmt: skip

# What an open of a FIFO (O_NONBLOCK, no reader) and of a symlink (O_NOFOLLOW) say.
_REASONS = {errno.ENXIO: "not a regular file", errno.ELOOP: "a symlink, not followed"}


class LogFile:
    """One service's log file. ``write`` takes complete lines joined by newlines,
    without the last newline (the shape the log router reads them in)."""

    def __init__(
        self,
        path: str,
        max_size: int | None = None,
        max_files: int = 1,
        report: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.time,
        retry_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self._report = report
        self._clock = clock
        self._retry_clock = retry_clock
        self._fd = -1
        self._size = 0
        self._next_open = 0.0
        self._failing = False
        self._dropped_before = 0
        self._stamp_ms = -1
        self._stamp = b""
        # Counters, for /metrics and status.
        self.errors = 0  # failed opens, writes and rotations
        self.dropped_lines = 0
        self.written = 0  # bytes
        self.rotations = 0

    # -- the file ------------------------------------------------------------
    def open(self) -> bool:
        """Open (or create) the file; False, with an error reported, if it cannot."""
        if self._fd >= 0:
            return True
        try:
            try:
                fd = os.open(self.path, _OPEN_FLAGS, FILE_MODE)
            except FileNotFoundError:  # its directory is missing: make it, once
                os.makedirs(os.path.dirname(self.path) or ".", mode=DIR_MODE, exist_ok=True)
                fd = os.open(self.path, _OPEN_FLAGS, FILE_MODE)
        except OSError as exc:
            return self._failed("cannot open", exc)
        try:
            info = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            return self._failed("cannot open", exc)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return self._failed("cannot open", None, "not a regular file")
        self._fd, self._size = fd, info.st_size
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- lines ---------------------------------------------------------------
    def write(self, body: bytes) -> None:
        stamp = self._timestamp()
        lines = body.replace(b"\n", b"\n" + stamp)
        if self._fd < 0:
            if self._retry_clock() < self._next_open or not self.open():
                self.dropped_lines += lines.count(b"\n") + 1
                return
        size = len(stamp) + len(lines) + 1
        if self.max_size is None or self._size + size <= self.max_size:
            # The common case, in one call and without joining the parts (a copy).
            try:
                done = os.writev(self._fd, (stamp, lines, b"\n"))
            except OSError:
                done = 0  # _write below tries again and reports what it finds
            if done == size:
                self._size += done
                self.written += done
                if self._failing:
                    self._recovered()
                return
            self._write(stamp + lines + b"\n", done)
        else:
            self._write_rotating(stamp + lines + b"\n", self.max_size)

    def _write_rotating(self, out: bytes, max_size: int) -> None:
        """Fill the file up to max_size with whole lines, rotate, go on."""
        while out:
            room = max_size - self._size
            if len(out) <= room:
                self._write(out)
                return
            cut = out.rfind(b"\n", 0, room) + 1 if room > 0 else 0
            if cut == 0 and self._size == 0:
                cut = out.index(b"\n") + 1  # one line longer than max_size: whole
            if cut:
                if not self._write(out[:cut]):
                    self.dropped_lines += out.count(b"\n", cut)
                    return
                out = out[cut:]
            if not self._rotate():
                if self._fd >= 0:
                    self._write(out)  # could not rotate: keep the lines, in the old file
                else:
                    self.dropped_lines += out.count(b"\n")
                return

    def _write(self, data: bytes, done: int = 0) -> bool:
        """Write ``data`` from offset ``done`` (the part before is in the file)."""
        start = self._size
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:] if done else data)
        except OSError as exc:
            if done:
                self._cut_back(start, data[:done])
            lost = data.count(b"\n", data.rfind(b"\n", 0, done) + 1)
            self._failed("cannot write", exc)
            self.dropped_lines += lost  # after _failed: it counts from here
            return False
        self._size += done
        self.written += done
        if self._failing:
            self._recovered()
        return True

    def _recovered(self) -> None:
        self._failing = False
        lost = self.dropped_lines - self._dropped_before
        self._report(f"log file {self.path}: writing again; {lost} lines were dropped")

    def _cut_back(self, start: int, written: bytes) -> None:
        """Keep the whole lines of a short write; drop the piece of a line after them."""
        whole = written.rfind(b"\n") + 1
        try:
            os.ftruncate(self._fd, start + whole)
        except OSError:
            pass  # the file then ends mid-line; the next write starts on a fresh line
        self._size = start + whole
        self.written += whole

    def _rotate(self) -> bool:
        try:
            if self.max_files == 1:
                os.ftruncate(self._fd, 0)
            else:
                # The oldest goes first, so that no rename lands on an existing file:
                # ext4 (auto_da_alloc) flushes a file renamed over another one, which
                # would make each rotation wait for the disk.
                oldest = f"{self.path}.{self.max_files - 1}"
                if os.path.lexists(oldest):
                    os.unlink(oldest)
                for n in range(self.max_files - 1, 1, -1):
                    older = f"{self.path}.{n - 1}"
                    if os.path.lexists(older):
                        os.rename(older, f"{self.path}.{n}")
                os.rename(self.path, f"{self.path}.1")
        except OSError as exc:
            self._failed("cannot rotate", exc)
            return False
        self.rotations += 1
        if self.max_files == 1:
            self._size = 0
            return True
        self.close()
        return self.open()

    # -- helpers ---------------------------------------------------------------
    def _failed(self, what: str, exc: OSError | None, reason: str = "") -> bool:
        """Count a failure; report it unless this failure is already reported."""
        self.errors += 1
        if exc is not None:
            reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
            if what == "cannot open" or exc.errno == errno.EBADF:
                self.close()
                self._next_open = self._retry_clock() + RETRY
        elif what == "cannot open":
            self._next_open = self._retry_clock() + RETRY
        if not self._failing:
            self._failing = True
            self._dropped_before = self.dropped_lines
            self._report(
                f"log file {self.path}: {what}: {reason};"
                " its lines are dropped from the file until this works again"
            )
        return False

    def _timestamp(self) -> bytes:
        now = self._clock()
        ms = int(now * 1000)
        if ms != self._stamp_ms:
            self._stamp_ms = ms
            head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
            self._stamp = f"{head}.{ms % 1000:03d}Z ".encode()
        return self._stamp
