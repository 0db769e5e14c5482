"""Start a child cleanly: its own session or group, default signals, no stray fds.

fork + exec by hand rather than ``subprocess.Popen``: Popen's finalizer and its
``_cleanup`` of earlier instances call ``waitpid`` on their own, which would steal
exit statuses from the one reaper.
"""

from __future__ import annotations

import errno
import os

from pyinit.signals import fork_blocked, waitable_signals
from pyinit.signals import sigmod as signal
from pyinit.spawnerror import SpawnError as SpawnError

# Annotations only: typing and dataclasses cost milliseconds of start-up, which
# wrapper mode (PID 1 for one command) does not spend.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Literal

    # new-session: setsid (dumb-init); new-group: setpgid (tini); inherit: stay.
    Isolation = Literal["new-session", "new-group", "inherit"]

_MAXFD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
PR_SET_NO_NEW_PRIVS = 38  # linux/prctl.h


class SpawnSpec:
    """What to start and how. ``fds`` maps target fd -> source fd (dup2'ed into the
    child); with ``close_fds`` every other inheritable fd above 2 is closed.
    ``rlimits``: (name, soft, hard) with name an RLIMIT_* constant without the prefix,
    lower case, and -1 for unlimited; ``no_new_privs``: PR_SET_NO_NEW_PRIVS before
    exec (setuid binaries and file capabilities grant nothing from then on).
    ``sigmask`` and ``ignored``: the child's blocked and ignored signals (tini
    passes on what it inherited); by default none, and every disposition default."""

    __slots__ = (
        "argv",
        "env",
        "cwd",
        "isolation",
        "take_tty",
        "uid",
        "gid",
        "groups",
        "umask",
        "fds",
        "close_fds",
        "exact_signals",
        "no_new_privs",
        "rlimits",
        "sigmask",
        "ignored",
    )

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,  # None: pyinit's own environment
        cwd: str | None = None,
        isolation: Isolation = "new-session",
        take_tty: bool = False,  # become the terminal's foreground job if fd 0 is a tty
        uid: int | None = None,
        gid: int | None = None,
        groups: Sequence[int] | None = None,
        umask: int | None = None,
        fds: Mapping[int, int] | None = None,
        close_fds: bool = True,
        # Reset glibc's internal signals (32, 33) too: posix_spawn leaves them
        # ignored in the child, which only a fork can avoid. For the one command
        # of wrapper mode, which must start exactly as under tini.
        exact_signals: bool = False,
        no_new_privs: bool = False,
        rlimits: Sequence[tuple[str, int, int]] = (),
        sigmask: frozenset[int] = frozenset(),
        ignored: frozenset[int] = frozenset(),
    ) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.isolation = isolation
        self.take_tty = take_tty
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.umask = umask
        self.fds: Mapping[int, int] = fds or {}
        self.close_fds = close_fds
        self.exact_signals = exact_signals
        self.no_new_privs = no_new_privs
        self.rlimits = rlimits
        self.sigmask = sigmask
        self.ignored = ignored


def release_controlling_tty() -> bool:
    """Give up our controlling terminal (if fd 0 is one) so that a child started in
    a new session with ``take_tty`` can make it its own: the foreground job of
    ``docker run -it`` must be the command, not pyinit. Returns whether fd 0 is a tty.
    """
    if not os.isatty(0):
        return False
    import fcntl
    import termios

    from pyinit.signals import ignored_during

    with ignored_during([signal.SIGHUP, signal.SIGCONT]):
        try:
            fcntl.ioctl(0, termios.TIOCNOTTY)
        except OSError:
            pass  # we had no controlling terminal: nothing to hand over
    return True


def spawn(spec: SpawnSpec) -> int:
    """Start ``spec``; return the pid once exec succeeded, or raise SpawnError.

    The common case (no user, umask, limits or terminal to set up)
    goes through posix_spawn: glibc's vfork-style clone copies nothing and runs
    no Python in the child, so starting 50 services or 100 exec probes a second
    does not stall the loop. Anything else forks and prepares the child by hand.
    """
    try:
        if _simple(spec):
            try:
                return _posix_spawn(spec)
            except OSError as exc:
                err = exc.errno or errno.EINVAL
                raise SpawnError(None, spec.argv[0], "exec", err) from None
        return _fork_exec(spec)
    except ValueError as exc:  # an embedded NUL byte in argv, env or cwd
        raise SpawnError(
            None, str(spec.argv[0]) if spec.argv else "", "exec", errno.EINVAL, subject=str(exc)
        ) from None


