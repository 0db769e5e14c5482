"""Reading a file a config names (the config itself, env files) without trusting it.

A path in a config can name anything: ``/dev/zero`` (endless), a FIFO nobody
writes (a blocking open or read), a directory, a 10 GB log. PID 1 must neither
block nor swallow it whole. So: only regular files, opened non-blocking, checked
with ``fstat`` on the opened descriptor (what was checked is what is read), and
never more than ``cap + 1`` bytes read. Symlinks are followed: Kubernetes mounts
ConfigMaps and Secrets as symlinks.
"""

from __future__ import annotations

import os
import stat

MiB = 1024 * 1024
CONFIG_CAP = 4 * MiB  # far above any real services file
ENV_FILE_CAP = 1 * MiB

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnsafeFile(Exception):
    """The file cannot or may not be read; the message says why (without the path),
    as ``strerror`` would: "No such file or directory", "a directory, not a regular file"."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing  # not found (an optional env file is then skipped)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


def size_text(size: int) -> str:
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= MiB:
        return f"{size / MiB:.1f} MiB"
    return f"{size} bytes"


def read_bytes(path: str, cap: int) -> bytes:
    """The whole content of the regular file ``path``, at most ``cap`` bytes;
    UnsafeFile for anything else."""
    try:
        # stat first: opening a device or a FIFO is refused before it happens
        # (opening some devices has effects of its own).
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFile(f"{_kind(mode)}, not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError as exc:
        raise UnsafeFile(exc.strerror or "not found", missing=True) from None
    except OSError as exc:
        raise UnsafeFile(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)  # it may have been swapped since the stat above
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{_kind(info.st_mode)}, not a regular file")
        if info.st_size > cap:
            size, limit = size_text(info.st_size), size_text(cap)
            raise UnsafeFile(f"too large ({size}; the limit is {limit})")
        chunks: list[bytes] = []
        total = 0
        while total <= cap:  # a file growing meanwhile is still cut at cap + 1
            chunk = os.read(fd, min(cap + 1 - total, MiB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > cap:
            raise UnsafeFile(f"too large (over {size_text(cap)})")
        return b"".join(chunks)
    except OSError as exc:
        raise UnsafeFile(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)

