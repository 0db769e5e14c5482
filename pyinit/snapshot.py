"""The one typed snapshot of a running pyinit: what every reader of its state sees.

The supervisor builds it (``Supervisor.snapshot()``); the status file and
``pyinit health`` (status.py), the control socket's ``status``, ``health`` and
``wait`` answers (control.py), the HTTP endpoints (httpd.py), the termination
report (report.py) and ``pyinit status`` (client.py) read it. On the wire and on
disk it is one JSON object, ``to_json()``; its keys and their order are a
contract (``pyinit status --json`` prints them as they come), so the fields
below are declared in that order and never renamed.

This module sits low (the client imports it): the standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ServiceState(StrEnum):
    """A service's state as the snapshot names it: the values of service.State,
    in its order (tests/unit/test_snapshot.py holds them equal)."""

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    BACKOFF = "backoff"
    STOPPED = "stopped"
    EXITED = "exited"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def alive(self) -> bool:
        """A process of the service is running (or being stopped)."""
        return self in (ServiceState.STARTING, ServiceState.RUNNING, ServiceState.STOPPING)

    @property
    def final(self) -> bool:
        """It ended and nothing starts it again unless someone asks."""
        return self in (
            ServiceState.STOPPED,
            ServiceState.EXITED,
            ServiceState.COMPLETED,
            ServiceState.FAILED,
        )


_STATES = frozenset(s.value for s in ServiceState)
ONESHOT = "oneshot"
LONGRUN = "longrun"


class SnapshotError(ValueError):
    """A JSON object that is not a snapshot (a damaged status file, a bad answer)."""


def _field(obj: Mapping[str, Any], key: str, kinds: tuple[type, ...], default: Any) -> Any:
    """``obj[key]`` when it has one of ``kinds``; ``default`` when absent. A bool is
    not taken for a number (JSON keeps them apart; Python does not)."""
    if key not in obj:
        return default
    value = obj[key]
    if value is None and default is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise SnapshotError(f"{key!r}: expected {kinds[0].__name__}, got {value!r}")
    if not isinstance(value, kinds):
        raise SnapshotError(f"{key!r}: expected {kinds[0].__name__}, got {value!r}")
    return value


def _optional_float(obj: Mapping[str, Any], key: str) -> float | None:
    value = _field(obj, key, (float, int), None)
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A scheduled job's schedule and history (wall-clock times: unix seconds)."""

    schedule: str
    next_run: float | None = None
    paused: bool = False  # stopped by an operator: due times are skipped
    last_result: str | None = None  # success | failure | stopped
    last_exit: int | None = None
    last_started: float | None = None
    last_finished: float | None = None
    last_success: float | None = None
    runs: Mapping[str, int] = field(default_factory=dict)  # by result, and skipped

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "next_run": self.next_run,
            "paused": self.paused,
            "last_result": self.last_result,
            "last_exit": self.last_exit,
            "last_started": self.last_started,
            "last_finished": self.last_finished,
            "last_success": self.last_success,
            "runs": dict(self.runs),
        }

    @classmethod
    def from_json(cls, obj: Any) -> JobSnapshot:
        if not isinstance(obj, Mapping):
            raise SnapshotError(f"a job entry must be an object, got {obj!r}")
        runs = _field(obj, "runs", (dict,), {})
        if not all(isinstance(k, str) and type(v) is int for k, v in runs.items()):
            raise SnapshotError(f"'runs': expected counts by result, got {runs!r}")
        return cls(
            schedule=_field(obj, "schedule", (str,), ""),
            next_run=_optional_float(obj, "next_run"),
            paused=_field(obj, "paused", (bool,), False),
            last_result=_field(obj, "last_result", (str,), None),
            last_exit=_field(obj, "last_exit", (int,), None),
            last_started=_optional_float(obj, "last_started"),
            last_finished=_optional_float(obj, "last_finished"),
            last_success=_optional_float(obj, "last_success"),
            runs=runs,
        )


@dataclass(frozen=True, slots=True)
class LogFileSnapshot:
    """A service's log file and its failure counters."""

    path: str
    errors: int = 0  # failed opens, writes and rotations
    dropped_lines: int = 0
    rotations: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "errors": self.errors,
            "dropped_lines": self.dropped_lines,
            "rotations": self.rotations,
        }

    @classmethod
    def from_json(cls, obj: Any) -> LogFileSnapshot:
        if not isinstance(obj, Mapping):
            raise SnapshotError(f"a log file entry must be an object, got {obj!r}")
        return cls(
            path=_field(obj, "path", (str,), ""),
            errors=_field(obj, "errors", (int,), 0),
            dropped_lines=_field(obj, "dropped_lines", (int,), 0),
            rotations=_field(obj, "rotations", (int,), 0),
        )


