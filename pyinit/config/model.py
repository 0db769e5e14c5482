"""What a services file declares, as frozen dataclasses; and the Problem a user
mistake in it becomes. Pure data: no YAML, no I/O (supervisor, service and health
read these without the loader).
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Literal

from pyinit.config.graph import start_tiers

if TYPE_CHECKING:  # annotations only: a config without them imports neither
    from pyinit.schedule import Schedule
    from pyinit.watch import WatchSpec


class ServiceType(Enum):
    LONGRUN = "longrun"
    ONESHOT = "oneshot"


class RestartPolicy(Enum):
    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"


class Condition(Enum):
    STARTED = "service_started"
    READY = "service_ready"
    HEALTHY = "service_healthy"
    COMPLETED_SUCCESSFULLY = "service_completed_successfully"


@dataclass(frozen=True)
class Dependency:
    name: str
    condition: Condition = Condition.STARTED


@dataclass(frozen=True)
class Backoff:
    """Delay before restart number n (1-based): initial * multiplier**(n-1), capped
    at ``max``, then spread by +-``jitter`` (a fraction). The count resets once the
    service stayed up for ``reset_after`` seconds."""

    initial: float = 0.5
    multiplier: float = 2.0
    max: float = 30.0
    jitter: float = 0.1
    reset_after: float = 10.0


@dataclass(frozen=True)
class StartLimit:
    """More than ``burst`` starts within ``interval`` seconds: the service is failed."""

    burst: int = 5
    interval: float = 60.0


@dataclass(frozen=True)
class Probe:
    """One check: run a command, connect to a TCP port, or GET a URL.

    exec: ``command`` (a ``["CMD-SHELL", s]`` test becomes ``("/bin/sh", "-c", s)``);
    tcp: ``host``:``port``; http: ``url`` (http:// only), success on 2xx/3xx or on
    exactly ``expect_status`` when set.
    """

    kind: Literal["exec", "tcp", "http"]
    command: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    url: str = ""
    expect_status: int | None = None

    def describe(self) -> str:
        if self.kind == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
            return f"tcp {host}:{self.port}"
        if self.kind == "http":
            scheme, sep, rest = self.url.partition("://")
            authority, slash, path = rest.partition("/")
            # user:password@ never reaches a log line, a reason or /status
            return f"http {scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"
        return "exec " + " ".join(self.command)


@dataclass(frozen=True)
class HealthCheck:
    """Compose's healthcheck: liveness. ``retries`` consecutive failures after
    ``start_period`` make the service unhealthy; failures inside it do not count,
    and probes run every ``start_interval`` there until the first success."""

    probe: Probe
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float = 5.0


@dataclass(frozen=True)
class Readiness:
    """When the service counts as ready. ``kind``:
    notify: ``READY=1`` on $NOTIFY_SOCKET (sd_notify); ``watchdog`` > 0 also expects
    ``WATCHDOG=1`` at least that often once ready, or the service is restarted;
    log_line: a line of its output matches the regex ``pattern``;
    fd: it writes a newline to file descriptor ``fd`` (s6's notification-fd);
    probe: ``probe`` polled every ``interval`` until it first passes.
    Not ready within ``timeout`` (0: no limit) fails the start."""

    kind: Literal["notify", "log_line", "fd", "probe"]
    pattern: str = ""
    fd: int = 0
    probe: Probe | None = None
    interval: float = 1.0
    probe_timeout: float = 1.0
    timeout: float = 60.0
    watchdog: float = 0.0


@dataclass(frozen=True)
class LogFileOptions:
    """``logging: {driver: file, options: ...}``: where and how big."""

    path: str
    max_size: int | None = None  # bytes; None: never rotated
    max_files: int = 1  # all files, the current one included (Docker's max-file)
    stdout: bool = True  # also to pyinit's stdout, prefixed as usual


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    command: tuple[str, ...]
    type: ServiceType = ServiceType.LONGRUN
    depends_on: tuple[Dependency, ...] = ()
    # env_file entries first, then ``environment``; applied over pyinit's own env.
    # Never in a repr: the values may be secrets (pyinit prints no environment value).
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    working_dir: str | None = None
    user: str | None = None  # "name", "uid", "name:group" or "uid:gid"; resolved at start
    # Hardening, applied in the child before exec: PR_SET_NO_NEW_PRIVS, the file
    # mode creation mask, and resource limits as (name, soft, hard), -1 = unlimited.
    no_new_privs: bool = False
    umask: int | None = None
    ulimits: tuple[tuple[str, int, int], ...] = ()
    restart: RestartPolicy = RestartPolicy.NO
    backoff: Backoff = Backoff()
    start_limit: StartLimit = StartLimit()
    stop_signal: int = signal.SIGTERM
    stop_grace_period: float = 10.0
    critical: bool = False
    # Kept out of /readyz and `pyinit health` (a helper the container can do without).
    optional: bool = False
    profiles: tuple[str, ...] = ()  # starts only when one is active (none: always)
    logging: Literal["capture", "inherit"] = "capture"
    healthcheck: HealthCheck | None = None
    ready: Readiness | None = None
    # A scheduled job (a oneshot run at each due time; pyinit/jobs.py) and what a run
    # due while one is going does; develop.watch paths (restart on change); a log file.
    schedule: Schedule | None = None
    concurrency: Literal["forbid", "replace"] = "forbid"
    watch: tuple[WatchSpec, ...] = ()
    log_file: LogFileOptions | None = None
    # Replicas (pyinit/config/replicas.py): ``scale`` is the count a scaled service
    # declares; each of its instances NAME.i is a service of its own with
    # ``replica_of`` NAME and ``replica`` i (1-based), and ``scale`` None.
    scale: int | None = None
    replica_of: str | None = None
    replica: int = 0
    line: int = 0  # where the service is declared, for messages


@dataclass(frozen=True)
class Settings:
    shutdown_timeout: float = 30.0
    log_format: Literal["text", "json"] = "text"
    log_timestamps: bool = False  # text lines after their arrival time (RFC 3339)
    http: str | None = None  # "[host]:port" for /healthz /readyz /metrics /status; off if None


@dataclass(frozen=True)
class Config:
    path: str
    services: Mapping[str, ServiceConfig]  # in file order; a scaled one as its instances
    settings: Settings = Settings()
    # Scaled services as declared (``scale`` set), by name, in file order: a
    # ``depends_on`` naming one means every instance, and ``pyinit scale`` starts
    # from the declaration.
    scaled: Mapping[str, ServiceConfig] = field(default_factory=dict)

    def members(self, name: str) -> tuple[str, ...]:
        """The services ``name`` stands for: a scaled service's instances (none at
        scale 0), else the name itself."""
        declared = self.scaled.get(name)
        if declared is None:
            return (name,)
        return tuple(f"{name}.{i}" for i in range(1, (declared.scale or 0) + 1))

    def start_tiers(self) -> list[list[str]]:
        """Services grouped by dependency depth: tier 0 has no dependencies, tier n
        depends only on earlier tiers. Assumes a validated (acyclic) config."""
        return start_tiers(
            {
                name: [m for d in s.depends_on for m in self.members(d.name)]
                for name, s in self.services.items()
            }
        )


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str  # dotted key path, e.g. services.web.restart
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """One or more user mistakes in a config file, each with file, line and key path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
