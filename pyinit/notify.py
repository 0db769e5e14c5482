"""The sd_notify protocol: a datagram socket per service at $NOTIFY_SOCKET.

systemd-aware daemons send newline-separated ``KEY=VALUE`` datagrams such as
``READY=1``, ``STATUS=...``, ``STOPPING=1``, ``MAINPID=n`` and ``WATCHDOG=1``
(sd_notify(3)). SO_PASSCRED makes the kernel attach the sender's pid to each
datagram, so a message is only believed when it comes from the service's own
session (the service is a session leader; its helpers share its session id).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable

from pyinit.loop import EventLoop
from pyinit.proctree import SESSION, stat_field
from pyinit.rundir import bind_unix

MAX_DATAGRAM = 4096
_UCRED = struct.Struct("3i")  # pid, uid, gid

OnMessage = Callable[[int, dict[str, str]], None]


def session_of(pid: int) -> int | None:
    return stat_field(pid, SESSION)


class NotifySocket:
    """Receives one service's notifications and passes on those from its session."""

    def __init__(self, loop: EventLoop, path: str, on_message: OnMessage) -> None:
        self.loop = loop
        self.on_message = on_message
        self.session: int | None = None  # the service's pid, once spawned
        self.rejected = 0
        self.sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if len(path.encode()) >= 100:
            # sun_path holds 108 bytes; fall back to an abstract socket for long paths.
            path = "@pyinit-notify-" + path.encode().hex()[-64:]
        self.path = path
        try:
            if path.startswith("@"):
                self.sock.bind("\0" + path[1:])
            else:
                try:
                    os.unlink(path)  # a stale socket; unlink never follows a link
                except FileNotFoundError:
                    pass
                # The service may run as another user: it needs write access to connect.
                bind_unix(self.sock, path, path, 0o666)
        except BaseException:
            self.sock.close()
            raise
        loop.add_reader(self.sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(
                    MAX_DATAGRAM, socket.CMSG_SPACE(_UCRED.size)
                )
            except BlockingIOError:
                return
            except OSError:
                return
            sender = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    sender = _UCRED.unpack(payload[: _UCRED.size])[0]
            if sender is None or not self._belongs(sender):
                self.rejected += 1
                continue
            self.on_message(sender, parse_message(data))

    def _belongs(self, pid: int) -> bool:
        if self.session is None:
            return False
        if pid == self.session:
            return True
        session = session_of(pid)
        if session is None and pid > 0 and os.getpid() == 1:
            # Bug fix: a helper that sends READY=1 and exits at once (python -c
            # "sd_notify(...)" in a start script) is often gone, and reaped by its
            # parent, before we read the datagram, so its session cannot be read.
            # As PID 1 every pid the kernel names (0 means outside our namespace) is
            # a process of this container: believe it rather than drop a real READY.
            return True
        return session == self.session

    def close(self) -> None:
        fd = self.sock.fileno()
        if fd >= 0:
            self.loop.remove_reader(fd)
        self.sock.close()
        if not self.path.startswith("@"):
            try:
                os.unlink(self.path)
            except OSError:
                pass


def parse_message(data: bytes) -> dict[str, str]:
    """``READY=1\\nSTATUS=up`` -> {"READY": "1", "STATUS": "up"}; junk lines are skipped."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key.strip()] = value
    return fields
