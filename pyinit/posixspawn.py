"""spawn's fast path: posix_spawn, for a child that needs nothing set up by hand
(no user, umask, limits or terminal).

glibc's vfork-style clone copies nothing and runs no Python in the child, so
starting 50 services or 100 exec probes a second does not stall the loop. Wrapper
mode never takes this path (its one command is forked, to start exactly as under
tini): spawn loads this module on the first simple spawn.
"""

from __future__ import annotations

import errno
import os

from pyinit.signals import waitable_signals
from pyinit.spawnerror import SpawnError

# Annotations only, as in spawn.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyinit.spawn import SpawnSpec

    Actions = list[tuple[int, int, int] | tuple[int, int]]

# Signals whose disposition the child must get back to default: all but KILL and
# STOP (pyinit's handlers, SIGPIPE/SIGXFSZ, which Python itself ignores at
# start-up, and whatever pyinit inherited ignored).
_RESET = waitable_signals()


def posix_spawn(spec: SpawnSpec) -> int:
    """Start ``spec`` (which spawn found simple); the pid, or OSError. An executable
    file with no ``#!`` line runs through /bin/sh, as execvp(3) does."""
    actions: Actions = [
        (os.POSIX_SPAWN_DUP2, source, target) for target, source in spec.fds.items()
    ]
    if spec.close_fds:
        for fd in _inheritable_fds():
            if fd > 2 and fd not in spec.fds:
                actions.append((os.POSIX_SPAWN_CLOSE, fd))
    if spec.cwd is None:
        return _spawn_here(spec, actions)
    # posix_spawn has no chdir action in Python: go there for the span of the
    # call (three more system calls, against a fork of all of pyinit). By path,
    # not by fd: out of fds, a service must still start (supervisor mode is in /).
    here = os.getcwd()
    try:
        os.chdir(spec.cwd)
    except OSError as exc:
        raise SpawnError(None, spec.argv[0], "chdir", exc.errno or 0, spec.cwd) from None
    try:
        return _spawn_here(spec, actions)
    finally:
        os.chdir(here)


def _spawn_here(spec: SpawnSpec, actions: Actions) -> int:
    env = os.environ if spec.env is None else spec.env
    argv = list(spec.argv)
    try:
        return _posix_spawnp(spec, argv, env, actions)
    except OSError as exc:
        if exc.errno == errno.ENOEXEC:
            path = which(argv[0], env)
            if path is not None:
                try:
                    return _posix_spawnp(spec, ["/bin/sh", path, *argv[1:]], env, actions)
                except OSError:
                    pass
        raise


def _posix_spawnp(
    spec: SpawnSpec,
    argv: list[str],
    env: Mapping[str, str],
    actions: Actions,
) -> int:
    if spec.isolation == "new-group":
        return os.posix_spawnp(
            argv[0],
            argv,
            env,
            file_actions=actions,
            setpgroup=0,
            setsigmask=(),
            setsigdef=_RESET,
        )
    return os.posix_spawnp(
        argv[0],
        argv,
        env,
        file_actions=actions,
        setsid=spec.isolation == "new-session",
        setsigmask=(),
        setsigdef=_RESET,
    )


def _inheritable_fds() -> list[int]:
    """Our fds that would survive exec. pyinit opens all of its own close-on-exec
    (Python's default; O_CLOEXEC where it calls the system itself), so only fds
    it inherited can: /proc/self/fd is listed on the first spawn only, and later
    spawns check just what that found. A listing per spawn made starting N
    services cost O(N^2): each holds two pipes."""
    global _inherited
    if _inherited is None:
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:
            return []
        _inherited = [int(name) for name in names]
    found = []
    for fd in _inherited:
        try:
            if os.get_inheritable(fd):
                found.append(fd)
        except OSError:
            pass  # closed since (or the listing's own fd)
    _inherited = found
    return found


_inherited: list[int] | None = None  # the candidates: fds inheritable when first listed


def which(name: str, env: Mapping[str, str]) -> str | None:
    """The file execvp would run for ``name``; shutil only on this rare path."""
    import shutil

    return name if "/" in name else shutil.which(name, path=env.get("PATH", os.defpath))
