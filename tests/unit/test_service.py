"""Unit tests for the pure service state machine (pyinit/service.py).

No processes and no real clock: every event is fed with an explicit ``now`` and
the machine's ``rng`` is fixed (0.5 means "no jitter"), so every delay is exact.
"""

from __future__ import annotations

import itertools
import random
import signal
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pyinit.config import Backoff, RestartPolicy, ServiceConfig, ServiceType, StartLimit
from pyinit.reaper import ExitStatus
from pyinit.service import (
    _TRANSITIONS,
    MIN_RESTART_DELAY,
    Action,
    CancelTimer,
    Event,
    EventKind,
    IllegalTransition,
    Log,
    SendSignal,
    ServiceMachine,
    Spawn,
    StartTimer,
    State,
    TimerKind,
    backoff_delay,
)

S, E = State, EventKind
NO_JITTER: Callable[[], float] = lambda: 0.5  # noqa: E731
PID = 4242


# -- helpers ---------------------------------------------------------------------------


def make_cfg(**kw: Any) -> ServiceConfig:
    kw.setdefault("name", "web")
    kw.setdefault("command", ("web-server",))
    return ServiceConfig(**kw)


def ev(kind: EventKind, **kw: Any) -> Event:
    return Event(kind, **kw)


def exited(code: int | None = None, sig: int | None = None) -> Event:
    if sig is not None:
        return Event(E.EXITED, pid=PID, status=ExitStatus(signal=sig))
    return Event(E.EXITED, pid=PID, status=ExitStatus(code=code))


START = ev(E.START)
SPAWNED = ev(E.SPAWNED, pid=PID)
READY = ev(E.READY)
STOP = ev(E.STOP)
KILL_DUE = ev(E.KILL_DUE)
RESTART_DUE = ev(E.RESTART_DUE)
INHIBIT = ev(E.INHIBIT_RESTART)
SPAWN_FAILED = ev(E.SPAWN_FAILED, status=ExitStatus(code=127), reason="exec web-server: not found")
DEP_FAILED = ev(E.DEPENDENCY_FAILED, reason="dependency db failed (status 1)")


class Harness:
    """A machine plus a fake clock that only moves when told to."""

    def __init__(self, cfg: ServiceConfig, rng: Callable[[], float] = NO_JITTER) -> None:
        self.m = ServiceMachine(cfg, rng=rng)
        self.now = 0.0

    def send(self, event: Event, dt: float = 0.0) -> list[Action]:
        self.now += dt
        return self.m.handle(event, self.now)

    def run(self, events: Sequence[Event], dt: float = 1.0) -> list[Action]:
        """Feed ``events`` one per ``dt`` seconds; return the last event's actions."""
        actions: list[Action] = []
        for event in events:
            actions = self.send(event, dt)
        return actions

    def spawn(self, dt: float = 0.0) -> None:
        """START (or RESTART_DUE from backoff) followed by a successful exec."""
        kind = E.RESTART_DUE if self.m.state is S.BACKOFF else E.START
        assert self.send(ev(kind), dt) == [Spawn()]
        self.send(SPAWNED)
        assert self.m.state is S.STARTING and self.m.pid == PID


def timers(actions: Sequence[Action], kind: TimerKind) -> list[float]:
    return [a.delay for a in actions if isinstance(a, StartTimer) and a.kind is kind]


def logs(actions: Sequence[Action]) -> str:
    return "\n".join(a.message for a in actions if isinstance(a, Log))


def restart_delay(actions: Sequence[Action]) -> float:
    (delay,) = timers(actions, TimerKind.RESTART)
    return delay


# -- the transition table ----------------------------------------------------------------

ON_FAILURE = make_cfg(restart=RestartPolicy.ON_FAILURE)
ONESHOT = make_cfg(type=ServiceType.ONESHOT, restart=RestartPolicy.ON_FAILURE)

# How each state is reached through legal events (all under ON_FAILURE, except
# COMPLETED, which only a oneshot reaches).
PATHS: dict[State, list[Event]] = {
    S.PENDING: [],
    S.STARTING: [START, SPAWNED],
    S.RUNNING: [START, SPAWNED, READY],
    S.STOPPING: [START, SPAWNED, READY, STOP],
    S.BACKOFF: [START, SPAWNED, exited(1)],
    S.STOPPED: [START, SPAWNED, READY, STOP, exited(sig=signal.SIGTERM)],
    S.EXITED: [START, SPAWNED, exited(0)],
    S.COMPLETED: [START, SPAWNED, exited(0)],
    S.FAILED: [DEP_FAILED],
}
# The exec outcome arrives before the pid is known.
PATH_OVERRIDES: dict[tuple[State, EventKind], list[Event]] = {
    (S.STARTING, E.SPAWNED): [START],
    (S.STARTING, E.SPAWN_FAILED): [START],
}
# The event each kind is fed as, in the table tests.
EVENTS: dict[EventKind, Event] = {
    E.START: START,
    E.SPAWNED: SPAWNED,
    E.SPAWN_FAILED: SPAWN_FAILED,
    E.READY: READY,
    E.EXITED: exited(1),
    E.STOP: STOP,
    E.KILL_DUE: KILL_DUE,
    E.RESTART_DUE: RESTART_DUE,
    E.DEPENDENCY_FAILED: DEP_FAILED,
    E.INHIBIT_RESTART: INHIBIT,
}


