"""``pyinit start|stop|restart`` waiting for what they did: each service is
waited for in turn (a ``wait`` request, settled by pyinit's own change events,
no polling), and a line is printed as each comes back (or stops). At the
deadline, what is still waiting is named and the exit status is 1."""

from __future__ import annotations

import sys
import time
from typing import Any

from pyinit.protocol import Unreachable, send

CONNECT_TIMEOUT = 10.0


def _wait(names: list[str], until: str, timeout: float) -> dict[str, Any]:
    request = {"cmd": "wait", "services": names, "timeout": max(0.0, timeout), "until": until}
    return send(request, max(0.0, timeout) + CONNECT_TIMEOUT)


def await_done(cmd: str, names: list[str], timeout: float, until: str = "") -> int:
    """Wait for ``names`` (what ``cmd`` acted on) to be ready, or stopped for a
    stop, or ``until`` (ready, stopped, gone: removed); the exit status."""
    until = until or ("stopped" if cmd == "stop" else "ready")
    deadline = time.monotonic() + timeout
    try:
        for i, name in enumerate(names):
            answer = _wait([name], until, deadline - time.monotonic())
            if answer.get("ok"):
                sys.stdout.write(f"{until}: {name}\n")
                sys.stdout.flush()
                continue
            error = str(answer.get("error", ""))
            if not error.startswith("timed out"):
                sys.stderr.write(f"pyinit: {cmd}: {error}\n")
                return 1
            left = _wait(names[i:], until, 0).get("not_ready")
            listed = ", ".join(left if isinstance(left, list) and left else names[i:])
            sys.stderr.write(
                f"pyinit: {cmd}: timed out after {timeout:g}s; still waiting for {listed}"
                f" (to be {until})\n"
            )
            return 1
    except Unreachable as exc:
        sys.stderr.write(f"pyinit: {exc}\n")
        return 2
    return 0
