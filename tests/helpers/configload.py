"""A stand-in for pyinit's reaper in tests of the off-loop config load."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from pyinit.loop import EventLoop
from pyinit.reaper import ExitStatus


class FakeReaper:
    """The registered pids and their callbacks, reaped on a short timer (tests only)."""

    def __init__(self, loop: EventLoop) -> None:
        self.loop = loop
        self.owners: dict[int, Callable[[ExitStatus], None]] = {}
        self.started: list[int] = []

    def register(self, pid: int, on_exit: Callable[[ExitStatus], None]) -> None:
        self.owners[pid] = on_exit
        self.started.append(pid)

    def run_until(self, done: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout

        def tick() -> None:
            for pid in list(self.owners):
                got, status = os.waitpid(pid, os.WNOHANG)
                if got:
                    self.owners.pop(pid)(ExitStatus.from_wait_status(status))
            if done() or time.monotonic() > deadline:
                self.loop.stop()
            else:
                self.loop.call_later(0.01, tick)

        self.loop.call_later(0, tick)
        self.loop.run()
        assert done(), "timed out"
