"""HTTP for orchestrators: /healthz, /readyz, /metrics and /status, served from pyinit's loop.

A deliberately tiny HTTP/1.0 server: read the request line and headers, answer,
close. ``http.server`` and ``socketserver`` block on every read and write (or
need threads), and PID 1 must never wait on a client, so every socket here is
non-blocking and driven by the loop (netserve.Server). A slow or hostile client
costs at most one of ``MAX_CONNECTIONS`` slots for ``DEADLINE`` seconds: its
request is capped at ``MAX_REQUEST`` bytes, its deadline is a loop timer, a
response it does not read is dropped at that deadline, and when every slot is
taken the oldest connection is closed to make room for the new one.

The endpoints read the supervisor's snapshot (``Supervisor.snapshot()``), so
they say exactly what ``pyinit health`` says (``status.verdict``).
"""

from __future__ import annotations

import errno
import json
import socket
import time
from collections.abc import Callable, Collection
from http import HTTPStatus

from pyinit.addresses import parse_address
from pyinit.loop import EventLoop
from pyinit.metrics import render_metrics
from pyinit.netserve import Connection, Server
from pyinit.snapshot import ServiceState, Snapshot
from pyinit.status import verdict

MAX_REQUEST = 8192  # request line + headers
DEADLINE = 5.0  # seconds a connection may live, from accept to the last byte written
MAX_CONNECTIONS = 64

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"

Response = tuple[int, str, bytes]  # status, content type, body
Handler = Callable[[str, str], Response]  # (method, path) -> response
Log = Callable[..., None]


class BadRequest(Exception):
    """A request pyinit will not serve; ``status`` is 400 or 431."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def listen(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket; ``host`` "" listens on every interface
    (IPv6 and IPv4 when the kernel has IPv6, else IPv4 only)."""
    if host:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
        )
        targets = [(family, addr) for family, _, _, _, addr in infos]
    else:
        targets = [(socket.AF_INET6, ("::", port)), (socket.AF_INET, ("0.0.0.0", port))]
    error: OSError = OSError(errno.EADDRNOTAVAIL, f"no address for {host!r}")
    for family, addr in targets:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:  # no IPv6 in this kernel or namespace
            error = exc
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and not host:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(addr)
            sock.listen(MAX_CONNECTIONS)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise  # the next family would fail the same way, less clearly
            error = exc
    raise error


# -- requests ------------------------------------------------------------------------


def _head_end(buf: bytes | bytearray) -> int:
    """Index just past the blank line ending the headers, or -1. Bare LF is accepted."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := buf.find(sep)) >= 0]
    return min(ends) if ends else -1


def parse_request(head: bytes) -> tuple[str, str]:
    """The request line and headers -> (method, path without the query). Raises BadRequest."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400, "the request is not ASCII") from None
    lines = [line.rstrip("\r") for line in text.rstrip("\r\n").split("\n")]
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(400, "expected a request line 'METHOD /path HTTP/1.x'")
    method, target, version = parts
    if not method.isalpha() or not method.isupper():
        raise BadRequest(400, f"bad method {method!r}")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest(400, f"unsupported protocol {version!r}")
    if not target.startswith("/"):
        raise BadRequest(400, f"expected a path starting with '/'; got {target!r}")
    for line in lines[1:]:
        name, sep, _ = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name or "\t" in name:
            raise BadRequest(400, f"bad header line {line!r}")
    return method, target.split("?", 1)[0].split("#", 1)[0]


