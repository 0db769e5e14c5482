"""The recent-lines store behind ``pyinit logs``: each service's last lines, kept
as the blocks they arrived in, split only when someone asks."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator

RECENT_LINES = 1000  # kept per service for ``pyinit logs``
RECENT_BYTES = 256 * 1024  # ... within this much memory per service


class RecentLines:
    """A service's last lines, kept as the blocks they arrived in and split only
    when someone asks (``pyinit logs``), so the log hot path pays one append."""

    def __init__(self) -> None:
        self._blocks: deque[bytes] = deque()
        # Wall-clock arrival time of each block (one per read, not per line):
        # what ``pyinit logs --since`` and ``--timestamps`` go by.
        self._times: deque[float] = deque()
        self._size = 0

    def add(self, block: bytes) -> None:
        """``block``: complete lines joined by newlines, without the last newline."""
        self._blocks.append(block)
        self._times.append(time.time())
        self._size += len(block)
        while self._size > RECENT_BYTES and len(self._blocks) > 1:
            self._size -= len(self._blocks.popleft())
            self._times.popleft()

    def timed_tail(self, count: int = 0, since: float = 0.0) -> list[tuple[float, bytes]]:
        """The last ``count`` kept lines (0: all kept) that arrived at or after
        ``since`` (wall-clock seconds), as (arrival time, lines joined by newlines)
        blocks, oldest first. Copies: for the answers that prefix or merge lines."""
        want = RECENT_LINES if count <= 0 else min(count, RECENT_LINES)
        out: list[tuple[float, bytes]] = []
        found = 0
        for when, block in zip(reversed(self._times), reversed(self._blocks), strict=True):
            if when < since or found >= want:
                break
            lines = block.split(b"\n")
            lines = lines[-(want - found) :]
            found += len(lines)
            out.append((when, b"\n".join(lines)))
        out.reverse()
        return out

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
