"""What the supervisor does to processes, as constructor arguments.

The real implementations are the defaults; a unit test passes fakes (see
tests/helpers/fakesup.py) and drives the supervisor with no process at all.
The clock is the third seam: a plain ``Callable[[], float]`` that the event loop
shares, so timers follow it too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from pyinit import proctree
from pyinit.reaper import Reaped, children_left, reap
from pyinit.spawn import SpawnSpec, release_controlling_tty, spawn

Clock = Callable[[], float]


class Launcher(Protocol):
    def spawn(self, spec: SpawnSpec) -> int:
        """Start ``spec``; the pid once exec succeeded, or raise SpawnError."""
        ...

    def release_tty(self) -> bool:
        """Give up the controlling terminal for the main command; whether fd 0 is one."""
        ...


class SignalSender(Protocol):
    def kill(self, pid: int, signum: int) -> None:
        """os.kill: a negative pid is a process group; ProcessLookupError if gone."""
        ...

    def kill_all(self, signum: int) -> int:
        """Signal every process below pyinit; how many there were."""
        ...


class ChildReaper(Protocol):
    def reap(self) -> tuple[list[Reaped], bool]:
        """Every exited child's status, and whether none is left."""
        ...

    def children_left(self) -> bool:
        """Whether any child (alive or not yet reaped) exists."""
        ...


class RealLauncher:
    def spawn(self, spec: SpawnSpec) -> int:
        return spawn(spec)

    def release_tty(self) -> bool:
        return release_controlling_tty()


class RealSignalSender:
    def kill(self, pid: int, signum: int) -> None:
        os.kill(pid, signum)

    def kill_all(self, signum: int) -> int:
        return proctree.signal_descendants(signum)


class RealChildReaper:
    def reap(self) -> tuple[list[Reaped], bool]:
        return reap()

    def children_left(self) -> bool:
        return children_left()


REAL_LAUNCHER: Launcher = RealLauncher()
REAL_SENDER: SignalSender = RealSignalSender()
REAL_REAPER: ChildReaper = RealChildReaper()
