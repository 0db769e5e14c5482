"""Service output: child pipes -> prefixed or JSON lines on pyinit's stdout/stderr.

Two rules shape this module. Nothing is lost: partial lines wait for their
newline, long lines are split rather than dropped, bytes that are not UTF-8 pass
through, and a pipe is drained before its writer's exit is acted on. PID 1 never
blocks on its own output: writes go through a queue, and when the queue grows
past a high-water mark the service pipes stop being read, so the services feel
the back-pressure while pyinit keeps reaping and handling signals.
"""

from __future__ import annotations

import json
import os
import select
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

from pyinit.loop import EventLoop

if TYPE_CHECKING:
    from pyinit.logfile import LogFile

RECENT_LINES = 1000  # kept per service for ``pyinit logs``
RECENT_BYTES = 256 * 1024  # ... within this much memory per service
MAX_LINE = 16 * 1024  # longer lines are emitted in pieces of this size
READ_SIZE = 64 * 1024
HIGH_WATER = 1024 * 1024  # queued output that pauses reading the services
LOW_WATER = 256 * 1024
PIPE_BUF = 4096  # a write this small to a writable pipe never blocks
PIPE_SIZE = 1024 * 1024
# A block of this size with a newline in it everywhere means no line in the chunk
# reaches MAX_LINE (any run that long would contain a whole such block).
_HALF_LINE = MAX_LINE // 2

Stream = Literal["stdout", "stderr"]
_COLOURS = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96]


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


class RecentLines:
    """A service's last lines, kept as the blocks they arrived in and split only
    when someone asks (``pyinit logs``), so the log hot path pays one append."""

    def __init__(self) -> None:
        self._blocks: deque[bytes] = deque()
        self._size = 0

    def add(self, block: bytes) -> None:
        """``block``: complete lines joined by newlines, without the last newline."""
        self._blocks.append(block)
        self._size += len(block)
        while self._size > RECENT_BYTES and len(self._blocks) > 1:
            self._size -= len(self._blocks.popleft())

    def tail(self, count: int = 0) -> tuple[int, list[memoryview]]:
        """The last ``count`` kept lines (0, or more than RECENT_LINES: RECENT_LINES)
        without copying them: how many there are, and views of the stored blocks
        that hold them, oldest first, each whole lines joined by newlines like a
        block. The views keep their blocks alive if the store drops them meanwhile."""
        want = RECENT_LINES if count <= 0 else min(count, RECENT_LINES)
        views: list[memoryview] = []
        found = 0
        for block in reversed(self._blocks):
            lines = block.count(b"\n") + 1
            if found + lines <= want:
                views.append(memoryview(block))
                found += lines
                if found == want:
                    break
                continue
            cut = len(block)  # the block holds more than is wanted: its last lines
            for _ in range(want - found):
                cut = block.rfind(b"\n", 0, cut)
            views.append(memoryview(block)[cut + 1 :])
            found = want
            break
        views.reverse()
        return found, views

    def __iter__(self) -> Iterator[bytes]:
        _count, views = self.tail()
        return iter(b"\n".join(views).split(b"\n") if views else ())

    def __len__(self) -> int:
        return self.tail()[0]


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


class _Capture:
    """One pipe from one service's stdout or stderr."""

    __slots__ = ("fd", "service", "stream", "pid", "partial", "prefix")

    def __init__(self, fd: int, service: str, stream: Stream, pid: int, prefix: bytes) -> None:
        self.fd = fd
        self.service = service
        self.stream = stream
        self.pid = pid
        self.partial = b""
        self.prefix = prefix


