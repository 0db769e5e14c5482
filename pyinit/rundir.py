"""The runtime directory, and creating pyinit's files and sockets in it safely.

pyinit runs as root and its runtime directory may be shared (an emptyDir, a
tmpfs /tmp) with services running as other users. Anyone who can write there
could plant a symlink under a name pyinit is about to create, and pyinit would
write through it into whatever file it points at. So:

- a directory is used only when it is a real directory (not a symlink) owned by
  pyinit's uid (or root), and writable by nobody else unless it is sticky (in a
  sticky directory only a file's owner may remove or rename it);
- files are written under an unpredictable name with O_EXCL | O_NOFOLLOW, then
  renamed over the real name (rename replaces a planted link, never follows it);
- sockets are bound under a umask that gives them their final mode at once, so
  there is no chmod by path (which follows a link swapped in meanwhile).
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Sequence

DEFAULT_DIR = "/run/pyinit"

Refused = Callable[[str], None]  # told "<path> refused: <why>", once per refusal


def candidates() -> list[str]:
    """$PYINIT_RUNTIME_DIR alone, else /run/pyinit then a per-uid directory under
    /tmp (for a read-only /run, or an arbitrary uid that cannot write there)."""
    chosen = os.environ.get("PYINIT_RUNTIME_DIR")
    return [chosen] if chosen else [DEFAULT_DIR, f"/tmp/pyinit-{os.getuid()}"]


def runtime_dir(refused: Refused | None = None) -> str:
    """The first usable candidate, created (mode 0755) if missing. Raises OSError."""
    return choose(candidates(), refused)


def choose(paths: Sequence[str], refused: Refused | None = None) -> str:
    """The first of ``paths`` that is safe and writable. One that exists but is
    unsafe is skipped and reported through ``refused`` (else in the error); one
    that cannot be made or written is skipped quietly (a read-only /run is
    normal). Raises OSError naming every path tried."""
    reasons: list[str] = []
    for path in paths:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            try:
                os.makedirs(path, mode=0o755)
                info = os.lstat(path)
            except OSError:
                reasons.append(path)
                continue
        except OSError:
            reasons.append(path)
            continue
        why = unsafe(info)
        if why is not None:
            if refused is None:
                reasons.append(f"{path} refused: {why}")
            else:  # said once by the caller, where it is not repeated with each use
                reasons.append(f"{path} refused")
                refused(f"runtime directory {path} refused: {why}")
            continue
        if os.access(path, os.W_OK | os.X_OK):
            return path
        reasons.append(f"{path}: not writable")
    raise OSError(f"no writable runtime directory (tried {', '.join(reasons)})")


def unsafe(info: os.stat_result, euid: int | None = None) -> str | None:
    """Why a directory with this lstat() result is not safe to create files in,
    or None. Its owner can replace anything in it, so that must be us or root."""
    euid = os.geteuid() if euid is None else euid
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(mode):
        return "it is not a directory"
    if info.st_uid not in (euid, 0):
        ours = "root" if euid == 0 else f"pyinit's uid {euid} or root"
        return f"owned by uid {info.st_uid}, not by {ours}"
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        return f"writable by other users (mode {stat.S_IMODE(mode):04o}) and not sticky"
    return None


def replace_file(directory: str, name: str, data: bytes, mode: int = 0o644) -> None:
    """Make ``directory/name`` hold ``data``, atomically for readers. Raises OSError.

    The new content goes to a fresh file under a random name (O_EXCL: a planted
    file or link there is an error, not a target), relative to the directory
    opened without following a link, then is renamed over ``name``.
    """
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        tmp = f".{name}.{os.urandom(8).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
    finally:
        os.close(dir_fd)


def bind_unix(sock: socket.socket, address: str, path: str, mode: int) -> None:
    """Bind ``sock`` to ``address`` (``path``, or a /proc/self/fd alias of it) so
    that the socket file has ``mode`` from its first moment. Raises OSError.

    The mode comes from the umask at bind (process-wide, but pyinit has no
    threads: nothing else creates a file meanwhile). A filesystem that ignores the
    umask (a default ACL on the directory) is corrected through a descriptor of
    the socket file itself, never through the path, which another user of a
    shared directory could have swapped for a link to something else.
    """
    old_umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(address)
    finally:
        os.umask(old_umask)
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.geteuid():
            raise OSError(f"{path} was replaced by something else while pyinit bound it")
        if stat.S_IMODE(info.st_mode) != mode:
            os.chmod(f"/proc/self/fd/{fd}", mode)  # O_PATH fds take no fchmod
    finally:
        os.close(fd)


_SUN_PATH_MAX = 107  # sun_path is 108 bytes with its NUL


def addressable(path: str) -> tuple[str, int | None]:
    """A name bind/connect accept for ``path`` and an fd to close after.

    sun_path holds 107 bytes; a longer path (deep test or CI directories) is
    reached through /proc/self/fd/N of its directory, which the kernel resolves.
    """
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path, None
    directory, name = os.path.split(os.path.abspath(path))
    fd = os.open(directory or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{name}", fd


def bind_socket(sock: socket.socket, path: str) -> None:
    """Bind ``sock`` at ``path``, mode 0600 from the first moment; a stale socket
    left there by an earlier pyinit in this container is replaced."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    address, dir_fd = addressable(path)
    try:
        bind_unix(sock, address, path, 0o600)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