def _simple(spec: SpawnSpec) -> bool:
    if spec.exact_signals or spec.umask is not None:
        return False
    if spec.no_new_privs or spec.rlimits or spec.sigmask or spec.ignored:
        return False
    if spec.uid is not None or spec.gid is not None or spec.groups is not None:
        return False
    if spec.take_tty and os.isatty(0):
        return False
    # dup2 actions run in order: a target that is also another mapping's source
    # would be clobbered; the fork path stages them safely.
    sources = set(spec.fds.values())
    return not any(t in sources and spec.fds[t] != t for t in spec.fds)


def _load_fast_path(spec: SpawnSpec) -> int:
    """Load the posix_spawn path on the first simple spawn (wrapper mode always
    forks, so its start-up never loads it) and put it in ``_posix_spawn``'s place:
    later spawns call it directly, with no import on the way."""
    global _posix_spawn
    from pyinit.posixspawn import posix_spawn

    _posix_spawn = posix_spawn
    return posix_spawn(spec)


_posix_spawn: Callable[[SpawnSpec], int] = _load_fast_path


def _fork_exec(spec: SpawnSpec) -> int:
    """Fork, set the child up (session, terminal, fds, user, directory), exec.

    Signals are blocked across the fork so none is handled in the child by
    pyinit's handler (it would write into pyinit's wake-up pipe) before the
    defaults are restored. The parent waits on a close-on-exec pipe: EOF means
    exec succeeded; otherwise the child writes which step failed and why.
    """
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = fork_blocked(close_on_error=(err_r, err_w))
    if pid == 0:  # pragma: no cover - runs in the child, which execs or exits
        os.close(err_r)
        _child(spec, err_w)
    os.close(err_w)
    try:
        report = b""
        while chunk := os.read(err_r, 256):
            report += chunk
    finally:
        os.close(err_r)
    if report:
        stage, _, code = report.decode().partition(":")
        err = int(code or 0)
        subject = {"chdir": spec.cwd, "user": _who(spec)}.get(stage) or ""
        hint = ""
        if stage.startswith("ulimit "):
            from pyinit.rlimits import explain_failure

            subject, hint = explain_failure(spec.rlimits, stage[len("ulimit ") :], err)
        raise SpawnError(pid, spec.argv[0], stage, err, subject, hint)
    return pid


def _who(spec: SpawnSpec) -> str:
    """``to uid 1000 gid 50``, for a failed switch of user."""
    ids = [f"uid {spec.uid}"] if spec.uid is not None else []
    ids += [f"gid {spec.gid}"] if spec.gid is not None else []
    return "to " + " ".join(ids) if ids else ""


def _child(spec: SpawnSpec, err_w: int) -> None:  # pragma: no cover - child side
    """Set the child up step by step and exec; on failure, write ``stage:errno``
    (which step failed, and why) to ``err_w`` and exit."""
    err_w = _lift_report_pipe(spec, err_w)
    stage = "setup"
    try:
        _isolate(spec)
        if spec.fds or spec.close_fds:
            _arrange_fds(spec.fds, err_w, spec.close_fds)
        if spec.umask is not None:
            os.umask(spec.umask)
        # Limits before the switch of user: raising a hard limit needs root.
        if spec.rlimits:
            from pyinit.rlimits import set_limit  # loaded already: config imports it

            for name, soft, hard in spec.rlimits:
                stage = f"ulimit {name}"
                set_limit(name, soft, hard)
        stage = "user"
        _switch_user(spec)
        stage = "chdir"
        if spec.cwd is not None:
            os.chdir(spec.cwd)
        if spec.no_new_privs:
            stage = "no_new_privs"
            from pyinit.reaper import prctl

            prctl(PR_SET_NO_NEW_PRIVS, 1)
        stage = "exec"
        _exec(spec)
    except OSError as exc:
        code = exc.errno or errno.EINVAL
    except BaseException:
        code = errno.EINVAL
    try:
        os.write(err_w, f"{stage}:{code}".encode())
    finally:
        os._exit(127 if code == errno.ENOENT else 126)


