"""``pyinit top``: a live view of a running pyinit's services, in the client's
terminal (never in PID 1). Textual is an optional extra: ``tui``.

This module imports neither Textual nor the app until the checks pass, so a
missing extra or a missing terminal costs one line, not a traceback.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

from pyinit.errors import UsageError

DEFAULT_INTERVAL = 1.0
TIMEOUT = 10.0  # for one answer; the screen stays responsive meanwhile (a worker thread)
USAGE = """\
Usage: pyinit top [--interval DURATION]

A live table of a running pyinit's services (state, ready, health, restarts,
uptime, CPU%, MEM, last exit) and the log of the selected one. Refreshes every
DURATION (default 1s). Keys: arrows select, r restart, s start, x stop (asks
first), k signal, / filter, q quit. Needs a terminal and the optional extra:
pip install '.[tui]' from a checkout (the pyinit-supervisor[tui] extra). Honours NO_COLOR.
"""
INSTALL_HINT = "pyinit top needs Textual: pip install textual (in a checkout: pip install '.[tui]')"
NO_TTY = "pyinit top: needs a terminal; use 'pyinit status' (or 'pyinit status --json')"


def parse_interval(args: list[str]) -> float:
    """``--interval DURATION`` (or ``--interval=DURATION``, ``-n``): seconds, > 0."""
    from pyinit.durations import parse_duration

    interval = DEFAULT_INTERVAL
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.split("=", 1)[0] in ("--interval", "-n"):
            if "=" in arg:
                raw = arg.split("=", 1)[1]
            elif i + 1 < len(args):
                i += 1
                raw = args[i]
            else:
                raise UsageError(f"pyinit top: option '{arg}' needs a value")
            try:
                interval = parse_duration(raw)
            except ValueError as exc:
                raise UsageError(f"pyinit top: --interval: {exc}") from None
            if interval <= 0:
                raise UsageError("pyinit top: --interval must be more than 0")
        else:
            raise UsageError(f"pyinit top: unexpected argument {arg!r}")
        i += 1
    return interval


class SocketTransport:
    """Requests over the control socket, as the other client commands send them."""

    def __init__(self) -> None:
        from pyinit.protocol import client_socket_path

        self.path = client_socket_path()

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        from pyinit.protocol import Unreachable, send
        from pyinit.top.app import TransportError

        try:
            answer = send(request, TIMEOUT)
        except Unreachable as exc:
            raise TransportError(str(exc)) from None
        error = str(answer.get("error", ""))
        if not answer.get("ok") and error.startswith("unknown cmd"):
            raise TransportError(
                f"pyinit at {self.path} does not know the request {request['cmd']!r}"
                " (another version of pyinit?)"
            )
        return answer

    def logs(self, name: str, lines: int) -> list[str]:
        from pyinit.protocol import Unreachable, send
        from pyinit.top.app import TransportError

        body = io.BytesIO()
        try:
            answer = send({"cmd": "logs", "service": name, "lines": lines}, TIMEOUT, body)
        except Unreachable as exc:
            raise TransportError(str(exc)) from None
        if not answer.get("ok"):
            raise TransportError(f"logs {name}: {answer.get('error', 'failed')}")
        if isinstance(answer.get("lines"), list):  # an older pyinit: the lines inline
            return [str(line) for line in answer["lines"]]
        return body.getvalue().decode("utf-8", "replace").splitlines()


def top_main(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    interval = parse_interval(args)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        sys.stderr.write(NO_TTY + "\n")
        return 1
    try:
        from pyinit.top.app import TopApp, TransportError
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "textual":
            raise
        sys.stderr.write(INSTALL_HINT + "\n")
        return 1
    transport = SocketTransport()
    try:
        transport.request({"cmd": "status"})  # no screen at all when nobody answers
    except TransportError as exc:
        sys.stderr.write(f"pyinit top: {exc}\n")
        return 1
    # Textual sizes the screen with shutil.get_terminal_size(), which prefers
    # $COLUMNS/$LINES when set (exported by some shells and tools): the screen
    # would then never follow a resize of the terminal.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)
    result = TopApp(transport, interval).run()
    return result or 0
