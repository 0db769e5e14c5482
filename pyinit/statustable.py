"""The tables of ``pyinit status`` and their cells (uptime, bytes, percentages), shared
with ``pyinit top``: plain text from a typed Snapshot, the standard library only."""

from __future__ import annotations

import time

from pyinit.snapshot import Snapshot


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def format_bytes(size: int | None) -> str:
    """Binary units as ps and top print them: 512K, 52.4M, 1.5G."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "K", "M"):
        if value < 1024:
            if unit == "B":
                return f"{int(value)}B"
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
        value /= 1024
    return f"{value:.1f}G" if value < 100 else f"{value:.0f}G"


def format_percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


STATUS_COLUMNS = (
    "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "HEALTH", "CPU%", "MEM", "LAST EXIT",
)  # fmt: skip


def format_status(snapshot: Snapshot) -> str:
    """A table like ``docker compose ps``: one row per service, in config order."""
    rows = [list(STATUS_COLUMNS)]
    for name, svc in snapshot.services.items():
        rows.append(
            [
                name,
                svc.state.value,
                str(svc.pid) if svc.pid is not None else "-",
                format_uptime(svc.uptime),
                str(svc.restarts),
                "yes" if svc.ready else "no",
                svc.health or "-",
                format_percent(svc.cpu_percent),
                format_bytes(svc.memory_rss_bytes if svc.processes else None),
                str(svc.last_exit) if svc.last_exit is not None else "-",
            ]
        )
    return _table(rows) + format_scaled(snapshot) + format_jobs(snapshot)


def format_scaled(snapshot: Snapshot) -> str:
    """Scaled services under the table: how many of how many instances run."""
    if not snapshot.scaled:
        return ""
    running = snapshot.running()
    parts = [f"{name} {running[name]}/{count} running" for name, count in snapshot.scaled.items()]
    return "\nscaled: " + ", ".join(parts) + "\n"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines) + "\n"


JOB_COLUMNS = ("JOB", "SCHEDULE", "LAST RUN", "FINISHED", "NEXT RUN", "RUNS OK/FAILED/SKIPPED")


def format_jobs(snapshot: Snapshot) -> str:
    """Scheduled jobs under the table: last result, next run (local time, TZ)."""

    def when(epoch: float | None) -> str:
        return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))

    rows = [list(JOB_COLUMNS)]
    for name, svc in snapshot.services.items():
        job = svc.job
        if job is None:
            continue
        result = job.last_result or "never ran"
        if job.last_result is not None and job.last_exit is not None:
            result = f"{result} (exit {job.last_exit})"
        counts = "/".join(str(job.runs.get(k, 0)) for k in ("success", "failure", "skipped"))
        next_run = "paused" if job.paused else when(job.next_run)
        rows.append([name, job.schedule, result, when(job.last_finished), next_run, counts])
    return "\n" + _table(rows) if len(rows) > 1 else ""
