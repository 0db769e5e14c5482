"""The control socket: operator requests to a running pyinit, served inside its loop.

A Unix stream socket (``$PYINIT_SOCKET``, else ``<runtime dir>/control.sock``,
mode 0600). Each connection carries one request and one answer, each a JSON
object on one line; then the server closes. Only root and pyinit's own uid may
ask (``SO_PEERCRED``). The server is PID 1's: it never blocks (non-blocking
accept, reads and writes), never lets one client hold up another (a request
must arrive within ``REQUEST_TIMEOUT``, an answer must keep moving), and never
lets a bad request or its own bug end the loop.

A ``logs`` answer is the header line ``{"ok":true,"lines":N,"bytes":M}`` and then
M raw bytes: the N lines exactly as the service wrote them, each ending with a
newline. A kept line never holds a newline (lines are split there), so nothing
needs escaping: bytes that are not UTF-8, or that look like an escape, cost
nothing and cannot be mistaken for the framing. The client copies the M bytes
to its stdout and fails if fewer arrive.

Answers are held per connection as one chunk at a time: a ``logs`` answer is a
generator over views of the store's blocks (references, not copies), refilled as
the socket drains. All unsent answer bytes together stay within ANSWER_BUDGET:
past it, a new ``logs`` request is answered "busy" (the readers already served
keep their answers; any other request is still answered).

Parsing, the ``wait`` verdict and the answer chunks are pure functions, tested
without sockets.
"""

from __future__ import annotations

import json
import math
import os
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from pyinit.loop import Timer
from pyinit.rundir import bind_unix

if TYPE_CHECKING:
    from pyinit.supervisor import Supervisor

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024  # bytes, newline included
REQUEST_TIMEOUT = 5.0  # a client has this long to send its whole request line
WRITE_TIMEOUT = 5.0  # an answer that makes no progress for this long is dropped
MAX_CONNECTIONS = 64  # beyond this, new connections are accepted and closed at once
ACCEPT_PAUSE = 0.1  # accept failed (out of file descriptors): stop accepting this long
ACCEPT_LOG_EVERY = 10.0  # and say so at most this often
DEFAULT_LOG_LINES = 100
ANSWER_CHUNK = 64 * 1024  # a logs answer is built and held this much at a time
ANSWER_BUDGET = 8 * 1024 * 1024  # unsent answer bytes of all connections together
DEFAULT_WAIT_TIMEOUT = 60.0
MAX_WAIT_TIMEOUT = 7 * 24 * 3600.0
_UCRED = struct.Struct("3i")  # pid, uid, gid
_SUN_PATH_MAX = 107  # sun_path is 108 bytes with its NUL

COMMANDS = ("status", "start", "stop", "restart", "signal", "reload", "logs", "health", "wait")


class RequestError(ValueError):
    """A request the server refuses; the message goes back to the client."""


@dataclass(frozen=True)
class Request:
    cmd: str
    services: list[str] = field(default_factory=list)
    signal: int = 0
    lines: int = DEFAULT_LOG_LINES
    timeout: float = DEFAULT_WAIT_TIMEOUT


def _services(obj: dict[str, Any], *, required: bool) -> list[str]:
    raw = obj.get("services")
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise RequestError('"services" must be a list of service names')
    if required and not raw:
        raise RequestError('"services" names no service')
    return list(dict.fromkeys(raw))  # duplicates once, order kept


