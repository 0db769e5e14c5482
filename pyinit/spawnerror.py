"""Why a command could not be started: the one error spawn and its posix_spawn fast
path raise (a module of its own, so neither imports the other for it)."""

from __future__ import annotations

import errno
import os


class SpawnError(Exception):
    """The command could not be started. ``pid``, when not None, is a forked child
    that never reached exec and still has to be reaped."""

    def __init__(
        self, pid: int | None, argv0: str, stage: str, err: int, subject: str = "", hint: str = ""
    ) -> None:
        self.pid = pid
        self.argv0 = argv0
        self.stage = stage
        self.errno = err
        reason = os.strerror(err)
        where = {"exec": "", "chdir": "working directory", "user": "switching user"}
        label = where.get(stage, stage)
        # Name the setting's value ("working directory /srv: No such file or
        # directory"): the bare errno leaves the user guessing which path failed.
        if subject:
            label = f"{label} {subject}"
        hint = f" ({hint})" if hint else ""
        super().__init__(f"cannot run {argv0!r}: {label + ': ' if label else ''}{reason}{hint}")

    @property
    def exit_code(self) -> int:
        """127 for a command that does not exist, 126 for one that cannot run (as sh)."""
        if self.stage == "exec" and self.errno in (errno.ENOENT, errno.ENOTDIR):
            return 127
        return 126
