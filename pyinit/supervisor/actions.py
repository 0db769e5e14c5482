"""Operator requests (start, stop, restart, signal) and reload application.

Stops walk the dependency graph: the live services that depend on a stopped one
stop first. ``stop_set`` holds what still has to stop, ``restart_set`` what comes
back once stopped; what reloads owe each name (retire, replace) is the pure table
in pyinit/reload_state.py. ``progress`` moves all of it on, once per pass of the
supervisor. The supervisor is reached only through ``Host``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Protocol

from pyinit.reload_state import Add, Decision, Drop, ReloadTable, Replace, Stop, Withdraw
from pyinit.service import Event, EventKind, State
from pyinit.supervisor import conditions
from pyinit.supervisor.conditions import Facts
from pyinit.supervisor.selection import pull_unselected

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyinit.config.model import Config, ServiceConfig
    from pyinit.extras import ServiceExtras
    from pyinit.reload import ReloadPlan
    from pyinit.supervisor.runtime import ServiceRuntime


# Thousands of runtimes made at once (a big reload) would set off several full
# garbage collections, each over every object pyinit holds: it halves the time
# of a 10,000-service reload to let the next allocation after it run one.
GC_PAUSE_ABOVE = 100


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def in_file_order(services: dict[str, ServiceRuntime], new: Config) -> None:
    """Reorder ``services`` in place as the file has them (web.4 after web.3, not
    after what was declared later), what retires last."""
    order = [n for n in new.services if n in services]
    order += [n for n in services if n not in new.services]
    runtimes = [services.pop(n) for n in order]
    services.update(zip(order, runtimes, strict=True))


class Host(Protocol):
    """What operator actions need of the supervisor."""

    config: Config
    selection: tuple[list[str], list[str]]  # the boot's (active profiles, --only)
    services: dict[str, ServiceRuntime]

    @property
    def facts(self) -> Facts: ...

    @property
    def shutting_down(self) -> bool: ...

    def feed(self, rt: ServiceRuntime, event: Event) -> None: ...

    def reconcile(self) -> None: ...

    def log(self, message: str, level: int = 0) -> None: ...

    def dependants_of(self, name: str, whole_group: bool = True) -> list[str]: ...

    def definitions_changed(self, changes: Mapping[str, ServiceConfig | None]) -> None: ...

    def new_runtime(self, cfg: ServiceConfig) -> ServiceRuntime: ...

    @property
    def extras(self) -> ServiceExtras: ...

    def kill_group(self, pid: int, signum: int) -> bool: ...


class Operator:
    def __init__(self, host: Host) -> None:
        self.host = host
        # Services to stop in dependency order, and what to do with each once stopped.
        self.stop_set: set[str] = set()
        self.restart_set: set[str] = set()
        # Dependants an operator's stop took down with what it named: a start of
        # what it named brings them back (else /readyz stays red for good).
        self.cascaded: set[str] = set()
        # Not started at boot (an inactive profile, outside --only): stopped until
        # an operator starts them, and kept out of the health verdict until then.
        self.unselected: set[str] = set()
        # What reloads still owe each name (retire, replace): one pure table.
        self.reload_table = ReloadTable(host.config.services)

    # The host's state under the names the code below has always used.
    @property
    def services(self) -> dict[str, ServiceRuntime]:
        return self.host.services

    @property
    def config(self) -> Config:
        return self.host.config

    @config.setter
    def config(self, new: Config) -> None:
        self.host.config = new

    def log(self, message: str, level: int = 0) -> None:
        self.host.log(message, level)

    def _feed(self, rt: ServiceRuntime, event: Event) -> None:
        self.host.feed(rt, event)

    def _reconcile(self) -> None:
        self.host.reconcile()

    def _refused(self, names: list[str]) -> list[str]:
        unknown = [f"no service named {n!r}" for n in names if n not in self.services]
        if unknown or self.host.shutting_down:
            return unknown or ["pyinit is shutting down"]
        return []

    def _with_running_dependants(self, names: list[str]) -> list[str]:
        """``names`` plus, transitively, every live service that depends on them.
        What depends on a scaled service goes too only when none of its instances
        stays up: one instance stopped or restarted leaves the others serving."""

        return conditions.with_group_dependants(
            names, self.host.dependants_of, self._alive, self._owner, self.config.members
        )

    def _owner(self, name: str) -> str | None:
        return self.services[name].cfg.replica_of

    def _alive(self, name: str) -> bool:
        rt = self.services.get(name)
        return rt is not None and rt.machine.state.alive

    # -- requests ---------------------------------------------------------------
    def stop_services(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Stop ``names`` and the live services depending on them, dependants first.
        Returns (what will stop, errors). A stopped service stays stopped until started."""
        errors = self._refused(names)
        if errors:
            return [], errors
        targets = self._with_running_dependants(names)
        # A scheduled job stopped by an operator skips its due times until started.
        self.host.extras.jobs.paused.update(n for n in targets if n in self.host.extras.jobs)
        self.cascaded.difference_update(names)
        self.cascaded.update(n for n in targets if n not in names)
        for name in targets:
            self.restart_set.discard(name)
            m = self.services[name].machine
            if m.state in (State.PENDING, State.BACKOFF):
                self._feed(self.services[name], Event(EventKind.STOP))
            elif m.state.alive:
                self.stop_set.add(name)
        self._reconcile()
        return targets, []

    def start_services(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Start services that are not running; their dependencies must hold."""
        errors = self._refused(names)
        if errors:
            return [], errors
        started: list[str] = []
        self.host.extras.jobs.paused.difference_update(names)
        back = self._cascaded_dependants(names)
        pulled = pull_unselected(self, names)
        self.unselected.difference_update(names)
        if pulled:  # they start first; what depends on them once they are ready
            for name in pulled + names:
                if not self.services[name].machine.state.alive:
                    self.restart_set.add(name)
                    started.append(name)
            names = []
        for name in names:
            rt = self.services[name]
            if rt.machine.state.alive or rt.machine.state is State.BACKOFF:
                continue  # already running, or about to restart
            verdict, reason = conditions.dependencies(self.host.facts, rt.cfg)
            if verdict is not True:
                waiting = conditions.waiting_for(self.host.facts, rt.cfg)
                errors.append(f"{name}: {reason or 'waiting for ' + ', '.join(waiting)}")
                continue
            started.append(name)
        # Started by progress(), all in one pass, not one by one from here: the
        # first one ready reconciles, and a dependant coming back (``back``) must
        # not take the others' "started" of their previous run for a new one (it
        # would start after web.1 of ``start web``, before web.2 and web.3).
        self.restart_set.update(started)
        self._reconcile()
        return started + back, errors

    def _cascaded_dependants(self, names: list[str]) -> list[str]:
        """What an earlier stop of ``names`` took down with them: each is started
        again once what it depends on is back (as after a restart)."""
        self.cascaded.difference_update(names)
        starting = set(names)  # a group is back once each instance starts or runs
        dependants = conditions.group_dependants(
            self.host.dependants_of,
            self._owner,
            self.config.members,
            lambda m: m in starting or self._alive(m),
        )
        found = conditions.with_dependants(names, dependants, lambda n: n in self.cascaded)
        back = [n for n in found if n not in names]
        for name in back:
            self.cascaded.discard(name)
            if not self.services[name].machine.state.alive:
                self.restart_set.add(name)
        return [n for n in back if n in self.restart_set]

    def restart_services(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Stop (dependants too) and start again; a service that is not running just starts."""
        errors = self._refused(names)
        if errors:
            return [], errors
        targets = self._with_running_dependants(names)
        self.host.extras.jobs.paused.difference_update(targets)
        for name in targets:
            m = self.services[name].machine
            if m.state.alive:
                self.stop_set.add(name)
            elif m.state is State.BACKOFF:
                self._feed(self.services[name], Event(EventKind.STOP))
            self.restart_set.add(name)
        self._reconcile()
        return targets, []

    def signal_services(self, signum: int, names: list[str]) -> tuple[list[str], list[str]]:
        errors = [f"no service named {n!r}" for n in names if n not in self.services]
        sent: list[str] = []
        for name in names:
            if name not in self.services:
                continue
            pid = self.services[name].machine.pid
            if pid is not None and self.host.kill_group(pid, signum):
                sent.append(name)
            else:
                errors.append(f"{name} is not running")
        return sent, errors

    # -- each pass ----------------------------------------------------------------
    def progress(self) -> None:
        """Send the stops that are due, then settle what stopped: a reload's next
        step, or a restart once the dependencies being restarted are back."""
        self._send_due_stops()
        for name in list(self.services):
            rt = self.services[name]
            if name in self.stop_set or rt.machine.state.alive:
                continue
            if self.reload_table.pending(name):
                if rt.machine.state in (State.PENDING, State.BACKOFF):
                    # Fell back to waiting (a crash) before its stop was sent.
                    self._feed(rt, Event(EventKind.STOP))
                self._execute_reload(self.reload_table.stopped(name))
            elif rt.machine.state is not State.BACKOFF and self._may_restart(rt):
                self.restart_set.discard(name)
                self._feed(rt, Event(EventKind.START))

    def _send_due_stops(self) -> None:
        for name in sorted(self.stop_set):
            rt = self.services[name]
            if not rt.machine.state.alive:
                self.stop_set.discard(name)
                continue
            blocking = [
                d
                for d in self.host.dependants_of(name)
                if d in self.stop_set and self.services[d].machine.state.alive
            ]
            # Already stopping because it was found failing (unhealthy...)? The
            # request still has to reach it, or its exit becomes a restart.
            if not blocking and not rt.machine.stop_requested:
                self._feed(rt, Event(EventKind.STOP))

    def _may_restart(self, rt: ServiceRuntime) -> bool:
        return (
            rt.name in self.restart_set
            # a dependency being restarted too comes back first
            and not any(
                m in self.stop_set or m in self.restart_set
                for d in rt.cfg.depends_on
                for m in self.config.members(d.name)
            )
            and conditions.dependencies(self.host.facts, rt.cfg)[0] is True
        )

    # -- reload -----------------------------------------------------------------
    @property
    def replacements(self) -> dict[str, ServiceConfig]:
        """Names waiting for their instance to stop before a new definition starts."""
        return self.reload_table.replacements()

    def _apply_reload(
        self, new: Config, plan: ReloadPlan | None = None, label: str = "reload"
    ) -> list[str]:
        """Apply a validated new config: retire, replace and add services.
        ``plan``: new against self.config, if the loader computed it already."""
        from pyinit.reload import plan_reload

        with gc_paused():
            return self._apply_plan(new, plan or plan_reload(self.config, new), label)

    def _apply_plan(self, new: Config, plan: ReloadPlan, label: str) -> list[str]:
        self.log(f"{label}: {plan.describe()}")
        # A stop can be withdrawn only while it waits for dependants to stop first.
        table, unchanged = self.reload_table, set(plan.unchanged)
        signalled = {
            n
            for n, rt in self.services.items()
            if (n not in unchanged or table.pending(n))
            and (rt.machine.stop_requested or not rt.machine.state.alive)
        }
        # An operator's stop or restart in progress is not the reload's to withdraw.
        shared = {n for n in self.stop_set | self.restart_set if not table.pending(n)}
        self.config = new
        self._execute_reload(table.reload(new.services, signalled, shared, unchanged))
        if plan.added:
            in_file_order(self.services, new)
        self._reconcile()
        return [plan.describe()]

    def _execute_reload(self, decisions: list[Decision]) -> None:
        with gc_paused() if len(decisions) > GC_PAUSE_ABOVE else nullcontext():
            self._carry_out(decisions)

    def _carry_out(self, decisions: list[Decision]) -> None:
        changes: dict[str, ServiceConfig | None] = {}  # what was added, replaced, dropped
        for decision in decisions:
            if isinstance(decision, Add):
                name = decision.cfg.name
                assert name not in self.services, name  # an old instance is never overwritten
                self.services[name] = self.host.new_runtime(decision.cfg)
                changes[name] = decision.cfg
                if name in self.unselected:  # a new instance of a group left out at boot
                    self._feed(self.services[name], Event(EventKind.STOP))
            elif isinstance(decision, Stop):
                rt = self.services[decision.name]
                if rt.machine.state.alive:
                    self.stop_set.add(decision.name)
                elif rt.machine.state in (State.PENDING, State.BACKOFF):
                    self._feed(rt, Event(EventKind.STOP))
            elif isinstance(decision, Withdraw):
                self.stop_set.discard(decision.name)
            elif isinstance(decision, Drop):
                self._drop(decision.name)
                changes[decision.name] = None
            elif isinstance(decision, Replace):
                name = decision.cfg.name
                old = self.services[name]
                self.services[name] = self.host.new_runtime(decision.cfg)
                old.monitor.close()
                self.restart_set.discard(name)
                changes[name] = decision.cfg
        if changes:  # dependants, schedules, watches and log files follow the definitions
            self.host.definitions_changed(changes)

    def _drop(self, name: str) -> None:
        old = self.services.pop(name)
        old.monitor.close()
        self.stop_set.discard(name)
        self.restart_set.discard(name)
        self.cascaded.discard(name)
        self.unselected.discard(name)
        self.log(f"{name}: removed")
