"""Shutdown as phases, and the exit code it ends with.

    running -> stopping-main -> stopping-services -> sweeping -> done
                     \\______________\\___________________\\-> forced -> done

The main command goes first (it depends on everything), then the services down
the dependency graph (dependants first), then leftovers (orphans, escaped daemons)
get SIGTERM and ``SWEEP_GRACE``; SIGKILL for everything when that grace, the
``shutdown_timeout`` budget, or a second SIGTERM runs out of patience. Allowed
(phase, step) pairs are one table, in the style of pyinit/service.py; a step that
is already done is listed as a no-op; any other pair is a bug and raises.

No os here: processes are signalled through the supervisor's seams.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from pyinit.durations import format_duration
from pyinit.service import Event, EventKind, ServiceMachine, State

if TYPE_CHECKING:
    from pyinit.config.model import Config
    from pyinit.loop import EventLoop
    from pyinit.supervisor.runtime import MainCommand, ServiceRuntime
    from pyinit.supervisor.seams import ChildReaper, SignalSender

# After the services are down: how long leftovers (orphans, escaped daemons)
# get between SIGTERM and SIGKILL, within what is left of shutdown_timeout.
SWEEP_GRACE = 2.0
# How long the main command gets between SIGTERM and SIGKILL (at most half of
# shutdown_timeout), so that the services it depends on still stop gracefully.
MAIN_STOP_GRACE = 10.0
KILL_WAIT_LIMIT = 2.0


class Phase(Enum):
    RUNNING = "running"
    STOPPING_MAIN = "stopping-main"  # the main command got SIGTERM; services wait
    STOPPING_SERVICES = "stopping-services"  # dependants first, down the graph
    SWEEPING = "sweeping"  # services down; leftovers got SIGTERM
    FORCED = "forced"  # SIGKILL sent to everything; waiting for the last exits
    DONE = "done"  # the loop is stopped; the exit code is decided


class Step(Enum):
    BEGIN_WITH_MAIN = "begin-with-main"  # a main command is running: it stops first
    BEGIN = "begin"
    MAIN_GONE = "main-gone"
    SWEEP = "sweep"  # every service is down
    FORCE = "force"  # budget spent, sweep grace over, or a second stop signal
    FINISH = "finish"  # no process left, or the last wait after SIGKILL is over


class IllegalPhaseChange(Exception):
    pass


P, St = Phase, Step
_SHUTTING = (P.STOPPING_MAIN, P.STOPPING_SERVICES, P.SWEEPING, P.FORCED, P.DONE)
# (phase, step) -> next phase; None: nothing to do (the step is moot or done).
_PHASES: dict[tuple[Phase, Step], Phase | None] = {
    (P.RUNNING, St.BEGIN_WITH_MAIN): P.STOPPING_MAIN,
    (P.RUNNING, St.BEGIN): P.STOPPING_SERVICES,
    (P.STOPPING_MAIN, St.MAIN_GONE): P.STOPPING_SERVICES,
    (P.STOPPING_SERVICES, St.SWEEP): P.SWEEPING,
    (P.SWEEPING, St.SWEEP): None,
    (P.FORCED, St.SWEEP): None,  # after SIGKILL a SIGTERM sweep has nothing to add
    (P.STOPPING_MAIN, St.FORCE): P.FORCED,
    (P.STOPPING_SERVICES, St.FORCE): P.FORCED,
    (P.SWEEPING, St.FORCE): P.FORCED,
    (P.FORCED, St.FORCE): None,
    (P.DONE, St.FORCE): None,  # a timer due in the same pass as the end
    (P.SWEEPING, St.FINISH): P.DONE,
    (P.FORCED, St.FINISH): P.DONE,
    (P.DONE, St.FINISH): None,
}
for _phase in _SHUTTING:  # a critical exit and a failed main gate in one pass
    _PHASES[(_phase, St.BEGIN_WITH_MAIN)] = None
    _PHASES[(_phase, St.BEGIN)] = None


class Phases:
    """The current phase; ``advance`` moves it along the table."""

    def __init__(self) -> None:
        self.phase = Phase.RUNNING

    def advance(self, step: Step) -> bool:
        """Take ``step``: True when the phase changed, False when it was moot."""
        key = (self.phase, step)
        if key not in _PHASES:
            raise IllegalPhaseChange(
                f"shutdown step {step.value} is not allowed in phase {self.phase.value}"
            )
        target = _PHASES[key]
        if target is None:
            return False
        self.phase = target
        return True


class Host(Protocol):
    """What the shutdown needs of the supervisor."""

    config: Config
    loop: EventLoop
    services: dict[str, ServiceRuntime]
    main: MainCommand | None

    def feed(self, rt: ServiceRuntime, event: Event) -> None: ...

    def reconcile(self) -> None: ...

    def log(self, message: str, level: int = 0) -> None: ...

    def dependants_of(self, name: str) -> list[str]: ...


class Shutdown:
    def __init__(
        self,
        host: Host,
        sender: SignalSender,
        reaper: ChildReaper,
        cancel_reload: Callable[[str], None],
    ) -> None:
        self.host = host
        self.sender = sender
        self.reaper = reaper
        self.cancel_reload = cancel_reload
        self.phases = Phases()
        self.requested = False  # by a signal, as opposed to a critical exit
        self.started = 0.0
        self.deadline = 0.0
        self.exit_code: int | None = None  # decided by whatever ends the container

    @property
    def phase(self) -> Phase:
        return self.phases.phase

    @property
    def active(self) -> bool:
        return self.phases.phase is not Phase.RUNNING

    def begin(self, code: int | None) -> None:
        host, main = self.host, self.host.main
        main_running = main is not None and main.pid is not None
        if not self.phases.advance(Step.BEGIN_WITH_MAIN if main_running else Step.BEGIN):
            return
        self.exit_code = code
        self.cancel_reload("pyinit is shutting down")
        now = host.loop.now()
        self.started = now
        self.deadline = now + host.config.settings.shutdown_timeout
        host.loop.call_at(self.deadline, self._budget_exhausted)
        for rt in host.services.values():
            host.feed(rt, Event(EventKind.INHIBIT_RESTART))
            if rt.machine.state is State.PENDING:
                host.feed(rt, Event(EventKind.STOP))
        if main is not None and main.pid is not None:
            main.signalled_with = signal.SIGTERM
            self._kill(-main.pid, signal.SIGTERM)
            # The services stop only after the main command: it must not eat the
            # whole budget, or none of them would get its stop_signal.
            grace = min(MAIN_STOP_GRACE, host.config.settings.shutdown_timeout / 2)
            host.loop.call_later(grace, self._kill_main)
        self.progress()

    def main_exited(self, main: MainCommand) -> None:
        """The main command ended: the container ends with it (0 if it obeyed our stop)."""
        assert main.status is not None
        code = main.status.shell_code
        sent = main.signalled_with
        if sent is not None and code in (128 + sent, 0):
            code = 0  # it stopped as we asked: not a failure
        if not self.active:
            self.begin(code)
        elif self.exit_code is None or self.requested:
            self.exit_code = code

    def kill_timer_delay(self, delay: float) -> float:
        """A service's stop grace, cut to what is left of the budget while shutting down."""
        if not self.active:
            return delay
        return min(delay, max(0.0, self.deadline - self.host.loop.now()))

    def _kill(self, pid: int, signum: int) -> None:
        try:
            self.sender.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _kill_main(self) -> None:
        main = self.host.main
        if main is None or main.pid is None or self.phase in (Phase.FORCED, Phase.DONE):
            return
        took = self.host.loop.now() - self.started
        self.host.log(
            f"main command {main.argv[0]} still running {took:.1f}s after SIGTERM; SIGKILL"
        )
        self._kill(-main.pid, signal.SIGKILL)

    def progress(self) -> None:
        """Walk the shutdown on: called on every pass of the supervisor while active."""
        host, main = self.host, self.host.main
        if self.phase is Phase.DONE or (main is not None and main.pid is not None):
            return  # the main command depends on everything: it goes first
        if self.phase is Phase.STOPPING_MAIN:
            self.phases.advance(Step.MAIN_GONE)
        # dependants_of is a lookup in an index built once per change of the
        # definitions (a scan per service made a pass O(services^2)); an instance's
        # include what depends on its scaled service.
        for rt in host.services.values():
            state = rt.machine.state
            if state in (State.STARTING, State.RUNNING) and not any(
                host.services[d].machine.state.alive for d in host.dependants_of(rt.name)
            ):
                host.feed(rt, Event(EventKind.STOP))
        if any(rt.machine.state.alive for rt in host.services.values()):
            return
        if self.phases.advance(Step.SWEEP):
            count = self.sender.kill_all(signal.SIGTERM)
            if count:
                grace = min(SWEEP_GRACE, max(0.0, self.deadline - host.loop.now()))
                host.log(f"{count} leftover process(es) sent SIGTERM; SIGKILL in {grace:.1f}s")
                host.loop.call_later(grace, self.force)
        if not self.reaper.children_left():
            self.finish()

    def _budget_exhausted(self) -> None:
        if self.phase not in (Phase.FORCED, Phase.DONE):
            took = format_duration(self.host.config.settings.shutdown_timeout)
            self.host.log(f"shutdown_timeout ({took}) reached; killing everything")
            self.force()

    def force(self) -> None:
        """SIGKILL to every process below pyinit; end at the latest KILL_WAIT_LIMIT later."""
        if not self.phases.advance(Step.FORCE):
            return
        host = self.host
        for rt in host.services.values():
            if rt.machine.state.alive:
                rt.machine.killed = True
        # The main command's signalled_with stays the graceful signal: a main
        # command that had to be SIGKILLed exits 137, which is not a clean stop.
        count = self.sender.kill_all(signal.SIGKILL)
        if count:
            host.log(f"sent SIGKILL to {count} process(es)")
        host.loop.call_later(KILL_WAIT_LIMIT, self.finish)
        host.reconcile()

    def finish(self) -> None:
        if not self.phases.advance(Step.FINISH):
            return
        host = self.host
        if self.exit_code is None or (self.requested and host.main is None):
            self.exit_code = requested_shutdown_code(rt.machine for rt in host.services.values())
        took = host.loop.now() - self.started
        host.log(f"all processes gone after {took:.2f}s; exiting with status {self.exit_code}")
        host.loop.stop()