def event_for(kind: EventKind) -> Event:
    """The event fed for ``kind``; a kind added later gets a generic one with a reason."""
    return EVENTS.get(kind) or Event(kind, pid=PID, reason=f"{kind.value} (test)")


FIRST_RESTART = StartTimer(TimerKind.RESTART, 0.5)  # Backoff().initial, no jitter
STOP_ACTIONS: list[Action] = [
    SendSignal(signal.SIGTERM),
    StartTimer(TimerKind.KILL, 10.0),
]

# (state, event) -> (next state, actions other than Log lines)
EXPECTED: dict[tuple[State, EventKind], tuple[State, list[Action]]] = {
    (S.PENDING, E.START): (S.STARTING, [Spawn()]),
    (S.PENDING, E.STOP): (S.STOPPED, []),
    (S.PENDING, E.DEPENDENCY_FAILED): (S.FAILED, []),
    (S.PENDING, E.INHIBIT_RESTART): (S.PENDING, []),
    (S.STARTING, E.SPAWNED): (S.STARTING, []),
    (S.STARTING, E.SPAWN_FAILED): (S.BACKOFF, [FIRST_RESTART]),
    (S.STARTING, E.READY): (S.RUNNING, []),
    (S.STARTING, E.EXITED): (S.BACKOFF, [FIRST_RESTART]),
    (S.STARTING, E.STOP): (S.STOPPING, STOP_ACTIONS),
    (S.STARTING, E.INHIBIT_RESTART): (S.STARTING, []),
    (S.STARTING, E.FAILURE_DETECTED): (S.STOPPING, STOP_ACTIONS),
    (S.RUNNING, E.FAILURE_DETECTED): (S.STOPPING, STOP_ACTIONS),
    (S.STOPPING, E.FAILURE_DETECTED): (S.STOPPING, []),
    (S.RUNNING, E.READY): (S.RUNNING, []),
    (S.RUNNING, E.EXITED): (S.BACKOFF, [FIRST_RESTART]),
    (S.RUNNING, E.STOP): (S.STOPPING, STOP_ACTIONS),
    (S.RUNNING, E.INHIBIT_RESTART): (S.RUNNING, []),
    (S.STOPPING, E.EXITED): (S.STOPPED, [CancelTimer(TimerKind.KILL)]),
    (S.STOPPING, E.KILL_DUE): (S.STOPPING, [SendSignal(signal.SIGKILL)]),
    (S.STOPPING, E.STOP): (S.STOPPING, []),
    (S.STOPPING, E.READY): (S.STOPPING, []),
    (S.STOPPING, E.INHIBIT_RESTART): (S.STOPPING, []),
    (S.BACKOFF, E.RESTART_DUE): (S.STARTING, [Spawn()]),
    (S.BACKOFF, E.STOP): (S.STOPPED, [CancelTimer(TimerKind.RESTART)]),
    (S.BACKOFF, E.INHIBIT_RESTART): (S.STOPPED, [CancelTimer(TimerKind.RESTART)]),
    (S.BACKOFF, E.DEPENDENCY_FAILED): (S.FAILED, [CancelTimer(TimerKind.RESTART)]),
}
for _final in (S.STOPPED, S.EXITED, S.COMPLETED, S.FAILED):
    EXPECTED[(_final, E.START)] = (S.STARTING, [Spawn()])
    EXPECTED[(_final, E.STOP)] = (_final, [])
    EXPECTED[(_final, E.INHIBIT_RESTART)] = (_final, [])
    EXPECTED[(_final, E.DEPENDENCY_FAILED)] = (_final, [])

# Timers that can be armed in a state; cancelling any other timer is a no-op.
ARMED: dict[State, set[TimerKind]] = {
    S.BACKOFF: {TimerKind.RESTART},
    S.STOPPING: {TimerKind.KILL},
}


def significant(actions: Sequence[Action], before: State) -> list[Action]:
    """The actions minus Log lines and cancels of timers that cannot be armed."""
    armed = ARMED.get(before, set())
    return [
        a
        for a in actions
        if not isinstance(a, Log) and not (isinstance(a, CancelTimer) and a.kind not in armed)
    ]


def reach(state: State, path: Sequence[Event] | None = None) -> Harness:
    h = Harness(ONESHOT if state is S.COMPLETED else ON_FAILURE)
    h.run(PATHS[state] if path is None else path)
    assert h.m.state is state
    return h


def _pair_id(pair: tuple[State, EventKind]) -> str:
    return f"{pair[0].value}+{pair[1].value}"


ALLOWED = sorted(_TRANSITIONS, key=_pair_id)
FORBIDDEN = sorted(set(itertools.product(State, EventKind)) - set(_TRANSITIONS), key=_pair_id)


def test_expectations_cover_the_table() -> None:
    """Every allowed pair has a documented outcome here, and nothing else does."""
    assert set(EXPECTED) == set(_TRANSITIONS)
    assert set(PATHS) == set(State)


