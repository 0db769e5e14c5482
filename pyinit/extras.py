"""What some services carry besides their process: schedule timers, file watchers,
log files. The supervisor keeps them in step with the config (start, reload,
shutdown) through ``sync``; what a due job or a changed file means for the
service stays the supervisor's to decide (``on_due``, ``on_change``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pyinit.config.model import ServiceConfig
from pyinit.jobs import Jobs
from pyinit.logs import LogRouter
from pyinit.loop import EventLoop
from pyinit.snapshot import JobSnapshot, LogFileSnapshot

if TYPE_CHECKING:  # imported when a service has them (start-up of the others)
    from pyinit.logfile import LogFile
    from pyinit.watch import Watcher


class ServiceExtras:
    def __init__(
        self,
        loop: EventLoop,
        logs: LogRouter,
        on_due: Callable[[str], None],
        on_change: Callable[[str, list[str]], None],
        log: Callable[[str], None],
    ) -> None:
        self._loop = loop
        self._logs = logs
        self._on_change = on_change
        self._log = log
        self.jobs = Jobs(loop, on_due)
        # One watcher for a service, or for all instances of a scaled one (an inotify
        # instance each would soon meet fs.inotify.max_user_instances): by that name.
        self.watchers: dict[str, Watcher] = {}
        self._watching: dict[str, set[str]] = {}  # watcher name -> the services on it
        self.files: dict[str, LogFile] = {}
        self._attached: dict[str, ServiceConfig] = {}
        self._closed = False

    def sync(self, services: Mapping[str, ServiceConfig]) -> None:
        """Attach what each current definition asks for; detach what went away."""
        gone: dict[str, ServiceConfig | None] = {n: None for n in self._attached}
        self.update({**gone, **services})

    def update(self, changes: Mapping[str, ServiceConfig | None]) -> None:
        """Follow the definitions of the services named: None for one removed."""
        if self._closed:
            return
        for name, cfg in changes.items():
            old = self._attached.get(name)
            if cfg is None:
                if old is not None:
                    self._detach(name, self._attached.pop(name), forget=True)
                continue
            if old is cfg:
                continue
            if old is not None:
                self._detach(name, old, forget=False, keep_file=_same_file(old, cfg))
            self._attach(name, cfg, keep_file=old is not None and _same_file(old, cfg))
            self._attached[name] = cfg

    def _attach(self, name: str, cfg: ServiceConfig, keep_file: bool) -> None:
        if cfg.schedule is not None:
            self.jobs.add(name, cfg.schedule)
        if cfg.watch:
            self._watch(cfg.replica_of or name, name, cfg)
        options = cfg.log_file
        if options is not None and cfg.logging == "capture" and not keep_file:
            from pyinit.logfile import LogFile

            sink = LogFile(
                options.path,
                options.max_size,
                options.max_files,
                report=lambda message: self._log(f"{name}: {message}"),
            )
            sink.open()  # an error now is reported at start, not at the first line
            self.files[name] = sink
        sink_now = self.files.get(name)
        self._logs.set_file(name, sink_now, options.stdout if options is not None else True)

    def _watch(self, key: str, name: str, cfg: ServiceConfig) -> None:
        """Put ``name`` on watcher ``key``, made (again) for ``cfg.watch`` if need be."""
        from pyinit.watch import Watcher

        watcher = self.watchers.get(key)
        if watcher is not None and watcher.specs != cfg.watch:
            watcher.close()  # a new definition watches other paths
            watcher = None
        if watcher is None:
            watcher = Watcher(
                self._loop,
                cfg.watch,
                lambda paths: self._on_change(key, paths),
                lambda message: self._log(f"{key}: {message}"),
                clock=self._loop.now,
            )
            self.watchers[key] = watcher
            watcher.start()
        self._watching.setdefault(key, set()).add(name)

    def _detach(self, name: str, cfg: ServiceConfig, forget: bool, keep_file: bool = False) -> None:
        self.jobs.remove(name, forget=forget)
        key = cfg.replica_of or name
        users = self._watching.get(key)
        if users is not None:
            users.discard(name)
            if not users:
                del self._watching[key]
                self.watchers.pop(key).close()
        if not keep_file:
            sink = self.files.pop(name, None)
            if sink is not None:
                sink.close()
            self._logs.set_file(name, None, True)

    def stop_timers(self) -> None:
        """Shutdown began: no job starts and no file change restarts anything."""
        self._closed = True
        self.jobs.stop_all()
        for watcher in self.watchers.values():
            watcher.close()
        self.watchers.clear()
        self._watching.clear()

    def close(self) -> None:
        """At exit, after the log router wrote its last lines."""
        self.stop_timers()
        for sink in self.files.values():
            sink.close()

    def job_snapshot(self, name: str) -> JobSnapshot | None:
        """What status and /metrics show of a scheduled job; None for other services."""
        if name not in self.jobs:
            return None
        record = self.jobs.records[name]
        return JobSnapshot(
            schedule=self.jobs.schedule(name) or "",
            next_run=self.jobs.next_run(name),
            paused=name in self.jobs.paused,
            last_result=record.last_result,
            last_exit=record.last_exit,
            last_started=record.last_started,
            last_finished=record.last_finished,
            last_success=record.last_success,
            runs=dict(record.runs),
        )

    def log_file_snapshot(self, name: str) -> LogFileSnapshot | None:
        sink = self.files.get(name)
        if sink is None:
            return None
        return LogFileSnapshot(sink.path, sink.errors, sink.dropped_lines, sink.rotations)


def _same_file(old: ServiceConfig, new: ServiceConfig) -> bool:
    """A reload that keeps the file options keeps the open file (and its counters)."""
    return old.log_file == new.log_file and old.logging == new.logging
