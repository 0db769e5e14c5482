"""A fresh PID namespace for the next child, so the app runs as PID 1 (``--as-pid1``).

``unshare(CLONE_NEWPID)`` changes only where our *children* go: the next process
we start is PID 1 of the new namespace and still our own child, so the one
reaper gets its real exit status. Afterwards ``setns`` to our own namespace
lets the next run unshare again (the kernel refuses a second unshare while the
first one is pending). Without root we first enter a user namespace where we
are root, as ``unshare --user --map-root-user`` does. Python 3.11 has neither
call, hence ctypes.
"""

from __future__ import annotations

import ctypes
import os
import shutil

CLONE_NEWPID = 0x20000000
CLONE_NEWUSER = 0x10000000


class NamespaceUnavailable(Exception):
    """No PID namespace can be made here; the message says why, in one line."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _call(name: str, *args: int) -> int:
    """0, or the errno of libc ``name(args)``."""
    func = getattr(_libc(), name)
    if func(*args) != 0:
        return ctypes.get_errno()
    return 0


class PidNamespaces:
    """Hands out one fresh PID namespace per run."""

    def __init__(self) -> None:
        self._own_fd: int | None = None
        self._user_ns = False

    def enter(self) -> None:
        """Make the next child PID 1 of a new namespace, or raise NamespaceUnavailable."""
        err = _call("unshare", CLONE_NEWPID)
        if err == 0:
            self._remember_own()
            return
        if self._user_ns or os.geteuid() == 0:
            raise NamespaceUnavailable(_why(err, "unshare(CLONE_NEWPID)"))
        self._enter_user_namespace()
        err = _call("unshare", CLONE_NEWPID)
        if err:
            raise NamespaceUnavailable(_why(err, "unshare(CLONE_NEWPID) in a user namespace"))
        self._remember_own()

    def _remember_own(self) -> None:
        if self._own_fd is None:
            self._own_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)

    def leave(self) -> bool:
        """Point our future children back at our own namespace; False if the
        kernel refuses (as it does inside an unprivileged user namespace)."""
        if self._own_fd is None:
            return True
        return _call("setns", self._own_fd, CLONE_NEWPID) == 0

    def _enter_user_namespace(self) -> None:
        uid, gid = os.geteuid(), os.getegid()
        err = _call("unshare", CLONE_NEWUSER)
        if err:
            raise NamespaceUnavailable(
                _why(err, "not root, and no user namespace could be made (unshare(CLONE_NEWUSER))")
            )
        self._user_ns = True
        # Root inside, mapped to us outside: mounting /proc for the app needs it.
        for path, text in (
            ("/proc/self/setgroups", "deny"),
            ("/proc/self/uid_map", f"0 {uid} 1"),
            ("/proc/self/gid_map", f"0 {gid} 1"),
        ):
            try:
                with open(path, "w") as f:
                    f.write(text)
            except OSError as exc:
                raise NamespaceUnavailable(
                    f"cannot map our user in a user namespace: {exc}"
                ) from None

    def close(self) -> None:
        if self._own_fd is not None:
            os.close(self._own_fd)
            self._own_fd = None


def _why(err: int, what: str) -> str:
    hint = {
        1: "it needs root (CAP_SYS_ADMIN) or unprivileged user namespaces",
        22: "the kernel refused a new PID namespace here",
        28: "the limit on namespaces is reached (user.max_pid_namespaces)",
    }.get(err, os.strerror(err))
    return f"PID namespaces are not available: {what}: {os.strerror(err)}; {hint}"


def proc_mounting_argv(command: list[str]) -> list[str]:
    """``command`` behind ``unshare --mount-proc`` so the app's /proc shows its own
    namespace, as in a container; unchanged when unshare(1) is missing."""
    if shutil.which("unshare") is None:
        return command
    return ["unshare", "--mount-proc", "--", *command]
