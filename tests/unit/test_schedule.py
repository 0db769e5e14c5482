"""Unit tests for scheduled-job timing (pyinit.schedule): parsing, next due times in
the local time zone with a fixed clock, and the one-timer JobTimer. No processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit.schedule import JobTimer, next_cron_time, next_every, parse_schedule


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the C library's local time zone (TZ) for one test."""

    def use(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


def at(text: str) -> float:
    """Epoch seconds of a local wall-clock time (in the TZ the test set)."""
    return time.mktime(datetime.fromisoformat(text).timetuple())


def local(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).isoformat()


@pytest.mark.parametrize(
    ("text", "every"),
    [("@every 30s", 30.0), ("@every 1m30s", 90.0), ("@every   500ms", 0.5), ("@every 2h", 7200.0)],
)
def test_every_forms(text: str, every: float) -> None:
    """`@every DURATION` takes the duration forms used everywhere else."""
    assert parse_schedule(text).every == every


@pytest.mark.parametrize(
    "text",
    [
        "*/5 * * * *",
        "0 3 * * 1-5",
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@midnight",
        "@DAILY",
        "30  2 * * *",
    ],
)
def test_cron_forms(text: str) -> None:
    """5-field expressions and the usual aliases are accepted."""
    assert parse_schedule(text).cron is not None


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("61 * * * *", "'61 * * * *'"),
        ("* * * *", "has 4"),
        ("0 * * * * *", "has 6"),
        ("@sometimes", "'@sometimes'"),
        ("@every", "needs a duration"),
        ("@every 5x", "'@every 5x'"),
        ("@every 10ms", "at least 100ms"),
        ("0 0 30 2 *", "never due"),
        ("", "cron expression"),
        ("a b c d e", "'a b c d e'"),
    ],
)
def test_bad_schedules_quote_the_text(text: str, quoted: str) -> None:
    """A bad schedule is a ValueError whose message quotes what was written."""
    with pytest.raises(ValueError) as info:
        parse_schedule(text)
    assert quoted in str(info.value)


def test_non_string_is_rejected() -> None:
    with pytest.raises(ValueError, match="cron expression"):
        parse_schedule(5)


def test_cron_next_in_local_zone(zone: Callable[[str], None]) -> None:
    """`0 3 * * *` is due at 03:00 on the local clock of TZ, not UTC."""
    zone("Asia/Tokyo")
    due = next_cron_time("0 3 * * *", at("2026-06-01T10:00:00"))
    assert local(due) == "2026-06-02T03:00:00"
    assert time.gmtime(due).tm_hour == 18  # 03:00 JST is 18:00 UTC the day before


def test_cron_next_is_strictly_after(zone: Callable[[str], None]) -> None:
    """At (or a fraction past) a due time, the next one is the following one."""
    zone("UTC")
    assert local(next_cron_time("*/5 * * * *", at("2026-06-01T10:05:00"))) == "2026-06-01T10:10:00"
    due = next_cron_time("*/5 * * * *", at("2026-06-01T10:05:00") + 0.4)
    assert local(due) == "2026-06-01T10:10:00"
    assert local(next_cron_time("@hourly", at("2026-06-01T10:59:59"))) == "2026-06-01T11:00:00"


def test_cron_across_spring_forward_runs_once(zone: Callable[[str], None]) -> None:
    """A daily 02:30 job on the day 02:30 does not exist runs once, an hour on."""
    zone("Europe/Paris")  # 2026-03-29 02:00 CET -> 03:00 CEST
    due = next_cron_time("30 2 * * *", at("2026-03-28T12:00:00"))
    assert local(due) == "2026-03-29T03:30:00"
    assert local(next_cron_time("30 2 * * *", due)) == "2026-03-30T02:30:00"


def test_cron_across_fall_back_runs_once(zone: Callable[[str], None]) -> None:
    """A daily 02:30 job on the day 02:30 happens twice runs once."""
    zone("Europe/Paris")  # 2026-10-25 03:00 CEST -> 02:00 CET
    first = next_cron_time("30 2 * * *", at("2026-10-24T12:00:00"))
    assert local(first).startswith("2026-10-25T02:30")
    second = next_cron_time("30 2 * * *", first)
    assert local(second) == "2026-10-26T02:30:00"


def test_every_keeps_rhythm_and_skips_missed() -> None:
    """@every is due each interval from the previous due time; passed ones are skipped."""
    assert next_every(10.0, now=100.0, previous=None) == 110.0
    assert next_every(10.0, now=110.2, previous=110.0) == 120.0
    assert next_every(10.0, now=135.0, previous=110.0) == 140.0  # 120 and 130 not made up


