"""Supervisor mode's core: the run loop, signal intake, reap routing and reconcile.

Every wake-up of the loop (signals, timers, pipes) ends in ``reconcile``, which
compares what is with what should be: start services whose dependencies hold,
fail those whose dependencies never can, start the main command, decide when the
container is done, and walk the shutdown down the dependency graph. The parts it
delegates to: ``launch`` (processes), ``actions`` (operator requests, reloads),
``shutdown`` (the phase table), ``conditions`` (pure verdicts), ``status``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pyinit.config.model import Config, ServiceConfig
from pyinit.control import ControlServer
from pyinit.exitstatus import ExitStatus
from pyinit.httpd import HttpServer
from pyinit.logs import LogRouter
from pyinit.loop import EventLoop
from pyinit.report import emit_report, run_lengths
from pyinit.rundir import runtime_dir
from pyinit.service import (
    Event,
    EventKind,
    State,
)
from pyinit.signalfd import SignalFd, not_a_request
from pyinit.signals import (
    SHUTDOWN_SIGNALS,
    HeldChildSignals,
    SignalIntake,
    signal_name,
)
from pyinit.status import remove_snapshot
from pyinit.supervisor import conditions
from pyinit.supervisor.actions import Operator
from pyinit.supervisor.requests import OperatorRequests
from pyinit.supervisor.runtime import MainCommand, Owners, ServiceFacts, ServiceRuntime
from pyinit.supervisor.seams import (
    REAL_LAUNCHER,
    REAL_REAPER,
    REAL_SENDER,
    ChildReaper,
    Clock,
    Launcher,
    SignalSender,
)
from pyinit.supervisor.selection import Selection
from pyinit.supervisor.shutdown import Shutdown, container_ends
from pyinit.supervisor.status import StatusMixin
from pyinit.supervisor.timed import TimedMixin
from pyinit.supervisor.wiring import new_driver, new_reloader, open_intake

HELD_CHILD_SIGNALS = HeldChildSignals()


class Supervisor(OperatorRequests, StatusMixin, TimedMixin):
    intake: SignalIntake  # set by _open, when the run begins
    sent: SignalFd
    http: HttpServer | None

    def __init__(
        self,
        config: Config,
        main_argv: list[str] | None = None,
        verbosity: int = 0,
        log_format: str | None = None,
        http_address: str | None = None,
        *,
        unselected: frozenset[str] = frozenset(),
        selection: Selection = ([], []),
        clock: Clock = time.monotonic,
        launcher: Launcher = REAL_LAUNCHER,
        sender: SignalSender = REAL_SENDER,
        reaper: ChildReaper = REAL_REAPER,
    ) -> None:
        self.config = config
        self.http_address = http_address or config.settings.http  # the CLI flag wins
        self.verbosity = verbosity
        self.clock = clock
        self.sender = sender
        self.reaper = reaper
        self.loop = EventLoop(clock)
        fmt = log_format or config.settings.log_format
        self.logs = LogRouter(self.loop, list(config.services), "json" if fmt == "json" else "text")
        self.logs.timestamps = config.settings.log_timestamps
        self.owners: Owners = {}
        self.driver = new_driver(self, launcher)
        self.services = self.driver.services
        self.services.update((name, self.new_runtime(cfg)) for name, cfg in config.services.items())
        self.facts = ServiceFacts(self.services, lambda name: self.config.members(name))
        self.dependants = conditions.Dependants(lambda: (r.cfg for r in self.services.values()))
        self.main = MainCommand(main_argv) if main_argv else None
        self._runtime_dir: str | None = None
        self._refused_dirs: set[str] = set()
        self._last_snapshot: dict[str, Any] | None = None  # as last written, uptimes left out
        self._status_pending = False
        self._reconciling = False
        self._reconcile_again = False
        # Called after every settled change of state (the control server's waiters).
        self.change_hooks: list[Callable[[], None]] = []
        self.orphans_reaped = 0
        self.started_wall = time.time()
        self.signals_forwarded = 0
        self.actions = Operator(self)
        self.ended_by: str | None = None  # the critical service that ended the container
        self.actions.unselected = set(unselected)
        self.selection = selection  # what a reload adds is held back as at boot
        self.reloader = new_reloader(self)
        self._init_extras()  # schedule timers, file watchers, log files (timed.py)
        self.shutdown = Shutdown(self, sender, reaper, self._shutdown_begins)

    def runtime_dir(self) -> str:
        if self._runtime_dir is None:
            self._runtime_dir = runtime_dir(self._refused_dir)
        return self._runtime_dir

    def _refused_dir(self, message: str) -> None:
        """Say once why a runtime directory is not used (it is retried on demand)."""
        if message not in self._refused_dirs:
            self._refused_dirs.add(message)
            self.log(message)

    def _register_child(self, pid: int, on_exit: Callable[[ExitStatus], None]) -> None:
        self.owners[pid] = on_exit

    def log(self, message: str, level: int = 0) -> None:
        if level <= self.verbosity:
            self.logs.event(message)

    @property
    def shutting_down(self) -> bool:
        return self.shutdown.active

    # -- running -------------------------------------------------------------
    def run(self) -> int:
        code = open_intake(self)
        if code is not None:
            return code
        self.control = ControlServer.open(self)  # None (logged) when it cannot listen
        self.begin()
        self.loop.run()
        if self.http is not None:
            self.http.close()
        if self.control is not None:
            self.control.close()
        for rt in self.services.values():
            rt.monitor.close()
        if self._runtime_dir is not None:
            remove_snapshot(self._runtime_dir)
        code = self.shutdown.exit_code if self.shutdown.exit_code is not None else 0
        last = self.snapshot()
        ran = run_lengths({n: rt.machine for n, rt in self.services.items()}, self.clock())
        emit_report(last, ran, code, self.log, output=self._last_output(last))
        self.logs.close(time.monotonic() + 2.0)  # the log router's own (real) clock
        return code

    def begin(self) -> None:
        """The first pass: start what has no dependency (``run`` calls it)."""
        names = ", ".join(" ".join(tier) for tier in self.config.start_tiers())
        self.log(f"starting {len(self.services)} service(s): {names}", 1)
        for name in self.config.services:
            if name in self.actions.unselected:
                self.feed(self.services[name], Event(EventKind.STOP))
        if self.actions.unselected:
            left = ", ".join(n for n in self.config.services if n in self.actions.unselected)
            self.log(f"not started (profiles, --only; `pyinit start NAME` starts one): {left}")
        self.loop.guarded(self.reconcile)

    def feed(self, rt: ServiceRuntime, event: Event) -> None:
        self.driver.feed(rt, event)

    def new_runtime(self, cfg: ServiceConfig) -> ServiceRuntime:
        return self.driver.new_runtime(cfg)

    def kill_group(self, pid: int, signum: int) -> bool:
        """Send ``signum`` to ``pid``'s process group for someone else; whether it was."""
        try:
            self.sender.kill(-pid, signum)
        except ProcessLookupError:
            return False
        self.signals_forwarded += 1
        return True

    # -- signals and children --------------------------------------------------
    def _on_signals(self) -> None:
        # Children's exits held while a batch is handled: a stop sent to 1,000
        # services would otherwise be cut into by as many SIGCHLDs (a handler run
        # and a wake-up byte each); held, they are one, reaped on the next pass.
        with HELD_CHILD_SIGNALS:
            self.intake.drain(self._take_signal)
            self.reconcile()

    def _on_sent_signals(self) -> None:
        self.sent.drain(self._take_sent_signal)
        self.reconcile()

    def _take_sent_signal(self, signum: int, code: int, sender: int) -> None:
        why = not_a_request(signum, code, sender)
        if why is None:
            self._take_signal(signum)
        else:
            self.log(f"{signal_name(signum)} {why}; ignored", 2 if signum == signal.SIGPIPE else 0)

    def handle_signals(self, signums: Iterable[int]) -> None:
        """Handle one batch of signals as if read from the intake, then reconcile."""
        for signum in signums:
            self._take_signal(signum)
        self.reconcile()

    def _take_signal(self, signum: int) -> None:
        # Each signal guarded on its own: a bug in one handler must not lose the
        # others read in the same batch (a SIGCHLD among them would leave an exit
        # unrouted until the next one).
        self.loop.guarded(lambda: self._on_signal(signum))

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        elif signum in SHUTDOWN_SIGNALS:
            self._stop_signal(signum)
        elif signum == signal.SIGHUP and not self.shutting_down:
            self.log("SIGHUP received; reloading the configuration")
            self.reload()
        else:
            self._forward(signum)

    def _stop_signal(self, signum: int) -> None:
        if self.shutting_down:
            self.log(f"{signal_name(signum)} received again; killing everything now")
            self.shutdown.force()
        else:
            self.log(f"{signal_name(signum)} received; stopping")
            self.shutdown.requested = True
            self.shutdown.begin(None)

    def _forward(self, signum: int) -> None:
        name = signal_name(signum)
        if self.main is not None and self.main.pid is not None:
            targets = [(self.main.pid, self.main.argv[0])]
        else:
            targets = [
                (rt.machine.pid, rt.name)
                for rt in self.services.values()
                if rt.machine.pid is not None
            ]
        for pid, label in targets:
            assert pid is not None
            if self.kill_group(pid, signum):
                self.log(f"{name} received; forwarded to {label} (process group {pid})", 1)
        if not targets:
            self.log(f"{name} received; nothing running to forward it to", 1)

    def _reap(self) -> None:
        reaped, _ = self.reaper.reap()
        for item in reaped:
            owner = self.owners.pop(item.pid, "orphan")
            if isinstance(owner, ServiceRuntime):
                self.logs.drain_pid(item.pid)
                if owner.machine.pid == item.pid:
                    owner.monitor.ended()
                    self.feed(owner, Event(EventKind.EXITED, pid=item.pid, status=item.status))
            elif isinstance(owner, MainCommand):
                owner.status = item.status
                owner.pid = None
                self.log(f"main command {owner.argv[0]} exited ({item.status.describe()})")
                self.shutdown.main_exited(owner)
            elif callable(owner):
                owner(item.status)
            elif owner == "orphan":
                self.orphans_reaped += 1
                self.log(f"reaped orphan pid {item.pid} ({item.status.describe()})", 1)

    # -- what should happen next -------------------------------------------------
    def reconcile(self) -> None:
        # Re-entrant calls (a monitor reporting ready while a service is being
        # started) only ask for one more pass, so each pass sees a settled state.
        if self._reconciling:
            self._reconcile_again = True
            return
        self._reconciling = True
        try:
            self._reconcile_again = True
            while self._reconcile_again:
                self._reconcile_again = False
                self._reconcile_once()
        finally:
            self._reconciling = False
        self._publish_status()

    def _reconcile_once(self) -> None:
        if self.shutting_down:
            self.shutdown.progress()
            return
        self.actions.progress()
        for rt in self.services.values():
            if rt.machine.state is State.PENDING and rt.cfg.schedule is None:  # see timed.py
                verdict, reason = conditions.dependencies(self.facts, rt.cfg)
                if verdict is True:
                    self.feed(rt, Event(EventKind.START))
                elif verdict is False:
                    self.feed(rt, Event(EventKind.DEPENDENCY_FAILED, reason=reason))
        self._maybe_start_main()
        ending = container_ends(list(self.services.values()), self.main is not None)
        if ending is not None:
            message, code = ending
            self.ended_by = next(
                (n for n, rt in self.services.items() if message.startswith(f"{n} is critical")),
                None,
            )
            self.log(message)
            self.shutdown.begin(code)

    def _maybe_start_main(self) -> None:
        main = self.main
        if main is None or main.pid is not None or main.status is not None:
            return
        cfgs = [rt.cfg for rt in self.services.values()]
        holds, reason = conditions.main_gate(self.facts, cfgs)
        if holds is None:
            return
        if holds is False:
            self.log(f"main command not started: {reason}")
            self.shutdown.begin(1)
            return
        code = self.driver.launch.main(main)
        if code is not None:
            self.shutdown.begin(code)

    def dependants_of(self, name: str, whole_group: bool = True) -> list[str]:
        """``whole_group``: an instance's dependants include its scaled service's."""
        rt = self.services.get(name)
        return self.dependants.of(name, rt.cfg.replica_of if rt and whole_group else None)

    def definitions_changed(self, changes: Mapping[str, ServiceConfig | None]) -> None:
        """Services were added, replaced (name: new definition) or removed (None)."""
        self.dependants.invalidate()
        self.extras.update(changes)

    # -- reload (the operator's other requests: requests.OperatorRequests) -----------
    def reload(self, on_done: Callable[[bool, list[str]], None] | None = None) -> None:
        """Load the config file again, in a child (pyinit/configload.py), then apply
        the difference; keep running the old config when the new one is invalid.
        ``on_done(applied, messages)`` is called when the load is over."""
        if self.shutting_down:
            if on_done is not None:
                on_done(False, ["pyinit is shutting down"])
            return
        if self.reloader.busy:
            self.log("reload: a load is running; loading again after it", 1)
        self.reloader.request(on_done)
