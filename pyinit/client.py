"""The client commands: ``pyinit status|start|stop|restart|signal|reload|wait|logs|health``.

Each sends one request over the control socket of a running pyinit and prints
the answer. These run in an ordinary process (an operator's shell, a probe), so
they use a blocking socket with a timeout; they import neither PyYAML nor psutil.
Exit codes: 0 done, 1 the operation failed, 2 bad usage or pyinit not reachable.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from pyinit.control import DEFAULT_LOG_LINES, SOCKET_NAME, addressable, encode
from pyinit.errors import UsageError

CONNECT_TIMEOUT = 10.0  # for everything but ``wait``, which gets its own timeout on top
# A reload is answered once its load is over, within configload.LOAD_TIMEOUT (not
# imported: it would import PyYAML).
RELOAD_TIMEOUT = 120.0 + CONNECT_TIMEOUT
DEFAULT_WAIT = 60.0
MAX_ANSWER = 64 * 1024 * 1024

USAGE = """\
Usage: pyinit status [--json]              the services: state, pid, uptime, restarts, ...
       pyinit start|stop|restart NAME...    (stop and restart include dependants)
       pyinit signal SIG NAME...            send SIG to each service's process group
       pyinit reload                        re-read the config file and apply it
       pyinit wait --ready NAME... [--timeout DURATION]
                                            exit 0 once all are ready (default 60s)
       pyinit logs NAME [-n N]              the service's last N lines (default 100;
                                            0: all that are kept)
       pyinit health                        exit 0 when every service is up and healthy