@pytest.mark.parametrize("pair", ALLOWED, ids=_pair_id)
def test_allowed_transition(pair: tuple[State, EventKind]) -> None:
    """An allowed (state, event) pair reaches the documented state with the documented
    actions (Log lines aside)."""
    state, kind = pair
    if pair not in EXPECTED:
        pytest.fail(f"no documented outcome for {_pair_id(pair)}: add it to EXPECTED")
    h = reach(state, PATH_OVERRIDES.get(pair))
    actions = h.send(event_for(kind), dt=1.0)
    next_state, expected = EXPECTED[pair]
    assert h.m.state is next_state
    assert significant(actions, state) == expected
    assert all(isinstance(a, (Spawn, SendSignal, StartTimer, CancelTimer, Log)) for a in actions)


@pytest.mark.parametrize("pair", FORBIDDEN, ids=_pair_id)
def test_forbidden_transition_raises(pair: tuple[State, EventKind]) -> None:
    """A pair outside the table raises IllegalTransition naming service, event and state,
    and leaves the machine as it was."""
    state, kind = pair
    h = reach(state)
    before = (h.m.state, h.m.pid, h.m.restarts, h.m.attempt)
    with pytest.raises(IllegalTransition) as info:
        h.send(event_for(kind), dt=1.0)
    message = str(info.value)
    assert "web" in message
    assert kind.value in message
    assert state.value in message
    assert (h.m.state, h.m.pid, h.m.restarts, h.m.attempt) == before


def test_state_properties() -> None:
    """alive means a process may exist; final means nothing happens without a START."""
    assert {s for s in State if s.alive} == {S.STARTING, S.RUNNING, S.STOPPING}
    assert {s for s in State if s.final} == {S.STOPPED, S.EXITED, S.COMPLETED, S.FAILED}


# -- restart policies ----------------------------------------------------------------------

CODE0, CODE1, KILLED = ExitStatus(code=0), ExitStatus(code=1), ExitStatus(signal=signal.SIGKILL)

LONGRUN_OUTCOMES = [
    (RestartPolicy.NO, CODE0, S.EXITED),
    (RestartPolicy.NO, CODE1, S.FAILED),
    (RestartPolicy.NO, KILLED, S.FAILED),
    (RestartPolicy.ON_FAILURE, CODE0, S.EXITED),
    (RestartPolicy.ON_FAILURE, CODE1, S.BACKOFF),
    (RestartPolicy.ON_FAILURE, KILLED, S.BACKOFF),
    (RestartPolicy.ALWAYS, CODE0, S.BACKOFF),
    (RestartPolicy.ALWAYS, CODE1, S.BACKOFF),
    (RestartPolicy.ALWAYS, KILLED, S.BACKOFF),
    (RestartPolicy.UNLESS_STOPPED, CODE0, S.BACKOFF),
    (RestartPolicy.UNLESS_STOPPED, CODE1, S.BACKOFF),
    (RestartPolicy.UNLESS_STOPPED, KILLED, S.BACKOFF),
]


def _outcome_id(policy: RestartPolicy, status: ExitStatus, state: State) -> str:
    return f"{policy.value}-{status.describe().replace(' ', '_')}-{state.value}"


@pytest.mark.parametrize("ready", [True, False], ids=["running", "starting"])
@pytest.mark.parametrize(
    "policy,status,outcome", LONGRUN_OUTCOMES, ids=[_outcome_id(*o) for o in LONGRUN_OUTCOMES]
)
def test_longrun_restart_policy(
    policy: RestartPolicy, status: ExitStatus, outcome: State, ready: bool
) -> None:
    """A longrun's exit leads to BACKOFF (with a restart timer), EXITED or FAILED as its
    policy says, whether or not it had become ready."""
    h = Harness(make_cfg(restart=policy))
    h.spawn(dt=1.0)
    if ready:
        h.send(READY)
    actions = h.send(Event(E.EXITED, pid=PID, status=status), dt=1.0)
    assert h.m.state is outcome
    assert h.m.last_status == status
    assert h.m.pid is None
    if outcome is S.BACKOFF:
        assert timers(actions, TimerKind.RESTART) == [0.5]
        assert h.m.restarts == 1
        assert status.describe() in logs(actions)
        h.send(RESTART_DUE, dt=0.5)
        assert h.m.state is S.STARTING
    else:
        assert timers(actions, TimerKind.RESTART) == []
        assert h.m.restarts == 0
    if outcome is S.FAILED:
        assert h.m.reason == status.describe()
        assert "failed" in logs(actions)
    else:
        assert h.m.reason == ""


ONESHOT_OUTCOMES = [
    (policy, status, S.COMPLETED if status.success else retry)
    for policy, retry in [
        (RestartPolicy.NO, S.FAILED),
        (RestartPolicy.ON_FAILURE, S.BACKOFF),
        (RestartPolicy.ALWAYS, S.BACKOFF),
        (RestartPolicy.UNLESS_STOPPED, S.BACKOFF),
    ]
    for status in (CODE0, CODE1, KILLED)
]


@pytest.mark.parametrize(
    "policy,status,outcome", ONESHOT_OUTCOMES, ids=[_outcome_id(*o) for o in ONESHOT_OUTCOMES]
)
def test_oneshot_restart_policy(policy: RestartPolicy, status: ExitStatus, outcome: State) -> None:
    """A oneshot that succeeds is COMPLETED under any policy; a failure is retried only
    when the policy is not ``no``, else it is FAILED."""
    h = Harness(make_cfg(type=ServiceType.ONESHOT, restart=policy))
    h.spawn(dt=1.0)
    actions = h.send(Event(E.EXITED, pid=PID, status=status), dt=2.0)
    assert h.m.state is outcome
    assert h.m.pid is None
    assert (timers(actions, TimerKind.RESTART) != []) is (outcome is S.BACKOFF)
    if outcome is S.COMPLETED:
        assert "completed (2s)" in logs(actions)


