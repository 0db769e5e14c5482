"""The client commands: ``pyinit status|start|stop|restart|signal|scale|reload|wait|logs|health``.

Each sends one request over the control socket of a running pyinit and prints
the answer. These run in an ordinary process (an operator's shell, a probe), so
they use a blocking socket with a timeout; they import neither PyYAML nor psutil.
Exit codes: 0 done, 1 the operation failed, 2 bad usage or pyinit not reachable.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinit.errors import UsageError
from pyinit.protocol import DEFAULT_LOG_LINES, BodyCut, Unreachable, send
from pyinit.snapshot import Snapshot, SnapshotError
from pyinit.statustable import format_status

CONNECT_TIMEOUT = 10.0  # for everything but ``wait``, which gets its own timeout on top
# A reload is answered once its load is over, within configload.LOAD_TIMEOUT (not
# imported: it would import PyYAML).
RELOAD_TIMEOUT = 120.0 + CONNECT_TIMEOUT
DEFAULT_WAIT = 60.0

USAGE = """\
Usage: pyinit status [--json]              the services: state, pid, uptime, CPU%, MEM, ...
       pyinit start|stop|restart NAME... [--timeout DURATION] [--no-wait]
                                            (stop and restart include dependants;
                                            start brings back what a stop took
                                            down) and wait until done (60s)
       pyinit signal SIG NAME...            send SIG to each service's process group
       pyinit scale NAME COUNT [--timeout DURATION] [--no-wait]
                                            run COUNT instances of scaled NAME
       pyinit reload                        re-read the config file and apply it
       pyinit wait --ready NAME... [--timeout DURATION]
                                            exit 0 once all are ready (default 60s)
       pyinit logs [NAME...] [-n N] [-f] [--since DURATION] [-t]
                                            the last N lines (default 100; 0: all
                                            kept) of NAME (none, or all: every
                                            service, prefixed); -f: then follow;
                                            -t: with arrival times
NAME may be a shell-style glob ('worker*') or 'all' for start, stop, restart,
signal, logs and wait.
       pyinit health                        exit 0 when every service is up and healthy