class FakeLoop:
    """call_at only: records the armed timers, fires them on demand."""

    def __init__(self) -> None:
        self.timers: list[tuple[float, Callable[[], None], list[bool]]] = []

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeTimer:
        flag = [False]
        self.timers.append((when, callback, flag))
        return FakeTimer(flag)

    def live(self) -> list[float]:
        return [when for when, _cb, flag in self.timers if not flag[0]]

    def fire(self) -> None:
        when, callback, flag = next(t for t in self.timers if not t[2][0])
        flag[0] = True
        callback()


class FakeTimer:
    def __init__(self, flag: list[bool]) -> None:
        self.flag = flag

    def cancel(self) -> None:
        self.flag[0] = True


class Clocks:
    def __init__(self, wall: float, mono: float) -> None:
        self.wall = wall
        self.mono = mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_job_timer_cron_arms_one_monotonic_deadline(zone: Callable[[str], None]) -> None:
    """A @daily job arms one timer at the monotonic time matching local midnight,
    and each firing arms exactly the next one: no periodic tick."""
    zone("UTC")
    clocks = Clocks(wall=at("2026-06-01T23:00:00"), mono=1000.0)
    loop, runs = FakeLoop(), []
    job = JobTimer(
        loop,
        parse_schedule("@daily"),
        lambda: runs.append(clocks.wall),
        wall=lambda: clocks.wall,
        mono=lambda: clocks.mono,
    )
    job.start()
    assert loop.live() == [1000.0 + 3600.0]
    assert job.next_wall == at("2026-06-02T00:00:00")
    clocks.advance(3600.0)
    loop.fire()
    assert runs == [at("2026-06-02T00:00:00")]
    assert loop.live() == [1000.0 + 3600.0 + 86400.0]


def test_job_timer_wall_clock_set_back_rearms(zone: Callable[[str], None]) -> None:
    """If the wall clock went back while waiting, the job is not run early."""
    zone("UTC")
    clocks = Clocks(wall=at("2026-06-01T23:00:00"), mono=0.0)
    loop, runs = FakeLoop(), []
    job = JobTimer(
        loop,
        parse_schedule("@daily"),
        lambda: runs.append(1),
        wall=lambda: clocks.wall,
        mono=lambda: clocks.mono,
    )
    job.start()
    clocks.mono += 3600.0
    clocks.wall += 3000.0  # someone set the clock back 10 minutes
    loop.fire()
    assert runs == []
    assert loop.live() == [3600.0 + 600.0]
    clocks.advance(600.0)
    loop.fire()
    assert runs == [1]


def test_job_timer_fired_a_hair_early_does_not_run_twice(zone: Callable[[str], None]) -> None:
    """Clock reads a few ms before the due time still count, and the next due time
    is the following one, not the same one again."""
    zone("UTC")
    clocks = Clocks(wall=at("2026-06-01T10:00:30"), mono=0.0)
    loop, runs = FakeLoop(), []
    job = JobTimer(
        loop,
        parse_schedule("* * * * *"),
        lambda: runs.append(1),
        wall=lambda: clocks.wall,
        mono=lambda: clocks.mono,
    )
    job.start()
    clocks.advance(29.998)
    loop.fire()
    assert runs == [1]
    assert job.next_wall == at("2026-06-01T10:02:00")


def test_job_timer_every_and_stop() -> None:
    """@every arms on the monotonic clock; stop() cancels the one timer."""
    clocks = Clocks(wall=5000.0, mono=10.0)
    loop, runs = FakeLoop(), []
    job = JobTimer(
        loop,
        parse_schedule("@every 2s"),
        lambda: runs.append(clocks.mono),
        wall=lambda: clocks.wall,
        mono=lambda: clocks.mono,
    )
    job.start()
    assert loop.live() == [12.0]
    assert job.next_wall == 5002.0
    clocks.advance(2.0)
    loop.fire()
    assert runs == [12.0] and loop.live() == [14.0]
    job.stop()
    assert loop.live() == [] and job.next_wall is None and not job.armed


_FIELD = st.one_of(
    st.sampled_from(["*", "*/5", "1-5", "0", "59", "60", "L", "H", "MON", "jan", "?", "#"]),
    st.text(alphabet="0123456789*/-,LWH#?", max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_FIELD, min_size=1, max_size=7).map(" ".join)))
def test_any_text_is_a_schedule_or_a_value_error(text: str) -> None:
    """Whatever is written, parsing gives a Schedule or a ValueError quoting it; a
    parsed cron schedule always has a next due time after now."""
    try:
        schedule = parse_schedule(text)
    except ValueError as exc:
        quoted = [repr(t)[1:-1][:20] for t in (text, " ".join(text.split()))]
        assert any(q in str(exc) for q in quoted) or not text.strip()
        return
    if schedule.cron is not None:
        now = time.time()
        assert next_cron_time(schedule.cron, now) > now
