"""``pyinit logs`` beyond one service's raw lines: prefixes, timestamps, a merged
backlog of several services, and the follow stream.

A follower is fed from the log router as lines arrive (``push``) and drained by
the control socket as its client reads (``chunks``). Its buffer is bounded: a
client that reads slower than the services write loses the newest lines, counts
them, and is told how many it missed once there is room again. PID 1 never waits
on it, and its memory never grows past FOLLOW_BUFFER.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

FOLLOW_BUFFER = 256 * 1024  # unsent bytes one follower may hold
MAX_FOLLOWERS = 16  # of the control socket's connections, so others keep theirs


def rfc3339(when: float) -> str:
    """``2026-12-07T03:22:26.123Z``: as the JSON log format's ``ts``."""
    millis = int(when % 1 * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{millis:03d}Z"


@dataclass(frozen=True)
class Style:
    """How lines are shown: ``prefixes`` by service (empty: none), timestamps."""

    prefixes: dict[str, bytes]
    timestamps: bool = False

    @classmethod
    def make(cls, names: list[str], timestamps: bool) -> Style:
        """Prefixed as pyinit's own output (``name | ``) when more than one service."""
        if len(names) < 2:
            return cls({}, timestamps)
        width = max(len(n) for n in names)
        return cls({n: f"{n:<{width}} | ".encode() for n in names}, timestamps)

    def plain(self) -> bool:
        return not self.prefixes and not self.timestamps

    def render(self, service: str, when: float, block: bytes) -> bytes:
        """``block`` (lines joined by newlines, no last newline) as output lines."""
        head = self.prefixes.get(service, b"")
        if self.timestamps:
            head += rfc3339(when).encode() + b" "
        if not head:
            return block + b"\n"
        return head + block.replace(b"\n", b"\n" + head) + b"\n"


TimedBlocks = Callable[[str], list[tuple[float, bytes]]]


def backlog(names: list[str], blocks: TimedBlocks, style: Style) -> tuple[int, bytes]:
    """(lines, bytes) of the kept lines of ``names``, merged in arrival order."""
    timed = [(when, i, name, block) for i, name in enumerate(names) for when, block in blocks(name)]
    timed.sort(key=lambda t: (t[0], t[1]))
    count = sum(block.count(b"\n") + 1 for _w, _i, _n, block in timed)
    return count, b"".join(style.render(name, when, block) for when, _i, name, block in timed)


class Follower:
    """One ``pyinit logs -f`` client's share of the output: a bounded buffer."""

    __slots__ = ("names", "style", "buf", "missed", "wake", "limit")

    def __init__(self, names: list[str], style: Style, limit: int = FOLLOW_BUFFER) -> None:
        self.names = set(names)
        self.style = style
        self.buf = bytearray()
        self.missed = 0  # lines dropped since the client last had room
        self.wake: Callable[[], None] = lambda: None  # the socket has something to send
        self.limit = limit

    def push(self, service: str, block: bytes) -> None:
        if service not in self.names:
            return
        out = self.style.render(service, time.time(), block)
        if self.missed:
            marker = self._marker()
            if len(self.buf) + len(marker) + len(out) > self.limit:
                self.missed += block.count(b"\n") + 1
                return
            self.buf += marker
            self.missed = 0
        if len(self.buf) + len(out) > self.limit:
            self.missed += block.count(b"\n") + 1
            return
        self.buf += out
        self.wake()

    def _marker(self) -> bytes:
        plural = "s" if self.missed != 1 else ""
        return f"pyinit: missed {self.missed} line{plural}: this reader fell behind\n".encode()

    def chunks(self) -> Iterator[bytes]:
        """What to send next; ``b""``: nothing yet (the socket waits for ``wake``)."""
        while True:
            out, self.buf = self.buf, bytearray()
            if self.missed and not out:
                out = bytearray(self._marker())
                self.missed = 0
            yield bytes(out)
