"""``pyinit rehearse`` command line -> RehearseOptions (usage errors exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyinit.durations import parse_duration
from pyinit.errors import UsageError
from pyinit.options import Option, parse
from pyinit.signals import parse_signal
from pyinit.signals import sigmod as signal

USAGE = """\
Usage: pyinit rehearse [OPTIONS] -- COMMAND [ARGS...]

Rehearse a `docker stop`: start COMMAND as pyinit would, wait until it is up,
send the stop signal, and report how it ended: who caught the signal, who
ignored it, how long the exit took, what was still running at the deadline.
Exit 0 when everything ended on its own before the deadline, 1 otherwise.

Options:
      --after DURATION       consider the app up after DURATION (default 1s)
      --ready-port [HOST:]PORT
                             ... or once PORT accepts connections
      --ready-log REGEX      ... or once a line of its output matches REGEX
      --ready-timeout DURATION
                             give up waiting for the app after DURATION (default 30s)
      --signal SIG           the stop signal (default SIGTERM)
      --stop-signal SIG      the same, as the image's STOPSIGNAL spells it
      --single-child         signal the app alone, not its process group
      --timeout DURATION     the grace period before SIGKILL (default 10s, Docker's)
      --kubernetes           a 30s grace period (terminationGracePeriodSeconds)
      --as-pid1              run COMMAND as PID 1 of a new PID namespace, no init
      --repeat N             rehearse N times and report the spread of exit times
      --json                 print the facts as JSON
  -h, --help                 print this help and exit
"""

OPTIONS = [
    Option("after", None, "after", True),
    Option("ready-port", None, "ready-port", True),
    Option("ready-log", None, "ready-log", True),
    Option("ready-timeout", None, "ready-timeout", True),
    Option("signal", None, "signal", True),
    Option("stop-signal", None, "stop-signal", True),
    Option("single-child", None, "single-child"),
    Option("timeout", None, "timeout", True),
    Option("kubernetes", None, "kubernetes"),
    Option("as-pid1", None, "as-pid1"),
    Option("repeat", None, "repeat", True),
    Option("json", None, "json"),
    Option("help", "h", "help"),
]

DOCKER_GRACE = 10.0
KUBERNETES_GRACE = 30.0


@dataclass
class RehearseOptions:
    command: list[str]
    after: float = 1.0
    ready_port: tuple[str, int] | None = None
    ready_log: str | None = None
    ready_timeout: float = 30.0
    signum: int = signal.SIGTERM
    single_child: bool = False
    timeout: float = DOCKER_GRACE
    grace_source: str = "Docker"  # whose default grace period the timeout stands for
    as_pid1: bool = False
    repeat: int = 1
    json: bool = False


class HelpRequested(Exception):
    """``--help``: print USAGE and exit 0."""


def _duration(value: str, flag: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _signal(value: str, flag: str) -> int:
    try:
        num = parse_signal(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    if num in (signal.SIGKILL, signal.SIGSTOP):
        # Nothing to rehearse: neither can be caught, and STOP never ends anything.
        raise UsageError(f"{flag}: {value} cannot be handled, so there is nothing to rehearse")
    return num


def _port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--ready-port expects PORT or HOST:PORT (1-65535); got {value!r}")
    return (host.strip("[]") if sep and host else "127.0.0.1"), int(port)


def _repeat(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 1000:
        raise UsageError(f"--repeat expects a number from 1 to 1000; got {value!r}")
    return int(value)


# The options that take a value (but the signals): the attribute each sets.
_VALUED: dict[str, tuple[str, Callable[[str], object]]] = {
    "after": ("after", lambda v: _duration(v, "--after")),
    "ready-port": ("ready_port", lambda v: _port(v)),
    "ready-log": ("ready_log", lambda v: _regex(v)),
    "ready-timeout": ("ready_timeout", lambda v: _duration(v, "--ready-timeout")),
    "timeout": ("timeout", lambda v: _duration(v, "--timeout")),
    "repeat": ("repeat", lambda v: _repeat(v)),
}


def parse_options(args: list[str]) -> RehearseOptions:
    """Raise UsageError for bad input, HelpRequested for --help."""
    found, command = parse(args, OPTIONS)
    opts = RehearseOptions(command=command)
    signals: dict[str, int] = {}
    for key, value in found:
        if key == "help":
            raise HelpRequested
        if value is None:
            if key != "kubernetes":  # the grace period, below
                setattr(opts, key.replace("-", "_"), True)
        elif key in ("signal", "stop-signal"):
            signals[key] = _signal(value, f"--{key}")
        else:
            attr, convert = _VALUED[key]
            setattr(opts, attr, convert(value))
    given = {key for key, _ in found}
    # --timeout wins over --kubernetes, in any order.
    if "timeout" in given:
        opts.grace_source = "--timeout"
    elif "kubernetes" in given:
        opts.grace_source = "Kubernetes"
        opts.timeout = KUBERNETES_GRACE
    if len(given & {"after", "ready-port", "ready-log"}) > 1:
        raise UsageError("choose one of --after, --ready-port and --ready-log")
    if len(set(signals.values())) > 1:
        raise UsageError("--signal and --stop-signal disagree; give one")
    if signals:
        opts.signum = next(iter(signals.values()))
    if not command:
        raise UsageError("no command given (pyinit rehearse [OPTIONS] -- COMMAND)")
    return opts


def _regex(value: str) -> str:
    import re

    try:
        re.compile(value)
    except re.error as exc:
        raise UsageError(f"--ready-log: not a regular expression: {exc}") from None
    return value
