"""Resource limits (Compose's ``ulimits``) by name: which exist, setting one in a
child, and why setting one failed.

Only supervisor mode loads this (config validates the names with it); wrapper mode
never sets limits, so its start-up imports neither this nor ``resource``.
"""

from __future__ import annotations

import errno
import os
import resource
from collections.abc import Sequence

UNLIMITED = -1  # as Docker's --ulimit writes it
# The RLIMIT_* constants without the prefix, lower case (RLIMIT_OFILE is an alias).
NAMES = tuple(
    sorted(n[7:].lower() for n in dir(resource) if n.startswith("RLIMIT_") and n != "RLIMIT_OFILE")
)


def set_limit(name: str, soft: int, hard: int) -> None:  # pragma: no cover - child side
    """Set limit ``name`` of this process (-1: unlimited); OSError on failure."""
    which = getattr(resource, f"RLIMIT_{name.upper()}")
    values = (
        resource.RLIM_INFINITY if soft < 0 else soft,
        resource.RLIM_INFINITY if hard < 0 else hard,
    )
    try:
        # prlimit reports EPERM as OSError; setrlimit turns it into a ValueError.
        resource.prlimit(0, which, values)
    except ValueError:
        raise OSError(errno.EINVAL, f"ulimit {name}") from None


def explain_failure(limits: Sequence[tuple[str, int, int]], name: str, err: int) -> tuple[str, str]:
    """``soft:hard`` as asked for ``name`` among ``limits``, and why setting it
    failed when it was a raise past the hard limit (only root may raise it)."""

    def show(value: int) -> str:
        return "unlimited" if value < 0 or value == resource.RLIM_INFINITY else str(value)

    asked = next(((s, h) for n, s, h in limits if n == name), None)
    if asked is None:
        return "", ""
    subject = f"{show(asked[0])}:{show(asked[1])}"
    if err != errno.EPERM or os.geteuid() == 0:
        return subject, ""
    hard = resource.getrlimit(getattr(resource, f"RLIMIT_{name.upper()}"))[1]
    return subject, f"the hard limit is {show(hard)}; only root can raise it"
