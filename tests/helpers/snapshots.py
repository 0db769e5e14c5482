"""Status snapshots built by hand, shaped as Supervisor.snapshot() writes them."""

from __future__ import annotations

from typing import Any


def svc(**over: Any) -> dict[str, Any]:
    """One service entry: a ready, healthy, running longrun unless told otherwise."""
    base: dict[str, Any] = {
        "type": "longrun",
        "state": "running",
        "pid": 10,
        "ready": True,
        "health": None,
        "health_detail": "",
        "restarts": 0,
        "last_exit": None,
        "reason": "",
        "status_text": "",
        "uptime": 12.5,
    }
    base.update(over)
    return base
