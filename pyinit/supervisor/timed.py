"""What the supervisor does when a scheduled job is due or watched files changed,
and the bookkeeping of job runs. The timers, watchers and log files themselves
live in pyinit/extras.py (``ServiceExtras``); this mixin decides what they mean
for the services: start, skip or replace a run; restart as ``pyinit restart``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pyinit.jobs import Concurrency, Due, run_result, when_due
from pyinit.service import Event, EventKind, State
from pyinit.supervisor import conditions

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.config.model import Config
    from pyinit.configload import Reloader
    from pyinit.extras import ServiceExtras
    from pyinit.logs import LogRouter
    from pyinit.loop import EventLoop
    from pyinit.supervisor.actions import Operator
    from pyinit.supervisor.conditions import Facts
    from pyinit.supervisor.driver import ServiceDriver
    from pyinit.supervisor.runtime import ServiceRuntime


class TimedMixin:
    config: Config
    services: dict[str, ServiceRuntime]
    extras: ServiceExtras
    actions: Operator
    facts: Facts
    _cancel_reload: Callable[[str], None]
    loop: EventLoop
    logs: LogRouter
    driver: ServiceDriver
    reloader: Reloader

    if TYPE_CHECKING:

        @property
        def shutting_down(self) -> bool: ...

        def feed(self, rt: ServiceRuntime, event: Event) -> None: ...

        def reconcile(self) -> None: ...

        def log(self, message: str, level: int = 0) -> None: ...

    def _job_due(self, name: str) -> None:
        """A scheduled job's due time: start it, or skip or replace a run still going."""
        rt = self.services.get(name)
        if rt is None or self.shutting_down:
            return
        due = when_due(rt.machine.state, Concurrency(rt.cfg.concurrency))
        jobs = self.extras.jobs
        if name in jobs.paused:
            jobs.skipped(name)
            self.log(f"{name}: run skipped: stopped by an operator (pyinit start resumes)")
        elif due is Due.SKIP:
            jobs.skipped(name)
            self.log(f"{name}: run skipped: the previous run is still going (concurrency: forbid)")
        elif due is Due.REPLACE:
            self.log(f"{name}: replacing the run still going (concurrency: replace)")
            self.actions.restart_services([name])
        elif name not in self.actions.stop_set and not self.actions.reload_table.pending(name):
            verdict, reason = conditions.dependencies(self.facts, rt.cfg)
            if verdict is True:
                jobs.started(name)
                self.feed(rt, Event(EventKind.START))
            else:
                jobs.skipped(name)
                self.log(f"{name}: run skipped: {reason or 'its dependencies do not hold yet'}")
        self.reconcile()

    def _files_changed(self, name: str, paths: list[str]) -> None:
        """develop.watch saw a burst of changes: restart as ``pyinit restart`` does
        (every instance, for a scaled service's one watcher)."""
        names = [n for n in self.config.members(name) if n in self.services]
        if self.shutting_down or not names:
            return
        base = os.path.dirname(self.config.path) or "."
        shown = os.path.relpath(paths[0], base) if paths else "?"
        more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
        self.log(f"{name}: {shown}{more} changed; restarting")
        self.actions.restart_services(names)

    def _fed(self, rt: ServiceRuntime, before: State) -> None:
        """After each event a service's machine took: count a scheduled run's end."""
        if rt.cfg.schedule is None:
            return
        result = run_result(before, rt.machine.state)
        if result is not None:
            last = rt.machine.last_status
            self.extras.jobs.finished(rt.name, result, last.shell_code if last else None)

    def _init_extras(self) -> None:
        """Attach the config's timers, watchers and log files (the loop runs them)."""
        from pyinit.extras import ServiceExtras

        self.extras = ServiceExtras(
            self.loop, self.logs, self._job_due, self._files_changed, self.log
        )
        self.driver.after_feed = self._fed
        self._cancel_reload = self.reloader.cancel
        self._sync_extras()

    def _shutdown_begins(self, reason: str) -> None:
        """No job starts and no file change restarts anything once shutdown began."""
        self._cancel_reload(reason)
        self.extras.stop_timers()

    def _sync_extras(self) -> None:
        self.extras.sync({n: rt.cfg for n, rt in self.services.items()})