def render_response(status: int, content_type: str, body: bytes, head_only: bool = False) -> bytes:
    phrase = HTTPStatus(status).phrase
    headers = [
        f"HTTP/1.0 {status} {phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if status == 405:
        headers.append("Allow: GET, HEAD")
    head = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + body


# -- the server ----------------------------------------------------------------------


class HttpServer(Server[Connection]):
    """Accepts connections on ``sock`` and answers each with ``handler(method, path)``."""

    label = "http"
    max_connections = MAX_CONNECTIONS
    max_request = MAX_REQUEST
    recv_size = 4096
    request_timeout = DEADLINE  # and no answer_timeout: the deadline is the whole life's

    def __init__(self, loop: EventLoop, sock: socket.socket, handler: Handler, log: Log) -> None:
        self.handler = handler
        super().__init__(loop, sock, log)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def connection(self, sock: socket.socket) -> Connection:
        return Connection(sock)

    def evictable(self, conn: Connection) -> bool:
        # Nothing is promised over HTTP: a probe or a scrape asks again. When every
        # slot is taken the oldest connection makes room, so clients that hold
        # connections open cannot lock the probes out; they only churn.
        return True

    def request_end(self, buf: bytearray) -> int:
        return _head_end(buf)

    def on_too_large(self, conn: Connection) -> None:
        self.respond(conn, 431, TEXT, b"request header fields too large\n")

    def on_request(self, conn: Connection, head: bytes) -> None:
        self.stop_reading(conn)  # a second, pipelined request goes with the connection
        try:
            method, path = parse_request(head)
        except BadRequest as exc:
            self.respond(conn, exc.status, TEXT, f"{exc}\n".encode())
            return
        try:
            status, content_type, body = self.handler(method, path)
        except Exception as exc:  # a bug in an endpoint must not take PID 1 down
            self.log(f"http: internal error serving {method} {path}: {exc!r}")
            self.drop(conn)
            return
        self.respond(conn, status, content_type, body, head_only=method == "HEAD")

    def respond(
        self, conn: Connection, status: int, content_type: str, body: bytes, head_only: bool = False
    ) -> None:
        self.send(conn, render_response(status, content_type, body, head_only))


def serve(
    loop: EventLoop,
    address: str,
    snapshot: Callable[[], Snapshot],
    critical: Callable[[], Collection[str]],
    log: Log,
) -> HttpServer:
    """Listen on ``address`` (``[host]:port``) and serve the endpoints from the loop.
    Raises ValueError for a bad address, OSError when it cannot be bound."""
    host, port = parse_address(address)
    server = HttpServer(loop, listen(host, port), Endpoints(snapshot, critical), log)
    bound_host, bound_port = server.address
    where = f"[{bound_host}]" if ":" in bound_host else bound_host
    log(f"serving HTTP on {where}:{bound_port} (/healthz /readyz /metrics /status)")
    return server


# -- the endpoints -------------------------------------------------------------------


class Endpoints:
    """(method, path) -> response, from the supervisor's snapshot."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        critical: Callable[[], Collection[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.snapshot = snapshot
        self.critical = critical
        self.clock = clock

    def __call__(self, method: str, path: str) -> Response:
        routes: dict[str, Callable[[], Response]] = {
            "/healthz": self.healthz,
            "/readyz": self.readyz,
            "/metrics": self.metrics,
            "/status": self.status,
        }
        route = routes.get(path)
        if route is None:
            return 404, TEXT, f"not found: {path}; try /healthz /readyz /metrics /status\n".encode()
        if method not in ("GET", "HEAD"):
            return 405, TEXT, f"method {method} not allowed; use GET\n".encode()
        return route()

    def healthz(self) -> Response:
        problems = liveness(self.snapshot(), self.critical())
        if problems:
            return 503, TEXT, "".join(f"{p}\n" for p in problems).encode()
        return 200, TEXT, b"ok\n"

    def readyz(self) -> Response:
        problems = verdict(self.snapshot())
        if problems:
            return 503, TEXT, "".join(f"{p}\n" for p in problems).encode()
        return 200, TEXT, b"ok\n"

    def metrics(self) -> Response:
        return 200, PROMETHEUS, render_metrics(self.snapshot(), self.clock()).encode()

    def status(self) -> Response:
        text = json.dumps(self.snapshot().to_json(), indent=1, sort_keys=True)
        return 200, JSON, (text + "\n").encode()


def liveness(snapshot: Snapshot, critical: Collection[str]) -> list[str]:
    """Why pyinit is not alive in the orchestrator's sense: a critical service failed.
    (If pyinit itself were stuck, nobody would answer the probe at all.)"""
    problems = []
    for name, svc in snapshot.services.items():
        if name in critical and svc.state is ServiceState.FAILED:
            reason = f" ({svc.reason})" if svc.reason else ""
            problems.append(f"critical service {name} failed{reason}")
    return problems
