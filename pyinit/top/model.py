"""What ``pyinit top`` shows, as plain data: the table rows from a status answer,
the filter, the selected service and the lines of its followed log.

No Textual here, so it is tested without a terminal; app.py only draws it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyinit.statustable import format_bytes, format_percent, format_uptime

COLUMNS = ("NAME", "STATE", "READY", "HEALTH", "RESTARTS", "UPTIME", "CPU%", "MEM", "LAST EXIT")
MAX_LOG_LINES = 500


@dataclass(frozen=True)
class Row:
    name: str
    cells: tuple[str, ...]


@dataclass
class TopModel:
    """The state of the screen between two refreshes."""

    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    filter: str = ""
    selected: str | None = None
    followed: str | None = None  # whose log the log pane shows
    log_lines: list[str] = field(default_factory=list)
    message: str = ""  # the answer to the last key (an error, "restarting web")
    # CPU% from the client's own successive samples: (time, cpu_seconds) per service
    _cpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    _percent: dict[str, float | None] = field(default_factory=dict)

    def update(self, status: Mapping[str, Any], now: float) -> None:
        """Take a status answer's snapshot, taken at ``now`` (monotonic seconds)."""
        raw = status.get("services")
        services = raw if isinstance(raw, Mapping) else {}
        self.services = {str(n): dict(s) for n, s in services.items() if isinstance(s, Mapping)}
        for name, svc in self.services.items():
            cpu = svc.get("cpu_seconds")
            if not isinstance(cpu, int | float) or isinstance(cpu, bool):
                self._cpu.pop(name, None)
                self._percent[name] = None
                continue
            before = self._cpu.get(name)
            if before is not None and now > before[0] and cpu >= before[1]:
                self._percent[name] = round(100.0 * (cpu - before[1]) / (now - before[0]), 1)
            else:  # the first look, or a new run: pyinit's own figure
                percent = svc.get("cpu_percent")
                self._percent[name] = percent if isinstance(percent, int | float) else None
            self._cpu[name] = (now, float(cpu))
        for gone in set(self._cpu) - set(self.services):
            del self._cpu[gone]
        self._keep_selection()

    def cpu_percent(self, name: str) -> float | None:
        return self._percent.get(name)

    def rows(self) -> list[Row]:
        """The services that pass the filter, in the config's order."""
        needle = self.filter.lower()
        return [
            Row(name, self._cells(name, svc))
            for name, svc in self.services.items()
            if needle in name.lower()
        ]

    def _cells(self, name: str, svc: Mapping[str, Any]) -> tuple[str, ...]:
        last = svc.get("last_exit")
        rss = svc.get("memory_rss_bytes")
        return (
            name,
            str(svc.get("state", "?")),
            "yes" if svc.get("ready") else "no",
            str(svc.get("health") or "-"),
            str(svc.get("restarts", 0)),
            format_uptime(svc.get("uptime")),
            format_percent(self.cpu_percent(name)),
            format_bytes(rss if isinstance(rss, int) and svc.get("processes") else None),
            str(last) if last is not None else "-",
        )

    def set_filter(self, text: str) -> None:
        self.filter = text
        self._keep_selection()

    def select(self, name: str | None) -> None:
        if name is None or name in {row.name for row in self.rows()}:
            self.selected = name

    def move(self, step: int) -> None:
        names = [row.name for row in self.rows()]
        if not names:
            self.selected = None
            return
        i = names.index(self.selected) if self.selected in names else 0
        self.selected = names[max(0, min(len(names) - 1, i + step))]

    def _keep_selection(self) -> None:
        names = [row.name for row in self.rows()]
        if self.selected not in names:
            self.selected = names[0] if names else None

    def follow(self, name: str | None) -> bool:
        """Show ``name``'s log from now on; True when that changes the pane."""
        if name == self.followed:
            return False
        self.followed = name
        self.log_lines = []
        return True

    def set_log(self, lines: list[str]) -> list[str]:
        """The followed service's latest lines (a ``logs -n`` answer); returns the
        ones not shown yet, so the pane appends instead of redrawing."""
        new = _new_tail(self.log_lines, lines)
        if new is None:  # no overlap: more lines came than we ask for; start over
            self.log_lines = lines[-MAX_LOG_LINES:]
            return list(self.log_lines)
        self.log_lines = (self.log_lines + new)[-MAX_LOG_LINES:]
        return new


def _new_tail(shown: list[str], latest: list[str]) -> list[str] | None:
    """The lines of ``latest`` after its longest prefix that ends ``shown``.

    ``latest`` is a window on the log that slid forward; where it starts within
    what we already show tells which of its lines are new. None: no overlap.
    """
    if not shown:
        return list(latest)
    if not latest:
        return []
    for start in range(max(0, len(shown) - len(latest)), len(shown)):
        overlap = len(shown) - start
        if shown[start:] == latest[:overlap]:
            return latest[overlap:]
    return None