def _lift_report_pipe(spec: SpawnSpec, err_w: int) -> int:  # pragma: no cover - child side
    """A wanted target fd (a readiness fd: 3) may be the report pipe's number:
    move the pipe above every target before dup2 could overwrite it."""
    if not spec.fds or err_w > max(spec.fds):
        return err_w
    import fcntl

    moved = fcntl.fcntl(err_w, fcntl.F_DUPFD_CLOEXEC, max(spec.fds) + 1)
    os.close(err_w)
    return moved


def _isolate(spec: SpawnSpec) -> None:  # pragma: no cover - child side
    """Default signal handling; then the new session or group, and the terminal."""
    signal.set_wakeup_fd(-1)
    # All but KILL and STOP back to default (pyinit's handlers; SIGPIPE/SIGXFSZ,
    # which Python ignores at start-up; whatever pyinit inherited ignored), except
    # what the spec passes on ignored (tini hands on its inherited state).
    for signum in waitable_signals():
        signal.signal(signum, signal.SIG_IGN if signum in spec.ignored else signal.SIG_DFL)
    take_tty = spec.take_tty and os.isatty(0)
    if spec.isolation == "new-session":
        os.setsid()
        if take_tty:
            import fcntl
            import termios

            try:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            except OSError:
                pass  # the tty belongs to another session: run without it
    elif spec.isolation == "new-group":
        os.setpgid(0, 0)
        if take_tty:
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(0, os.getpgrp())
            except OSError:
                pass
            if signal.SIGTTOU not in spec.ignored:
                signal.signal(signal.SIGTTOU, signal.SIG_DFL)


def _switch_user(spec: SpawnSpec) -> None:  # pragma: no cover - child side
    if spec.groups is not None and os.geteuid() == 0:
        os.setgroups(list(spec.groups))
    if spec.gid is not None:
        os.setgid(spec.gid)
    if spec.uid is not None:
        os.setuid(spec.uid)


def _exec(spec: SpawnSpec) -> None:  # pragma: no cover - child side
    signal.pthread_sigmask(signal.SIG_SETMASK, spec.sigmask)
    try:
        if spec.env is None:
            os.execvp(spec.argv[0], list(spec.argv))
        else:
            os.execvpe(spec.argv[0], list(spec.argv), dict(spec.env))
    except OSError as exc:
        if exc.errno != errno.ENOEXEC:
            raise
        _exec_with_sh(spec, exc)


def _exec_with_sh(spec: SpawnSpec, exc: OSError) -> None:  # pragma: no cover - child side
    """Run an executable file with no ``#!`` line through /bin/sh, as execvp(3) does.

    POSIX execvp (so tini, dumb-init and shells) treats such a file as a shell
    script; Python's os.execvp does not. ENOEXEC from os.execvp means every
    earlier PATH candidate was missing, so the first executable file found on
    PATH is the one that failed. Raises the original error if sh cannot run.
    """
    from pyinit.posixspawn import which

    env = os.environ if spec.env is None else spec.env
    path = which(spec.argv[0], env)
    if path is None:
        raise exc
    try:
        os.execve("/bin/sh", ["/bin/sh", path, *spec.argv[1:]], dict(env))
    except OSError:
        raise exc from None


def _arrange_fds(fds: Mapping[int, int], err_w: int, close_rest: bool) -> None:  # pragma: no cover
    """dup2 the wanted fds into place, then (``close_rest``) close the rest above 2."""
    # Move sources out of the way first, so that one mapping's target cannot
    # clobber another mapping's source.
    import fcntl

    floor = max(fds, default=2) + 1
    staged = {t: fcntl.fcntl(s, fcntl.F_DUPFD_CLOEXEC, floor) for t, s in fds.items()}
    for target, source in staged.items():
        os.dup2(source, target, inheritable=True)
        os.close(source)
    if not close_rest:
        return
    keep = sorted({t for t in staged if t > 2} | {err_w})
    low = 3
    for fd in keep:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _MAXFD)
