"""The control socket's protocol: where the socket is, what goes over it, and the
client's end of one exchange (``send``: a blocking socket with a timeout, for an
operator's shell or a probe, never PID 1).

Both ends import this module: the server (control.py) and the client commands
(client.py), which must not import the server. The standard library only, and
nothing that reads a config.

Each connection carries one request and one answer, each a JSON object on one
line (``encode``); then the server closes. A request is ``{"cmd": C, ...}`` with
C one of COMMANDS (``parse_request`` says what each takes). An answer has
``"ok"``, and, when it is false, ``"error"`` (or per-service ``"errors"``):

- status: ``{"ok":true,"status":SNAPSHOT}`` (snapshot.Snapshot.to_json())
- health: ``{"ok":true,"healthy":B,"problems":[...],"services":N}``
- start|stop|restart|signal: ``{"ok":B,"done":[names],"errors":[messages]}``
- reload: ``{"ok":B,"messages":[...]}``, once the new config was loaded (or not)
- wait: ``{"ok":true}``, or ``{"ok":false,"error":...,"not_ready":[names]}``;
  with ``"until": "stopped"`` it waits for the services to have no process left
  and none about to start (what ``pyinit stop`` waits for)
- logs: the header ``{"ok":true,"lines":N,"bytes":M}``, then M raw bytes: the N
  lines exactly as the service wrote them, each ending with a newline. A kept
  line never holds a newline (lines are split there), so nothing needs escaping.
  ``"services"`` (names, globs, ``all``; none: every service) prefixes each line
  with its service's when there are several; ``"timestamps"`` puts the arrival
  time first; ``"since"`` drops older lines. With ``"follow": true`` the header
  is ``{"ok":true,"follow":true,"lines":N}`` and the bytes go on, as lines
  arrive, until the client closes; a reader that fell behind gets a line
  ``pyinit: missed N lines: ...`` where lines were dropped.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from pyinit.rundir import addressable

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024  # bytes, newline included
DEFAULT_LOG_LINES = 100
DEFAULT_WAIT_TIMEOUT = 60.0
MAX_WAIT_TIMEOUT = 7 * 24 * 3600.0
MAX_ANSWER = 64 * 1024 * 1024  # an answer line longer than this is not one
RUNTIME_DIRS = ("/run/pyinit", "/tmp/pyinit-{uid}", "/tmp/pyinit-0")  # as rundir.choose tries

COMMANDS = (
    "status",
    "start",
    "stop",
    "restart",
    "signal",
    "reload",
    "logs",
    "health",
    "wait",
    "scale",
)


class RequestError(ValueError):
    """A request the server refuses; the message goes back to the client."""


@dataclass(frozen=True)
class Request:
    cmd: str
    services: list[str] = field(default_factory=list)
    signal: int = 0
    lines: int = DEFAULT_LOG_LINES
    timeout: float = DEFAULT_WAIT_TIMEOUT
    follow: bool = False  # logs: keep the connection and send new lines as they come
    since: float = 0.0  # logs: only lines that arrived at or after this (Unix time)
    timestamps: bool = False  # logs: each line after its arrival time (RFC 3339)
    # wait: "ready", "stopped" (no process left, none coming) or "gone" (removed)
    until: str = "ready"
    count: int = 0  # scale: how many instances


# -- requests ------------------------------------------------------------------------


def _services(obj: dict[str, Any], *, required: bool) -> list[str]:
    raw = obj.get("services")
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise RequestError('"services" must be a list of service names')
    if required and not raw:
        raise RequestError('"services" names no service')
    return list(dict.fromkeys(raw))  # duplicates once, order kept


def _plain(cmd: str, obj: dict[str, Any]) -> Request:
    return Request(cmd)


def _named(cmd: str, obj: dict[str, Any]) -> Request:
    return Request(cmd, services=_services(obj, required=True))


def _signal(cmd: str, obj: dict[str, Any]) -> Request:
    from pyinit.signals import parse_signal

    raw = obj.get("signal")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise RequestError('"signal" must be a signal name or number')
    try:
        signum = parse_signal(str(raw))
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    return Request(cmd, services=_services(obj, required=True), signal=signum)


def _logs(cmd: str, obj: dict[str, Any]) -> Request:
    name = obj.get("service")
    if name is not None:  # the one-service form of older clients
        if not isinstance(name, str) or not name:
            raise RequestError('"service" must be a service name')
        names = [name]
    else:
        names = _services(obj, required=False)  # none: every service
    lines = obj.get("lines", DEFAULT_LOG_LINES)
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
        raise RequestError('"lines" must be a number >= 0 (0: every line kept)')
    since = obj.get("since", 0.0)
    if isinstance(since, bool) or not isinstance(since, int | float) or not math.isfinite(since):
        raise RequestError('"since" must be a Unix time in seconds')
    flags = {key: obj.get(key, False) for key in ("follow", "timestamps")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise RequestError(f'"{key}" must be true or false')
    return Request(cmd, services=names, lines=lines, since=float(since), **flags)


def _wait(cmd: str, obj: dict[str, Any]) -> Request:
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
    services = _services(obj, required=True)
    until = obj.get("until", "ready")
    if until not in ("ready", "stopped", "gone"):
        raise RequestError('"until" must be "ready", "stopped" or "gone"')
    return Request(
        cmd, services=services, timeout=min(float(timeout), MAX_WAIT_TIMEOUT), until=until
    )


def _scale(cmd: str, obj: dict[str, Any]) -> Request:
    name = obj.get("service")
    if not isinstance(name, str) or not name:
        raise RequestError('"service" must be the name of a scaled service')
    count = obj.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise RequestError('"count" must be a whole number >= 0')
    return Request(cmd, services=[name], count=count)


_PARSERS: dict[str, Callable[[str, dict[str, Any]], Request]] = {
    "status": _plain,
    "reload": _plain,
    "health": _plain,
    "start": _named,
    "stop": _named,
    "restart": _named,
    "signal": _signal,
    "logs": _logs,
    "wait": _wait,
    "scale": _scale,
}


def parse_request(line: bytes) -> Request:
    """One request line -> Request, or RequestError saying what is wrong with it."""
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
    parser = _PARSERS.get(cmd)
    if parser is None:
        raise RequestError(f"unknown cmd {cmd!r}; expected one of {', '.join(COMMANDS)}")
    return parser(cmd, obj)


# -- answers -------------------------------------------------------------------------


def encode(message: dict[str, Any]) -> bytes:
    """A request or an answer as its line on the wire."""
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


# -- where the socket is -------------------------------------------------------------


def server_socket_path(runtime_dir: Callable[[], str]) -> str:
    """Where the server listens: ``$PYINIT_SOCKET``, else ``control.sock`` in the
    runtime directory (``runtime_dir()`` may create it, or raise OSError)."""
    return os.environ.get("PYINIT_SOCKET") or os.path.join(runtime_dir(), SOCKET_NAME)


def client_socket_path() -> str:
    """Where a client finds the server, without creating anything.

    $PYINIT_SOCKET; else control.sock in $PYINIT_RUNTIME_DIR; else the first of
    /run/pyinit and /tmp/pyinit-UID (ours, then root's) that holds one.
    """
    explicit = os.environ.get("PYINIT_SOCKET")
    if explicit:
        return explicit
    directory = os.environ.get("PYINIT_RUNTIME_DIR")
    if directory:
        return os.path.join(directory, SOCKET_NAME)
    dirs = dict.fromkeys(d.format(uid=os.getuid()) for d in RUNTIME_DIRS)
    candidates = [os.path.join(d, SOCKET_NAME) for d in dirs]
    for path in candidates:
        if os.path.exists(path):
            return path
    return candidates[0]


# -- the client's end of one exchange -----------------------------------------------


class Unreachable(Exception):
    """No answer from pyinit; the message names the socket path."""


class BodyCut(Exception):
    """The reader of a ``logs`` answer's lines went away (a closed pipe)."""


def _connect(path: str, timeout: float) -> socket.socket:
    try:
        address, dir_fd = addressable(path)
    except OSError as exc:
        raise Unreachable(f"cannot reach pyinit at {path}: {exc.strerror or exc}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        raise Unreachable(f"cannot reach pyinit at {path}: {why}") from None
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return sock


def _read_head(sock: socket.socket, path: str, timeout: float) -> tuple[bytes, bytes]:
    """The answer line, and whatever of the body came with it."""
    data = b""
    try:
        while b"\n" not in data and len(data) < MAX_ANSWER:
            chunk = sock.recv(1024 * 1024)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise Unreachable(f"no answer from pyinit at {path} within {timeout:g}s") from None
    except OSError as exc:
        if b"\n" not in data:
            raise Unreachable(f"pyinit at {path}: {exc.strerror or exc}") from None
    head, _, rest = data.partition(b"\n")
    return head, rest


def send(request: dict[str, Any], timeout: float, body: BinaryIO | None = None) -> dict[str, Any]:
    """One request, one answer. Raises Unreachable naming the socket.

    An answer with ``"bytes": M`` (``logs``) is followed by M raw bytes: they are
    copied to ``body`` as they arrive, never held whole.
    """
    path = client_socket_path()
    sock = _connect(path, timeout)
    try:
        try:
            sock.sendall(encode(request))
        except OSError:
            pass  # refused before it read the request: the answer says why
        head, rest = _read_head(sock, path, timeout)
        answer = _parse_answer(head, path)
        size = answer.get("bytes")
        if body is not None and answer.get("ok") and isinstance(size, int):
            _copy_body(sock, rest, size, body, path, timeout)
        elif body is not None and answer.get("ok") and answer.get("follow"):
            _copy_stream(sock, rest, body, path)
    finally:
        sock.close()
    return answer


def _parse_answer(head: bytes, path: str) -> dict[str, Any]:
    try:
        answer = json.loads(head)
    except ValueError:
        raise Unreachable(f"pyinit at {path} gave no valid answer ({head[:80]!r})") from None
    if not isinstance(answer, dict):
        raise Unreachable(f"pyinit at {path} gave no valid answer ({head[:80]!r})")
    if answer.get("ok") is False and answer.get("error") == "permission denied":
        raise Unreachable(f"pyinit at {path}: permission denied (root or pyinit's own user only)")
    return answer


def _copy_body(
    sock: socket.socket, first: bytes, size: int, body: BinaryIO, path: str, timeout: float
) -> None:
    """The ``size`` bytes after the answer line, ``first`` of them already read, to ``body``."""
    got = 0
    chunk = first
    while True:
        chunk = chunk[: size - got]
        try:
            body.write(chunk)
        except OSError:
            raise BodyCut from None
        got += len(chunk)
        if got >= size:
            break
        try:
            chunk = sock.recv(1024 * 1024)
        except TimeoutError:
            raise Unreachable(f"pyinit at {path}: the answer stalled for {timeout:g}s") from None
        except OSError as exc:
            raise Unreachable(f"pyinit at {path}: {exc.strerror or exc}") from None
        if not chunk:
            raise Unreachable(f"pyinit at {path}: the answer ended after {got} of {size} bytes")
    try:
        body.flush()
    except OSError:
        raise BodyCut from None


def _copy_stream(sock: socket.socket, first: bytes, body: BinaryIO, path: str) -> None:
    """A follow answer: every byte to ``body`` as it comes, until pyinit closes."""
    sock.settimeout(None)  # lines come when the services write them
    chunk = first
    while True:
        try:
            body.write(chunk)
            body.flush()
        except OSError:
            raise BodyCut from None
        try:
            chunk = sock.recv(1024 * 1024)
        except OSError as exc:
            raise Unreachable(f"pyinit at {path}: {exc.strerror or exc}") from None
        if not chunk:
            return