def parse_request(line: bytes) -> Request:
    """One request line -> Request, or RequestError saying what is wrong with it."""
    from pyinit.signals import parse_signal

    if len(line) > MAX_REQUEST:
        raise RequestError(f"request too large (over {MAX_REQUEST} bytes)")
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RequestError("a request must be a JSON object")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise RequestError('a request needs "cmd": a string')
    if cmd not in COMMANDS:
        raise RequestError(f"unknown cmd {cmd!r}; expected one of {', '.join(COMMANDS)}")
    if cmd in ("status", "reload", "health"):
        return Request(cmd)
    if cmd in ("start", "stop", "restart"):
        return Request(cmd, services=_services(obj, required=True))
    if cmd == "signal":
        raw = obj.get("signal")
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise RequestError('"signal" must be a signal name or number')
        try:
            signum = parse_signal(str(raw))
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        return Request(cmd, services=_services(obj, required=True), signal=signum)
    if cmd == "logs":
        name = obj.get("service")
        if not isinstance(name, str) or not name:
            raise RequestError('"service" must be a service name')
        lines = obj.get("lines", DEFAULT_LOG_LINES)
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            raise RequestError('"lines" must be a number >= 0 (0: every line kept)')
        return Request(cmd, services=[name], lines=lines)
    # wait
    timeout = obj.get("timeout", DEFAULT_WAIT_TIMEOUT)
    if isinstance(timeout, int) and not isinstance(timeout, bool):
        timeout = max(-1, min(timeout, int(MAX_WAIT_TIMEOUT)))  # float(10**400) overflows
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout < 0
    ):
        raise RequestError('"timeout" must be a number of seconds >= 0')
    return Request(
        cmd, services=_services(obj, required=True), timeout=min(float(timeout), MAX_WAIT_TIMEOUT)
    )


def encode(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, separators=(",", ":"), default=str).encode() + b"\n"


def answer_chunks(views: list[memoryview], size: int = ANSWER_CHUNK) -> Iterator[bytearray]:
    """The body of a ``logs`` answer: each view followed by a newline, in chunks of
    ``size`` bytes (the last one shorter). Consumes ``views`` as it goes, so the
    blocks already sent are no longer held by the answer."""
    views.reverse()
    buf = bytearray()
    while views:
        view = views.pop()
        pos = 0
        while len(view) - pos >= size - len(buf):
            take = size - len(buf)
            buf += view[pos : pos + take]
            pos += take
            yield buf
            buf = bytearray()
        buf += view[pos:]
        buf += b"\n"
        del view
        if len(buf) >= size:
            yield buf
            buf = bytearray()
    if buf:
        yield buf


def wait_verdict(
    snapshot: dict[str, Any], names: list[str], busy: set[str]
) -> tuple[list[str], list[str]]:
    """(not ready yet, failed for good) for a ``wait`` on ``names``.

    Ready: a longrun starting or running with its readiness reached, a oneshot
    completed. ``busy`` are services an operator request or a reload is about to
    stop or replace: whatever they show now is about to change, so they are not
    ready yet. Failed for good: ``failed``, or ended (stopped, exited) with
    nothing going to start it again; the message says which and why.
    """
    services = snapshot.get("services", {})
    waiting: list[str] = []
    failed: list[str] = []
    for name in names:
        svc = services.get(name)
        if svc is None:
            failed.append(f"no service named {name!r}")
            continue
        state = svc.get("state")
        if name in busy:
            waiting.append(name)
        elif svc.get("type") == "oneshot" and state == "completed":
            continue
        elif svc.get("type") != "oneshot" and state in ("starting", "running") and svc["ready"]:
            continue
        elif state in ("failed", "stopped", "exited", "completed"):
            why = f" ({svc['reason']})" if svc.get("reason") else ""
            failed.append(f"{name}: {state}{why}")
        else:
            waiting.append(name)
    if snapshot.get("stopping") and waiting:
        failed.append("pyinit is shutting down")
    return waiting, failed


def socket_path(runtime_dir: Callable[[], str]) -> str:
    """``$PYINIT_SOCKET``, else ``control.sock`` in the runtime directory."""
    return os.environ.get("PYINIT_SOCKET") or os.path.join(runtime_dir(), SOCKET_NAME)


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


