"""Watches one running service: when it becomes ready, and whether it stays healthy.

Readiness comes from one source (``ready:``): sd_notify, a log line, a
notification fd, or a probe polled until it first passes; with no source, the
first passing healthcheck, or else the start itself. The healthcheck runs on its
timer for as long as the service lives. The monitor reports to the supervisor
through callbacks and never decides restarts itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from pyinit.config.model import Readiness, ServiceConfig
from pyinit.health import ChildRegistrar, HealthStatus, HealthTracker, ProbeRun, start_probe
from pyinit.logs import LogRouter
from pyinit.loop import EventLoop, Timer
from pyinit.notify import NotifySocket
from pyinit.startdir import default_cwd


class ServiceMonitor:
    def __init__(
        self,
        loop: EventLoop,
        cfg: ServiceConfig,
        logs: LogRouter,
        register_child: ChildRegistrar,
        on_ready: Callable[[str], None],
        on_failure: Callable[[str], None],
        on_health: Callable[[HealthStatus, str], None],
        log: Callable[[str], None],
        runtime_dir: Callable[[], str],
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.loop = loop
        self.cfg = cfg
        self.logs = logs
        self.register_child = register_child
        self.on_ready = on_ready
        self.on_failure = on_failure
        self.on_health = on_health
        self.log = log
        self.runtime_dir = runtime_dir
        # Called when something only the status file shows changed (STATUS=), so the
        # supervisor publishes it; readiness and health have their own callbacks.
        self.on_change = on_change
        self.ready = False
        self.health: HealthTracker | None = None
        self.status_text = ""  # the latest sd_notify STATUS=
        self.notify: NotifySocket | None = None
        self._env: dict[str, str] = {}
        self._pid: int | None = None
        self._started_at = 0.0
        self._timers: dict[str, Timer] = {}
        self._probes: dict[str, ProbeRun] = {}
        self._ready_fd: int | None = None
        self._ready_fd_write: int | None = None

    # -- lifecycle, driven by the supervisor -----------------------------------------
    def prepare(self, env: dict[str, str], fds: dict[int, int]) -> None:
        """Before spawn: add what the readiness source needs to the child's env and fds."""
        ready = self.cfg.ready
        # Probes run in the service's environment; with none, a copy of it per
        # service held for nothing (1,000 services: 5 MiB of PID 1's memory).
        if self.cfg.healthcheck is not None or (ready is not None and ready.probe is not None):
            self._env = env
        if ready is None:
            return
        if ready.kind == "notify":
            if self.notify is None:
                try:
                    path = os.path.join(self.runtime_dir(), f"notify-{self.cfg.name}.sock")
                except OSError:
                    # No writable runtime directory (a read-only root and no tmpfs):
                    # an abstract socket needs no file, and sd_notify(3) accepts "@".
                    path = "@pyinit-notify-" + os.urandom(8).hex()
                self.notify = NotifySocket(self.loop, path, self._on_notify)
            env["NOTIFY_SOCKET"] = self.notify.path
            if ready.watchdog:
                env["WATCHDOG_USEC"] = str(int(ready.watchdog * 1_000_000))
        elif ready.kind == "fd":
            self._ready_fd, self._ready_fd_write = os.pipe2(os.O_CLOEXEC)
            fds[ready.fd] = self._ready_fd_write

    def spawn_failed(self) -> None:
        self._close_ready_fd()

    def started(self, pid: int) -> None:
        """After a successful spawn: arm the readiness source and the healthcheck."""
        now = self.loop.now()
        self._pid = pid
        self._started_at = now
        self.ready = False
        ready = self.cfg.ready
        if self._ready_fd_write is not None:
            os.close(self._ready_fd_write)
            self._ready_fd_write = None
        if self.cfg.healthcheck is not None:
            self.health = HealthTracker(self.cfg.healthcheck, now)
            self._schedule_health(self.health.next_delay(now))
        if ready is None:
            if self.cfg.healthcheck is None:
                self._become_ready("started")
            return
        if ready.timeout > 0:
            self._arm("ready-timeout", ready.timeout, self._ready_timed_out)
        if ready.kind == "notify" and self.notify is not None:
            self.notify.session = pid
        elif ready.kind == "log_line":
            pattern = re.compile(ready.pattern.encode())
            self.logs.watch(self.cfg.name, lambda line: self._on_log_line(pattern, line))
        elif ready.kind == "fd" and self._ready_fd is not None:
            os.set_blocking(self._ready_fd, False)
            self.loop.add_reader(self._ready_fd, self._on_ready_fd)
        elif ready.kind == "probe":
            self._poll_ready()

    def ended(self) -> None:
        """The service's main process is gone: stop watching it."""
        self._pid = None
        self.ready = False
        self.health = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for probe in self._probes.values():
            probe.cancel()
        self._probes.clear()
        if self.notify is not None:
            self.notify.session = None
        self.logs.watch(self.cfg.name, None)
        self._close_ready_fd()

    def close(self) -> None:
        self.ended()
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    # -- readiness ---------------------------------------------------------------
    def _become_ready(self, how: str) -> None:
        if self.ready or self._pid is None:
            return
        self.ready = True
        self._cancel("ready-timeout")
        self._cancel_probe("ready")
        took = self.loop.now() - self._started_at
        if how != "started":
            self.log(f"ready ({how} after {took:.1f}s)")
        ready = self.cfg.ready
        if ready is not None and ready.kind == "notify" and ready.watchdog:
            self._arm("watchdog", ready.watchdog, self._watchdog_missed)
        self.on_ready(how)

    def _ready_timed_out(self) -> None:
        self._timers.pop("ready-timeout", None)
        if not self.ready and self._pid is not None:
            assert self.cfg.ready is not None
            self.on_failure(
                f"not ready within {self.cfg.ready.timeout:g}s ({_source(self.cfg.ready)})"
            )

    def _poll_ready(self) -> None:
        ready = self.cfg.ready
        assert ready is not None and ready.probe is not None
        self._timers.pop("ready-poll", None)

        def done(ok: bool, detail: str) -> None:
            self._probes.pop("ready", None)
            if ok:
                self._become_ready(ready.probe.describe() if ready.probe else "probe")
            elif self._pid is not None and not self.ready:
                self._arm("ready-poll", ready.interval, self._poll_ready)

        self._probes["ready"] = start_probe(
            self.loop,
            ready.probe,
            ready.probe_timeout,
            done,
            self.register_child,
            self._env or None,
            default_cwd(self.cfg.working_dir),
        )

    def _on_log_line(self, pattern: re.Pattern[bytes], line: bytes) -> None:
        if not self.ready and pattern.search(line):
            self.logs.watch(self.cfg.name, None)
            self._become_ready(f"log line {pattern.pattern.decode(errors='replace')!r}")

    def _on_ready_fd(self) -> None:
        assert self._ready_fd is not None
        try:
            data = os.read(self._ready_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if b"\n" in data:
            assert self.cfg.ready is not None
            self._become_ready(f"fd {self.cfg.ready.fd}")
        if not data or self.ready:
            self._close_ready_fd()

    def _close_ready_fd(self) -> None:
        for fd in (self._ready_fd, self._ready_fd_write):
            if fd is not None:
                self.loop.remove_reader(fd)
                os.close(fd)
        self._ready_fd = self._ready_fd_write = None

    def _on_notify(self, sender: int, fields: dict[str, str]) -> None:
        if "STATUS" in fields and fields["STATUS"] != self.status_text:
            self.status_text = fields["STATUS"]
            # Bug fix: a STATUS= alone used to be kept here but never published.
            if self.on_change is not None:
                self.on_change()
        if fields.get("READY") == "1":
            self._become_ready("notify READY=1")
        if fields.get("STOPPING") == "1":
            self.log("notified STOPPING=1")
        if "MAINPID" in fields:
            self.log(
                f"notified MAINPID={fields['MAINPID']} (recorded; pyinit keeps "
                "supervising the process it started)"
            )
        watchdog = fields.get("WATCHDOG")
        ready = self.cfg.ready
        if watchdog == "1" and self.ready and ready is not None and ready.watchdog:
            self._arm("watchdog", ready.watchdog, self._watchdog_missed)
        elif watchdog == "trigger":
            self._cancel("watchdog")
            self.on_failure("watchdog triggered by the service (WATCHDOG=trigger)")

    def _watchdog_missed(self) -> None:
        self._timers.pop("watchdog", None)
        if self._pid is not None:
            assert self.cfg.ready is not None
            self.on_failure(f"watchdog: no WATCHDOG=1 within {self.cfg.ready.watchdog:g}s")

    # -- health ------------------------------------------------------------------
    def _schedule_health(self, delay: float) -> None:
        self._arm("health", delay, self._run_health)

    def _run_health(self) -> None:
        self._timers.pop("health", None)
        check = self.cfg.healthcheck
        if check is None or self._pid is None:
            return

        def done(ok: bool, detail: str) -> None:
            self._probes.pop("health", None)
            tracker = self.health
            if tracker is None or self._pid is None:
                return
            now = self.loop.now()
            changed = tracker.record(ok, now, detail)
            if ok and not self.ready and self.cfg.ready is None:
                self._become_ready(f"healthcheck {check.probe.describe()}")
            if changed is not None:
                self.on_health(changed, detail)
            if self._pid is not None and self.health is tracker:
                self._schedule_health(tracker.next_delay(now))

        self._probes["health"] = start_probe(
            self.loop,
            check.probe,
            check.timeout,
            done,
            self.register_child,
            self._env or None,
            default_cwd(self.cfg.working_dir),
        )

    # -- timers ------------------------------------------------------------------
    def _arm(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel(name)
        self._timers[name] = self.loop.call_later(delay, callback)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _cancel_probe(self, name: str) -> None:
        probe = self._probes.pop(name, None)
        if probe is not None:
            probe.cancel()


def _source(ready: Readiness) -> str:
    if ready.kind == "probe" and ready.probe is not None:
        return ready.probe.describe()
    if ready.kind == "log_line":
        return f"log line {ready.pattern!r}"
    if ready.kind == "fd":
        return f"fd {ready.fd}"
    return "notify READY=1"