They talk to a running pyinit over $PYINIT_SOCKET, else control.sock in
$PYINIT_RUNTIME_DIR (default /run/pyinit, or /tmp/pyinit-UID). Exit status:
0 done, 1 the operation failed, 2 bad usage or pyinit not reachable.
"""


class Unreachable(Exception):
    """No answer from pyinit; the message names the socket path."""


@dataclass(frozen=True)
class ClientCommand:
    """A parsed client command line: the request to send and how to show the answer."""

    request: dict[str, Any]
    json_output: bool = False
    timeout: float = CONNECT_TIMEOUT
    names: list[str] = field(default_factory=list)


def _take_value(args: list[str], i: int, flag: str) -> tuple[str, int]:
    arg = args[i]
    if "=" in arg and arg.startswith("--"):
        return arg.split("=", 1)[1], i + 1
    if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
        return arg[2:], i + 1  # -n5
    if i + 1 >= len(args):
        raise UsageError(f"option '{flag}' needs a value")
    return args[i + 1], i + 2


def parse_client_args(cmd: str, args: list[str]) -> ClientCommand:
    """``pyinit CMD ARGS`` -> the request. Options may come before or after names."""
    flags: dict[str, str | None] = {}
    operands: list[str] = []
    valued = {"--timeout": "timeout", "-n": "lines", "--lines": "lines"}
    plain = {"--json": "json", "--ready": "ready"}
    i = 0
    while i < len(args):
        arg = args[i]
        key = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if arg == "--":
            operands.extend(args[i + 1 :])
            break
        if arg.startswith("-") and arg != "-":
            if key in valued:
                value, i = _take_value(args, i, key)
                flags[valued[key]] = value
                continue
            if arg in plain:
                flags[plain[arg]] = None
                i += 1
                continue
            raise UsageError(f"pyinit {cmd}: unknown option {arg!r}")
        operands.append(arg)
        i += 1
    allowed = {
        "status": {"json"},
        "wait": {"ready", "timeout"},
        "logs": {"lines"},
    }.get(cmd, set())
    for key in flags:
        if key not in allowed:
            raise UsageError(f"pyinit {cmd}: option '{key}' does not apply")

    if cmd == "status":
        _no_operands(cmd, operands)
        return ClientCommand({"cmd": "status"}, json_output="json" in flags)
    if cmd in ("reload", "health"):
        _no_operands(cmd, operands)
        timeout = RELOAD_TIMEOUT if cmd == "reload" else CONNECT_TIMEOUT
        return ClientCommand({"cmd": cmd}, timeout=timeout)
    if cmd in ("start", "stop", "restart"):
        if not operands:
            raise UsageError(f"pyinit {cmd}: name at least one service")
        return ClientCommand({"cmd": cmd, "services": operands}, names=operands)
    if cmd == "signal":
        from pyinit.signals import parse_signal

        if len(operands) < 2:
            raise UsageError("pyinit signal: expected SIG NAME... (e.g. pyinit signal HUP web)")
        try:
            parse_signal(operands[0])
        except ValueError as exc:
            raise UsageError(f"pyinit signal: {exc}") from None
        request: dict[str, Any] = {"cmd": "signal", "signal": operands[0], "services": operands[1:]}
        return ClientCommand(request, names=operands[1:])
    if cmd == "logs":
        if len(operands) != 1:
            raise UsageError("pyinit logs: expected one service name")
        raw = flags.get("lines")
        lines = DEFAULT_LOG_LINES
        if raw is not None:
            if not raw.isdigit():
                raise UsageError(f"pyinit logs: -n expects a number of lines; got {raw!r}")
            lines = int(raw)
        return ClientCommand({"cmd": "logs", "service": operands[0], "lines": lines})
    if cmd == "wait":
        if "ready" not in flags:
            raise UsageError("pyinit wait: expected --ready NAME...")
        if not operands:
            raise UsageError("pyinit wait: name at least one service")
        timeout = DEFAULT_WAIT
        raw = flags.get("timeout")
        if raw is not None:
            from pyinit.durations import parse_duration

            try:
                timeout = parse_duration(raw)
            except ValueError as exc:
                raise UsageError(f"pyinit wait: --timeout: {exc}") from None
        request = {"cmd": "wait", "services": operands, "timeout": timeout}
        return ClientCommand(request, timeout=timeout + CONNECT_TIMEOUT, names=operands)
    raise UsageError(f"unknown command {cmd!r}")


def _no_operands(cmd: str, operands: list[str]) -> None:
    if operands:
        raise UsageError(f"pyinit {cmd}: unexpected argument {operands[0]!r}")


# -- talking to pyinit ------------------------------------------------------------


def socket_path() -> str:
    """Where pyinit listens, as the server decides it, without creating anything.

    $PYINIT_SOCKET; else control.sock in $PYINIT_RUNTIME_DIR; else the first of
    /run/pyinit and /tmp/pyinit-UID (ours, then root's) that holds one.
    """
    explicit = os.environ.get("PYINIT_SOCKET")
    if explicit:
        return explicit
    directory = os.environ.get("PYINIT_RUNTIME_DIR")
    if directory:
        return os.path.join(directory, SOCKET_NAME)
    candidates = [
        os.path.join(d, SOCKET_NAME)
        for d in dict.fromkeys(["/run/pyinit", f"/tmp/pyinit-{os.getuid()}", "/tmp/pyinit-0"])
    ]
    for path in candidates:
        if os.path.exists(path):
            return path
    return candidates[0]


class BodyCut(Exception):
    """The reader of a ``logs`` answer's lines went away (a closed pipe)."""


def send(
    request: dict[str, Any], timeout: float = CONNECT_TIMEOUT, body: BinaryIO | None = None
) -> dict[str, Any]:
    """One request, one answer. Raises Unreachable naming the socket.

    An answer with ``"bytes": M`` (``logs``) is followed by M raw bytes: they are
    copied to ``body`` as they arrive, never held whole.
    """
    path = socket_path()
    try:
        address, dir_fd = addressable(path)
    except OSError as exc:
        raise Unreachable(f"cannot reach pyinit at {path}: {exc.strerror or exc}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(address)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise Unreachable(f"cannot reach pyinit at {path}: {why}") from None
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        try:
            sock.sendall(encode(request))
        except OSError:
            pass  # refused before it read the request: the answer says why
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
        answer = _parse_answer(head, path)
        size = answer.get("bytes")
        if body is not None and answer.get("ok") and isinstance(size, int):
            _copy_body(sock, rest, size, body, path, timeout)
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


# -- showing answers ------------------------------------------------------------------


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


STATUS_COLUMNS = ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "HEALTH", "LAST EXIT")


def format_status(snapshot: dict[str, Any]) -> str:
    """A table like ``docker compose ps``: one row per service, in config order."""
    rows = [list(STATUS_COLUMNS)]
    for name, svc in snapshot.get("services", {}).items():
        state = str(svc.get("state", "?"))
        last = svc.get("last_exit")
        rows.append(
            [
                name,
                state,
                str(svc["pid"]) if svc.get("pid") is not None else "-",
                format_uptime(svc.get("uptime")),
                str(svc.get("restarts", 0)),
                "yes" if svc.get("ready") else "no",
                str(svc.get("health") or "-"),
                str(last) if last is not None else "-",
            ]
        )
    return _table(rows) + format_jobs(snapshot)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines) + "\n"


JOB_COLUMNS = ("JOB", "SCHEDULE", "LAST RUN", "FINISHED", "NEXT RUN", "RUNS OK/FAILED/SKIPPED")


