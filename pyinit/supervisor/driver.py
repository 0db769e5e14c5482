"""Drives each service's state machine: feeds it what happens (its monitor's
verdicts, its timers) and carries out the actions it returns (spawn, signal,
timers, log lines).

The machine (pyinit/service.py) is pure; this is where its decisions meet the
loop, the launcher and the signal sender.
"""

from __future__ import annotations

from collections.abc import Callable

from pyinit.config.model import RestartPolicy, ServiceConfig, ServiceType
from pyinit.health import ChildRegistrar, HealthStatus
from pyinit.logs import LogRouter
from pyinit.loop import EventLoop
from pyinit.monitor import ServiceMonitor
from pyinit.service import (
    Action,
    CancelTimer,
    Event,
    EventKind,
    Log,
    SendSignal,
    ServiceMachine,
    Spawn,
    StartTimer,
    State,
    TimerKind,
)
from pyinit.supervisor.launch import Launch
from pyinit.supervisor.runtime import Owners, ServiceRuntime
from pyinit.supervisor.seams import Clock, Launcher, SignalSender


class ServiceDriver:
    def __init__(
        self,
        *,
        clock: Clock,
        loop: EventLoop,
        logs: LogRouter,
        launcher: Launcher,
        sender: SignalSender,
        owners: Owners,
        register_child: ChildRegistrar,
        kill_delay: Callable[[float], float],
        reconcile: Callable[[], None],
        runtime_dir: Callable[[], str],
        log: Callable[[str], None],
    ) -> None:
        self.clock = clock
        self.loop = loop
        self.logs = logs
        self.sender = sender
        self.register_child = register_child
        self.kill_delay = kill_delay  # a stop grace, cut to the shutdown budget left
        self.reconcile = reconcile
        self.runtime_dir = runtime_dir
        self.log = log
        self.services: dict[str, ServiceRuntime] = {}
        self.launch = Launch(launcher, logs, owners, self.feed, log)
        # Told after each event a machine took, with its state before (job runs).
        self.after_feed: Callable[[ServiceRuntime, State], None] | None = None

    def new_runtime(self, cfg: ServiceConfig) -> ServiceRuntime:
        return ServiceRuntime(ServiceMachine(cfg), self._monitor_for(cfg))

    def _monitor_for(self, cfg: ServiceConfig) -> ServiceMonitor:
        name = cfg.name
        return ServiceMonitor(
            self.loop,
            cfg,
            self.logs,
            self.register_child,
            on_ready=lambda how: self._service_ready(name),
            on_failure=lambda reason: self._service_failing(name, reason),
            on_health=lambda status, detail: self._health_changed(name, status, detail),
            log=lambda message: self.log(f"{name}: {message}"),
            runtime_dir=self.runtime_dir,
            # A new sd_notify STATUS= text must reach the status file (issue #4).
            on_change=self.reconcile,
        )

    # -- what monitors report ----------------------------------------------------
    def _service_ready(self, name: str) -> None:
        rt = self.services[name]
        if rt.machine.state.alive:
            self.feed(rt, Event(EventKind.READY))
            self.reconcile()

    def _service_failing(self, name: str, reason: str) -> None:
        rt = self.services[name]
        if rt.machine.state in (State.STARTING, State.RUNNING):
            self.feed(rt, Event(EventKind.FAILURE_DETECTED, reason=reason))
            self.reconcile()

    def _health_changed(self, name: str, status: HealthStatus, detail: str) -> None:
        rt = self.services[name]
        tracker = rt.monitor.health
        if status is not HealthStatus.UNHEALTHY or tracker is None:
            self.log(f"{name}: {status.value} ({detail})" if detail else f"{name}: {status.value}")
            self.reconcile()
            return
        failures = f"{tracker.failures} failure{'s' if tracker.failures != 1 else ''}"
        if rt.cfg.type is ServiceType.LONGRUN and rt.cfg.restart is not RestartPolicy.NO:
            self.log(f"{name}: unhealthy ({failures}: {detail}); restarting")
            self._service_failing(name, f"unhealthy ({failures}: {detail})")
        else:
            self.log(f"{name}: unhealthy ({failures}: {detail}); restart: no, left running")
            self.reconcile()

    # -- the machine's actions -----------------------------------------------------
    def feed(self, rt: ServiceRuntime, event: Event) -> None:
        before = rt.machine.state
        actions = rt.machine.handle(event, self.clock())
        for action in actions:
            self._execute(rt, action)
        if self.after_feed is not None:
            self.after_feed(rt, before)

    def _execute(self, rt: ServiceRuntime, action: Action) -> None:
        if isinstance(action, Spawn):
            self.launch.service(rt)
        elif isinstance(action, SendSignal):
            self._signal(rt, action.signum)
        elif isinstance(action, StartTimer):
            self._start_timer(rt, action.kind, action.delay)
        elif isinstance(action, CancelTimer):
            timer = rt.timers.pop(action.kind, None)
            if timer is not None:
                timer.cancel()
        elif isinstance(action, Log):
            self.log(f"{rt.name}: {action.message}")

    def _signal(self, rt: ServiceRuntime, signum: int) -> None:
        pid = rt.machine.pid
        if pid is None:
            return
        try:
            self.sender.kill(-pid, signum)  # its own session: the whole group hears it
        except ProcessLookupError:
            pass

    def _start_timer(self, rt: ServiceRuntime, kind: TimerKind, delay: float) -> None:
        old = rt.timers.pop(kind, None)
        if old is not None:
            old.cancel()
        if kind is TimerKind.KILL:
            delay = self.kill_delay(delay)
        event = Event(EventKind.KILL_DUE if kind is TimerKind.KILL else EventKind.RESTART_DUE)

        def fire() -> None:
            rt.timers.pop(kind, None)
            self.feed(rt, event)
            self.reconcile()

        rt.timers[kind] = self.loop.call_later(delay, fire)
