"""The termination report: how each service ended, when pyinit exits in supervisor mode.

One line per service on stderr (``web: stopped (status 0), 2 restarts, ran 12.3s``)
and the same as JSON in the Kubernetes termination message file
(``terminationMessagePath``, ``/dev/termination-log`` by default, or
``$PYINIT_TERMINATION_LOG``), which the kubelet shows in ``kubectl describe pod``
and caps at 4096 bytes. ``report_lines`` and ``report_json`` are pure functions of
the supervisor's snapshot, and ``run_lengths`` of each service's machine (the snapshot
only knows the uptime of what is still running).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pyinit.snapshot import ServiceSnapshot, ServiceState, Snapshot

TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LOG_ENV = "PYINIT_TERMINATION_LOG"
MESSAGE_LIMIT = 4096  # bytes; the kubelet truncates the termination message there
REASON_LIMIT = 200  # characters of a reason kept in the JSON, before any truncation
OUTPUT_LINES = 20  # last lines of the service that ended the container, at most
OUTPUT_LINE_LIMIT = 200  # characters of each, before any truncation

Output = tuple[str, list[str]]  # (service, its last lines)


class RunTimes(Protocol):
    """What a service's machine knows of its last run (monotonic seconds)."""

    started_at: float | None
    ended_at: float | None


def run_lengths(machines: Mapping[str, RunTimes], now: float) -> dict[str, float]:
    """Service -> seconds its last run lasted (until ``now`` if it still runs);
    services that never ran are absent."""
    return {
        name: max(0.0, (m.ended_at if m.ended_at is not None else now) - m.started_at)
        for name, m in machines.items()
        if m.started_at is not None
    }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def format_seconds(seconds: float) -> str:
    """``12.3s``, ``4m05.2s``, ``2h03m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}m{rest:04.1f}s"
    hours, rest = divmod(seconds, 3600)
    return f"{int(hours)}h{int(rest // 60):02d}m"


def service_line(name: str, svc: ServiceSnapshot, ran: float | None) -> str:
    """``web: stopped (status 0), 2 restarts, ran 12.3s``; a failure gives its reason,
    after the status unless it says it already: ``db: failed (status 1; start limit ...)``."""
    reason = svc.reason if svc.state is ServiceState.FAILED else ""
    details = [reason] if reason else []
    code = svc.last_exit
    if code is not None and f"status {code}" not in reason:
        details.insert(0, f"status {code}")
    status = f" ({'; '.join(details)})" if details else ""
    restarts = _plural(svc.restarts, "restart")
    duration = f"ran {format_seconds(ran)}" if ran is not None else "never ran"
    return f"{name}: {svc.state}{status}, {restarts}, {duration}"


def report_lines(snapshot: Snapshot, ran: Mapping[str, float]) -> list[str]:
    """One line per service, in the order of the snapshot (the config's)."""
    return [service_line(name, svc, ran.get(name)) for name, svc in snapshot.services.items()]


def _entry(name: str, svc: ServiceSnapshot, ran: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "state": svc.state.value,
        "last_exit": svc.last_exit,
        "restarts": svc.restarts,
        "ran": round(ran, 1) if ran is not None else None,
    }
    reason = svc.reason
    if reason and svc.state is ServiceState.FAILED:
        entry["reason"] = reason[:REASON_LIMIT]
    return entry


def _trouble(entry: Mapping[str, Any]) -> int:
    """Sort key: failed services first, then non-zero exits, then the rest."""
    if entry["state"] == "failed":
        return 0
    if entry["last_exit"] not in (None, 0):
        return 1
    return 2


def report_json(
    snapshot: Snapshot,
    ran: Mapping[str, float],
    exit_code: int,
    limit: int = MESSAGE_LIMIT,
    output: Output | None = None,
) -> str:
    """The report as one JSON object of at most ``limit`` bytes (UTF-8).

    ``output``: the last lines of the service that ended the container, as
    ``"output": {"service": NAME, "lines": [...]}`` (writing the file turns off
    Kubernetes' FallbackToLogsOnError, so the message carries what the log would
    have shown). When it does not fit, its oldest lines go first, then reasons
    are shortened, then dropped, then services are left out (the failed ones are
    kept longest) and ``omitted`` counts them.
    """
    services = snapshot.services
    entries = [_entry(name, svc, ran.get(name)) for name, svc in services.items()]
    entries.sort(key=_trouble)  # stable: config order within each group
    document: dict[str, Any] = {"exit_code": exit_code, "services": entries}

    def encoded() -> bytes:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    if output is not None and output[1]:
        lines = [line[:OUTPUT_LINE_LIMIT] for line in output[1][-OUTPUT_LINES:]]
        document["output"] = {"service": output[0], "lines": lines}
        while len(encoded()) > limit and lines:
            lines.pop(0)
        if not lines:
            del document["output"]

    for cap in (80, 20, 0):
        if len(encoded()) <= limit:
            break
        for entry in entries:
            if "reason" in entry:
                if cap:
                    entry["reason"] = entry["reason"][:cap]
                else:
                    del entry["reason"]
    while len(encoded()) > limit and entries:
        entries.pop()
        document["omitted"] = len(services) - len(entries)
    return encoded().decode()


def termination_log_path(environ: Mapping[str, str]) -> tuple[str, bool] | None:
    """Where the JSON goes, and whether pyinit may create the file: the path in
    $PYINIT_TERMINATION_LOG (created if missing; empty turns it off), else
    /dev/termination-log when it exists and is writable (the kubelet creates it)."""
    if TERMINATION_LOG_ENV in environ:
        path = environ[TERMINATION_LOG_ENV]
        return (path, True) if path else None
    return (TERMINATION_LOG, False) if os.access(TERMINATION_LOG, os.W_OK) else None


def write_termination_log(path: str, text: str, create: bool) -> None:
    """Replace the file's content with ``text``. Raises OSError.

    O_NONBLOCK: a FIFO with no reader fails (ENXIO) instead of blocking PID 1.
    """
    flags = os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    fd = os.open(path, flags | (os.O_CREAT if create else 0), 0o644)
    try:
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def emit_report(
    snapshot: Snapshot,
    ran: Mapping[str, float],
    exit_code: int,
    log: Callable[[str], None],
    environ: Mapping[str, str] | None = None,
    output: Output | None = None,
) -> None:
    """Log the report lines and write the termination message file, if any."""
    for line in report_lines(snapshot, ran):
        log(f"report: {line}")
    target = termination_log_path(os.environ if environ is None else environ)
    if target is None:
        return
    path, create = target
    try:
        write_termination_log(path, report_json(snapshot, ran, exit_code, output=output), create)
    except OSError as exc:
        log(f"report: cannot write {path}: {exc.strerror or exc}")
