"""The container's aggregate state, in one place for every reader.

The supervisor writes a snapshot (each service's state, pid, readiness, health,
restarts, last exit) atomically to ``<runtime dir>/status.json`` whenever
something changed; ``pyinit health`` reads it, so a Docker HEALTHCHECK or a
Kubernetes exec probe needs no extra tool. ``verdict`` is the one definition of
"the container is healthy" that every reader uses.
"""

from __future__ import annotations

import json
import os
import sys

from pyinit.rundir import replace_file, runtime_dir
from pyinit.snapshot import ServiceState, Snapshot

STATUS_FILE = "status.json"


def write_snapshot(directory: str, snapshot: Snapshot) -> None:
    """Replace the status file; never through a link planted in the directory."""
    write_snapshot_text(directory, json.dumps(snapshot.to_json(), sort_keys=True))


def write_snapshot_text(directory: str, text: str) -> None:
    """``write_snapshot`` for a snapshot already in JSON (``to_json``, sorted keys)."""
    replace_file(directory, STATUS_FILE, text.encode())


def remove_snapshot(directory: str) -> None:
    try:
        os.unlink(os.path.join(directory, STATUS_FILE))
    except OSError:
        pass


def verdict(snapshot: Snapshot) -> list[str]:
    """Why the container is not healthy; empty when every longrun is running, ready
    and healthy and every oneshot completed."""
    problems: list[str] = []
    if snapshot.stopping:
        problems.append("pyinit is shutting down")
    for name, svc in snapshot.services.items():
        state = svc.state
        if svc.job is not None:
            continue  # a scheduled job: its runs are in status and /metrics, not here
        if svc.optional:
            continue
        if svc.oneshot:
            if state not in (ServiceState.COMPLETED, ServiceState.STARTING, ServiceState.RUNNING):
                problems.append(f"{name}: {state}")
            continue
        if state is not ServiceState.RUNNING:
            extra = f" ({svc.reason})" if svc.reason else ""
            problems.append(f"{name}: {state}{extra}")
        elif not svc.ready:
            problems.append(f"{name}: not ready")
        elif svc.health not in (None, "healthy"):
            detail = f" ({svc.health_detail})" if svc.health_detail else ""
            problems.append(f"{name}: {svc.health}{detail}")
    return problems


def health_main(args: list[str]) -> int:
    """``pyinit health``: exit 0 when the container is healthy, else 1 and why."""
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(
            "Usage: pyinit health\n\nExit 0 when every longrun is running, ready and healthy"
            " and every oneshot completed;\notherwise print which service is not and exit 1."
            "\nReads $PYINIT_RUNTIME_DIR/status.json (default /run/pyinit, or\n"
            "/tmp/pyinit-<uid> when /run is not writable).\n"
        )
        return 0
    if args:
        sys.stderr.write(f"pyinit health: unexpected argument {args[0]!r}\n")
        return 2
    try:
        path = os.path.join(runtime_dir(), STATUS_FILE)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, encoding="utf-8") as f:
            # In a sticky shared directory another user may have put it there first.
            owner = os.fstat(fd).st_uid
            if owner not in (os.geteuid(), 0):
                raise OSError(f"{path} is owned by uid {owner}, not by pyinit")
            snapshot = Snapshot.from_json(json.load(f))
    except (OSError, ValueError) as exc:  # SnapshotError is a ValueError
        sys.stdout.write(f"unhealthy: no status from a running pyinit ({exc})\n")
        return 1
    pid = snapshot.pid
    if pid is not None and not _alive(pid):
        sys.stdout.write(f"unhealthy: pyinit (pid {pid}) is not running\n")
        return 1
    problems = verdict(snapshot)
    if problems:
        for problem in problems:
            sys.stdout.write(f"unhealthy: {problem}\n")
        return 1
    count = len(snapshot.services)
    sys.stdout.write(f"healthy: {count} service{'s' if count != 1 else ''}\n")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