They talk to a running pyinit over $PYINIT_SOCKET, else control.sock in
$PYINIT_RUNTIME_DIR (default /run/pyinit, or /tmp/pyinit-UID). Exit status:
0 done, 1 the operation failed, 2 bad usage or pyinit not reachable.
"""


@dataclass(frozen=True)
class ClientCommand:
    """A parsed client command line: the request to send and how to show the answer."""

    request: dict[str, Any]
    json_output: bool = False
    timeout: float = CONNECT_TIMEOUT
    names: list[str] = field(default_factory=list)
    wait: float | None = None  # start/stop/restart: wait this long for what was done


def _take_value(args: list[str], i: int, flag: str) -> tuple[str, int]:
    arg = args[i]
    if "=" in arg and arg.startswith("--"):
        return arg.split("=", 1)[1], i + 1
    if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
        return arg[2:], i + 1  # -n5
    if i + 1 >= len(args):
        raise UsageError(f"option '{flag}' needs a value")
    return args[i + 1], i + 2


Flags = dict[str, str | None]
VALUED = {"--timeout": "timeout", "-n": "lines", "--lines": "lines", "--since": "since"}
PLAIN = {
    "--json": "json",
    "--ready": "ready",
    "-f": "follow",
    "--follow": "follow",
    "-t": "timestamps",
    "--timestamps": "timestamps",
    "--no-wait": "no_wait",
}
ALLOWED = {
    "status": {"json"},
    "wait": {"ready", "timeout"},
    "start": {"timeout", "no_wait"},
    "stop": {"timeout", "no_wait"},
    "restart": {"timeout", "no_wait"},
    "scale": {"timeout", "no_wait"},
    "logs": {"lines", "follow", "since", "timestamps"},
}


def _scan(cmd: str, args: list[str]) -> tuple[Flags, list[str]]:
    """(options, operands); options may come before or after the operands."""
    flags: Flags = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if arg == "--":
            operands.extend(args[i + 1 :])
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            i += 1
        elif key in VALUED:
            flags[VALUED[key]], i = _take_value(args, i, key)
        elif arg in PLAIN:
            flags[PLAIN[arg]] = None
            i += 1
        else:
            raise UsageError(f"{cmd}: unknown option {arg!r}")
    for key in flags:
        if key not in ALLOWED.get(cmd, set()):
            raise UsageError(f"{cmd}: option '{key}' does not apply")
    return flags, operands


def _no_operands(cmd: str, operands: list[str]) -> None:
    if operands:
        raise UsageError(f"{cmd}: unexpected argument {operands[0]!r}")


def _status(cmd: str, flags: Flags, operands: list[str]) -> ClientCommand:
    _no_operands(cmd, operands)
    return ClientCommand({"cmd": "status"}, json_output="json" in flags)


def _bare(cmd: str, flags: Flags, operands: list[str]) -> ClientCommand:
    _no_operands(cmd, operands)
    timeout = RELOAD_TIMEOUT if cmd == "reload" else CONNECT_TIMEOUT
    return ClientCommand({"cmd": cmd}, timeout=timeout)


def _timeout(cmd: str, flags: Flags) -> float:
    raw = flags.get("timeout")
    if raw is None:
        return DEFAULT_WAIT
    from pyinit.durations import parse_duration

    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise UsageError(f"{cmd}: --timeout: {exc}") from None


def _named(cmd: str, flags: Flags, operands: list[str]) -> ClientCommand:
    if not operands:
        raise UsageError(f"{cmd}: name at least one service")
    wait = None if "no_wait" in flags else _timeout(cmd, flags)
    return ClientCommand({"cmd": cmd, "services": operands}, names=operands, wait=wait)


def _signal(cmd: str, flags: Flags, operands: list[str]) -> ClientCommand:
    from pyinit.signals import parse_signal

    if len(operands) < 2:
        raise UsageError("signal: expected SIG NAME... (e.g. pyinit signal HUP web)")
    try:
        parse_signal(operands[0])
    except ValueError as exc:
        raise UsageError(f"signal: {exc}") from None
    request: dict[str, Any] = {"cmd": "signal", "signal": operands[0], "services": operands[1:]}
    return ClientCommand(request, names=operands[1:])


def _scale(cmd: str, flags: Flags, operands: list[str]) -> ClientCommand:
    count = operands[1] if len(operands) == 2 else ""  # digits int() takes: not "²"
    if not (count.isascii() and count.isdigit()) or len(count) > 9:
        raise UsageError("scale: expected NAME COUNT (e.g. pyinit scale web 3)")
    wait = None if "no_wait" in flags else _timeout(cmd, flags)
    request = {"cmd": cmd, "service": operands[0], "count": int(count)}
    return ClientCommand(request, names=operands[:1], wait=wait)


def _logs(cmd: str, flags: Flags, operands: list[str]) -> ClientCommand:
    raw = flags.get("lines")
    lines = DEFAULT_LOG_LINES
    if raw is not None:
        if not raw.isdigit():
            raise UsageError(f"logs: -n expects a number of lines; got {raw!r}")
        lines = int(raw)
    request: dict[str, Any] = {"cmd": "logs", "services": operands, "lines": lines}
    raw = flags.get("since")
    if raw is not None:
        from pyinit.durations import parse_duration

        if flags.get("lines") is None:
            request["lines"] = 0  # --since alone: every kept line since then
        try:
            request["since"] = time.time() - parse_duration(raw)
        except ValueError as exc:
            raise UsageError(f"logs: --since: {exc}") from None
    for key in ("follow", "timestamps"):
        if key in flags:
            request[key] = True
    return ClientCommand(request, names=operands)


def _wait(cmd: str, flags: Flags, operands: list[str]) -> ClientCommand:
    if "ready" not in flags:
        raise UsageError("wait: expected --ready NAME...")
    if not operands:
        raise UsageError("wait: name at least one service")
    timeout = _timeout(cmd, flags)
    request = {"cmd": "wait", "services": operands, "timeout": timeout}
    return ClientCommand(request, timeout=timeout + CONNECT_TIMEOUT, names=operands)


COMMANDS: dict[str, Callable[[str, Flags, list[str]], ClientCommand]] = {
    "status": _status,
    "reload": _bare,
    "health": _bare,
    "start": _named,
    "stop": _named,
    "restart": _named,
    "signal": _signal,
    "scale": _scale,
    "logs": _logs,
    "wait": _wait,
}


def parse_client_args(cmd: str, args: list[str]) -> ClientCommand:
    """``pyinit CMD ARGS`` -> the request. Options may come before or after names."""
    flags, operands = _scan(cmd, args)
    build = COMMANDS.get(cmd)
    if build is None:
        raise UsageError(f"unknown command {cmd!r}")
    return build(cmd, flags, operands)


# -- showing answers ------------------------------------------------------------------


Answer = dict[str, Any]


def _errors(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    for message in answer.get("errors", []):
        sys.stderr.write(f"pyinit: {message}\n")
    if answer.get("error"):
        sys.stderr.write(f"pyinit: {answer['error']}\n")
    return 1


def _show_status(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    status = answer.get("status", {})
    if parsed.json_output:  # the server's JSON as it came: its keys are a contract
        sys.stdout.write(json.dumps(status, indent=2) + "\n")
        return 0
    try:
        table = format_status(Snapshot.from_json(status))
    except SnapshotError as exc:
        sys.stderr.write(f"pyinit: not a status answer: {exc}\n")
        return 2
    sys.stdout.write(table)
    return 0


VERBS = {"start": "starting", "stop": "stopping", "restart": "restarting", "signal": "signalled"}


def _show_done(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    done = answer.get("done", [])
    if done:
        sys.stdout.write(f"{VERBS[cmd]}: {', '.join(done)}\n")
        sys.stdout.flush()
    if not answer.get("ok"):
        return _errors(cmd, parsed, answer)
    if parsed.wait is None or not done or cmd == "signal":
        return 0
    from pyinit.clientwait import await_done

    return await_done(cmd, done, parsed.wait)


def _show_scale(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    started, stopped = answer.get("started", []), answer.get("stopped", [])
    for verb, names in (("starting", started), ("stopping", stopped)):
        if names:
            sys.stdout.write(f"{verb}: {', '.join(names)}\n")
    sys.stdout.flush()
    if not answer.get("ok"):
        return _errors(cmd, parsed, answer)
    if parsed.wait is None:
        return 0
    from pyinit.clientwait import await_done

    deadline = time.monotonic() + parsed.wait
    code = await_done(cmd, started, parsed.wait, "ready") if started else 0
    left = deadline - time.monotonic()
    return code or (await_done(cmd, stopped, left, "gone") if stopped else 0)


def _show_reload(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    ok = bool(answer.get("ok"))
    stream = sys.stdout if ok else sys.stderr
    for message in answer.get("messages", []):
        stream.write(f"{'reload: ' if ok else 'pyinit: '}{message}\n")
    if ok:
        return 0
    if "error" in answer:
        return _errors(cmd, parsed, answer)
    sys.stderr.write("pyinit: reload refused; the running configuration is kept\n")
    return 1


def _show_logs(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    lines = answer.get("lines")
    if isinstance(lines, list):  # an older pyinit: the lines as text in the answer
        sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0  # the lines themselves went to stdout as they came (send)


def _show_wait(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    sys.stdout.write(f"ready: {', '.join(parsed.names)}\n")
    return 0


def _show_health(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    problems = answer.get("problems", [])
    for problem in problems:
        sys.stdout.write(f"unhealthy: {problem}\n")
    if problems or not answer.get("healthy"):
        return 1
    count = int(answer.get("services", 0))
    sys.stdout.write(f"healthy: {count} service{'s' if count != 1 else ''}\n")
    return 0


# How each command shows an answer with "ok": true (and the two that show any).
SHOW: dict[str, Callable[[str, ClientCommand, Answer], int]] = {
    "status": _show_status,
    "start": _show_done,
    "stop": _show_done,
    "restart": _show_done,
    "signal": _show_done,
    "scale": _show_scale,
    "reload": _show_reload,
    "logs": _show_logs,
    "wait": _show_wait,
    "health": _show_health,
}
SHOWS_FAILURES = ("start", "stop", "restart", "signal", "scale", "reload")


def show(cmd: str, parsed: ClientCommand, answer: Answer) -> int:
    """Print ``answer`` for ``cmd``; the exit code."""
    if not answer.get("ok") and cmd not in SHOWS_FAILURES:
        return _errors(cmd, parsed, answer)
    return SHOW.get(cmd, _errors)(cmd, parsed, answer)


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
    except KeyboardInterrupt:  # ^C ends `pyinit logs -f`, as it ends `tail -f`
        return 130
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
