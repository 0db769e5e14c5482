"""When a scheduled job is next due: cron expressions and ``@every DURATION``.

A cron expression is read in the container's local time zone, the one the C
library uses (``TZ``, else /etc/localtime), so ``0 3 * * *`` means 03:00 on the
clocks of whoever set ``TZ``. The loop's timers are monotonic, so a due time is
computed on the wall clock and handed to the loop as a monotonic deadline; when
the timer fires the wall clock is checked again, so a clock that was set back
meanwhile re-arms instead of running the job early. Nothing ticks in between:
a ``@daily`` job costs one wake-up a day.

croniter is imported only here, and only when a config has a schedule: neither
the wrapper nor a supervisor without jobs pays its start-up cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pyinit.durations import format_duration, parse_duration

ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MIN_EVERY = 0.1  # seconds; a shorter interval is a busy loop, not a schedule
_EXAMPLES = "a cron expression such as '*/5 * * * *', @hourly, @daily, or @every 30s"


@dataclass(frozen=True)
class Schedule:
    """One job's schedule: ``every`` seconds, or a 5-field ``cron`` expression."""

    text: str
    every: float | None = None
    cron: str | None = None

    def describe(self) -> str:
        return f"@every {format_duration(self.every)}" if self.every is not None else self.text


def parse_schedule(value: object) -> Schedule:
    """A Schedule, or ValueError with a message that quotes what was written."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected {_EXAMPLES}; got {value!r}")
    text = " ".join(value.split())
    if text.startswith("@every"):
        return _every(text)
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ValueError(f"unknown schedule {value!r}; the aliases are {', '.join(ALIASES)}")
        return _checked_cron(text.lower(), value)
    if len(text.split(" ")) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week);"
            f" {value!r} has {len(text.split(' '))}"
        )
    return _checked_cron(text, value)


def _every(text: str) -> Schedule:
    rest = text[len("@every") :].strip()
    if not rest:
        raise ValueError(f"{text!r}: @every needs a duration, such as @every 30s")
    try:
        seconds = parse_duration(rest)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if seconds < MIN_EVERY:
        raise ValueError(f"{text!r}: the interval must be at least {format_duration(MIN_EVERY)}")
    return Schedule(text, every=seconds)


def _checked_cron(expression: str, written: str) -> Schedule:
    from datetime import datetime

    from croniter import CroniterBadDateError, CroniterError, croniter

    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"cron expression {written!r} is never due") from None
    except (CroniterError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"bad cron expression {written!r}: {exc}") from None
    return Schedule(written, cron=expression)


def next_cron_time(expression: str, after: float) -> float:
    """The first wall-clock time (epoch seconds) strictly after ``after`` at which
    ``expression`` is due, in the C library's local time zone.

    croniter steps through naive local times; ``time.mktime`` turns each into an
    instant with the zone's rules. Across a DST change a local time that happens
    twice runs once, and one that does not exist runs at the time mktime moves it
    to; a candidate that does not lie after ``after`` is stepped past.
    """
    from datetime import datetime

    from croniter import croniter

    start = datetime.fromtimestamp(after).replace(microsecond=0)
    steps = croniter(expression, start)
    for _ in range(8):
        candidate: datetime = steps.get_next(datetime)
        when = time.mktime(candidate.timetuple())
        if when > after:
            return when
    # Not reachable with the zone rules the C library knows; never spin in PID 1.
    return after + 3600.0


def next_every(every: float, now: float, previous: float | None) -> float:
    """The next due time of an ``@every`` schedule on the monotonic clock.

    It keeps its rhythm from the previous due time (a slow job does not make the
    schedule drift); due times that passed while a run was going or pyinit was
    busy are skipped, not made up.
    """
    if previous is None:
        return now + every
    missed = max(0, int((now - previous) // every))
    return previous + (missed + 1) * every


class _TimerHandle(Protocol):
    def cancel(self) -> None: ...


class _Loop(Protocol):
    def call_at(self, when: float, callback: Callable[[], None]) -> _TimerHandle: ...


class JobTimer:
    """Calls ``on_due`` at each due time of a schedule, through one loop timer.

    ``@every`` lives on the monotonic clock alone (setting the wall clock does not
    move it); a cron schedule is due at wall-clock times.
    """

    # A monotonic timer can fire a hair early relative to the wall clock (the two
    # clocks are read separately); within this much the job is taken as due.
    SLACK = 0.005

    def __init__(
        self,
        loop: _Loop,
        schedule: Schedule,
        on_due: Callable[[], None],
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self.schedule = schedule
        self._on_due = on_due
        self._wall = wall
        self._mono = mono
        self._timer: _TimerHandle | None = None
        self._due_mono = 0.0
        self._due_wall = 0.0

    @property
    def armed(self) -> bool:
        return self._timer is not None

    @property
    def next_wall(self) -> float | None:
        """When the next run is due, as epoch seconds (for status); None if stopped."""
        return self._due_wall if self._timer is not None else None

    def start(self) -> None:
        """Arm for the first due time from now (missed ones are not made up)."""
        self.stop()
        if self.schedule.every is not None:
            self._arm_mono(next_every(self.schedule.every, self._mono(), None))
        else:
            self._arm_wall(self._next_cron())

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _next_cron(self) -> float:
        assert self.schedule.cron is not None
        return next_cron_time(self.schedule.cron, self._wall())

    def _arm_mono(self, due: float) -> None:
        self._due_mono = due
        if self.schedule.every is not None:  # read once: status shows a stable time
            self._due_wall = self._wall() + (due - self._mono())
        self._timer = self._loop.call_at(due, self._fire)

    def _arm_wall(self, due: float) -> None:
        self._due_wall = due
        self._arm_mono(self._mono() + (due - self._wall()))

    def _fire(self) -> None:
        self._timer = None
        if self.schedule.every is not None:
            self._arm_mono(next_every(self.schedule.every, self._mono(), self._due_mono))
        elif self._wall() + self.SLACK < self._due_wall:
            self._arm_wall(self._due_wall)  # the wall clock went back: not due yet
            return
        else:
            # From the due time at least: fired a hair early, "now" would give it again.
            assert self.schedule.cron is not None
            after = max(self._wall(), self._due_wall)
            self._arm_wall(next_cron_time(self.schedule.cron, after))
        self._on_due()
