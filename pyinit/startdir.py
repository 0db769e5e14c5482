"""The directory pyinit was started in, which supervisor mode leaves for ``/``.

PID 1 keeping its working directory would hold a reference to it, and a volume
mounted there could not be unmounted. So once it has noted where it was started,
supervisor mode moves to ``/``; what it starts without a ``working_dir`` of its
own (services, their probes, the main command) is given the noted directory.
"""

from __future__ import annotations

import os

_started_in: str | None = None


def leave() -> str | None:
    """Note the current directory, move to ``/``; a message if either failed."""
    global _started_in
    try:
        _started_in = os.getcwd()
    except OSError:
        pass  # removed already: children start in / as well
    try:
        os.chdir("/")
    except OSError as exc:
        return f"cannot leave the starting directory for /: {exc}"
    return None


def default_cwd(working_dir: str | None) -> str | None:
    """Where to start something with this ``working_dir`` setting. None (before
    ``leave``): where pyinit is."""
    return working_dir if working_dir is not None else _started_in
