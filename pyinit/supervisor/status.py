"""The supervisor's typed snapshot, the status file, and the read-only answers the
control socket asks for (control.Operator).

A mixin of ``Supervisor``: the bodies read the supervisor's own attributes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyinit.service import State
from pyinit.snapshot import ServiceSnapshot, ServiceState, Snapshot
from pyinit.status import write_snapshot_text

if TYPE_CHECKING:
    from pyinit.config.model import Config, ServiceConfig
    from pyinit.extras import ServiceExtras
    from pyinit.logs import LogRouter
    from pyinit.loop import EventLoop
    from pyinit.resources import Sampler
    from pyinit.supervisor.runtime import ServiceRuntime


_AS_SHOWN = {state: ServiceState[state.name] for state in State}
_ALIVE = frozenset(state for state in State if state.alive)


class StatusMixin:
    config: Config
    services: dict[str, ServiceRuntime]
    loop: EventLoop
    change_hooks: list[Callable[[], None]]
    ended_by: str | None
    logs: LogRouter
    started_wall: float
    orphans_reaped: int
    signals_forwarded: int
    verbosity: int
    extras: ServiceExtras
    _runtime_dir: str | None
    _last_snapshot: dict[str, Any] | None
    _status_pending: bool
    _sampler: Sampler | None = None  # made on the first request that wants figures

    if TYPE_CHECKING:

        @property
        def shutting_down(self) -> bool: ...

        def runtime_dir(self) -> str: ...

        @property
        def stop_set(self) -> set[str]: ...

        @property
        def unselected(self) -> set[str]: ...

        @property
        def restart_set(self) -> set[str]: ...

        @property
        def replacements(self) -> dict[str, ServiceConfig]: ...

        def log(self, message: str, level: int = 0) -> None: ...

    # -- status ---------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The aggregate state every reader uses (status file, control, HTTP, report)."""
        now = time.monotonic()
        services: dict[str, ServiceSnapshot] = {}
        # Lookups hoisted out of the loop: it runs a few times per pass, over
        # every service (1,000 services: 7 ms a snapshot before, 4 after).
        unselected = self.unselected
        job_snapshot = self.extras.job_snapshot
        log_file_snapshot = self.extras.log_file_snapshot
        for name, rt in self.services.items():
            m, mon = rt.machine, rt.monitor
            cfg, state, health, last = m.cfg, m.state, mon.health, m.last_status
            alive = state in _ALIVE
            started_at = m.started_at
            services[name] = ServiceSnapshot(
                type=cfg.type.value,
                state=_AS_SHOWN[state],
                pid=m.pid,
                ready=mon.ready if alive else state is State.COMPLETED,
                health=health.status.value if health is not None else None,
                health_detail=health.last_detail if health is not None else "",
                restarts=m.restarts,
                last_exit=last.shell_code if last is not None else None,
                reason=m.reason,
                status_text=mon.status_text,
                uptime=round(now - started_at, 3) if alive and started_at is not None else None,
                job=job_snapshot(name),
                log_file=log_file_snapshot(name),
                optional=cfg.optional or name in unselected,
                replica_of=cfg.replica_of,
            )
        return Snapshot(
            pid=os.getpid(),
            stopping=self.shutting_down,
            started=self.started_wall,
            orphans_reaped=self.orphans_reaped,
            signals_forwarded=self.signals_forwarded,
            services=services,
            scaled={name: cfg.scale or 0 for name, cfg in self.config.scaled.items()},
        )

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
        doc = self.snapshot().to_json()
        # uptime moves on its own; only a change of anything else is worth a write.
        # One document, compared as a dict and dumped once (1,000 services: a JSON
        # text twice per pass was most of the 20 ms a write took).
        entries = list(doc["services"].values())
        uptimes = [entry["uptime"] for entry in entries]
        for entry in entries:
            entry["uptime"] = None
        if doc == self._last_snapshot:
            return
        for entry, uptime in zip(entries, uptimes, strict=True):
            entry["uptime"] = uptime
        text = json.dumps(doc, sort_keys=True)
        for entry in entries:
            entry["uptime"] = None
        self._last_snapshot = doc  # as stable_json() has it
        try:
            write_snapshot_text(self.runtime_dir(), text)
        except OSError as exc:
            if self._runtime_dir is not None or self.verbosity:
                self.log(f"cannot write the status file: {exc}", 1)

    # -- what the control socket asks (control.Operator) -------------------------
    def busy(self) -> set[str]:
        """Services an operator request or a reload is about to stop or replace."""
        return self.stop_set | self.restart_set | set(self.replacements)

    def recent_lines(self, name: str, count: int) -> tuple[int, list[memoryview]] | None:
        """The last ``count`` lines (0: all) kept of ``name``'s output, as views of
        the store; None when there is no such service (nor lines left of one)."""
        store = self.logs.recent.get(name)
        if store is None:
            return (0, []) if name in self.services else None
        return store.tail(count)

    def timed_lines(self, name: str, count: int, since: float) -> list[tuple[float, bytes]]:
        """``name``'s last ``count`` lines (0: all kept) since ``since``, by block."""
        store = self.logs.recent.get(name)
        return [] if store is None else store.timed_tail(count, since)

    def add_log_hook(self, hook: Callable[[str, bytes], None]) -> None:
        self.logs.hooks.append(hook)

    def remove_log_hook(self, hook: Callable[[str, bytes], None]) -> None:
        if hook in self.logs.hooks:
            self.logs.hooks.remove(hook)

    def add_change_hook(self, hook: Callable[[], None]) -> None:
        self.change_hooks.append(hook)

    def remove_change_hook(self, hook: Callable[[], None]) -> None:
        if hook in self.change_hooks:
            self.change_hooks.remove(hook)

    def sampled_snapshot(self) -> Snapshot:
        """snapshot() with each service's CPU and memory, sampled now: for the
        requests that show them (status, /metrics, /status), never on a timer, so
        an idle pyinit stays asleep."""
        from dataclasses import replace

        from pyinit.resources import Sampler

        snapshot = self.snapshot()
        if self._sampler is None:
            self._sampler = Sampler()
        usage = self._sampler.sample({n: s.pid for n, s in snapshot.services.items()})
        services = {}
        for name, svc in snapshot.services.items():
            got = usage.get(name)
            if got is None:
                services[name] = replace(svc, memory_rss_bytes=0, processes=0)
            else:
                services[name] = replace(
                    svc,
                    cpu_seconds=got.cpu_seconds,
                    cpu_percent=got.cpu_percent,
                    memory_rss_bytes=got.rss_bytes,
                    processes=got.processes,
                )
        return replace(snapshot, services=services)

    def _last_output(self, snapshot: Snapshot) -> tuple[str, list[str]] | None:
        """For the termination report (of ``snapshot``): the last lines of the service
        that ended the container (a critical one), else of the first that failed or
        exited non-zero."""
        name = self.ended_by
        if name is None:
            snap = snapshot.services
            troubled = [
                n
                for n, s in snap.items()
                if s.state is ServiceState.FAILED or s.last_exit not in (None, 0)
            ]
            name = troubled[0] if troubled else None
        store = self.logs.recent.get(name) if name is not None else None
        if name is None or store is None:
            return None
        _count, views = store.tail(20)
        text = b"\n".join(views).decode("utf-8", "replace")
        return name, text.split("\n") if text else []
