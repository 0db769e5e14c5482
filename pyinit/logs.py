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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pyinit.logsink import OutputSink
from pyinit.logstore import RecentLines
from pyinit.loop import EventLoop

if TYPE_CHECKING:
    from pyinit.logfile import LogFile

MAX_LINE = 16 * 1024  # longer lines are emitted in pieces of this size
READ_SIZE = 64 * 1024
# A block of this size with a newline in it everywhere means no line in the chunk
# reaches MAX_LINE (any run that long would contain a whole such block).
_HALF_LINE = MAX_LINE // 2

Stream = Literal["stdout", "stderr"]
_COLOURS = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96]


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
        self.timestamps = False  # text lines: the time after the prefix (log_timestamps)
        self.sinks: dict[Stream, OutputSink] = {
            "stdout": OutputSink(loop, stdout_fd, self._pressure),
            "stderr": OutputSink(loop, stderr_fd, self._pressure),
        }
        self._captures: dict[int, _Capture] = {}
        # The same captures by writer pid, in the order attached: a reap drains
        # its pid's pipes without a pass over every service's (O(N^2) in a stop).
        self._by_pid: dict[int, list[_Capture]] = {}
        self._watchers: dict[str, Callable[[bytes], None]] = {}
        # Log files (pyinit/logfile.py), and services whose lines go only there.
        self._files: dict[str, LogFile] = {}
        self._file_only: set[str] = set()
        # Who sees each block of lines as it arrives (``pyinit logs -f``).
        self.hooks: list[Callable[[str, bytes], None]] = []
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
        cap = self._captures[fd] = _Capture(fd, service, stream, pid, prefix)
        self._by_pid.setdefault(pid, []).append(cap)
        if not self.paused:
            self.loop.add_reader(fd, self._reader_for(fd))

    def _reader_for(self, fd: int) -> Callable[[], None]:
        return lambda: self._on_readable(fd)

    def drain_pid(self, pid: int) -> None:
        """Read everything a process that just exited left in its pipes.

        Its writes are all in the pipe buffer by now, so reading until EAGAIN
        loses nothing; the pipe stays open for any child that inherited it.
        """
        for cap in list(self._by_pid.get(pid, ())):
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
            if self.hooks:
                self._tell(cap.service, body)
            if self._files:
                self._to_file(cap.service, body)
                if cap.service in self._file_only:
                    return
            prefix = cap.prefix + _stamp() if self.timestamps else cap.prefix
            out = prefix + body.replace(b"\n", b"\n" + prefix) + b"\n"
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

    def _tell(self, service: str, block: bytes) -> None:
        for hook in list(self.hooks):
            try:
                hook(service, block)
            except Exception as exc:  # PID 1 must outlive a follower's bug
                self.event(f"internal error following logs: {exc!r}")

    def _emit(self, cap: _Capture, lines: list[bytes]) -> None:
        block = b"\n".join(lines)
        self._recent(cap.service).add(block)
        if self.hooks:
            self._tell(cap.service, block)
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
            prefix = cap.prefix + _stamp() if self.timestamps else cap.prefix
            out = prefix + (b"\n" + prefix).join(lines) + b"\n"
        self.sinks[cap.stream].write(out)

    def _close(self, cap: _Capture) -> None:
        if cap.partial:
            self._emit(cap, [cap.partial])
            cap.partial = b""
        self.loop.remove_reader(cap.fd)
        self._captures.pop(cap.fd, None)
        same_pid = self._by_pid.get(cap.pid, [])
        if cap in same_pid:
            same_pid.remove(cap)
            if not same_pid:
                del self._by_pid[cap.pid]
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
            stamp = f"{_now_iso()} " if self.timestamps else ""
            self.sinks["stderr"].write(f"pyinit: {stamp}{message}\n".encode())

    def close(self, deadline: float) -> None:
        """At exit: take what the pipes still hold, then flush both sinks."""
        for cap in list(self._captures.values()):
            self._read(cap, until_empty=True)
            if cap.fd in self._captures:
                self._close(cap)
        for sink in self.sinks.values():
            sink.flush(deadline)
        for log_file in self._files.values():  # after the last lines reached them
            log_file.close()


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


def _stamp() -> bytes:
    return _now_iso().encode() + b" "


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