class LogRouter:
    def __init__(
        self,
        loop: EventLoop,
        names: list[str],
        log_format: Literal["text", "json"] = "text",
        stdout_fd: int = 1,
        stderr_fd: int = 2,
    ) -> None:
        self.loop = loop
        self.log_format = log_format
        self.paused = False
        self.sinks: dict[Stream, OutputSink] = {
            "stdout": OutputSink(loop, stdout_fd, self._pressure),
            "stderr": OutputSink(loop, stderr_fd, self._pressure),
        }
        self._captures: dict[int, _Capture] = {}
        self._watchers: dict[str, Callable[[bytes], None]] = {}
        # Log files (pyinit/logfile.py), and services whose lines go only there.
        self._files: dict[str, LogFile] = {}
        self._file_only: set[str] = set()
        # The last RECENT_LINES lines of each service, for ``pyinit logs``.
        self.recent: dict[str, RecentLines] = {}
        width = max((len(n) for n in names), default=0)
        colour = self.sinks["stdout"].isatty and not os.environ.get("NO_COLOR")
        self._prefixes: dict[str, bytes] = {}
        for i, name in enumerate(sorted(names)):
            text = f"{name:<{width}} | "
            if colour:
                text = f"\x1b[{_COLOURS[i % len(_COLOURS)]}m{name:<{width}}\x1b[0m | "
            self._prefixes[name] = text.encode()

    # -- capture -----------------------------------------------------------
    def attach(self, service: str, pid: int, stream: Stream, fd: int) -> None:
        os.set_blocking(fd, False)
        prefix = self._prefixes.get(service) or f"{service} | ".encode()
        self._captures[fd] = _Capture(fd, service, stream, pid, prefix)
        if not self.paused:
            self.loop.add_reader(fd, self._reader_for(fd))

    def _reader_for(self, fd: int) -> Callable[[], None]:
        return lambda: self._on_readable(fd)

    def drain_pid(self, pid: int) -> None:
        """Read everything a process that just exited left in its pipes.

        Its writes are all in the pipe buffer by now, so reading until EAGAIN
        loses nothing; the pipe stays open for any child that inherited it.
        """
        for cap in [c for c in self._captures.values() if c.pid == pid]:
            self._read(cap, until_empty=True)

    def _on_readable(self, fd: int) -> None:
        cap = self._captures.get(fd)
        if cap is not None:
            self._read(cap, until_empty=False)

    def _read(self, cap: _Capture, until_empty: bool) -> None:
        while True:
            try:
                data = os.read(cap.fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close(cap)
                return
            self._emit_chunk(cap, data)
            if not until_empty:
                return

    def _emit_chunk(self, cap: _Capture, data: bytes) -> None:
        if cap.partial:
            data = cap.partial + data
        end = data.rfind(b"\n")
        if (
            end >= 0
            and self.log_format == "text"
            and cap.service not in self._watchers
            and len(data) - end <= MAX_LINE
            and _no_long_line(data, end)
        ):
            # The hot path: prefix every line with two C-level passes, no per-line
            # Python objects. Throughput of a chatty service depends on it.
            body, cap.partial = data[:end], data[end + 1 :]
            self._recent(cap.service).add(body)
            if self._files:
                self._to_file(cap.service, body)
                if cap.service in self._file_only:
                    return
            out = cap.prefix + body.replace(b"\n", b"\n" + cap.prefix) + b"\n"
            self.sinks[cap.stream].write(out)
            return
        lines = data.split(b"\n")
        cap.partial = lines.pop()
        if len(cap.partial) > MAX_LINE:
            # Split, never drop: emit whole pieces, keep the tail for its newline.
            cut = len(cap.partial) - len(cap.partial) % MAX_LINE
            head, cap.partial = cap.partial[:cut], cap.partial[cut:]
            lines.extend(head[i : i + MAX_LINE] for i in range(0, len(head), MAX_LINE))
        if any(len(line) > MAX_LINE for line in lines):
            lines = [p for line in lines for p in _pieces(line)]
        if lines:
            self._emit(cap, lines)

    def watch(self, service: str, callback: Callable[[bytes], None] | None) -> None:
        """See every complete line of ``service`` (for log-line readiness); None stops."""
        if callback is None:
            self._watchers.pop(service, None)
        else:
            self._watchers[service] = callback

    def _recent(self, service: str) -> RecentLines:
        recent = self.recent.get(service)
        if recent is None:
            recent = self.recent[service] = RecentLines()
        return recent

    def set_file(self, service: str, sink: LogFile | None, stdout: bool = True) -> None:
        """Also write ``service``'s lines to ``sink`` (None: no file); ``stdout``
        False: only there."""
        if sink is None:
            self._files.pop(service, None)
        else:
            self._files[service] = sink
        if sink is not None and not stdout:
            self._file_only.add(service)
        else:
            self._file_only.discard(service)

    def _to_file(self, service: str, body: bytes) -> None:
        sink = self._files.get(service)
        if sink is not None:
            sink.write(body)

    def _emit(self, cap: _Capture, lines: list[bytes]) -> None:
        block = b"\n".join(lines)
        self._recent(cap.service).add(block)
        watcher = self._watchers.get(cap.service)
        if watcher is not None:
            for line in lines:
                watcher(line)
        if self._files:
            self._to_file(cap.service, block)
            if cap.service in self._file_only:
                return
        if self.log_format == "json":
            out = b"".join(_json_line(cap.service, cap.stream, cap.pid, line) for line in lines)
        else:
            out = cap.prefix + (b"\n" + cap.prefix).join(lines) + b"\n"
        self.sinks[cap.stream].write(out)

    def _close(self, cap: _Capture) -> None:
        if cap.partial:
            self._emit(cap, [cap.partial])
            cap.partial = b""
        self.loop.remove_reader(cap.fd)
        self._captures.pop(cap.fd, None)
        os.close(cap.fd)

    def _pressure(self, on: bool) -> None:
        # One flag for two sinks: stay paused while either is still over its mark.
        on = any(sink.pressured for sink in self.sinks.values())
        if on == self.paused:
            return
        self.paused = on
        for fd in self._captures:
            if on:
                self.loop.remove_reader(fd)
            else:
                self.loop.add_reader(fd, self._reader_for(fd))

    # -- pyinit's own lines -----------------------------------------------------
    def event(self, message: str, service: str = "pyinit") -> None:
        if self.log_format == "json":
            record = {
                "ts": _now_iso(),
                "service": service,
                "stream": "pyinit",
                "pid": os.getpid(),
                "line": message,
            }
            self.sinks["stderr"].write(json.dumps(record).encode() + b"\n")
        else:
            self.sinks["stderr"].write(f"pyinit: {message}\n".encode())

    def close(self, deadline: float) -> None:
        """At exit: take what the pipes still hold, then flush both sinks."""
        for cap in list(self._captures.values()):
            self._read(cap, until_empty=True)
            if cap.fd in self._captures:
                self._close(cap)
        for sink in self.sinks.values():
            sink.flush(deadline)


def _no_long_line(data: bytes, end: int) -> bool:
    """Whether every line in ``data[:end]`` is shorter than MAX_LINE."""
    for start in range(0, end - _HALF_LINE + 1, _HALF_LINE):
        if data.find(b"\n", start, start + _HALF_LINE) < 0:
            return False
    return True


def _pieces(line: bytes) -> list[bytes]:
    return [line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE)] or [b""]


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _json_line(service: str, stream: str, pid: int, line: bytes) -> bytes:
    record = {
        "ts": _now_iso(),
        "service": service,
        "stream": stream,
        "pid": pid,
        # surrogateescape keeps bytes that are not UTF-8: json escapes them as
        # \udcXX, from which a reader can recover the original byte.
        "line": line.decode("utf-8", "surrogateescape"),
    }
    return json.dumps(record).encode() + b"\n"
