"""Prometheus text format 0.0.4 for ``/metrics``: a snapshot (sampled, with each
service's CPU and memory) and pyinit's own process, rendered as families of samples.
Pure: httpd.py serves what this returns."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pyinit.snapshot import ServiceSnapshot, ServiceState, Snapshot

if TYPE_CHECKING:
    from pyinit.resources import SelfUsage


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.samples: list[tuple[dict[str, str], float]] = []

    def add(self, labels: dict[str, str], value: float) -> None:
        self.samples.append((labels, value))

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            text = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
            series = f"{self.name}{{{text}}}" if text else self.name
            lines.append(f"{series} {format_value(value)}")
        return lines


class _ExtraFamilies:
    """Scheduled jobs' and log files' series (only services that have them)."""

    def __init__(self) -> None:
        self.last_success = _Family(
            "pyinit_job_last_success_timestamp_seconds",
            "gauge",
            "Unix time the scheduled job last completed successfully.",
        )
        self.runs = _Family(
            "pyinit_job_runs_total",
            "counter",
            "Runs of the scheduled job by result: success, failure, stopped, skipped.",
        )
        self.next_run = _Family(
            "pyinit_job_next_run_timestamp_seconds", "gauge", "Unix time the job is next due."
        )
        self.file_errors = _Family(
            "pyinit_log_file_errors_total",
            "counter",
            "Failed opens, writes and rotations of the service's log file.",
        )
        self.file_dropped = _Family(
            "pyinit_log_file_dropped_lines_total",
            "counter",
            "Lines of the service that could not be written to its log file.",
        )

    def add(self, name: str, svc: ServiceSnapshot) -> None:
        labels = {"service": name}
        job = svc.job
        if job is not None:
            if job.last_success is not None:
                self.last_success.add(labels, round(job.last_success, 3))
            for result, count in job.runs.items():
                self.runs.add({"service": name, "result": result}, count)
            if job.next_run is not None:
                self.next_run.add(labels, round(job.next_run, 3))
        if svc.log_file is not None:
            self.file_errors.add(labels, svc.log_file.errors)
            self.file_dropped.add(labels, svc.log_file.dropped_lines)

    def families(self) -> list[_Family]:
        every = [self.last_success, self.runs, self.next_run, self.file_errors, self.file_dropped]
        return [family for family in every if family.samples]


def render_metrics(snapshot: Snapshot, now: float, me: SelfUsage | None = None) -> str:
    """The snapshot in Prometheus text format 0.0.4; ``now`` is the wall clock (unix time);
    ``me``: pyinit's own process, for the standard ``process_*`` metrics."""
    up = _Family("pyinit_service_up", "gauge", "Whether the service's process is alive (1) or not.")
    ready = _Family("pyinit_service_ready", "gauge", "Whether the service is ready (1) or not.")
    healthy = _Family(
        "pyinit_service_healthy",
        "gauge",
        "Whether the service's healthcheck passes (1); 1 when it has no healthcheck.",
    )
    restarts = _Family(
        "pyinit_service_restarts_total", "counter", "Automatic restarts of the service."
    )
    last_exit = _Family(
        "pyinit_service_last_exit_code",
        "gauge",
        "Exit code of the service's last run (128+N when killed by signal N).",
    )
    start_time = _Family(
        "pyinit_service_start_time_seconds",
        "gauge",
        "Unix time the service's current run started; absent when it is not running.",
    )
    state = _Family(
        "pyinit_service_state", "gauge", "The service's current state (1) among all states (0)."
    )
    extra = _ExtraFamilies()
    for name, svc in snapshot.services.items():
        labels = {"service": name}
        extra.add(name, svc)
        up.add(labels, 1 if svc.state.alive else 0)
        ready.add(labels, 1 if svc.ready else 0)
        healthy.add(labels, 1 if svc.health in (None, "healthy") else 0)
        restarts.add(labels, svc.restarts)
        if svc.last_exit is not None:
            last_exit.add(labels, svc.last_exit)
        if svc.uptime is not None:
            start_time.add(labels, round(now - float(svc.uptime), 3))
        for each in ServiceState:
            state.add({"service": name, "state": each.value}, 1 if each is svc.state else 0)
    orphans = _Family(
        "pyinit_orphans_reaped_total", "counter", "Re-parented orphan processes pyinit reaped."
    )
    orphans.add({}, snapshot.orphans_reaped)
    forwarded = _Family(
        "pyinit_signals_forwarded_total", "counter", "Signals pyinit forwarded to services."
    )
    forwarded.add({}, snapshot.signals_forwarded)
    started = _Family("pyinit_start_time_seconds", "gauge", "Unix time pyinit started.")
    started.add({}, round(float(snapshot.started), 3))
    families = [up, ready, healthy, restarts, last_exit, start_time, state]
    families += _usage_families(snapshot)
    families += _replica_families(snapshot)
    families += extra.families()
    families += [orphans, forwarded, started, *_process_families(me)]
    lines: list[str] = []
    for family in families:
        lines += family.render()
    return "\n".join(lines) + "\n"


def _replica_families(snapshot: Snapshot) -> list[_Family]:
    """Scaled services: the count asked for, and how many instances are alive
    (each instance's own series carry service="NAME.i")."""
    if not snapshot.scaled:
        return []
    wanted = _Family("pyinit_service_replicas", "gauge", "Instances a scaled service should run.")
    alive = _Family(
        "pyinit_service_replicas_running", "gauge", "Instances of a scaled service alive now."
    )
    running = snapshot.running()
    for name, count in snapshot.scaled.items():
        wanted.add({"service": name}, count)
        alive.add({"service": name}, running[name])
    return [wanted, alive]


def _usage_families(snapshot: Snapshot) -> list[_Family]:
    """What each service's processes use (a snapshot sampled for the scrape)."""
    cpu = _Family(
        "pyinit_service_cpu_seconds_total",
        "counter",
        "User and system CPU seconds of the service's processes.",
    )
    rss = _Family(
        "pyinit_service_memory_rss_bytes",
        "gauge",
        "Resident memory of the service's processes, summed.",
    )
    count = _Family("pyinit_service_processes", "gauge", "Processes the service has.")
    for name, svc in snapshot.services.items():
        labels = {"service": name}
        if svc.cpu_seconds is not None:
            cpu.add(labels, svc.cpu_seconds)
        if svc.processes is not None:
            rss.add(labels, svc.memory_rss_bytes or 0)
            count.add(labels, svc.processes)
    return [cpu, rss, count]


def _process_families(me: SelfUsage | None) -> list[_Family]:
    """The standard process metrics (as Prometheus client libraries name them)."""
    if me is None:
        return []
    cpu = _Family("process_cpu_seconds_total", "counter", "User and system CPU time of pyinit.")
    cpu.add({}, me.cpu_seconds)
    rss = _Family("process_resident_memory_bytes", "gauge", "Resident memory of pyinit.")
    rss.add({}, me.rss_bytes)
    fds = _Family("process_open_fds", "gauge", "Open file descriptors of pyinit.")
    fds.add({}, me.open_fds)
    start = _Family("process_start_time_seconds", "gauge", "Unix time pyinit started.")
    start.add({}, me.start_time)
    return [cpu, rss, fds, start]