class _Connection:
    __slots__ = (
        "sock",
        "fd",
        "inbuf",
        "answered",
        "outbuf",
        "body",
        "held",
        "timer",
        "waiting",
        "pending",
        "reading",
    )

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.answered = False
        self.outbuf = memoryview(b"")  # the part of the answer being sent
        self.body: Iterator[bytearray] | None = None  # the rest of it, chunk by chunk
        self.held = 0  # bytes of the answer not sent yet
        self.timer: Timer | None = None
        self.waiting: Request | None = None  # a ``wait`` held open
        self.pending = False  # a ``reload`` held open until its load is over
        self.reading = True


class ControlServer:
    """Serves the control socket from the supervisor's loop."""

    def __init__(self, supervisor: Supervisor, path: str) -> None:
        self.sup = supervisor
        self.loop = supervisor.loop
        self.path = path
        self.uid = os.getuid()
        self.conns: dict[int, _Connection] = {}
        self.refused = 0
        self.held = 0  # unsent answer bytes, all connections: within ANSWER_BUDGET
        self._paused: Timer | None = None  # accepting paused: out of file descriptors
        self._accept_logged = float("-inf")
        self.sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        try:
            self._bind(path)
            self.sock.listen(MAX_CONNECTIONS)
        except BaseException:
            self.sock.close()
            raise
        self.inode = os.stat(path).st_ino
        self.loop.add_reader(self.sock.fileno(), self._on_accept)
        supervisor.change_hooks.append(self._on_change)

    @classmethod
    def open(cls, supervisor: Supervisor) -> ControlServer | None:
        """The server, or None (after one log line) when the socket cannot be made."""
        try:
            path = socket_path(supervisor.runtime_dir)
        except OSError as exc:
            supervisor.log(f"control socket: disabled ({exc})")
            return None
        try:
            return cls(supervisor, path)
        except OSError as exc:
            supervisor.log(f"control socket: cannot listen on {path}: {exc}; running without it")
            return None

    def _bind(self, path: str) -> None:
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)  # stale, from an earlier pyinit in this container
        except FileNotFoundError:
            pass
        address, dir_fd = addressable(path)
        try:
            bind_unix(self.sock, address, path, 0o600)  # 0600 from the first moment
        finally:
            if dir_fd is not None:
                os.close(dir_fd)

    def close(self) -> None:
        """Stop serving: drop every connection, remove the socket file if still ours."""
        if self._on_change in self.sup.change_hooks:
            self.sup.change_hooks.remove(self._on_change)
        for conn in list(self.conns.values()):
            self._drop(conn)
        if self._paused is not None:
            self._paused.cancel()
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except OSError:
            pass

    # -- connections -----------------------------------------------------------
    def _on_accept(self) -> None:
        for _ in range(MAX_CONNECTIONS):
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # EMFILE, ENOBUFS...: the pending connection stays queued and the
                # listener readable; without a pause the loop would spin (and log)
                # until fds free up. Resume on a timer; say so at most every 10s.
                now = time.monotonic()
                quiet = now - self._accept_logged < ACCEPT_LOG_EVERY
                if not quiet:
                    self._accept_logged = now
                self.sup.log(f"control socket: accept failed: {exc}; retrying", int(quiet))
                self.loop.remove_reader(self.sock.fileno())
                self._paused = self.loop.call_later(ACCEPT_PAUSE, self._resume)
                return
            sock.setblocking(False)
            if len(self.conns) >= MAX_CONNECTIONS:
                self.refused += 1
                sock.close()
                continue
            conn = _Connection(sock)
            self.conns[conn.fd] = conn
            try:
                creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
                _pid, uid, _gid = _UCRED.unpack(creds)
            except OSError:
                uid = -1
            if uid not in (0, self.uid):
                self.sup.log(f"control socket: refused a client with uid {uid}", 1)
                self._answer(conn, {"ok": False, "error": "permission denied"})
                continue
            self.loop.add_reader(conn.fd, partial(self._on_readable, conn))
            conn.timer = self.loop.call_later(REQUEST_TIMEOUT, partial(self._drop, conn))

    def _resume(self) -> None:
        self._paused = None
        if self.sock.fileno() >= 0:
            self.loop.add_reader(self.sock.fileno(), self._on_accept)

    def _drop(self, conn: _Connection) -> None:
        if self.conns.pop(conn.fd, None) is None:
            return
        if conn.timer is not None:
            conn.timer.cancel()
        self.loop.remove_reader(conn.fd)
        self.loop.remove_writer(conn.fd)
        conn.sock.close()
        self.held -= conn.held
        conn.held = 0
        conn.outbuf = memoryview(b"")
        conn.body = None  # the answer's views of the log store go with it

    def _stop_reading(self, conn: _Connection) -> None:
        if conn.reading:
            conn.reading = False
            self.loop.remove_reader(conn.fd)

    def _on_readable(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(MAX_REQUEST + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if conn.waiting is not None or conn.pending or conn.answered:
            # Past the request: only an end of file matters. It may be a half-close
            # (the client still reads), so keep the answer coming; a gone client is
            # found out by the write.
            if not data:
                if conn.waiting is not None or conn.pending:
                    # pyinit's client never half-closes, so EOF during a held
                    # `wait` means it gave up: free the slot now, not at the
                    # wait's timeout (up to days), or 64 of them lock everyone out.
                    self._drop(conn)
                else:
                    self._stop_reading(conn)
            return
        if not data:
            if not conn.inbuf.strip():
                self._drop(conn)  # connected and left without asking
                return
            line = bytes(conn.inbuf)  # a last line without its newline still counts
        else:
            conn.inbuf += data
            end = conn.inbuf.find(b"\n")
            if end < 0:
                if len(conn.inbuf) > MAX_REQUEST:
                    self._stop_reading(conn)
                    self._answer(conn, _error(f"request too large (over {MAX_REQUEST} bytes)"))
                return
            line = bytes(conn.inbuf[: end + 1])
            if len(line) > MAX_REQUEST:
                self._stop_reading(conn)
                self._answer(conn, _error(f"request too large (over {MAX_REQUEST} bytes)"))
                return
        if not data:
            self._stop_reading(conn)
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self._handle(conn, line)

    def _handle(self, conn: _Connection, line: bytes) -> None:
        cmd = "?"
        try:
            request = parse_request(line)
            cmd = request.cmd
            answer = self._dispatch(conn, request)
        except RequestError as exc:
            answer = _error(str(exc))
        except Exception as exc:  # PID 1 must outlive its own bugs
            import traceback

            self.sup.log(f"control socket: internal error handling {cmd!r}: {exc!r}")
            self.sup.log(traceback.format_exc().rstrip(), 1)
            answer = _error(f"internal error: {exc!r}")
        if answer is not None:
            self._answer(conn, answer)

    # -- answering ---------------------------------------------------------------
    def _answer(
        self,
        conn: _Connection,
        answer: dict[str, Any],
        body: Iterator[bytearray] | None = None,
        size: int = 0,
    ) -> None:
        """Send ``answer``, then the ``size`` bytes ``body`` yields, then close."""
        # Identity, not the fd number: a dropped connection's fd may be reused by
        # a newer one by the time a held request is answered.
        if self.conns.get(conn.fd) is not conn or conn.answered:
            return
        conn.answered = True
        conn.waiting = None
        conn.pending = False
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        head = encode(answer)
        conn.outbuf = memoryview(head)
        conn.body = body
        conn.held = len(head) + size
        self.held += conn.held
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        while True:
            if not conn.outbuf:
                try:
                    chunk = next(conn.body, None) if conn.body is not None else None
                except Exception as exc:  # a bug making the body: drop, never linger
                    self.sup.log(f"control socket: internal error sending an answer: {exc!r}")
                    self._drop(conn)
                    return
                if chunk is None:
                    break
                conn.outbuf = memoryview(chunk)
                continue
            try:
                # MSG_NOSIGNAL: a client gone is EPIPE here, never a SIGPIPE that
                # the signal intake would forward to the services.
                sent = conn.sock.send(conn.outbuf, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                # The client is slow to read: finish when it is writable again,
                # and drop it if it stops reading altogether.
                if conn.timer is not None:
                    conn.timer.cancel()
                conn.timer = self.loop.call_later(WRITE_TIMEOUT, partial(self._drop, conn))
                self.loop.add_writer(conn.fd, partial(self._flush, conn))
                return
            except OSError:
                self._drop(conn)
                return
            conn.outbuf = conn.outbuf[sent:]
            conn.held -= sent
            self.held -= sent
        self._drop(conn)  # answered: one request per connection

    # -- requests ----------------------------------------------------------------
    def _dispatch(self, conn: _Connection, req: Request) -> dict[str, Any] | None:
        sup = self.sup
        if req.cmd == "status":
            return {"ok": True, "status": sup.snapshot()}
        if req.cmd == "health":
            from pyinit.status import verdict

            snapshot = sup.snapshot()
            problems = verdict(snapshot)
            count = len(snapshot.get("services", {}))
            return {"ok": True, "healthy": not problems, "problems": problems, "services": count}
        if req.cmd in ("start", "stop", "restart"):
            method = {
                "start": sup.start_services,
                "stop": sup.stop_services,
                "restart": sup.restart_services,
            }[req.cmd]
            done, errors = method(req.services)
            return {"ok": not errors, "done": done, "errors": errors}
        if req.cmd == "signal":
            done, errors = sup.signal_services(req.signal, req.services)
            return {"ok": not errors, "done": done, "errors": errors}
        if req.cmd == "reload":
            # Answered when the load (in a child process) is over.
            conn.pending = True
            sup.reload(lambda ok, messages: self._answer(conn, {"ok": ok, "messages": messages}))
            return None
        if req.cmd == "logs":
            name = req.services[0]
            if name not in sup.services and name not in sup.logs.recent:
                return _error(f"no service named {name!r}")
            store = sup.logs.recent.get(name)
            count, views = store.tail(req.lines) if store is not None else (0, [])
            size = sum(len(v) for v in views) + len(views)
            if self.held + size > ANSWER_BUDGET:
                return _error(
                    f"busy: {self.held} bytes of earlier answers are still unread; try again"
                )
            header = {"ok": True, "lines": count, "bytes": size}
            self._answer(conn, header, answer_chunks(views), size)
            return None
        # wait: answered now if it can be, else held open until a change settles it
        conn.waiting = req
        conn.timer = self.loop.call_later(req.timeout, partial(self._wait_expired, conn))
        self._check_wait(conn)
        return None

    def _busy(self) -> set[str]:
        sup = self.sup
        return set(sup.stop_set) | set(sup.restart_set) | set(sup.replacements)

    def _check_wait(self, conn: _Connection, snapshot: dict[str, Any] | None = None) -> None:
        req = conn.waiting
        if req is None:
            return
        waiting, failed = wait_verdict(snapshot or self.sup.snapshot(), req.services, self._busy())
        if failed:
            self._answer(conn, {"ok": False, "error": "; ".join(failed), "not_ready": waiting})
        elif not waiting:
            self._answer(conn, {"ok": True})

    def _wait_expired(self, conn: _Connection) -> None:
        conn.timer = None
        req = conn.waiting
        if req is None:
            return
        waiting, failed = wait_verdict(self.sup.snapshot(), req.services, self._busy())
        if not waiting and not failed:
            self._answer(conn, {"ok": True})
            return
        took = f"{req.timeout:g}s"
        answer = {
            "ok": False,
            "error": f"timed out after {took} waiting for {', '.join(waiting or req.services)}",
            "not_ready": waiting,
        }
        self._answer(conn, answer)

    def _on_change(self) -> None:
        waiters = [c for c in self.conns.values() if c.waiting is not None]
        if not waiters:
            return
        try:
            snapshot = self.sup.snapshot()
            for conn in waiters:
                self._check_wait(conn, snapshot)
        except Exception as exc:  # a change hook runs inside _reconcile: never raise
            self.sup.log(f"control socket: internal error checking waiters: {exc!r}")


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}
