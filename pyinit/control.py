"""The control socket: operator requests to a running pyinit, served inside its loop.

A Unix stream socket (``$PYINIT_SOCKET``, else ``<runtime dir>/control.sock``,
mode 0600) speaking protocol.py: one request line, one answer, close. Only root
and pyinit's own uid may ask (``SO_PEERCRED``). The serving itself (non-blocking
reads and writes, the request and answer deadlines, the connection limit and who
makes room when it is reached) is netserve.Server's; this module answers.

A ``logs`` answer is held per connection as one chunk at a time: a generator
over views of the store's blocks (references, not copies), refilled as the
socket drains. All unsent answer bytes together stay within ANSWER_BUDGET: past
it, a new ``logs`` request is answered "busy" (the readers already served keep
their answers; any other request is still answered). A ``wait`` is held open
until a change of state settles it or its timeout passes; a ``reload`` until
the new config was loaded (in a child) and applied or refused.

The server reaches the supervisor only through ``Operator``. Parsing, the
``wait`` verdict and the answer chunks are pure functions, tested without sockets.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

from pyinit.answers import answer_chunks, gone_verdict, stopped_verdict, wait_verdict
from pyinit.follow import MAX_FOLLOWERS, Follower, Style, backlog
from pyinit.loop import EventLoop
from pyinit.netserve import Connection, Server
from pyinit.protocol import (
    MAX_REQUEST,
    Request,
    RequestError,
    encode,
    error,
    parse_request,
    server_socket_path,
)
from pyinit.rundir import bind_socket
from pyinit.snapshot import Snapshot
from pyinit.status import verdict
from pyinit.targets import expand

REQUEST_TIMEOUT = 5.0  # a client has this long to send its whole request line
WRITE_TIMEOUT = 5.0  # an answer that makes no progress for this long is dropped
MAX_CONNECTIONS = 64
ANSWER_BUDGET = 8 * 1024 * 1024  # unsent answer bytes of all connections together
_UCRED = struct.Struct("3i")  # pid, uid, gid

Answer = dict[str, Any]


class Operator(Protocol):
    """What the control socket needs of the supervisor, and nothing else."""

    @property
    def loop(self) -> EventLoop: ...

    def log(self, message: str, level: int = 0) -> None: ...

    def runtime_dir(self) -> str: ...

    def snapshot(self) -> Snapshot: ...

    def sampled_snapshot(self) -> Snapshot: ...

    def start_services(self, names: list[str]) -> tuple[list[str], list[str]]: ...

    def stop_services(self, names: list[str]) -> tuple[list[str], list[str]]: ...

    def restart_services(self, names: list[str]) -> tuple[list[str], list[str]]: ...

    def signal_services(self, signum: int, names: list[str]) -> tuple[list[str], list[str]]: ...

    def scale_service(self, name: str, count: int) -> tuple[list[str], list[str], list[str]]: ...

    def reload(self, on_done: Callable[[bool, list[str]], None] | None = None) -> None: ...

    def busy(self) -> set[str]:
        """Services about to be stopped or replaced (by an operator or a reload)."""
        ...

    def recent_lines(self, name: str, count: int) -> tuple[int, list[memoryview]] | None:
        """(lines, views) of the last ``count`` lines kept (0: all); None: no such service."""
        ...

    def timed_lines(self, name: str, count: int, since: float) -> list[tuple[float, bytes]]: ...

    def add_log_hook(self, hook: Callable[[str, bytes], None]) -> None: ...

    def remove_log_hook(self, hook: Callable[[str, bytes], None]) -> None: ...

    def add_change_hook(self, hook: Callable[[], None]) -> None: ...

    def remove_change_hook(self, hook: Callable[[], None]) -> None: ...


class _Client(Connection):
    __slots__ = ("waiting", "pending", "follower")

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.waiting: Request | None = None  # a ``wait`` held open
        self.pending = False  # a ``reload`` held open until its load is over
        self.follower: Follower | None = None  # ``logs -f``: open until the client leaves


class ControlServer(Server[_Client]):
    """Serves the control socket from the supervisor's loop."""

    label = "control socket"
    max_connections = MAX_CONNECTIONS
    max_request = MAX_REQUEST
    recv_size = MAX_REQUEST + 1
    request_timeout = REQUEST_TIMEOUT
    answer_timeout = WRITE_TIMEOUT

    def __init__(self, operator: Operator, path: str) -> None:
        self.op = operator
        self.path = path
        self.uid = os.getuid()
        sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        try:
            bind_socket(sock, path)
            sock.listen(MAX_CONNECTIONS)
        except BaseException:
            sock.close()
            raise
        self.inode = os.stat(path).st_ino
        self._handlers: dict[str, Callable[[_Client, Request], Answer | None]] = {
            "status": self._status,
            "health": self._health,
            "start": self._act,
            "stop": self._act,
            "restart": self._act,
            "signal": self._act,
            "reload": self._reload,
            "logs": self._logs,
            "wait": self._wait,
            "scale": self._scale,
        }
        self.followers: list[Follower] = []
        super().__init__(operator.loop, sock, operator.log)
        operator.add_change_hook(self._on_change)
        operator.add_log_hook(self._on_lines)

    @classmethod
    def open(cls, operator: Operator) -> ControlServer | None:
        """The server, or None (after one log line) when the socket cannot be made."""
        try:
            path = server_socket_path(operator.runtime_dir)
        except OSError as exc:
            operator.log(f"control socket: disabled ({exc})")
            return None
        try:
            return cls(operator, path)
        except OSError as exc:
            operator.log(f"control socket: cannot listen on {path}: {exc}; running without it")
            return None

    def close(self) -> None:
        """Stop serving: drop every connection, remove the socket file if still ours."""
        self.op.remove_change_hook(self._on_change)
        self.op.remove_log_hook(self._on_lines)
        super().close()
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except OSError:
            pass

    # -- the connection's life (netserve hooks) ----------------------------------------
    def connection(self, sock: socket.socket) -> _Client:
        return _Client(sock)

    def on_connect(self, conn: _Client) -> None:
        try:
            creds = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
            _pid, uid, _gid = _UCRED.unpack(creds)
        except OSError:
            uid = -1
        if uid in (0, self.uid):
            self.start_reading(conn)
            return
        self.log(f"control socket: refused a client with uid {uid}", 1)
        self._reply(conn, error("permission denied"))

    def request_end(self, buf: bytearray) -> int:
        end = buf.find(b"\n")
        return end + 1 if end >= 0 else -1

    def on_eof(self, conn: _Client) -> None:
        if not conn.inbuf.strip():
            self.drop(conn)  # connected and left without asking
            return
        # A last line without its newline still counts (the client half-closed).
        self.stop_reading(conn)
        self.mark_requested(conn)
        self.on_request(conn, bytes(conn.inbuf))

    def after_request(self, conn: _Client, data: bytes) -> None:
        # Past the request only an end of file matters. It may be a half-close (the
        # client still reads), so keep an answer coming; a gone client is found out
        # by the write. pyinit's client never half-closes, so EOF during a held
        # `wait` or `reload` means it gave up: free the slot now, not at the wait's
        # timeout (up to days).
        if data:
            return
        if conn.waiting is not None or conn.pending or conn.follower is not None:
            self.drop(conn)
        else:
            self.stop_reading(conn)

    def drop(self, conn: _Client) -> None:
        if conn.follower is not None and conn.follower in self.followers:
            self.followers.remove(conn.follower)
        super().drop(conn)

    def on_too_large(self, conn: _Client) -> None:
        self._reply(conn, error(f"request too large (over {MAX_REQUEST} bytes)"))

    def on_request(self, conn: _Client, line: bytes) -> None:
        cmd = "?"
        answer: Answer | None
        try:
            request = parse_request(line)
            cmd = request.cmd
            answer = self._handlers[cmd](conn, request)
        except RequestError as exc:
            answer = error(str(exc))
        except Exception as exc:  # PID 1 must outlive its own bugs
            import traceback

            self.log(f"control socket: internal error handling {cmd!r}: {exc!r}")
            self.log(traceback.format_exc().rstrip(), 1)
            answer = error(f"internal error: {exc!r}")
        if answer is not None:
            self._reply(conn, answer)

    def _reply(
        self,
        conn: _Client,
        answer: Answer,
        body: Iterator[bytes | bytearray] | None = None,
        size: int = 0,
    ) -> None:
        """Send ``answer``, then the ``size`` bytes ``body`` yields, then close."""
        conn.waiting = None
        conn.pending = False
        self.send(conn, encode(answer), body, size)

    # -- requests (None: answered later) ----------------------------------------------
    def _status(self, conn: _Client, req: Request) -> Answer:
        return {"ok": True, "status": self.op.sampled_snapshot().to_json()}

    def _health(self, conn: _Client, req: Request) -> Answer:
        snapshot = self.op.snapshot()
        problems = verdict(snapshot)
        count = len(snapshot.services)
        return {"ok": True, "healthy": not problems, "problems": problems, "services": count}

    def _targets(self, patterns: list[str]) -> list[str]:
        """Names, globs and ``all`` -> names; a pattern matching nothing is refused."""
        snapshot = self.op.snapshot()
        names, errors = expand(patterns, list(snapshot.services), snapshot.groups())
        if errors:
            raise RequestError("; ".join(errors))
        return names

    def _act(self, conn: _Client, req: Request) -> Answer:
        op = self.op
        req = replace(req, services=self._targets(req.services))
        if req.cmd == "signal":
            done, errors = op.signal_services(req.signal, req.services)
        else:
            act = {
                "start": op.start_services,
                "stop": op.stop_services,
                "restart": op.restart_services,
            }[req.cmd]
            done, errors = act(req.services)
        return {"ok": not errors, "done": done, "errors": errors}

    def _scale(self, conn: _Client, req: Request) -> Answer:
        started, stopped, errors = self.op.scale_service(req.services[0], req.count)
        return {"ok": not errors, "started": started, "stopped": stopped, "errors": errors}

    def _reload(self, conn: _Client, req: Request) -> None:
        # Answered when the load (in a child process) is over.
        conn.pending = True
        self.op.reload(lambda ok, messages: self._reply(conn, {"ok": ok, "messages": messages}))

    def _logs(self, conn: _Client, req: Request) -> Answer | None:
        names = self._targets(req.services or ["all"])
        known = self.op.snapshot().services
        for name in names:
            if name not in known and self.op.recent_lines(name, 1) is None:
                return error(f"no service named {name!r}")
        style = Style.make(names, req.timestamps)
        if style.plain() and len(names) == 1 and not req.since and not req.follow:
            return self._raw_logs(conn, names[0], req.lines)
        if req.follow and len(self.followers) >= MAX_FOLLOWERS:
            return error(f"busy: {MAX_FOLLOWERS} followers already; try again later")
        count, data = backlog(names, lambda n: self.op.timed_lines(n, req.lines, req.since), style)
        if self.held + len(data) > ANSWER_BUDGET:
            return error(f"busy: {self.held} bytes of earlier answers are still unread; try again")
        if not req.follow:
            self._reply(
                conn, {"ok": True, "lines": count, "bytes": len(data)}, iter([data]), len(data)
            )
            return None
        follower = Follower(names, style)
        follower.buf += data
        follower.wake = partial(self.resume, conn)
        conn.follower = follower
        conn.stream = True
        self.followers.append(follower)
        self._reply(conn, {"ok": True, "follow": True, "lines": count}, follower.chunks())
        return None

    def _raw_logs(self, conn: _Client, name: str, lines: int) -> Answer | None:
        found = self.op.recent_lines(name, lines)
        if found is None:
            return error(f"no service named {name!r}")
        count, views = found
        size = sum(len(v) for v in views) + len(views)
        if self.held + size > ANSWER_BUDGET:
            return error(f"busy: {self.held} bytes of earlier answers are still unread; try again")
        self._reply(conn, {"ok": True, "lines": count, "bytes": size}, answer_chunks(views), size)
        return None

    def _on_lines(self, service: str, block: bytes) -> None:
        for follower in self.followers:
            follower.push(service, block)

    def _wait(self, conn: _Client, req: Request) -> None:
        # Answered now if it can be, else held open until a change settles it.
        conn.waiting = req = replace(req, services=self._targets(req.services))
        self.set_timer(conn, req.timeout, partial(self._wait_expired, conn))
        self._check_wait(conn, self.op.snapshot())

    def _verdict(self, req: Request, snapshot: Snapshot) -> tuple[list[str], list[str]]:
        judge = {"stopped": stopped_verdict, "gone": gone_verdict}.get(req.until, wait_verdict)
        return judge(snapshot, req.services, self.op.busy())

    def _check_wait(self, conn: _Client, snapshot: Snapshot) -> None:
        req = conn.waiting
        if req is None:
            return
        waiting, failed = self._verdict(req, snapshot)
        if failed:
            self._reply(conn, {"ok": False, "error": "; ".join(failed), "not_ready": waiting})
        elif not waiting:
            self._reply(conn, {"ok": True})

    def _wait_expired(self, conn: _Client) -> None:
        conn.timer = None
        req = conn.waiting
        if req is None:
            return
        waiting, failed = self._verdict(req, self.op.snapshot())
        if not waiting and not failed:
            self._reply(conn, {"ok": True})
            return
        names = ", ".join(waiting or req.services)
        message = f"timed out after {req.timeout:g}s waiting for {names}"
        self._reply(conn, {"ok": False, "error": message, "not_ready": waiting})

    def _on_change(self) -> None:
        waiters = [c for c in self.conns.values() if c.waiting is not None]
        if not waiters:
            return
        try:
            snapshot = self.op.snapshot()
            for conn in waiters:
                self._check_wait(conn, snapshot)
        except Exception as exc:  # a change hook runs inside _reconcile: never raise
            self.log(f"control socket: internal error checking waiters: {exc!r}")
