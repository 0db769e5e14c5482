"""The supervisor's snapshot and the status file, moved verbatim from the former
pyinit/supervisor.py (the snapshot-serve work turns them into the typed Snapshot).

A mixin of ``Supervisor``: the bodies read the supervisor's own attributes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyinit.service import State
from pyinit.status import write_snapshot

if TYPE_CHECKING:
    from pyinit.loop import EventLoop
    from pyinit.supervisor.runtime import ServiceRuntime


class StatusMixin:
    services: dict[str, ServiceRuntime]
    loop: EventLoop
    change_hooks: list[Callable[[], None]]
    started_wall: float
    orphans_reaped: int
    signals_forwarded: int
    verbosity: int
    _runtime_dir: str | None
    _last_snapshot: str
    _status_pending: bool

    if TYPE_CHECKING:

        @property
        def shutting_down(self) -> bool: ...

        def runtime_dir(self) -> str: ...

        def log(self, message: str, level: int = 0) -> None: ...

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
