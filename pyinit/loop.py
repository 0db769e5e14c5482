"""The event loop: one selector and a heap of monotonic timers, nothing else.

It sleeps in ``select`` until an fd is ready or the next timer is due; with no
timer armed it sleeps with no timeout at all, so an idle pyinit never wakes up.
It knows nothing about services or signals: callers register fds and timers.
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import sys
import time
from collections.abc import Callable

Callback = Callable[[], None]
MAX_SLEEP = 86400.0  # seconds; see _next_timeout


class Timer:
    """A handle on a scheduled call; ``cancel()`` is O(1) (lazy removal)."""

    __slots__ = ("when", "callback", "cancelled", "_seq")

    def __init__(self, when: float, callback: Callback, seq: int) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self._seq = seq

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return (self.when, self._seq) < (other.when, other._seq)


class EventLoop:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        # Every timer follows this clock: a unit test passes a fake one and fires
        # what is due with ``run_due_timers`` (see tests/helpers/fakesup.py).
        self.now = clock
        self._selector = selectors.DefaultSelector()
        self._readers: dict[int, Callback] = {}
        self._writers: dict[int, Callback] = {}
        self._registered: dict[int, int] = {}  # fd -> the events the selector has
        self._timers: list[Timer] = []
        self._seq = itertools.count()
        self._running = False
        self.wakeups = 0  # select() returns, for tests and benchmarks

    # -- fds ---------------------------------------------------------------
    def _update(self, fd: int) -> None:
        events = (selectors.EVENT_READ if fd in self._readers else 0) | (
            selectors.EVENT_WRITE if fd in self._writers else 0
        )
        # What the selector holds, kept here: asking it (get_map) costs more than
        # the epoll_ctl, twice per pipe of each of 1,000 services started or stopped.
        registered = self._registered.get(fd, 0)
        if events == registered:
            return
        try:
            if events and registered:
                self._selector.modify(fd, events)
            elif events:
                self._selector.register(fd, events)
            else:
                self._selector.unregister(fd)
        except BaseException:
            # A failed modify drops the selector's key: forget it here too, so a
            # later add or remove registers afresh instead of failing on a KeyError.
            self._registered.pop(fd, None)
            raise
        if events:
            self._registered[fd] = events
        else:
            del self._registered[fd]

    def add_reader(self, fd: int, callback: Callback) -> None:
        self._readers[fd] = callback
        self._update(fd)

    def remove_reader(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            self._update(fd)

    def add_writer(self, fd: int, callback: Callback) -> None:
        self._writers[fd] = callback
        self._update(fd)

    def remove_writer(self, fd: int) -> None:
        if self._writers.pop(fd, None) is not None:
            self._update(fd)

    # -- timers ------------------------------------------------------------
    def call_at(self, when: float, callback: Callback) -> Timer:
        timer = Timer(when, callback, next(self._seq))
        heapq.heappush(self._timers, timer)
        return timer

    def call_later(self, delay: float, callback: Callback) -> Timer:
        return self.call_at(self.now() + max(0.0, delay), callback)

    def _next_timeout(self) -> float | None:
        due = self.next_due()
        if due is None:
            return None
        # epoll takes at most INT_MAX ms (~24.8 days); a far timer ("forever") just
        # costs one wake-up a day instead of an OverflowError in PID 1.
        return min(MAX_SLEEP, max(0.0, due - self.now()))

    def next_due(self) -> float | None:
        """When the earliest armed timer is due (the loop's clock), or None."""
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].when if self._timers else None

    def run_due_timers(self) -> None:
        """Fire every timer due by now, in order (the loop does after each select)."""
        now = self.now()
        while self._timers and (self._timers[0].cancelled or self._timers[0].when <= now):
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.cancelled = True
                self.guarded(timer.callback)

    # -- running -----------------------------------------------------------
    def stop(self) -> None:
        self._running = False

    def guarded(self, callback: Callback) -> None:
        """Run ``callback``; PID 1 must not die of its own bug: report it and go on."""
        try:
            callback()
        except Exception as exc:
            try:
                # Imported late (start-up time). The import itself can fail, say
                # when pyinit is out of file descriptors: a bare line then.
                import traceback

                detail = traceback.format_exc()
            except Exception:
                detail = f"{exc!r}\n"
            try:
                sys.stderr.write("pyinit: internal error (continuing):\n" + detail)
            except Exception:
                pass  # no stderr (closed, gone): the loop still goes on

    def run(self) -> None:
        self._running = True
        while self._running:
            timeout = self._next_timeout()
            events = self._selector.select(timeout)
            self.wakeups += 1
            for key, mask in events:
                fd = key.fd
                if mask & selectors.EVENT_READ and fd in self._readers:
                    self.guarded(self._readers[fd])
                if mask & selectors.EVENT_WRITE and fd in self._writers:
                    self.guarded(self._writers[fd])
                if not self._running:
                    break
            # A callback may have stopped the loop: then no timer may fire after
            # it (a kill timer due now would still signal an emptied container).
            if self._running:
                self.run_due_timers()

    def close(self) -> None:
        self._selector.close()
