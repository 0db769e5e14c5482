"""Start a child cleanly: its own session or group, default signals, no stray fds.

fork + exec by hand rather than ``subprocess.Popen``: Popen's finalizer and its
``_cleanup`` of earlier instances call ``waitpid`` on their own, which would steal
exit statuses from the one reaper.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pyinit.signals import catchable_signals

# new: setsid (dumb-init); group: setpgid (tini); inherit: stay in pyinit's group.
Isolation = Literal["new-session", "new-group", "inherit"]

_MAXFD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024


@dataclass(frozen=True)
class SpawnSpec:
    argv: Sequence[str]
    env: Mapping[str, str] | None = None  # None: pyinit's own environment
    cwd: str | None = None
    isolation: Isolation = "new-session"
    take_tty: bool = False  # become the terminal's foreground job if fd 0 is a tty
    uid: int | None = None
    gid: int | None = None
    groups: Sequence[int] | None = None
    umask: int | None = None
    # target fd -> source fd, dup2'ed before the rest are closed (0, 1, 2 included)
    fds: Mapping[int, int] = field(default_factory=dict)


class SpawnError(Exception):
    """The child was forked but never reached exec; ``pid`` still has to be reaped."""

    def __init__(self, pid: int, argv0: str, stage: str, err: int, subject: str = "") -> None:
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
        super().__init__(f"cannot run {argv0!r}: {label + ': ' if label else ''}{reason}")

    @property
    def exit_code(self) -> int:
        """127 for a command that does not exist, 126 for one that cannot run (as sh)."""
        if self.stage == "exec" and self.errno in (errno.ENOENT, errno.ENOTDIR):
            return 127
        return 126


def resolve_user(user: str) -> tuple[int, int, list[int]]:
    """``name``, ``uid``, ``name:group`` or ``uid:gid`` -> (uid, gid, supplementary groups).

    Raises LookupError naming what is unknown, PermissionError when pyinit is not
    root and would have to switch to another user.
    """
    import grp
    import pwd

    who, _, group = user.partition(":")
    entry: pwd.struct_passwd | None = None
    if who.isdigit():
        uid = int(who)
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            entry = None  # an arbitrary uid with no passwd entry (OpenShift) is fine
    else:
        try:
            entry = pwd.getpwnam(who)
        except KeyError:
            raise LookupError(f"unknown user {who!r}") from None
        uid = entry.pw_uid
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise LookupError(f"unknown group {group!r}") from None
    else:
        gid = entry.pw_gid if entry is not None else uid
    groups = os.getgrouplist(entry.pw_name, gid) if entry is not None else [gid]
    if os.geteuid() != 0 and (uid, gid) != (os.geteuid(), os.getegid()):
        raise PermissionError(
            f"switching to user {user!r} needs root; pyinit runs as uid {os.geteuid()}"
        )
    return uid, gid, groups


def spawn(spec: SpawnSpec) -> int:
    """Fork and exec ``spec``; return the pid once exec succeeded.

    Raises SpawnError when exec or the set-up before it failed. Signals are
    blocked across the fork so none is handled in the child by pyinit's handler
    (it would write into pyinit's wake-up pipe) before the defaults are restored.
    """
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    all_signals = signal.valid_signals()
    saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, all_signals)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        os.close(err_r)
        os.close(err_w)
        raise
    if pid == 0:  # pragma: no cover - runs in the child, which execs or exits
        os.close(err_r)
        _child(spec, err_w)
    signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
    os.close(err_w)
    try:
        report = b""
        while chunk := os.read(err_r, 256):
            report += chunk
    finally:
        os.close(err_r)
    if report:
        stage, _, code = report.decode().partition(":")
        subject = {"chdir": spec.cwd, "user": _who(spec)}.get(stage) or ""
        raise SpawnError(pid, spec.argv[0], stage, int(code or 0), subject)
    return pid


def _who(spec: SpawnSpec) -> str:
    """``to uid 1000 gid 50``, for a failed switch of user."""
    ids = [f"uid {spec.uid}"] if spec.uid is not None else []
    ids += [f"gid {spec.gid}"] if spec.gid is not None else []
    return "to " + " ".join(ids) if ids else ""


def _child(spec: SpawnSpec, err_w: int) -> None:  # pragma: no cover - child side
    stage = "setup"
    try:
        signal.set_wakeup_fd(-1)
        for signum in catchable_signals():
            signal.signal(signum, signal.SIG_DFL)
        if spec.isolation == "new-session":
            os.setsid()
            if spec.take_tty and os.isatty(0):
                import fcntl
                import termios

                try:
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                except OSError:
                    pass  # the tty belongs to another session: run without it
        elif spec.isolation == "new-group":
            os.setpgid(0, 0)
            if spec.take_tty and os.isatty(0):
                signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                try:
                    os.tcsetpgrp(0, os.getpgrp())
                except OSError:
                    pass
                signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        _arrange_fds(spec.fds, err_w)
        if spec.umask is not None:
            os.umask(spec.umask)
        stage = "user"
        if spec.groups is not None and os.geteuid() == 0:
            os.setgroups(list(spec.groups))
        if spec.gid is not None:
            os.setgid(spec.gid)
        if spec.uid is not None:
            os.setuid(spec.uid)
        stage = "chdir"
        if spec.cwd is not None:
            os.chdir(spec.cwd)
        stage = "exec"
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        try:
            if spec.env is None:
                os.execvp(spec.argv[0], list(spec.argv))
            else:
                os.execvpe(spec.argv[0], list(spec.argv), dict(spec.env))
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            _exec_with_sh(spec, exc)
    except OSError as exc:
        code = exc.errno or errno.EINVAL
    except BaseException:
        code = errno.EINVAL
    try:
        os.write(err_w, f"{stage}:{code}".encode())
    finally:
        os._exit(127 if code == errno.ENOENT else 126)


def _exec_with_sh(spec: SpawnSpec, exc: OSError) -> None:  # pragma: no cover - child side
    """Run an executable file with no ``#!`` line through /bin/sh, as execvp(3) does.

    POSIX execvp (so tini, dumb-init and shells) treats such a file as a shell
    script; Python's os.execvp does not. ENOEXEC from os.execvp means every
    earlier PATH candidate was missing, so the first executable file found on
    PATH is the one that failed. Raises the original error if sh cannot run.
    """
    import shutil

    env = os.environ if spec.env is None else spec.env
    name = spec.argv[0]
    path = name if "/" in name else shutil.which(name, path=env.get("PATH", os.defpath))
    if path is None:
        raise exc
    try:
        os.execve("/bin/sh", ["/bin/sh", path, *spec.argv[1:]], dict(env))
    except OSError:
        raise exc from None


def _arrange_fds(fds: Mapping[int, int], err_w: int) -> None:  # pragma: no cover
    """dup2 the wanted fds into place, then close everything else above 2."""
    # Move sources out of the way first, so that one mapping's target cannot
    # clobber another mapping's source.
    import fcntl

    floor = max(fds, default=2) + 1
    staged = {t: fcntl.fcntl(s, fcntl.F_DUPFD_CLOEXEC, floor) for t, s in fds.items()}
    for target, source in staged.items():
        os.dup2(source, target, inheritable=True)
        os.close(source)
    keep = sorted({t for t in staged if t > 2} | {err_w})
    low = 3
    for fd in keep:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _MAXFD)
