"""Supervisor mode: owns the services and the pid -> owner table, turns events into actions.

Every wake-up of the loop (signals, timers, pipes) ends in ``_reconcile``, which
compares what is with what should be: start services whose dependencies hold,
fail those whose dependencies never can, start the main command, decide when the
container is done, and walk the shutdown down the dependency graph.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinit import proctree
from pyinit.config import Condition, Config, RestartPolicy, ServiceConfig, ServiceType
from pyinit.configload import Reloader
from pyinit.control import ControlServer
from pyinit.durations import format_duration
from pyinit.extras import ServiceExtras
from pyinit.health import HealthStatus
from pyinit.httpd import HttpServer, serve
from pyinit.jobs import Concurrency, Due, run_result, when_due
from pyinit.logs import LogRouter
from pyinit.loop import EventLoop, Timer
from pyinit.monitor import ServiceMonitor
from pyinit.reaper import ExitStatus, become_subreaper, children_left, reap
from pyinit.reload_state import Add, Decision, Drop, ReloadTable, Replace, Stop, Withdraw
from pyinit.report import RunClock, emit_report
from pyinit.rundir import runtime_dir
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
from pyinit.signals import SHUTDOWN_SIGNALS, SignalIntake, catchable_signals, signal_name
from pyinit.spawn import (
    SpawnError,
    SpawnSpec,
    release_controlling_tty,
    resolve_user,
    spawn,
)
from pyinit.status import remove_snapshot, write_snapshot

# After the services are down: how long leftovers (orphans, escaped daemons)
# get between SIGTERM and SIGKILL, within what is left of shutdown_timeout.
SWEEP_GRACE = 2.0
# How long the main command gets between SIGTERM and SIGKILL (at most half of
# shutdown_timeout), so that the services it depends on still stop gracefully.
MAIN_STOP_GRACE = 10.0
KILL_WAIT_LIMIT = 2.0

# Test-only fault injection, for tests/e2e/test_faults.py: PYINIT_TEST_FAULT=SIGWINCH
# (any signal name) makes handling that signal raise RuntimeError("injected fault"),
# to check that an exception inside a handler is reported and the loop goes on
# serving. Read once; unset, it costs one comparison per signal.
_TEST_FAULT = os.environ.get("PYINIT_TEST_FAULT", "")


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


class Supervisor:
    def __init__(
        self,
        config: Config,
        main_argv: list[str] | None = None,
        verbosity: int = 0,
        log_format: str | None = None,
        http_address: str | None = None,
    ) -> None:
        self.config = config
        self.http_address = http_address or config.settings.http  # the CLI flag wins
        self.verbosity = verbosity
        self.loop = EventLoop()
        fmt = log_format or config.settings.log_format
        self.logs = LogRouter(self.loop, list(config.services), "json" if fmt == "json" else "text")
        self.services = {
            name: ServiceRuntime(ServiceMachine(cfg), self._monitor_for(cfg))
            for name, cfg in config.services.items()
        }
        # Operator requests and reloads: services to stop in dependency order, and
        # what to do with each once it has stopped.
        self.stop_set: set[str] = set()
        self.restart_set: set[str] = set()
        # What reloads still owe each name (retire, replace): one pure table.
        self.reload_table = ReloadTable(config.services)
        self.main = MainCommand(main_argv) if main_argv else None
        # pid -> who gets its exit status: a service, the main command, a probe's
        # callback, or None for a child whose failure was already reported.
        self.owners: dict[int, ServiceRuntime | MainCommand | Callable[[ExitStatus], None] | None]
        self.owners = {}
        self._runtime_dir: str | None = None
        self._refused_dirs: set[str] = set()
        self._last_snapshot = ""
        self._status_pending = False
        self._reconciling = False
        self._reconcile_again = False
        # Called after every settled change of state (the control server's waiters).
        self.change_hooks: list[Callable[[], None]] = []
        self.orphans_reaped = 0
        self.started_wall = time.time()
        self.signals_forwarded = 0
        self.exit_code: int | None = None  # decided by whatever ends the container
        self.shutting_down = False
        self.shutdown_requested = False  # by a signal, as opposed to a critical exit
        self.shutdown_started = 0.0
        self.deadline = 0.0
        self.sweeping = False
        self.forced = False
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.reloader = Reloader(
            self.loop, lambda: self.config.path, self._register_child, self._apply_reload, self.log
        )
        # Schedule timers, file watchers and log files (pyinit/extras.py).
        self.extras = ServiceExtras(
            self.loop, self.logs, self._job_due, self._files_changed, self.log
        )

    def _monitor_for(self, cfg: ServiceConfig) -> ServiceMonitor:
        name = cfg.name
        return ServiceMonitor(
            self.loop,
            cfg,
            self.logs,
            self._register_child,
            on_ready=lambda how: self._service_ready(name),
            on_failure=lambda reason: self._service_failing(name, reason),
            on_health=lambda status, detail: self._health_changed(name, status, detail),
            log=lambda message: self.log(f"{name}: {message}"),
            runtime_dir=self.runtime_dir,
            # A new sd_notify STATUS= text must reach the status file (issue #4).
            on_change=self._reconcile,
        )

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

    def _service_ready(self, name: str) -> None:
        rt = self.services[name]
        if rt.machine.state.alive:
            self._feed(rt, Event(EventKind.READY))
            self._reconcile()

    def _service_failing(self, name: str, reason: str) -> None:
        rt = self.services[name]
        if rt.machine.state in (State.STARTING, State.RUNNING):
            self._feed(rt, Event(EventKind.FAILURE_DETECTED, reason=reason))
            self._reconcile()

    def _health_changed(self, name: str, status: HealthStatus, detail: str) -> None:
        rt = self.services[name]
        tracker = rt.monitor.health
        if status is not HealthStatus.UNHEALTHY or tracker is None:
            self.log(f"{name}: {status.value} ({detail})" if detail else f"{name}: {status.value}")
            self._reconcile()
            return
        failures = f"{tracker.failures} failure{'s' if tracker.failures != 1 else ''}"
        if rt.cfg.type is ServiceType.LONGRUN and rt.cfg.restart is not RestartPolicy.NO:
            self.log(f"{name}: unhealthy ({failures}: {detail}); restarting")
            self._service_failing(name, f"unhealthy ({failures}: {detail})")
        else:
            self.log(f"{name}: unhealthy ({failures}: {detail}); restart: no, left running")
            self._reconcile()

    # -- logging -------------------------------------------------------------
    def log(self, message: str, level: int = 0) -> None:
        if level <= self.verbosity:
            self.logs.event(message)

    # -- running -------------------------------------------------------------
    def run(self) -> int:
        if os.getpid() != 1:
            try:
                become_subreaper()
            except OSError as exc:
                self.log(f"cannot become a child subreaper: {exc}")
        # SIGPIPE stays ignored (CPython's default): the kernel raises it when
        # pyinit writes to a stdout nobody reads any more, and handled like any
        # other signal it would be forwarded and kill every service. Ignored, the
        # write fails with EPIPE and the log sink discards output from then on.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.intake = SignalIntake(s for s in catchable_signals() if s != signal.SIGPIPE)
        self.loop.add_reader(self.intake.read_fd, self._on_signals)
        self.http: HttpServer | None = None
        if self.http_address:  # asked for explicitly: failing to serve it is fatal
            try:
                self.http = serve(
                    self.loop,
                    self.http_address,
                    self.snapshot,
                    lambda: [n for n, rt in self.services.items() if rt.cfg.critical],
                    self.log,
                )
            except (OSError, ValueError) as exc:
                self.log(f"cannot serve HTTP on {self.http_address}: {exc}; nothing started")
                self.logs.close(time.monotonic() + 2.0)
                return 2
        runs = RunClock()
        self.change_hooks.append(lambda: runs.observe(self.snapshot()))
        self.control = ControlServer.open(self)  # None (logged) when it cannot listen
        names = ", ".join(" ".join(tier) for tier in self.config.start_tiers())
        self.log(f"starting {len(self.services)} service(s): {names}", 1)
        self.extras.sync({n: rt.cfg for n, rt in self.services.items()})
        self.loop.guarded(self._reconcile)
        self.loop.run()
        if self.http is not None:
            self.http.close()
        if self.control is not None:
            self.control.close()
        for rt in self.services.values():
            rt.monitor.close()
        if self._runtime_dir is not None:
            remove_snapshot(self._runtime_dir)
        code = self.exit_code if self.exit_code is not None else 0
        emit_report(self.snapshot(), runs.ran(), code, self.log)
        self.logs.close(time.monotonic() + 2.0)
        self.extras.close()
        return self.exit_code if self.exit_code is not None else 0

    def _feed(self, rt: ServiceRuntime, event: Event) -> None:
        before = rt.machine.state
        actions = rt.machine.handle(event, time.monotonic())
        for action in actions:
            self._execute(rt, action)
        if rt.cfg.schedule is not None:
            result = run_result(before, rt.machine.state)
            if result is not None:
                last = rt.machine.last_status
                self.extras.jobs.finished(rt.name, result, last.shell_code if last else None)

    def _execute(self, rt: ServiceRuntime, action: Action) -> None:
        if isinstance(action, Spawn):
            self._spawn_service(rt)
        elif isinstance(action, SendSignal):
            self._signal_service(rt, action.signum)
        elif isinstance(action, StartTimer):
            self._start_timer(rt, action.kind, action.delay)
        elif isinstance(action, CancelTimer):
            timer = rt.timers.pop(action.kind, None)
            if timer is not None:
                timer.cancel()
        elif isinstance(action, Log):
            self.log(f"{rt.name}: {action.message}")

    def _start_timer(self, rt: ServiceRuntime, kind: TimerKind, delay: float) -> None:
        old = rt.timers.pop(kind, None)
        if old is not None:
            old.cancel()
        if kind is TimerKind.KILL and self.shutting_down:
            delay = min(delay, max(0.0, self.deadline - time.monotonic()))
        event = Event(EventKind.KILL_DUE if kind is TimerKind.KILL else EventKind.RESTART_DUE)

        def fire() -> None:
            rt.timers.pop(kind, None)
            self._feed(rt, event)
            self._reconcile()

        rt.timers[kind] = self.loop.call_later(delay, fire)

    def _spawn_service(self, rt: ServiceRuntime) -> None:
        cfg = rt.cfg
        capture = cfg.logging == "capture"
        pipes: list[tuple[int, int]] = []
        try:
            uid = gid = None
            groups: list[int] | None = None
            if cfg.user:
                uid, gid, groups = resolve_user(cfg.user)
            fds = {0: self._devnull}
            if capture:
                # One at a time: out of fds, the second fails and the first is closed.
                pipes.append(os.pipe2(os.O_CLOEXEC))
                pipes.append(os.pipe2(os.O_CLOEXEC))
                fds[1], fds[2] = pipes[0][1], pipes[1][1]
                if uid is not None:
                    # A service that reopens /dev/stdout by path (nginx, some
                    # loggers) opens the pipe anew: it must belong to its user.
                    for _, write_end in pipes:
                        os.fchown(write_end, uid, -1 if gid is None else gid)
            env = dict(os.environ)
            env.update(cfg.environment)
            rt.monitor.prepare(env, fds)
            spec = SpawnSpec(
                argv=cfg.command,
                env=env,
                cwd=cfg.working_dir,
                uid=uid,
                gid=gid,
                groups=groups,
                umask=cfg.umask,
                fds=fds,
                no_new_privs=cfg.no_new_privs,
                rlimits=cfg.ulimits,
            )
            pid = spawn(spec)
        except SpawnError as exc:
            if exc.pid is not None:  # reaped quietly: its failure is reported here
                self.owners[exc.pid] = None
            self._close_pipes(pipes)
            rt.monitor.spawn_failed()
            self._feed(
                rt,
                Event(
                    EventKind.SPAWN_FAILED, status=ExitStatus(code=exc.exit_code), reason=str(exc)
                ),
            )
            return
        except (LookupError, OSError, PermissionError) as exc:
            self._close_pipes(pipes)
            rt.monitor.spawn_failed()
            reason = f"cannot start: {exc}"
            self._feed(
                rt, Event(EventKind.SPAWN_FAILED, status=ExitStatus(code=126), reason=reason)
            )
            return
        for (read_fd, write_fd), stream in zip(pipes, ("stdout", "stderr"), strict=False):
            os.close(write_fd)
            self.logs.attach(rt.name, pid, stream, read_fd)  # type: ignore[arg-type]
        self.owners[pid] = rt
        self._feed(rt, Event(EventKind.SPAWNED, pid=pid))
        rt.monitor.started(pid)  # may report ready at once (no readiness source)

    @staticmethod
    def _close_pipes(pipes: list[tuple[int, int]]) -> None:
        for read_fd, write_fd in pipes:
            os.close(read_fd)
            os.close(write_fd)

    def _signal_service(self, rt: ServiceRuntime, signum: int) -> None:
        pid = rt.machine.pid
        if pid is None:
            return
        try:
            os.kill(-pid, signum)  # its own session: the whole group hears it
        except ProcessLookupError:
            pass

    # -- signals and children --------------------------------------------------
    def _on_signals(self) -> None:
        # Each signal guarded on its own: a bug in one handler must not lose the
        # others read in the same batch (a SIGCHLD among them would leave an exit
        # unrouted until the next one).
        self.intake.drain(lambda signum: self.loop.guarded(lambda: self._on_signal(signum)))
        self._reconcile()

    def _on_signal(self, signum: int) -> None:
        if _TEST_FAULT and _TEST_FAULT == signal_name(signum):
            raise RuntimeError("injected fault")
        if signum == signal.SIGCHLD:
            self._reap()
        elif signum in SHUTDOWN_SIGNALS:
            if self.shutting_down:
                self.log(f"{signal_name(signum)} received again; killing everything now")
                self._force_kill()
            else:
                self.log(f"{signal_name(signum)} received; stopping")
                self.shutdown_requested = True
                self._begin_shutdown(None)
        elif signum == signal.SIGHUP and not self.shutting_down:
            self.log("SIGHUP received; reloading the configuration")
            self.reload()
        else:
            self._forward(signum)

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
            try:
                os.kill(-pid, signum)
                self.signals_forwarded += 1
                self.log(f"{name} received; forwarded to {label} (process group {pid})", 1)
            except ProcessLookupError:
                pass
        if not targets:
            self.log(f"{name} received; nothing running to forward it to", 1)

    def _reap(self) -> None:
        reaped, _ = reap()
        for item in reaped:
            owner = self.owners.pop(item.pid, "orphan")
            if isinstance(owner, ServiceRuntime):
                self.logs.drain_pid(item.pid)
                if owner.machine.pid == item.pid:
                    owner.monitor.ended()
                    self._feed(owner, Event(EventKind.EXITED, pid=item.pid, status=item.status))
            elif isinstance(owner, MainCommand):
                owner.status = item.status
                owner.pid = None
                self.log(f"main command {owner.argv[0]} exited ({item.status.describe()})")
                self._main_exited(owner)
            elif callable(owner):
                owner(item.status)
            elif owner == "orphan":
                self.orphans_reaped += 1
                self.log(f"reaped orphan pid {item.pid} ({item.status.describe()})", 1)

    # -- what should happen next -------------------------------------------------
    def _reconcile(self) -> None:
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
            self._progress_shutdown()
            return
        self._progress_operator_stops()
        for rt in self.services.values():
            # A scheduled job waits in pending for its first due time (_job_due).
            if rt.machine.state is State.PENDING and rt.cfg.schedule is None:
                verdict, reason = self._dependencies(rt.cfg)
                if verdict is True:
                    self._feed(rt, Event(EventKind.START))
                elif verdict is False:
                    self._feed(rt, Event(EventKind.DEPENDENCY_FAILED, reason=reason))
        self._maybe_start_main()
        for rt in self.services.values():
            # A service an operator stopped on purpose does not end the container;
            # a scheduled job ends it only by failing (it completes on every run).
            ended = rt.machine.state.final
            if rt.cfg.schedule is not None:
                ended = rt.machine.state is State.FAILED
            if rt.cfg.critical and ended and not rt.machine.stop_requested:
                code = _final_code(rt.machine)
                self.log(
                    f"{rt.name} is critical and ended ({rt.machine.state.value}); "
                    f"stopping the container with status {code}"
                )
                self._begin_shutdown(code)
                return
        operator_stopped = any(rt.machine.stop_requested for rt in self.services.values())
        if (
            self.main is None
            and not operator_stopped
            and all(rt.machine.state.final for rt in self.services.values())
            # scheduled jobs run again: a container of jobs runs until it is stopped
            and not any(rt.cfg.schedule is not None for rt in self.services.values())
        ):
            ok = all(
                rt.machine.state in (State.COMPLETED, State.EXITED) for rt in self.services.values()
            )
            self.log("no service left to run" + ("" if ok else "; some failed"))
            self._begin_shutdown(0 if ok else 1)

    def _dependencies(self, cfg: ServiceConfig) -> tuple[bool | None, str]:
        """True when every condition holds, False when one never can, else None."""
        verdict: bool | None = True
        for dep in cfg.depends_on:
            holds, reason = self._condition(dep.name, dep.condition)
            if holds is False:
                return False, reason
            if holds is None:
                verdict = None
        return verdict, ""

    def _condition(self, name: str, condition: Condition) -> tuple[bool | None, str]:
        """Whether ``condition`` on service ``name`` holds (True), never will (False),
        or may yet (None); with the reason when it never will."""
        m = self.services[name].machine
        why = m.reason or m.state.value
        if condition is Condition.COMPLETED_SUCCESSFULLY:
            if m.state in (State.COMPLETED, State.EXITED):
                return True, ""
            if m.state in (State.FAILED, State.STOPPED):
                return False, f"dependency {name} did not complete successfully ({why})"
            return None, ""
        if condition is Condition.HEALTHY:
            tracker = self.services[name].monitor.health
            if tracker is not None and tracker.status is HealthStatus.HEALTHY:
                return True, ""
            if m.state.final:
                return False, f"dependency {name} {m.state.value} before it was healthy ({why})"
            return None, ""
        started = condition is Condition.STARTED
        if m.ever_started if started else m.ever_ready:
            return True, ""
        if m.state.final:
            goal = "started" if started else "was ready"
            return False, f"dependency {name} {m.state.value} before it {goal} ({why})"
        return None, ""

    def _maybe_start_main(self) -> None:
        main = self.main
        if main is None or main.pid is not None or main.status is not None:
            return
        for rt in self.services.values():
            if rt.cfg.schedule is not None:
                continue  # no dependant waits for a scheduled job, the main command neither
            wanted = (
                Condition.COMPLETED_SUCCESSFULLY
                if rt.cfg.type is ServiceType.ONESHOT
                else Condition.READY
            )
            holds, reason = self._condition(rt.name, wanted)
            if holds is None:
                return
            if holds is False:
                self.log(f"main command not started: {reason}")
                self._begin_shutdown(1)
                return
        # The main command is the interactive one (docker run -it): it gets the
        # terminal and its foreground, so Ctrl-C reaches it, not the supervisor.
        take_tty = release_controlling_tty()
        spec = SpawnSpec(argv=main.argv, take_tty=take_tty)
        try:
            main.pid = spawn(spec)
        except SpawnError as exc:
            if exc.pid is not None:
                self.owners[exc.pid] = None
            self.log(str(exc))
            main.status = ExitStatus(code=exc.exit_code)
            self._begin_shutdown(exc.exit_code)
            return
        self.owners[main.pid] = main
        self.log(f"main command {main.argv[0]} started (pid {main.pid})")

    def _main_exited(self, main: MainCommand) -> None:
        assert main.status is not None
        code = main.status.shell_code
        sent = main.signalled_with
        if sent is not None and code in (128 + sent, 0):
            code = 0  # it stopped as we asked: not a failure
        if not self.shutting_down:
            self._begin_shutdown(code)
        elif self.exit_code is None or self.shutdown_requested:
            self.exit_code = code

    # -- shutdown ------------------------------------------------------------
    def _begin_shutdown(self, code: int | None) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        self.exit_code = code
        self.reloader.cancel("pyinit is shutting down")
        self.extras.stop_timers()
        now = time.monotonic()
        self.shutdown_started = now
        self.deadline = now + self.config.settings.shutdown_timeout
        self.loop.call_at(self.deadline, self._budget_exhausted)
        for rt in self.services.values():
            self._feed(rt, Event(EventKind.INHIBIT_RESTART))
            if rt.machine.state is State.PENDING:
                self._feed(rt, Event(EventKind.STOP))
        if self.main is not None and self.main.pid is not None:
            self.main.signalled_with = signal.SIGTERM
            try:
                os.kill(-self.main.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            # The services stop only after the main command: it must not eat the
            # whole budget, or none of them would get its stop_signal.
            grace = min(MAIN_STOP_GRACE, self.config.settings.shutdown_timeout / 2)
            self.loop.call_later(grace, self._kill_main)
        self._progress_shutdown()

    def _kill_main(self) -> None:
        main = self.main
        if main is None or main.pid is None or self.forced:
            return
        took = time.monotonic() - self.shutdown_started
        self.log(f"main command {main.argv[0]} still running {took:.1f}s after SIGTERM; SIGKILL")
        try:
            os.kill(-main.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _progress_shutdown(self) -> None:
        if self.main is not None and self.main.pid is not None:
            return  # the main command depends on everything: it goes first
        for rt in self.services.values():
            state = rt.machine.state
            if state in (State.STARTING, State.RUNNING) and not any(
                self.services[d].machine.state.alive for d in self.dependants_of(rt.name)
            ):
                self._feed(rt, Event(EventKind.STOP))
        if any(rt.machine.state.alive for rt in self.services.values()):
            return
        if not self.sweeping:
            self.sweeping = True
            count = proctree.signal_descendants(signal.SIGTERM)
            if count:
                grace = min(SWEEP_GRACE, max(0.0, self.deadline - time.monotonic()))
                self.log(f"{count} leftover process(es) sent SIGTERM; SIGKILL in {grace:.1f}s")
                self.loop.call_later(grace, self._force_kill)
        if not children_left():
            self._finish()

    def _budget_exhausted(self) -> None:
        if not self.forced:
            took = format_duration(self.config.settings.shutdown_timeout)
            self.log(f"shutdown_timeout ({took}) reached; killing everything")
            self._force_kill()

    def _force_kill(self) -> None:
        if self.forced:
            return
        self.forced = True
        for rt in self.services.values():
            if rt.machine.state.alive:
                rt.machine.killed = True
        # The main command's signalled_with stays the graceful signal: a main
        # command that had to be SIGKILLed exits 137, which is not a clean stop.
        count = proctree.signal_descendants(signal.SIGKILL)
        if count:
            self.log(f"sent SIGKILL to {count} process(es)")
        self.loop.call_later(KILL_WAIT_LIMIT, self._finish)
        self._reconcile()

    # -- operator requests (control socket) and reload ----------------------------
    def dependants_of(self, name: str) -> list[str]:
        return [
            n for n, rt in self.services.items() if any(d.name == name for d in rt.cfg.depends_on)
        ]

    def _with_running_dependants(self, names: list[str]) -> list[str]:
        """``names`` plus, transitively, every live service that depends on them."""
        found: list[str] = []
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in found:
                continue
            found.append(name)
            todo.extend(d for d in self.dependants_of(name) if self.services[d].machine.state.alive)
        return found

    def _unknown(self, names: list[str]) -> list[str]:
        return [f"no service named {n!r}" for n in names if n not in self.services]

    def stop_services(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Stop ``names`` and the live services depending on them, dependants first.
        Returns (what will stop, errors). A stopped service stays stopped until started."""
        errors = self._unknown(names)
        if errors or self.shutting_down:
            return [], errors or ["pyinit is shutting down"]
        targets = self._with_running_dependants(names)
        self.extras.jobs.paused.update(n for n in targets if n in self.extras.jobs)
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
        errors = self._unknown(names)
        if errors or self.shutting_down:
            return [], errors or ["pyinit is shutting down"]
        started: list[str] = []
        self.extras.jobs.paused.difference_update(names)
        for name in names:
            rt = self.services[name]
            if rt.machine.state.alive or rt.machine.state is State.BACKOFF:
                continue  # already running, or about to restart
            verdict, reason = self._dependencies(rt.cfg)
            if verdict is not True:
                waiting = [
                    d.name
                    for d in rt.cfg.depends_on
                    if self._condition(d.name, d.condition)[0] is not True
                ]
                errors.append(f"{name}: {reason or 'waiting for ' + ', '.join(waiting)}")
                continue
            self._feed(rt, Event(EventKind.START))
            started.append(name)
        self._reconcile()
        return started, errors

    def restart_services(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Stop (dependants too) and start again; a service that is not running just starts."""
        errors = self._unknown(names)
        if errors or self.shutting_down:
            return [], errors or ["pyinit is shutting down"]
        targets = self._with_running_dependants(names)
        self.extras.jobs.paused.difference_update(targets)
        for name in targets:
            m = self.services[name].machine
            if m.state.alive:
                self.stop_set.add(name)
                self.restart_set.add(name)
            elif m.state is State.BACKOFF:
                self._feed(self.services[name], Event(EventKind.STOP))
                self.restart_set.add(name)
            else:
                self.restart_set.add(name)
        self._reconcile()
        return targets, []

    def signal_services(self, signum: int, names: list[str]) -> tuple[list[str], list[str]]:
        errors = self._unknown(names)
        sent: list[str] = []
        for name in names:
            if name not in self.services:
                continue
            pid = self.services[name].machine.pid
            if pid is None:
                errors.append(f"{name} is not running")
                continue
            try:
                os.kill(-pid, signum)
                self.signals_forwarded += 1
                sent.append(name)
            except ProcessLookupError:
                errors.append(f"{name} is not running")
        return sent, errors

    def _progress_operator_stops(self) -> None:
        for name in sorted(self.stop_set):
            rt = self.services[name]
            state = rt.machine.state
            if state.alive:
                blocking = [
                    d
                    for d in self.dependants_of(name)
                    if d in self.stop_set and self.services[d].machine.state.alive
                ]
                # Already stopping because it was found failing (unhealthy...)? The
                # request still has to reach it, or its exit becomes a restart.
                if not blocking and not rt.machine.stop_requested:
                    self._feed(rt, Event(EventKind.STOP))
                continue
            self.stop_set.discard(name)
        for name in list(self.services):
            rt = self.services[name]
            if name in self.stop_set or rt.machine.state.alive:
                continue
            if self.reload_table.pending(name):
                if rt.machine.state in (State.PENDING, State.BACKOFF):
                    # Fell back to waiting (a crash) before its stop was sent.
                    self._feed(rt, Event(EventKind.STOP))
                self._execute_reload(self.reload_table.stopped(name))
                continue
            if rt.machine.state is State.BACKOFF:
                continue
            if (
                name in self.restart_set
                # a dependency being restarted too comes back first
                and not any(
                    d.name in self.stop_set or d.name in self.restart_set for d in rt.cfg.depends_on
                )
                and self._dependencies(rt.cfg)[0] is True
            ):
                self.restart_set.discard(name)
                self._feed(rt, Event(EventKind.START))

    @property
    def replacements(self) -> dict[str, ServiceConfig]:
        """Names waiting for their instance to stop before a new definition starts."""
        return self.reload_table.replacements()

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

    def _apply_reload(self, new: Config) -> list[str]:
        """Apply a validated new config: retire, replace and add services."""
        from pyinit.reload import plan_reload

        plan = plan_reload(self.config, new)
        self.log(f"reload: {plan.describe()}")
        # A stop can be withdrawn only while it waits for dependants to stop first.
        signalled = {
            n
            for n, rt in self.services.items()
            if rt.machine.stop_requested or not rt.machine.state.alive
        }
        # An operator's stop or restart in progress is not the reload's to withdraw.
        shared = {n for n in self.stop_set | self.restart_set if not self.reload_table.pending(n)}
        self.config = new
        self._execute_reload(self.reload_table.reload(new.services, signalled, shared))
        self._reconcile()
        return [plan.describe()]

    def _execute_reload(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, Add):
                name = decision.cfg.name
                assert name not in self.services, name  # an old instance is never overwritten
                self.services[name] = ServiceRuntime(
                    ServiceMachine(decision.cfg), self._monitor_for(decision.cfg)
                )
            elif isinstance(decision, Stop):
                rt = self.services[decision.name]
                if rt.machine.state.alive:
                    self.stop_set.add(decision.name)
                elif rt.machine.state in (State.PENDING, State.BACKOFF):
                    self._feed(rt, Event(EventKind.STOP))
            elif isinstance(decision, Withdraw):
                self.stop_set.discard(decision.name)
            elif isinstance(decision, Drop):
                old = self.services.pop(decision.name)
                old.monitor.close()
                self.stop_set.discard(decision.name)
                self.restart_set.discard(decision.name)
                self.log(f"{decision.name}: removed")
            elif isinstance(decision, Replace):
                name = decision.cfg.name
                old = self.services[name]
                self.services[name] = ServiceRuntime(
                    ServiceMachine(decision.cfg), self._monitor_for(decision.cfg)
                )
                old.monitor.close()
                self.restart_set.discard(name)
        if decisions:
            self.extras.sync({n: rt.cfg for n, rt in self.services.items()})

    # -- scheduled jobs and file watches ---------------------------------------
    def _job_due(self, name: str) -> None:
        """A scheduled job's due time: start it, or skip or replace a run still going."""
        rt = self.services.get(name)
        if rt is None or self.shutting_down:
            return
        due = when_due(rt.machine.state, Concurrency(rt.cfg.concurrency))
        if name in self.extras.jobs.paused:
            self.extras.jobs.skipped(name)
            self.log(f"{name}: run skipped: stopped by an operator (pyinit start resumes)")
        elif due is Due.SKIP:
            self.extras.jobs.skipped(name)
            self.log(f"{name}: run skipped: the previous run is still going (concurrency: forbid)")
        elif due is Due.REPLACE:
            self.log(f"{name}: replacing the run still going (concurrency: replace)")
            self.restart_services([name])
        elif name not in self.stop_set and not self.reload_table.pending(name):
            verdict, reason = self._dependencies(rt.cfg)
            if verdict is True:
                self.extras.jobs.started(name)
                self._feed(rt, Event(EventKind.START))
            else:
                self.extras.jobs.skipped(name)
                self.log(f"{name}: run skipped: {reason or 'its dependencies do not hold yet'}")
        self._reconcile()

    def _files_changed(self, name: str, paths: list[str]) -> None:
        """develop.watch saw a burst of changes: restart as ``pyinit restart`` does."""
        if self.shutting_down or name not in self.services:
            return
        shown = (
            os.path.relpath(paths[0], os.path.dirname(self.config.path) or ".") if paths else "?"
        )
        more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
        self.log(f"{name}: {shown}{more} changed; restarting")
        self.restart_services([name])

    # -- status ---------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The aggregate state every reader uses (``pyinit health``, later the API)."""
        services: dict[str, Any] = {}
        for name, rt in self.services.items():
            m, mon = rt.machine, rt.monitor
            last = m.last_status
            services[name] = {
                "type": rt.cfg.type.value,
                "state": m.state.value,
                "pid": m.pid,
                "ready": mon.ready if m.state.alive else m.state is State.COMPLETED,
                "health": mon.health.status.value if mon.health is not None else None,
                "health_detail": mon.health.last_detail if mon.health is not None else "",
                "restarts": m.restarts,
                "last_exit": last.shell_code if last is not None else None,
                "reason": m.reason,
                "status_text": mon.status_text,
                "uptime": round(time.monotonic() - m.started_at, 3)
                if m.state.alive and m.started_at is not None
                else None,
                **self.extras.status(name),
            }
        return {
            "pid": os.getpid(),
            "stopping": self.shutting_down,
            "started": self.started_wall,
            "orphans_reaped": self.orphans_reaped,
            "signals_forwarded": self.signals_forwarded,
            "services": services,
        }

    def _publish_status(self) -> None:
        for hook in self.change_hooks:
            hook()
        # The file is written at most once per pass of the loop: a burst of changes
        # (100 services becoming ready together) costs one write, not 100.
        if not self._status_pending:
            self._status_pending = True
            self.loop.call_later(0, self._write_status)

    def _write_status(self) -> None:
        import json

        self._status_pending = False
        snapshot = self.snapshot()
        # uptime moves on its own; only a change of anything else is worth a write
        stable = {
            **snapshot,
            "services": {n: {**v, "uptime": None} for n, v in snapshot["services"].items()},
        }
        text = json.dumps(stable, sort_keys=True)
        if text == self._last_snapshot:
            return
        self._last_snapshot = text
        try:
            write_snapshot(self.runtime_dir(), snapshot)
        except OSError as exc:
            if self._runtime_dir is not None or self.verbosity:
                self.log(f"cannot write the status file: {exc}", 1)

    def _finish(self) -> None:
        if self.exit_code is None or (self.shutdown_requested and self.main is None):
            self.exit_code = self._requested_shutdown_code()
        took = time.monotonic() - self.shutdown_started
        self.log(f"all processes gone after {took:.2f}s; exiting with status {self.exit_code}")
        self.loop.stop()

    def _requested_shutdown_code(self) -> int:
        """0 when every service stopped cleanly (128+N for our own stop signal is clean)."""
        for rt in self.services.values():
            m = rt.machine
            if m.state is State.FAILED and rt.cfg.critical:
                return _final_code(m)
            # Only a process that was running when we stopped it can stop uncleanly;
            # one caught waiting in backoff after a crash was not running at all.
            if m.state is not State.STOPPED or m.stop_outcome is None:
                continue
            status = m.stop_outcome
            clean = (
                status.success
                or status.signal == rt.cfg.stop_signal
                or (status.code == 128 + rt.cfg.stop_signal)
            )
            if m.killed or not clean:
                return status.shell_code or 1
        return 0


def _final_code(m: ServiceMachine) -> int:
    if m.state in (State.COMPLETED, State.EXITED):
        return 0
    if m.last_status is not None and m.last_status.shell_code:
        return m.last_status.shell_code
    return 1