@dataclass(slots=True)
class ServiceSnapshot:
    """One service: its state and the facts an operator or a probe asks about.

    Readers treat it as immutable. It is not a frozen dataclass only because
    one is built per service on every change of state, and a frozen one's
    __init__ costs about three times as much."""

    type: str  # "longrun" | "oneshot"
    state: ServiceState
    pid: int | None = None
    ready: bool = False
    health: str | None = None  # the healthcheck verdict: starting | healthy | unhealthy
    health_detail: str = ""
    restarts: int = 0
    last_exit: int | None = None  # shell code of the last run (128+N: signal N)
    reason: str = ""
    status_text: str = ""  # the latest sd_notify STATUS=
    uptime: float | None = None  # seconds the current run has lasted; None when not alive
    # What its processes use, sampled for the requests that show it (status answers,
    # /metrics, /status), never for the status file: None when not sampled.
    cpu_seconds: float | None = None  # None also when it has no process
    cpu_percent: float | None = None
    memory_rss_bytes: int | None = None
    processes: int | None = None
    # Only for services that have them (the keys are absent otherwise).
    job: JobSnapshot | None = None  # a scheduled job
    log_file: LogFileSnapshot | None = None  # logging to a file
    optional: bool = False  # never makes /readyz or `pyinit health` fail
    replica_of: str | None = None  # an instance (NAME.i) of this scaled service

    @property
    def oneshot(self) -> bool:
        return self.type == ONESHOT

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.type,
            "state": self.state.value,
            "pid": self.pid,
            "ready": self.ready,
            "health": self.health,
            "health_detail": self.health_detail,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "reason": self.reason,
            "status_text": self.status_text,
            "uptime": self.uptime,
            **self._usage_json(),
        }
        if self.job is not None:
            doc["job"] = self.job.to_json()
        if self.log_file is not None:
            doc["log_file"] = self.log_file.to_json()
        if self.optional:  # only when set: the documents of before stay byte for byte
            doc["optional"] = True
        if self.replica_of is not None:
            doc["replica_of"] = self.replica_of
        return doc

    def _usage_json(self) -> dict[str, Any]:
        if self.processes is None:
            return {}  # not sampled: the keys are left out (the status file)
        return {
            "cpu_seconds": self.cpu_seconds,
            "cpu_percent": self.cpu_percent,
            "memory_rss_bytes": self.memory_rss_bytes,
            "processes": self.processes,
        }

    @classmethod
    def from_json(cls, obj: Any) -> ServiceSnapshot:
        """The entry as to_json() wrote it; absent keys take their defaults (an older
        pyinit may write fewer). Raises SnapshotError."""
        if not isinstance(obj, Mapping):
            raise SnapshotError(f"a service entry must be an object, got {obj!r}")
        raw = obj.get("state")
        if not isinstance(raw, str) or raw not in _STATES:
            raise SnapshotError(f"unknown service state {raw!r}")
        return cls(
            type=_field(obj, "type", (str,), LONGRUN),
            state=ServiceState(raw),
            pid=_field(obj, "pid", (int,), None),
            ready=_field(obj, "ready", (bool,), False),
            health=_field(obj, "health", (str,), None),
            health_detail=_field(obj, "health_detail", (str,), ""),
            restarts=_field(obj, "restarts", (int,), 0),
            last_exit=_field(obj, "last_exit", (int,), None),
            reason=_field(obj, "reason", (str,), ""),
            status_text=_field(obj, "status_text", (str,), ""),
            uptime=_field(obj, "uptime", (float, int), None),
            cpu_seconds=_field(obj, "cpu_seconds", (float, int), None),
            cpu_percent=_field(obj, "cpu_percent", (float, int), None),
            memory_rss_bytes=_field(obj, "memory_rss_bytes", (int,), None),
            processes=_field(obj, "processes", (int,), None),
            job=JobSnapshot.from_json(obj["job"]) if obj.get("job") is not None else None,
            log_file=(
                LogFileSnapshot.from_json(obj["log_file"])
                if obj.get("log_file") is not None
                else None
            ),
            optional=_field(obj, "optional", (bool,), False),
            replica_of=_field(obj, "replica_of", (str,), None),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """pyinit as a whole, and each service in the config's order."""

    pid: int | None = None
    stopping: bool = False
    started: float = 0.0  # unix time pyinit started
    orphans_reaped: int = 0
    signals_forwarded: int = 0
    services: Mapping[str, ServiceSnapshot] = field(default_factory=dict)
    # Scaled services: the count each runs (its instances are in ``services``).
    scaled: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "pid": self.pid,
            "stopping": self.stopping,
            "started": self.started,
            "orphans_reaped": self.orphans_reaped,
            "signals_forwarded": self.signals_forwarded,
            "services": {name: svc.to_json() for name, svc in self.services.items()},
        }
        if self.scaled:  # only then: the documents of before stay byte for byte
            doc["scaled"] = dict(self.scaled)
        return doc

    def running(self) -> dict[str, int]:
        """Each scaled service -> how many of its current instances are alive."""
        return {
            name: sum(self.services[m].state.alive for m in members)
            for name, members in self.groups().items()
        }

    def groups(self) -> dict[str, list[str]]:
        """Each scaled service -> its instances at the current count (none at scale
        0); one a scale down or a reload is removing is not among them."""
        return {
            name: [m for i in range(1, count + 1) if (m := f"{name}.{i}") in self.services]
            for name, count in self.scaled.items()
        }

    def stable_json(self) -> dict[str, Any]:
        """to_json() without what changes by itself (uptimes): equal for two
        snapshots between which nothing happened."""
        doc = self.to_json()
        for entry in doc["services"].values():
            entry["uptime"] = None
        return doc

    @classmethod
    def from_json(cls, obj: Any) -> Snapshot:
        """The snapshot to_json() wrote (absent keys take their defaults). Raises
        SnapshotError."""
        if not isinstance(obj, Mapping):
            raise SnapshotError(f"a snapshot must be a JSON object, got {type(obj).__name__}")
        services = _field(obj, "services", (dict,), {})
        scaled = _field(obj, "scaled", (dict,), {})
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in scaled.values()):
            raise SnapshotError(f"'scaled': expected counts, got {scaled!r}")
        return cls(
            pid=_field(obj, "pid", (int,), None),
            stopping=_field(obj, "stopping", (bool,), False),
            started=_field(obj, "started", (float, int), 0.0),
            orphans_reaped=_field(obj, "orphans_reaped", (int,), 0),
            signals_forwarded=_field(obj, "signals_forwarded", (int,), 0),
            services={str(n): ServiceSnapshot.from_json(s) for n, s in services.items()},
            scaled={str(n): int(v) for n, v in scaled.items()},
        )
