"""The life of one service as a pure state machine.

``ServiceMachine.handle(event, now)`` returns the actions the supervisor must
carry out (spawn, signal, timers, log lines). It does no I/O and reads no clock,
so restart policy, backoff and the start limit are testable without processes.
Allowed (state, event) pairs are one table; any other pair is a bug and raises.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pyinit.config.model import RestartPolicy, ServiceConfig, ServiceType
from pyinit.durations import format_duration
from pyinit.exitstatus import ExitStatus

# However the backoff is configured, a crash loop never respawns faster than this.
MIN_RESTART_DELAY = 0.1


class State(Enum):
    PENDING = "pending"  # waiting for its dependencies
    STARTING = "starting"  # spawned, not ready yet
    RUNNING = "running"  # alive and ready
    STOPPING = "stopping"  # stop signal sent, waiting for the exit
    BACKOFF = "backoff"  # exited, restart timer armed
    STOPPED = "stopped"  # stopped on request
    EXITED = "exited"  # a longrun that ended with status 0 and is not restarted
    COMPLETED = "completed"  # a oneshot that ended with status 0
    FAILED = "failed"  # ended for good without success

    @property
    def alive(self) -> bool:
        return self in (State.STARTING, State.RUNNING, State.STOPPING)

    @property
    def final(self) -> bool:
        """Nothing will happen to the service unless someone starts it again."""
        return self in (State.STOPPED, State.EXITED, State.COMPLETED, State.FAILED)


class EventKind(Enum):
    START = "start"  # dependencies hold (or an operator asked)
    SPAWNED = "spawned"  # exec succeeded; pid set
    SPAWN_FAILED = "spawn-failed"  # could not exec; status and reason set
    READY = "ready"  # the readiness source fired
    EXITED = "exited"  # the reaper collected the main pid; status set
    STOP = "stop"  # stop it (shutdown or operator)
    KILL_DUE = "kill-due"  # stop_grace_period elapsed while stopping
    RESTART_DUE = "restart-due"  # backoff elapsed
    DEPENDENCY_FAILED = "dependency-failed"  # a dependency can never hold; reason set
    INHIBIT_RESTART = "inhibit-restart"  # shutdown began: never restart again
    # Alive but failing (unhealthy, not ready in time, missed watchdog): stop it and
    # treat the exit as a failure, so the restart policy decides; reason set.
    FAILURE_DETECTED = "failure-detected"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    pid: int | None = None
    status: ExitStatus | None = None
    reason: str = ""


class TimerKind(Enum):
    KILL = "kill"
    RESTART = "restart"


@dataclass(frozen=True)
class Spawn:
    pass


@dataclass(frozen=True)
class SendSignal:
    signum: int


@dataclass(frozen=True)
class StartTimer:
    kind: TimerKind
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    kind: TimerKind


@dataclass(frozen=True)
class Log:
    message: str


Action = Spawn | SendSignal | StartTimer | CancelTimer | Log


class IllegalTransition(Exception):
    pass


def backoff_delay(cfg: ServiceConfig, attempt: int, rand: float) -> float:
    """Delay before restart ``attempt`` (1-based); ``rand`` in [0, 1) drives jitter."""
    b = cfg.backoff
    base = b.initial
    # Multiply step by step and stop at the cap: initial * multiplier ** attempt
    # overflows a float after a long enough crash loop.
    for _ in range(max(0, attempt - 1)):
        if base >= b.max or base <= 0:
            break
        base *= b.multiplier
    base = min(b.max, base)
    spread = base * b.jitter * (2.0 * rand - 1.0)
    return max(MIN_RESTART_DELAY, base + spread)


class ServiceMachine:
    def __init__(self, cfg: ServiceConfig, rng: Callable[[], float] = random.random) -> None:
        self.cfg = cfg
        self.rng = rng
        self.state = State.PENDING
        self.pid: int | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None  # when the run that started_at began ended
        self.last_status: ExitStatus | None = None
        self.reason = ""  # why it failed, for logs and dependants
        self.restarts = 0  # automatic restarts, total
        self.attempt = 0  # consecutive crashes, drives the backoff
        self.start_times: deque[float] = deque()
        self.ever_started = False
        self.ever_ready = False
        self.killed = False  # the last stop needed SIGKILL
        self.stop_requested = False
        self.stop_started = 0.0
        self.restart_inhibited = False
        self.failure_reason = ""  # set while stopping a service found failing
        # How the last stop of a running process ended (None: it was not running when
        # stopped), for the exit code of a requested shutdown.
        self.stop_outcome: ExitStatus | None = None

    @property
    def name(self) -> str:
        return self.cfg.name

    def handle(self, event: Event, now: float) -> list[Action]:
        handler = _TRANSITIONS.get((self.state, event.kind))
        if handler is None:
            raise IllegalTransition(
                f"{self.name}: event {event.kind.value} is not allowed in state {self.state.value}"
            )
        return handler(self, event, now)

    # -- handlers ------------------------------------------------------------
    def _ignore(self, event: Event, now: float) -> list[Action]:
        return []

    def _start(self, event: Event, now: float) -> list[Action]:
        self.state = State.STARTING
        self.pid = None
        self.killed = False
        self.stop_requested = False
        self.restart_inhibited = False  # a stopped service started again restarts as usual
        self.stop_outcome = None
        # Conditions are about the current instance: a dependant waiting on this
        # service waits for the new process, not for one that has already gone.
        self.ever_started = False
        self.ever_ready = False
        self.reason = ""
        self.start_times.append(now)
        return [Spawn()]

    def _spawned(self, event: Event, now: float) -> list[Action]:
        self.pid = event.pid
        self.started_at = now
        self.ended_at = None
        self.ever_started = True
        return [Log(f"started (pid {event.pid})")]

    def _ready(self, event: Event, now: float) -> list[Action]:
        self.state = State.RUNNING
        self.ever_ready = True
        return []

    def _spawn_failed(self, event: Event, now: float) -> list[Action]:
        self.started_at = now
        return self._ended(event.status or ExitStatus(code=127), now, f"{event.reason}")

    def _exited(self, event: Event, now: float) -> list[Action]:
        return self._ended(event.status or ExitStatus(code=0), now, "")

    def _ended(
        self, status: ExitStatus, now: float, why: str, failed: bool = False
    ) -> list[Action]:
        """The main process is gone; ``failed`` overrides a zero status (a service
        stopped because it was found failing exits 0 or dies of our signal)."""
        self.pid = None
        self.last_status = status
        self.ended_at = now
        ran_for = now - self.started_at if self.started_at is not None else 0.0
        if ran_for >= self.cfg.backoff.reset_after:
            self.attempt = 0
        described = why or status.describe()
        oneshot = self.cfg.type is ServiceType.ONESHOT
        success = status.success and not failed
        if success and oneshot:
            self.state = State.COMPLETED
            return [Log(f"completed ({format_duration(round(ran_for, 3))})")]
        if self._should_restart(success):
            if self._start_limit_hit(now):
                limit = self.cfg.start_limit
                return self._fail(
                    f"{described}; start limit reached ({limit.burst} starts within "
                    f"{format_duration(limit.interval)})"
                )
            self.attempt += 1
            self.restarts += 1
            delay = backoff_delay(self.cfg, self.attempt, self.rng())
            self.state = State.BACKOFF
            return [
                Log(f"exited ({described}); restart {self.restarts} in {delay:.1f}s"),
                StartTimer(TimerKind.RESTART, delay),
            ]
        if success:
            self.state = State.EXITED
            return [Log(f"exited ({described})")]
        return self._fail(described)

    def _fail(self, reason: str) -> list[Action]:
        self.state = State.FAILED
        self.reason = reason
        return [Log(f"failed ({reason})")]

    def _should_restart(self, success: bool) -> bool:
        if self.restart_inhibited:
            return False
        policy = self.cfg.restart
        if self.cfg.type is ServiceType.ONESHOT:
            # A oneshot that succeeded is done; only failures are retried.
            return policy is not RestartPolicy.NO and not success
        if policy in (RestartPolicy.ALWAYS, RestartPolicy.UNLESS_STOPPED):
            return True
        return policy is RestartPolicy.ON_FAILURE and not success

    def _start_limit_hit(self, now: float) -> bool:
        window = self.cfg.start_limit.interval
        while self.start_times and self.start_times[0] <= now - window:
            self.start_times.popleft()
        return len(self.start_times) >= self.cfg.start_limit.burst

    def _stop(self, event: Event, now: float) -> list[Action]:
        self.state = State.STOPPING
        self.stop_started = now
        self.stop_requested = True
        self.restart_inhibited = True
        return [
            SendSignal(self.cfg.stop_signal),
            StartTimer(TimerKind.KILL, self.cfg.stop_grace_period),
        ]

    def _stop_before_running(self, event: Event, now: float) -> list[Action]:
        self.state = State.STOPPED
        self.stop_requested = True
        return [CancelTimer(TimerKind.RESTART)] if event.kind is EventKind.STOP else []

    def _failure_detected(self, event: Event, now: float) -> list[Action]:
        self.failure_reason = event.reason
        self.state = State.STOPPING
        self.stop_started = now
        return [
            SendSignal(self.cfg.stop_signal),
            StartTimer(TimerKind.KILL, self.cfg.stop_grace_period),
        ]

    def _stop_while_stopping(self, event: Event, now: float) -> list[Action]:
        # A stop request overtakes a restart that was going to follow.
        self.stop_requested = True
        self.restart_inhibited = True
        return []

    def _stopped(self, event: Event, now: float) -> list[Action]:
        if self.failure_reason and not self.stop_requested:
            reason, self.failure_reason = self.failure_reason, ""
            status = event.status or ExitStatus(code=1)
            return [CancelTimer(TimerKind.KILL), *self._ended(status, now, reason, failed=True)]
        self.failure_reason = ""
        self.pid = None
        self.last_status = event.status
        self.stop_outcome = event.status
        self.state = State.STOPPED
        took = now - self.stop_started
        how = event.status.describe() if event.status else "gone"
        killed = "; had to be killed" if self.killed else ""
        return [CancelTimer(TimerKind.KILL), Log(f"stopped in {took:.2f}s ({how}{killed})")]

    def _kill_due(self, event: Event, now: float) -> list[Action]:
        self.killed = True
        grace = format_duration(self.cfg.stop_grace_period)
        return [Log(f"still running {grace} after stop signal; sending SIGKILL"), SendSignal(9)]

    def _inhibit(self, event: Event, now: float) -> list[Action]:
        self.restart_inhibited = True
        return []

    def _inhibit_backoff(self, event: Event, now: float) -> list[Action]:
        self.restart_inhibited = True
        self.state = State.STOPPED
        return [CancelTimer(TimerKind.RESTART)]

    def _dependency_failed(self, event: Event, now: float) -> list[Action]:
        return [CancelTimer(TimerKind.RESTART), *self._fail(event.reason)]


_Handler = Callable[[ServiceMachine, Event, float], list[Action]]
S, E, M = State, EventKind, ServiceMachine

_TRANSITIONS: dict[tuple[State, EventKind], _Handler] = {
    (S.PENDING, E.START): M._start,
    (S.PENDING, E.STOP): M._stop_before_running,
    (S.PENDING, E.DEPENDENCY_FAILED): M._dependency_failed,
    (S.PENDING, E.INHIBIT_RESTART): M._inhibit,
    (S.STARTING, E.SPAWNED): M._spawned,
    (S.STARTING, E.SPAWN_FAILED): M._spawn_failed,
    (S.STARTING, E.READY): M._ready,
    (S.STARTING, E.EXITED): M._exited,
    (S.STARTING, E.STOP): M._stop,
    (S.STARTING, E.INHIBIT_RESTART): M._inhibit,
    (S.STARTING, E.FAILURE_DETECTED): M._failure_detected,
    (S.RUNNING, E.FAILURE_DETECTED): M._failure_detected,
    (S.STOPPING, E.FAILURE_DETECTED): M._ignore,
    (S.RUNNING, E.READY): M._ignore,
    (S.RUNNING, E.EXITED): M._exited,
    (S.RUNNING, E.STOP): M._stop,
    (S.RUNNING, E.INHIBIT_RESTART): M._inhibit,
    (S.STOPPING, E.EXITED): M._stopped,
    (S.STOPPING, E.KILL_DUE): M._kill_due,
    (S.STOPPING, E.STOP): M._stop_while_stopping,
    (S.STOPPING, E.READY): M._ignore,
    (S.STOPPING, E.INHIBIT_RESTART): M._inhibit,
    (S.BACKOFF, E.RESTART_DUE): M._start,
    (S.BACKOFF, E.STOP): M._stop_before_running,
    (S.BACKOFF, E.INHIBIT_RESTART): M._inhibit_backoff,
    (S.BACKOFF, E.DEPENDENCY_FAILED): M._dependency_failed,
}
for _final in (S.STOPPED, S.EXITED, S.COMPLETED, S.FAILED):
    _TRANSITIONS[(_final, E.START)] = M._start
    _TRANSITIONS[(_final, E.STOP)] = M._ignore
    _TRANSITIONS[(_final, E.INHIBIT_RESTART)] = M._inhibit
    _TRANSITIONS[(_final, E.DEPENDENCY_FAILED)] = M._ignore