def container_ends(services: list[ServiceRuntime], has_main: bool) -> tuple[str, int] | None:
    """Whether the container ends on its own: a critical service that ended for good,
    or (with no main command) nothing left to run. The line to log and the exit code."""
    for rt in services:
        # A service an operator stopped on purpose does not end the container; a
        # scheduled job ends it only by failing (it completes on every run).
        m = rt.machine
        ended = m.state is State.FAILED if rt.cfg.schedule is not None else m.state.final
        if rt.cfg.critical and ended and not m.stop_requested:
            code = final_code(m)
            return (
                f"{rt.name} is critical and ended ({m.state.value}); "
                f"stopping the container with status {code}"
            ), code
    machines = [rt.machine for rt in services]
    if has_main or any(m.stop_requested for m in machines):
        return None  # a service an operator stopped may be started again
    if not all(m.state.final for m in machines):
        return None
    if any(rt.cfg.schedule is not None for rt in services):
        return None  # scheduled jobs run again: a container of jobs runs until stopped
    ok = all(m.state in (State.COMPLETED, State.EXITED) for m in machines)
    return "no service left to run" + ("" if ok else "; some failed"), 0 if ok else 1


def requested_shutdown_code(machines: Iterable[ServiceMachine]) -> int:
    """0 when every service stopped cleanly (128+N for our own stop signal is clean)."""
    for m in machines:
        if m.state is State.FAILED and m.cfg.critical:
            return final_code(m)
        # Only a process that was running when we stopped it can stop uncleanly;
        # one caught waiting in backoff after a crash was not running at all.
        if m.state is not State.STOPPED or m.stop_outcome is None:
            continue
        status = m.stop_outcome
        clean = (
            status.success
            or status.signal == m.cfg.stop_signal
            or (status.code == 128 + m.cfg.stop_signal)
        )
        if m.killed or not clean:
            return status.shell_code or 1
    return 0


def final_code(m: ServiceMachine) -> int:
    """The code a service that ended for good hands the container (critical services)."""
    if m.state in (State.COMPLETED, State.EXITED):
        return 0
    if m.last_status is not None and m.last_status.shell_code:
        return m.last_status.shell_code
    return 1