def test_oneshot_retried_until_it_succeeds() -> None:
    """A retried oneshot that eventually exits 0 ends COMPLETED, with the retries counted."""
    h = Harness(make_cfg(type=ServiceType.ONESHOT, restart=RestartPolicy.ON_FAILURE))
    h.spawn(dt=1.0)
    h.send(exited(1), dt=1.0)
    h.spawn(dt=0.5)
    h.send(exited(1), dt=1.0)
    h.spawn(dt=1.0)
    h.send(exited(0), dt=1.0)
    assert h.m.state is S.COMPLETED
    assert h.m.restarts == 2


# -- backoff arithmetic -------------------------------------------------------------------


def backoff_cfg(**kw: Any) -> ServiceConfig:
    return make_cfg(restart=RestartPolicy.ALWAYS, backoff=Backoff(**kw))


def test_backoff_grows_by_multiplier() -> None:
    """Restart n waits initial * multiplier**(n-1)."""
    cfg = backoff_cfg(initial=1.0, multiplier=3.0, max=1000.0, jitter=0.0)
    assert [backoff_delay(cfg, n, 0.5) for n in range(1, 6)] == [1.0, 3.0, 9.0, 27.0, 81.0]


def test_backoff_is_capped_at_max() -> None:
    """The delay never grows past ``max`` (before jitter)."""
    cfg = backoff_cfg(initial=1.0, multiplier=2.0, max=10.0, jitter=0.0)
    assert [backoff_delay(cfg, n, 0.5) for n in range(1, 8)] == [1, 2, 4, 8, 10, 10, 10]
    assert backoff_delay(cfg, 60, 0.5) == 10.0


@pytest.mark.parametrize("attempt", [1, 3, 8])
def test_backoff_jitter_bounds(attempt: int) -> None:
    """Jitter spreads the delay by at most +-jitter of the base: rand 0 gives the low
    edge, rand ~1 approaches the high edge, rand 0.5 gives the base."""
    cfg = backoff_cfg(initial=2.0, multiplier=2.0, max=100.0, jitter=0.25)
    base = min(100.0, 2.0 * 2.0 ** (attempt - 1))
    assert backoff_delay(cfg, attempt, 0.5) == pytest.approx(base)
    assert backoff_delay(cfg, attempt, 0.0) == pytest.approx(base * 0.75)
    high = backoff_delay(cfg, attempt, 1.0 - 1e-12)
    assert base * 1.25 - 1e-6 < high <= base * 1.25
    rng = random.Random(7)
    for _ in range(500):
        assert base * 0.75 - 1e-9 <= backoff_delay(cfg, attempt, rng.random()) <= base * 1.25


def test_backoff_jitter_used_by_machine() -> None:
    """The machine draws its jitter from the injected rng."""
    cfg = backoff_cfg(initial=4.0, multiplier=2.0, max=30.0, jitter=0.5)
    h = Harness(cfg, rng=lambda: 0.0)
    h.spawn(dt=1.0)
    assert restart_delay(h.send(exited(1), dt=1.0)) == pytest.approx(2.0)


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999999])
@pytest.mark.parametrize("attempt", [1, 2, 10])
def test_backoff_never_below_minimum(rand: float, attempt: int) -> None:
    """However backoff is configured, a restart never comes sooner than MIN_RESTART_DELAY."""
    zero = backoff_cfg(initial=0.0, multiplier=2.0, max=0.0, jitter=0.0)
    assert backoff_delay(zero, attempt, rand) == MIN_RESTART_DELAY
    tiny = backoff_cfg(initial=0.01, multiplier=1.0, max=0.05, jitter=1.0)
    assert backoff_delay(tiny, attempt, rand) == MIN_RESTART_DELAY
    halved = backoff_cfg(initial=0.15, multiplier=1.0, max=1.0, jitter=1.0)
    assert backoff_delay(halved, attempt, rand) >= MIN_RESTART_DELAY


def test_machine_crash_loop_with_zero_initial_backoff_waits_minimum() -> None:
    """With ``initial: 0`` the machine still arms a restart timer of MIN_RESTART_DELAY."""
    h = Harness(backoff_cfg(initial=0.0, max=0.0, jitter=0.0), rng=lambda: 0.0)
    h.spawn(dt=1.0)
    assert restart_delay(h.send(exited(1))) == MIN_RESTART_DELAY


def crash_cycle(h: Harness, ran_for: float, code: int = 1) -> float:
    """From BACKOFF (or PENDING): restart, run for ``ran_for`` s, exit; return the delay."""
    h.spawn()
    actions = h.send(exited(code), dt=ran_for)
    assert h.m.state is S.BACKOFF
    delay = restart_delay(actions)
    h.now += delay
    return delay


