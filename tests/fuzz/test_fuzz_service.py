"""Fuzzing the service state machine with random event sequences and a fake clock."""

from __future__ import annotations

import signal

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pyinit.config import Backoff, RestartPolicy, ServiceConfig, ServiceType, StartLimit
from pyinit.reaper import ExitStatus
from pyinit.service import (
    _TRANSITIONS,
    Action,
    CancelTimer,
    Event,
    EventKind,
    IllegalTransition,
    SendSignal,
    ServiceMachine,
    Spawn,
    StartTimer,
    State,
    TimerKind,
)

durations = st.floats(min_value=0, max_value=120, allow_nan=False)
configs = st.builds(
    ServiceConfig,
    name=st.just("svc"),
    command=st.just(("true",)),
    type=st.sampled_from(ServiceType),
    restart=st.sampled_from(RestartPolicy),
    backoff=st.builds(
        lambda initial, extra, multiplier, jitter, reset_after: Backoff(
            initial, multiplier, initial + extra, jitter, reset_after
        ),
        durations,
        durations,
        st.floats(min_value=1, max_value=1e6),
        st.floats(min_value=0, max_value=1),
        durations,
    ),
    start_limit=st.builds(StartLimit, st.integers(min_value=1, max_value=6), st.floats(0.001, 300)),
    stop_signal=st.sampled_from([signal.SIGTERM, signal.SIGINT, signal.SIGQUIT]),
    stop_grace_period=durations,
)
statuses = st.one_of(
    st.none(),
    st.builds(ExitStatus, code=st.integers(0, 255)),
    st.builds(ExitStatus, signal=st.sampled_from([9, 15, 2, 6]), core_dumped=st.booleans()),
    st.just(ExitStatus(code=0)),
)


class MachineFuzz(RuleBasedStateMachine):
    @initialize(cfg=configs, rand=st.floats(0, 1, exclude_max=True))
    def setup(self, cfg: ServiceConfig, rand: float) -> None:
        self.machine = ServiceMachine(cfg, rng=lambda: rand)
        self.now = 1000.0
        self.timers: dict[TimerKind, bool] = {TimerKind.KILL: False, TimerKind.RESTART: False}
        self.restarts = 0
        self.next_pid = 100

    def _event(self, kind: EventKind, status: ExitStatus | None) -> Event:
        pid = None
        if kind is EventKind.SPAWNED:
            self.next_pid += 1
            pid = self.next_pid
        elif kind is EventKind.EXITED:
            pid = self.machine.pid
        reason = "boom" if kind in (EventKind.DEPENDENCY_FAILED, EventKind.FAILURE_DETECTED) else ""
        if kind is EventKind.SPAWN_FAILED:
            reason = "not found"
        return Event(kind, pid=pid, status=status, reason=reason)

    def _apply(self, kind: EventKind, status: ExitStatus | None) -> None:
        m = self.machine
        before = m.state
        legal = (before, kind) in _TRANSITIONS
        event = self._event(kind, status)
        try:
            actions = m.handle(event, self.now)
        except IllegalTransition:
            assert not legal, (before, kind)
            assert m.state is before
            return
        assert legal, f"{kind} in {before} should have raised"
        self._track(before, kind, actions)

    def _track(self, before: State, kind: EventKind, actions: list[Action]) -> None:
        m = self.machine
        for action in actions:
            assert isinstance(action, Spawn | SendSignal | StartTimer | CancelTimer) or hasattr(
                action, "message"
            )
            if isinstance(action, StartTimer):
                assert action.delay >= 0
                self.timers[action.kind] = True
            elif isinstance(action, CancelTimer):
                self.timers[action.kind] = False
        if kind is EventKind.RESTART_DUE:
            self.timers[TimerKind.RESTART] = False  # it fired
        if kind is EventKind.KILL_DUE:
            assert SendSignal(signal.SIGKILL) in actions
        if m.state is State.STARTING and before is not State.STARTING:
            assert Spawn() in actions
        if m.state is State.BACKOFF and before is not State.BACKOFF:
            assert m.restarts == self.restarts + 1
            delay = next(a.delay for a in actions if isinstance(a, StartTimer))
            assert delay >= 0.1
        if m.state is State.STOPPING and before is not State.STOPPING:
            assert SendSignal(m.cfg.stop_signal) in actions

    # -- rules ---------------------------------------------------------------
    @rule(kind=st.sampled_from(EventKind), status=statuses)
    def any_event(self, kind: EventKind, status: ExitStatus | None) -> None:
        self._apply(kind, status)

    @rule(data=st.data(), status=statuses)
    def legal_event(self, data: st.DataObject, status: ExitStatus | None) -> None:
        legal = [k for k in EventKind if (self.machine.state, k) in _TRANSITIONS]
        self._apply(data.draw(st.sampled_from(legal)), status)

    @precondition(lambda self: self.machine.state is State.BACKOFF)
    @rule()
    def restart_timer_fires(self) -> None:
        self._apply(EventKind.RESTART_DUE, None)

    @precondition(lambda self: self.machine.state is State.STOPPING)
    @rule()
    def kill_timer_fires(self) -> None:
        self._apply(EventKind.KILL_DUE, None)

    @rule(dt=st.one_of(st.floats(0, 5), st.floats(0, 400)))
    def clock_moves(self, dt: float) -> None:
        self.now += dt

    # -- invariants ------------------------------------------------------------
    @invariant()
    def state_is_defined(self) -> None:
        assert isinstance(self.machine.state, State)
        assert any(s is self.machine.state for (s, _k) in _TRANSITIONS)

    @invariant()
    def ended_means_no_pid(self) -> None:
        m = self.machine
        if m.state.final or m.state in (State.BACKOFF, State.PENDING):
            assert m.pid is None, (m.state, m.pid)

    @invariant()
    def restarts_only_grow(self) -> None:
        assert self.machine.restarts >= self.restarts
        self.restarts = self.machine.restarts

    @invariant()
    def backoff_has_a_restart_timer(self) -> None:
        if self.machine.state is State.BACKOFF:
            assert self.timers[TimerKind.RESTART]

    @invariant()
    def stopping_has_a_kill_timer(self) -> None:
        if self.machine.state is State.STOPPING:
            assert self.timers[TimerKind.KILL]

    @invariant()
    def failed_says_why(self) -> None:
        if self.machine.state is State.FAILED:
            assert self.machine.reason


def test_state_machine() -> None:
    run_state_machine_as_test(MachineFuzz, settings=settings(stateful_step_count=30))


@given(st.sampled_from(State), st.sampled_from(EventKind), configs)
def test_illegal_transition_exactly_outside_the_table(
    state: State, kind: EventKind, cfg: ServiceConfig
) -> None:
    machine = ServiceMachine(cfg, rng=lambda: 0.5)
    machine.state = state
    try:
        machine.handle(Event(kind, pid=None, status=ExitStatus(code=1), reason="r"), 5.0)
    except IllegalTransition:
        assert (state, kind) not in _TRANSITIONS
    else:
        assert (state, kind) in _TRANSITIONS