def format_jobs(snapshot: dict[str, Any]) -> str:
    """Scheduled jobs under the table: last result, next run (local time, TZ)."""
    import time

    def when(epoch: object) -> str:
        if not isinstance(epoch, int | float):
            return "-"
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))

    rows = [list(JOB_COLUMNS)]
    for name, svc in snapshot.get("services", {}).items():
        job = svc.get("job")
        if not isinstance(job, dict):
            continue
        result = job.get("last_result")
        if result is not None and job.get("last_exit") is not None:
            result = f"{result} (exit {job['last_exit']})"
        runs = job.get("runs") or {}
        counts = "/".join(str(runs.get(k, 0)) for k in ("success", "failure", "skipped"))
        rows.append(
            [
                name,
                str(job.get("schedule") or "-"),
                result or "never ran",
                when(job.get("last_finished")),
                "paused" if job.get("paused") else when(job.get("next_run")),
                counts,
            ]
        )
    return "\n" + _table(rows) if len(rows) > 1 else ""


def _errors(answer: dict[str, Any]) -> int:
    for message in answer.get("errors", []):
        sys.stderr.write(f"pyinit: {message}\n")
    if answer.get("error"):
        sys.stderr.write(f"pyinit: {answer['error']}\n")
    return 1


VERBS = {"start": "starting", "stop": "stopping", "restart": "restarting", "signal": "signalled"}


def show(cmd: str, parsed: ClientCommand, answer: dict[str, Any]) -> int:
    """Print ``answer`` for ``cmd``; the exit code."""
    out = sys.stdout
    if cmd == "status":
        if not answer.get("ok"):
            return _errors(answer)
        status = answer.get("status", {})
        out.write(
            json.dumps(status, indent=2) + "\n" if parsed.json_output else format_status(status)
        )
        return 0
    if cmd in VERBS:
        done = answer.get("done", [])
        if done:
            out.write(f"{VERBS[cmd]}: {', '.join(done)}\n")
        return 0 if answer.get("ok") else _errors(answer)
    if cmd == "reload":
        stream = out if answer.get("ok") else sys.stderr
        for message in answer.get("messages", []):
            stream.write(f"{'reload: ' if answer.get('ok') else 'pyinit: '}{message}\n")
        if answer.get("ok"):
            return 0
        if "error" in answer:
            return _errors(answer)
        sys.stderr.write("pyinit: reload refused; the running configuration is kept\n")
        return 1
    if cmd == "logs":
        if not answer.get("ok"):
            return _errors(answer)
        lines = answer.get("lines")
        if isinstance(lines, list):  # an older pyinit: the lines as text in the answer
            out.write("".join(f"{line}\n" for line in lines))
        return 0  # the lines themselves went to stdout as they came (send)
    if cmd == "wait":
        if answer.get("ok"):
            out.write(f"ready: {', '.join(parsed.names)}\n")
            return 0
        return _errors(answer)
    if cmd == "health":
        if not answer.get("ok"):
            return _errors(answer)
        problems = answer.get("problems", [])
        for problem in problems:
            out.write(f"unhealthy: {problem}\n")
        if problems or not answer.get("healthy"):
            return 1
        count = int(answer.get("services", 0))
        out.write(f"healthy: {count} service{'s' if count != 1 else ''}\n")
        return 0
    return _errors(answer)


def client_main(cmd: str, args: list[str]) -> int:
    """``pyinit CMD ARGS`` for a client command; raises UsageError on a bad command line."""
    if args and args[0] in ("-h", "--help"):
        if cmd == "health":
            from pyinit.status import health_main

            return health_main(args)
        sys.stdout.write(USAGE)
        return 0
    parsed = parse_client_args(cmd, args)
    body = None
    if cmd == "logs":
        if sys.stdout is None:  # started with stdout closed: nowhere to put the lines
            sys.stderr.write("pyinit: logs: stdout is closed\n")
            return 1
        body = sys.stdout.buffer
    try:
        answer = send(parsed.request, parsed.timeout, body)
    except BodyCut:
        # `pyinit logs web | head`: the reader is gone, as for any filter. Point
        # stdout at /dev/null so the flush at exit does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    except Unreachable as exc:
        if cmd == "health":
            # No live answer (no socket, or not allowed to use it): the status
            # file says as much, and says whether pyinit is still alive.
            from pyinit.status import health_main

            return health_main(args)
        sys.stderr.write(f"pyinit: {exc}\n")
        return 2
    return show(cmd, parsed, answer)
