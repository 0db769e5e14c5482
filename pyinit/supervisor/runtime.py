"""What the supervisor holds per service and for the main command, and who owns a pid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyinit.config.model import ServiceConfig
from pyinit.exitstatus import ExitStatus
from pyinit.health import HealthStatus
from pyinit.loop import Timer
from pyinit.monitor import ServiceMonitor
from pyinit.service import ServiceMachine, TimerKind


@dataclass
class ServiceRuntime:
    machine: ServiceMachine
    monitor: ServiceMonitor
    timers: dict[TimerKind, Timer] = field(default_factory=dict)

    @property
    def cfg(self) -> ServiceConfig:
        return self.machine.cfg

    @property
    def name(self) -> str:
        return self.machine.cfg.name


@dataclass
class MainCommand:
    argv: list[str]
    pid: int | None = None
    status: ExitStatus | None = None
    signalled_with: int | None = None  # the stop signal pyinit sent it, if any


# pid -> who gets its exit status: a service, the main command, a probe's
# callback, or None for a child whose failure was already reported.
Owner = ServiceRuntime | MainCommand | Callable[[ExitStatus], None] | None
Owners = dict[int, Owner]


class ServiceFacts:
    """What the pure conditions ask of the services (conditions.Facts).
    ``members``: the running config's (Config.members)."""

    def __init__(
        self, services: dict[str, ServiceRuntime], members: Callable[[str], Sequence[str]]
    ) -> None:
        self.services = services
        self.members = members

    def machine(self, name: str) -> ServiceMachine:
        return self.services[name].machine

    def healthy(self, name: str) -> bool:
        tracker = self.services[name].monitor.health
        return tracker is not None and tracker.status is HealthStatus.HEALTHY
