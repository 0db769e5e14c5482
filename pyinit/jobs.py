"""Scheduled jobs: one JobTimer per job, what to do when one is due, and run records.

A scheduled job is a oneshot that the supervisor starts at each due time instead
of once. The supervisor owns the processes; this module owns the timers and the
bookkeeping that status and /metrics show (last result, next run, counters).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from pyinit.loop import EventLoop
from pyinit.service import State

if TYPE_CHECKING:
    from pyinit.schedule import JobTimer, Schedule


class Concurrency(Enum):
    """What happens when a run is due while the previous one is still going."""

    FORBID = "forbid"  # skip the new run, and say so (Kubernetes CronJob's Forbid)
    REPLACE = "replace"  # stop the running one (its stop semantics), then start anew


class Due(Enum):
    START = "start"
    SKIP = "skip"
    REPLACE = "replace"


RESULTS = ("success", "failure", "stopped", "skipped")


def when_due(state: State, concurrency: Concurrency) -> Due:
    """What a due time means for a job in ``state``. A run waiting to be retried
    after a failure (backoff) is still that run: it counts as going."""
    if state.alive or state is State.BACKOFF:
        if concurrency is Concurrency.REPLACE and state is not State.STOPPING:
            return Due.REPLACE
        return Due.SKIP
    return Due.START


@dataclass
class JobRecord:
    """One job's history, for status and /metrics (wall-clock times, epoch seconds)."""

    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    last_result: str | None = None
    last_exit: int | None = None
    last_started: float | None = None
    last_finished: float | None = None
    last_success: float | None = None


class Jobs:
    """The timers and records of every scheduled job."""

    def __init__(
        self,
        loop: EventLoop,
        on_due: Callable[[str], None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._loop = loop
        self._on_due = on_due
        self._wall = wall
        self._mono = loop.now  # the loop's own clock: its timers are due on it
        self._timers: dict[str, JobTimer] = {}
        self.records: dict[str, JobRecord] = {}
        self.paused: set[str] = set()  # stopped by an operator: due times are skipped

    def add(self, name: str, schedule: Schedule) -> None:
        """Start timing ``name`` (again, after a reload: its history is kept)."""
        from pyinit.schedule import JobTimer

        self.remove(name)
        timer = JobTimer(
            self._loop, schedule, lambda: self._on_due(name), wall=self._wall, mono=self._mono
        )
        self._timers[name] = timer
        self.records.setdefault(name, JobRecord())
        timer.start()

    def remove(self, name: str, forget: bool = False) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.stop()
        if forget:
            self.records.pop(name, None)
            self.paused.discard(name)

    def stop_all(self) -> None:
        for timer in self._timers.values():
            timer.stop()

    def __contains__(self, name: object) -> bool:
        return name in self._timers

    def next_run(self, name: str) -> float | None:
        timer = self._timers.get(name)
        return timer.next_wall if timer is not None else None

    def schedule(self, name: str) -> str | None:
        timer = self._timers.get(name)
        return timer.schedule.describe() if timer is not None else None

    # -- records ---------------------------------------------------------------
    def started(self, name: str) -> None:
        self.records.setdefault(name, JobRecord()).last_started = self._wall()

    def skipped(self, name: str) -> None:
        self.records.setdefault(name, JobRecord()).runs["skipped"] += 1

    def finished(self, name: str, result: str, exit_code: int | None) -> None:
        record = self.records.setdefault(name, JobRecord())
        now = self._wall()
        record.runs[result] += 1
        record.last_result = result
        record.last_exit = exit_code
        record.last_finished = now
        if result == "success":
            record.last_success = now


def run_result(before: State, after: State) -> str | None:
    """The result of a run whose process just ended (``before`` -> ``after``), or
    None when the state change is not the end of a run."""
    if not before.alive or after.alive:
        return None
    if after is State.COMPLETED:
        return "success"
    if after is State.STOPPED:
        return "stopped"
    return "failure"  # FAILED, or BACKOFF before a retry