def test_machine_backoff_grows_then_resets_after_staying_up() -> None:
    """Consecutive quick crashes back off exponentially; a run of at least
    ``reset_after`` seconds resets the count, so the next delay is ``initial`` again."""
    cfg = make_cfg(
        restart=RestartPolicy.ALWAYS,
        backoff=Backoff(initial=1.0, multiplier=2.0, max=60.0, jitter=0.0, reset_after=10.0),
        start_limit=StartLimit(burst=100, interval=60.0),
    )
    h = Harness(cfg)
    assert [crash_cycle(h, 1.0) for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert h.m.attempt == 4
    assert crash_cycle(h, 9.9) == 16.0  # just short of reset_after: still counting
    assert crash_cycle(h, 10.0) == 1.0  # stayed up reset_after: count reset
    assert h.m.attempt == 1
    assert crash_cycle(h, 0.5) == 2.0
    assert h.m.restarts == 7  # the total is never reset


def test_backoff_after_clean_exit_under_always() -> None:
    """``restart: always`` backs off on exit 0 just as on a crash."""
    h = Harness(backoff_cfg(initial=1.0, multiplier=2.0, max=60.0, jitter=0.0))
    assert [crash_cycle(h, 1.0, code=0) for _ in range(3)] == [1.0, 2.0, 4.0]


def test_backoff_delay_huge_attempt_stays_at_max() -> None:
    """Past the cap, any attempt number gives ``max`` (a long crash loop must not raise)."""
    cfg = backoff_cfg(initial=0.5, multiplier=2.0, max=30.0, jitter=0.0)
    assert backoff_delay(cfg, 1025, 0.5) == 30.0


def test_slow_crash_loop_never_raises() -> None:
    """A service that crashes every ~40 s forever (valid config: multiplier 10, burst 10 per
    minute, so the start limit never trips) keeps backing off at ``max`` and never makes
    handle() raise."""
    cfg = make_cfg(
        restart=RestartPolicy.ON_FAILURE,
        backoff=Backoff(initial=1.0, multiplier=10.0, max=30.0, jitter=0.0, reset_after=10.0),
        start_limit=StartLimit(burst=10, interval=60.0),
    )
    h = Harness(cfg)
    for _ in range(400):  # 10.0 ** 309 overflows; ~4.5 hours of crash loop
        delay = crash_cycle(h, 5.0)
    assert h.m.state is S.BACKOFF
    assert delay == 30.0


# -- start limit ---------------------------------------------------------------------------


def limit_cfg(policy: RestartPolicy = RestartPolicy.ALWAYS, **kw: Any) -> ServiceConfig:
    return make_cfg(
        restart=policy,
        backoff=Backoff(initial=0.1, multiplier=1.0, max=0.1, jitter=0.0, reset_after=100.0),
        start_limit=StartLimit(**kw),
    )


def test_start_limit_fails_a_crash_loop() -> None:
    """``burst`` starts within ``interval``: the exit after the last one is FAILED, with a
    reason that names the start limit, and no restart timer."""
    h = Harness(limit_cfg(burst=3, interval=10.0))
    crash_cycle(h, 1.0)
    crash_cycle(h, 1.0)
    h.spawn()
    actions = h.send(exited(1), dt=1.0)
    assert h.m.state is S.FAILED
    assert h.m.pid is None
    assert "start limit" in h.m.reason
    assert "3 starts within 10s" in h.m.reason
    assert "status 1" in h.m.reason
    assert "start limit" in logs(actions)
    assert timers(actions, TimerKind.RESTART) == []
    assert h.m.restarts == 2


def test_start_limit_applies_to_clean_exits_under_always() -> None:
    """A service that exits 0 over and over under ``always`` is a crash loop too."""
    h = Harness(limit_cfg(burst=2, interval=10.0))
    crash_cycle(h, 1.0, code=0)
    h.spawn()
    h.send(exited(0), dt=1.0)
    assert h.m.state is S.FAILED
    assert "start limit" in h.m.reason


def test_starts_spread_beyond_interval_do_not_count() -> None:
    """Starts older than ``interval`` fall out of the window: a service that crashes
    every 4 s never hits a 3-starts-in-10-s limit, however long it goes on."""
    h = Harness(limit_cfg(burst=3, interval=10.0))
    for _ in range(50):
        crash_cycle(h, 4.0)
    assert h.m.state is S.BACKOFF
    assert h.m.restarts == 50


def test_start_limit_window_slides() -> None:
    """Only the starts inside the window at the time of the exit count: after a quiet
    period the burst is available again."""
    h = Harness(limit_cfg(burst=3, interval=10.0))
    crash_cycle(h, 0.5)
    crash_cycle(h, 0.5)  # two starts at ~0 and ~0.6
    h.now += 20.0  # a long backoff, e.g. the timer fired late
    crash_cycle(h, 0.5)
    crash_cycle(h, 0.5)
    assert h.m.state is S.BACKOFF
    h.spawn()
    h.send(exited(1), dt=0.5)  # third start within 10 s of the two before
    assert h.m.state is S.FAILED


def test_start_limit_not_consulted_when_no_restart_is_due() -> None:
    """A service that is not going to be restarted ends by its policy, not the limit."""
    h = Harness(limit_cfg(RestartPolicy.ON_FAILURE, burst=1, interval=10.0))
    h.spawn()
    h.send(exited(0), dt=1.0)
    assert h.m.state is S.EXITED
    assert h.m.reason == ""


# -- stop -------------------------------------------------------------------------------------


def running(cfg: ServiceConfig) -> Harness:
    h = Harness(cfg)
    h.spawn(dt=1.0)
    h.send(READY, dt=1.0)
    assert h.m.state is S.RUNNING
    return h


def test_stop_running_service_signals_and_arms_kill_timer() -> None:
    """STOP while running sends the configured stop_signal and arms the KILL timer for
    stop_grace_period."""
    h = running(make_cfg(stop_signal=signal.SIGQUIT, stop_grace_period=3.5))
    actions = h.send(STOP, dt=1.0)
    assert h.m.state is S.STOPPING
    assert actions == [SendSignal(signal.SIGQUIT), StartTimer(TimerKind.KILL, 3.5)]
    assert h.m.pid == PID  # still alive until the reaper says otherwise


def test_stop_starting_service() -> None:
    """A service stopped before it became ready is signalled like a running one."""
    h = Harness(make_cfg())
    h.spawn(dt=1.0)
    assert h.send(STOP, dt=1.0) == STOP_ACTIONS
    assert h.m.state is S.STOPPING


def test_kill_due_sends_sigkill_and_records_it() -> None:
    """KILL_DUE while stopping sends SIGKILL and marks the stop as ``killed``; the final
    log line says so."""
    h = running(make_cfg(stop_grace_period=2.0))
    h.send(STOP)
    actions = h.send(KILL_DUE, dt=2.0)
    assert [a for a in actions if not isinstance(a, Log)] == [SendSignal(signal.SIGKILL)]
    assert "SIGKILL" in logs(actions)
    assert h.m.killed is True
    assert h.m.state is S.STOPPING
    actions = h.send(exited(sig=signal.SIGKILL), dt=0.01)
    assert h.m.state is S.STOPPED
    assert CancelTimer(TimerKind.KILL) in actions
    assert "killed" in logs(actions)


def test_second_stop_while_stopping_is_ignored() -> None:
    """A repeated STOP does not re-signal or re-arm the kill timer."""
    h = running(make_cfg())
    h.send(STOP)
    assert h.send(STOP, dt=1.0) == []
    assert h.m.state is S.STOPPING


@pytest.mark.parametrize("policy", list(RestartPolicy))
@pytest.mark.parametrize("status", [CODE0, CODE1, ExitStatus(signal=signal.SIGTERM)])
def test_exit_while_stopping_never_restarts(policy: RestartPolicy, status: ExitStatus) -> None:
    """EXITED while stopping ends in STOPPED and cancels the KILL timer; no restart is
    scheduled whatever the policy and exit status."""
    h = running(make_cfg(restart=policy))
    h.send(STOP, dt=1.0)
    actions = h.send(Event(E.EXITED, pid=PID, status=status), dt=0.25)
    assert h.m.state is S.STOPPED
    assert h.m.pid is None
    assert h.m.last_status == status
    assert h.m.killed is False
    assert [a for a in actions if not isinstance(a, Log)] == [CancelTimer(TimerKind.KILL)]
    assert "stopped in 0.25s" in logs(actions)
    assert h.m.restarts == 0


def test_stop_during_backoff_cancels_restart_timer() -> None:
    """STOP in BACKOFF goes straight to STOPPED and cancels the pending restart."""
    h = Harness(make_cfg(restart=RestartPolicy.ALWAYS))
    h.spawn(dt=1.0)
    h.send(exited(1), dt=1.0)
    assert h.m.state is S.BACKOFF
    actions = h.send(STOP, dt=0.1)
    assert h.m.state is S.STOPPED
    assert actions == [CancelTimer(TimerKind.RESTART)]
    assert h.m.pid is None


def test_stop_while_pending_never_starts() -> None:
    """A pending service that is stopped ends STOPPED without spawning."""
    h = Harness(make_cfg(restart=RestartPolicy.ALWAYS))
    actions = h.send(STOP)
    assert h.m.state is S.STOPPED
    assert not any(isinstance(a, (Spawn, SendSignal, StartTimer)) for a in actions)


@pytest.mark.parametrize("status", [CODE0, CODE1, KILLED])
@pytest.mark.parametrize("ready", [True, False], ids=["running", "starting"])
def test_inhibit_restart_then_crash_does_not_restart(status: ExitStatus, ready: bool) -> None:
    """After INHIBIT_RESTART (shutdown began) an exit is final even under ``always``:
    EXITED for status 0, FAILED otherwise, and no restart timer."""
    h = Harness(make_cfg(restart=RestartPolicy.ALWAYS))
    h.spawn(dt=1.0)
    if ready:
        h.send(READY)
    assert h.send(INHIBIT, dt=1.0) == []
    actions = h.send(Event(E.EXITED, pid=PID, status=status), dt=1.0)
    assert h.m.state is (S.EXITED if status.success else S.FAILED)
    assert timers(actions, TimerKind.RESTART) == []
    assert h.m.restarts == 0


def test_inhibit_restart_during_backoff_stops() -> None:
    """INHIBIT_RESTART while a restart is pending cancels it and ends STOPPED."""
    h = Harness(make_cfg(restart=RestartPolicy.ALWAYS))
    h.spawn(dt=1.0)
    h.send(exited(1), dt=1.0)
    actions = h.send(INHIBIT, dt=0.1)
    assert h.m.state is S.STOPPED
    assert actions == [CancelTimer(TimerKind.RESTART)]


def test_inhibit_restart_while_pending_then_dependency_failure() -> None:
    """INHIBIT_RESTART does not move a pending service; it can still fail or be stopped."""
    h = Harness(make_cfg(restart=RestartPolicy.ALWAYS))
    h.send(INHIBIT)
    assert h.m.state is S.PENDING
    h.send(STOP)
    assert h.m.state is S.STOPPED


def test_start_after_stop_restores_restart_policy() -> None:
    """An operator START after a STOP brings the service back under its restart policy:
    a crash afterwards is restarted under ``always``."""
    h = running(make_cfg(restart=RestartPolicy.ALWAYS))
    h.send(STOP, dt=1.0)
    h.send(exited(sig=signal.SIGTERM), dt=1.0)
    assert h.m.state is S.STOPPED
    h.spawn(dt=1.0)
    h.send(exited(1), dt=1.0)
    assert h.m.state is S.BACKOFF


# -- spawn failure -------------------------------------------------------------------------


def test_spawn_failure_without_restart_fails_with_reason() -> None:
    """SPAWN_FAILED is a failed start: under ``no`` it is FAILED with the exec error."""
    h = Harness(make_cfg())
    h.send(START)
    actions = h.send(SPAWN_FAILED, dt=0.01)
    assert h.m.state is S.FAILED
    assert h.m.reason == "exec web-server: not found"
    assert "exec web-server: not found" in logs(actions)
    assert h.m.pid is None
    assert h.m.ever_started is False
    assert h.m.last_status == ExitStatus(code=127)


def test_spawn_failure_default_status_is_127() -> None:
    """A SPAWN_FAILED event without a status is recorded as status 127 (command not found)."""
    h = Harness(make_cfg())
    h.send(START)
    h.send(ev(E.SPAWN_FAILED, reason="no such user"))
    assert h.m.last_status == ExitStatus(code=127)
    assert h.m.reason == "no such user"


@pytest.mark.parametrize("policy", [RestartPolicy.ON_FAILURE, RestartPolicy.ALWAYS])
def test_spawn_failure_is_retried_and_hits_start_limit(policy: RestartPolicy) -> None:
    """SPAWN_FAILED follows the restart policy (backoff) and counts toward the start
    limit, so a command that cannot exec ends FAILED, naming the limit."""
    h = Harness(limit_cfg(policy, burst=3, interval=10.0))
    for expected_restarts in (1, 2):
        assert h.send(ev(E.RESTART_DUE if h.m.state is S.BACKOFF else E.START)) == [Spawn()]
        actions = h.send(SPAWN_FAILED, dt=0.01)
        assert h.m.state is S.BACKOFF
        assert timers(actions, TimerKind.RESTART) == [0.1]
        assert h.m.restarts == expected_restarts
        h.now += 0.1
    h.send(RESTART_DUE)
    h.send(SPAWN_FAILED, dt=0.01)
    assert h.m.state is S.FAILED
    assert "start limit" in h.m.reason
    assert "not found" in h.m.reason
    assert h.m.ever_started is False


def test_oneshot_spawn_failure_is_not_completed() -> None:
    """A oneshot that could not exec is FAILED, never COMPLETED."""
    h = Harness(make_cfg(type=ServiceType.ONESHOT))
    h.send(START)
    h.send(SPAWN_FAILED)
    assert h.m.state is S.FAILED


# -- dependency failure ----------------------------------------------------------------------


def test_dependency_failure_while_pending() -> None:
    """PENDING + DEPENDENCY_FAILED: FAILED with the given reason, never spawned."""
    h = Harness(make_cfg(restart=RestartPolicy.ALWAYS))
    actions = h.send(DEP_FAILED)
    assert h.m.state is S.FAILED
    assert h.m.reason == "dependency db failed (status 1)"
    assert "dependency db failed (status 1)" in logs(actions)
    assert not any(isinstance(a, (Spawn, SendSignal, StartTimer)) for a in actions)
    assert h.m.pid is None
    assert h.m.ever_started is False


def test_dependency_failure_during_backoff_cancels_restart() -> None:
    """A dependency failing while a restart is pending fails the service for good."""
    h = Harness(make_cfg(restart=RestartPolicy.ALWAYS))
    h.spawn(dt=1.0)
    h.send(exited(1), dt=1.0)
    actions = h.send(DEP_FAILED)
    assert h.m.state is S.FAILED
    assert CancelTimer(TimerKind.RESTART) in actions
    assert h.m.reason == "dependency db failed (status 1)"


@pytest.mark.parametrize("final", [S.STOPPED, S.EXITED, S.COMPLETED, S.FAILED])
def test_dependency_failure_after_the_end_is_ignored(final: State) -> None:
    """A service that already ended keeps its state and reason."""
    h = reach(final)
    reason = h.m.reason
    assert h.send(DEP_FAILED, dt=1.0) == []
    assert h.m.state is final
    assert h.m.reason == reason


# -- invariants -------------------------------------------------------------------------------


@pytest.mark.parametrize("final", [S.STOPPED, S.EXITED, S.COMPLETED, S.FAILED])
def test_start_from_final_state_is_a_fresh_start(final: State) -> None:
    """START from an ended state spawns again, clears the failure reason and the
    ``killed`` mark, and is not an automatic restart."""
    h = reach(final)
    restarts = h.m.restarts
    assert h.send(START, dt=1.0) == [Spawn()]
    assert h.m.state is S.STARTING
    assert h.m.reason == ""
    assert h.m.killed is False
    assert h.m.restarts == restarts


def test_restarts_counts_automatic_restarts_only() -> None:
    """``restarts`` grows by one per automatic restart, never on a START."""
    h = Harness(make_cfg(restart=RestartPolicy.ON_FAILURE))
    h.spawn(dt=1.0)
    assert h.m.restarts == 0
    h.send(exited(1), dt=1.0)
    h.spawn(dt=0.5)
    assert h.m.restarts == 1
    h.send(exited(0), dt=1.0)
    assert h.m.state is S.EXITED
    h.spawn(dt=5.0)  # an operator START
    assert h.m.restarts == 1
    h.send(exited(1), dt=1.0)
    h.spawn(dt=1.0)
    assert h.m.restarts == 2


def test_spawned_records_pid_and_start() -> None:
    """SPAWNED sets the pid, the start time and ``ever_started``, and logs the pid."""
    h = Harness(make_cfg())
    h.send(START, dt=3.0)
    actions = h.send(SPAWNED, dt=0.5)
    assert h.m.pid == PID
    assert h.m.started_at == 3.5
    assert h.m.ever_started is True
    assert f"pid {PID}" in logs(actions)
    h.send(READY)
    assert h.m.ever_ready is True


def _random_event(rnd: random.Random, kind: EventKind) -> Event:
    if kind is E.EXITED:
        return Event(kind, pid=PID, status=rnd.choice([CODE0, CODE1, KILLED]))
    if kind is E.SPAWNED:
        return Event(kind, pid=rnd.randint(2, 99999))
    return event_for(kind)


@pytest.mark.parametrize("seed", range(20))
def test_invariants_on_random_walks(seed: int) -> None:
    """Along any sequence of legal events: an ended machine has no pid, a FAILED one has
    a reason, ``restarts`` never decreases and grows only on entering BACKOFF, and
    ``attempt`` never exceeds ``restarts``."""
    rnd = random.Random(seed)
    by_state: dict[State, list[EventKind]] = {}
    for state, kind in _TRANSITIONS:
        by_state.setdefault(state, []).append(kind)
    cfg = make_cfg(
        type=rnd.choice(list(ServiceType)),
        restart=rnd.choice(list(RestartPolicy)),
        start_limit=StartLimit(burst=rnd.randint(1, 6), interval=rnd.choice([1.0, 10.0, 60.0])),
    )
    h = Harness(cfg, rng=rnd.random)
    for _ in range(300):
        before_state, before_restarts = h.m.state, h.m.restarts
        kind = rnd.choice(sorted(by_state[h.m.state], key=lambda k: k.value))
        h.send(_random_event(rnd, kind), dt=rnd.choice([0.0, 0.05, 1.0, 12.0]))
        m = h.m
        if m.state.final or m.state in (S.PENDING, S.BACKOFF):
            assert m.pid is None, (before_state, kind, m.state)
        if m.state is S.FAILED:
            assert m.reason
        assert m.restarts >= before_restarts
        entered_backoff = m.state is S.BACKOFF and before_state is not S.BACKOFF
        assert m.restarts - before_restarts == (1 if entered_backoff else 0)
        assert 0 <= m.attempt <= m.restarts


def test_failure_detected_counts_as_a_failed_exit() -> None:
    """A service found failing (unhealthy, not ready in time, watchdog) is stopped, and
    its exit, even a clean one, goes through the restart policy as a failure."""
    h = Harness(make_cfg(restart=RestartPolicy.ON_FAILURE))
    h.spawn()
    h.send(ev(E.READY))
    actions = h.send(Event(E.FAILURE_DETECTED, reason="unhealthy (3 failures: exit 1)"))
    assert h.m.state is S.STOPPING and SendSignal(signal.SIGTERM) in actions
    h.send(Event(E.EXITED, pid=PID, status=ExitStatus(code=0)), dt=1.0)
    assert h.m.state is S.BACKOFF
    assert h.m.restarts == 1


def test_failure_detected_with_restart_no_fails_with_the_reason() -> None:
    """With ``restart: no`` the detected failure ends the service as FAILED, naming why."""
    h = Harness(make_cfg(restart=RestartPolicy.NO))
    h.spawn()
    h.send(Event(E.FAILURE_DETECTED, reason="not ready within 5s (tcp 127.0.0.1:1)"))
    h.send(Event(E.EXITED, pid=PID, status=ExitStatus(signal=signal.SIGTERM)), dt=1.0)
    assert h.m.state is S.FAILED
    assert "not ready within 5s" in h.m.reason


def test_shutdown_overtakes_a_restart_after_failure_detected() -> None:
    """A shutdown (INHIBIT_RESTART or STOP) that arrives while a failing service is being
    stopped wins: the service ends STOPPED, never restarted during shutdown."""
    for overtaking in (ev(E.INHIBIT_RESTART), STOP):
        h = Harness(make_cfg(restart=RestartPolicy.ALWAYS))
        h.spawn()
        h.send(ev(E.READY))
        h.send(Event(E.FAILURE_DETECTED, reason="watchdog"))
        h.send(overtaking)
        actions = h.send(Event(E.EXITED, pid=PID, status=ExitStatus(code=0)), dt=1.0)
        assert h.m.state in (S.STOPPED, S.FAILED), overtaking
        assert not timers(actions, TimerKind.RESTART)
