"""Drop-in command lines: pyinit invoked as ``tini`` or ``dumb-init``.

Each parses that tool's documented flags and environment variables and behaves
as the tool documents (exit codes of usage errors and exec failures included),
so replacing the binary is the whole migration. Help texts are our own.
"""

from __future__ import annotations

import errno
import os
import sys

from pyinit import __version__
from pyinit.errors import UsageError
from pyinit.options import Option, parse
from pyinit.signals import job_stop_rewrites, parse_signal
from pyinit.signals import sigmod as signal
from pyinit.spawn import SpawnError

TYPE_CHECKING = False  # typing costs start-up time; annotations only
if TYPE_CHECKING:
    from collections.abc import Callable

TINI_USAGE = """\
tini (pyinit {version})
Usage: tini [OPTIONS] PROGRAM [--] [ARGS...] | --version

Run PROGRAM as a child of an init that reaps zombies and forwards signals.
(This is pyinit answering to the name 'tini'.)

Options:
  --version       print the version and exit
  -h              print this help and exit
  -s              register as a child subreaper (when not PID 1)
  -p SIGNAL       have SIGNAL delivered to us when our parent dies
  -v              more output; repeat up to three times
  -w              print a warning for every zombie reaped
  -g              forward signals to the child's whole process group
  -e EXIT_CODE    treat EXIT_CODE (0-255) of the child as 0; repeatable
  -l              print the license and exit

Environment:
  TINI_SUBREAPER            as -s
  TINI_VERBOSITY            verbosity level (default 1)
  TINI_KILL_PROCESS_GROUP   as -g
"""

LICENSE = """\
pyinit is released under the MIT License.

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software, to deal in it without restriction, subject to including this
notice. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
"""

TINI_OPTIONS = [
    Option("help", "h"),
    Option("subreaper", "s"),
    Option("pdeath", "p", takes_value=True),
    Option("verbose", "v"),
    Option("warn", "w"),
    Option("group", "g"),
    Option("remap", "e", takes_value=True),
    Option("license", "l"),
]


def _tini_exec_failure(exc: SpawnError) -> int:
    if exc.errno == errno.ENOENT:
        return 127
    if exc.errno == errno.EACCES:
        return 126
    return 1


class _TiniArgs:
    """What tini's flags and environment asked for, gathered left to right."""

    __slots__ = ("verbosity", "subreaper", "group", "warn", "remap", "death_signal")

    def __init__(self) -> None:
        raw = os.environ.get("TINI_VERBOSITY", "")
        self.verbosity = int(raw) if raw.isdigit() else 1
        self.subreaper = "TINI_SUBREAPER" in os.environ
        self.group = "TINI_KILL_PROCESS_GROUP" in os.environ
        self.warn = False
        self.remap: set[int] = set()
        self.death_signal: int | None = None

    def set_subreaper(self) -> None:
        self.subreaper = True

    def add_verbose(self) -> None:
        self.verbosity += 1

    def set_warn(self) -> None:
        self.warn = True

    def set_group(self) -> None:
        self.group = True

    def add_remap(self, value: str) -> None:
        if not value.isdigit() or int(value) > 255:
            raise UsageError(f"-e expects an exit code from 0 to 255; got {value!r}")
        self.remap.add(int(value))

    def set_death_signal(self, value: str) -> None:
        try:
            self.death_signal = parse_signal(value)
        except ValueError as exc:
            raise UsageError(f"-p: {exc}") from None


# What each TINI_OPTIONS key does, besides -h and -l (print and exit 0): a flag,
# or a setter for an option with a value.
_TINI_FLAGS: dict[str, Callable[[_TiniArgs], None]] = {
    "subreaper": _TiniArgs.set_subreaper,
    "verbose": _TiniArgs.add_verbose,
    "warn": _TiniArgs.set_warn,
    "group": _TiniArgs.set_group,
}
_TINI_SETTERS: dict[str, Callable[[_TiniArgs, str], None]] = {
    "remap": _TiniArgs.add_remap,
    "pdeath": _TiniArgs.set_death_signal,
}


def tini_main(args: list[str]) -> int:
    usage = TINI_USAGE.format(version=__version__)
    if args[:1] == ["--version"]:
        sys.stdout.write(f"tini version 0.19.0 (pyinit {__version__})\n")
        return 0
    try:
        found, command = parse(args, TINI_OPTIONS)
    except UsageError as exc:
        sys.stderr.write(f"tini: {exc}\n{usage}")
        return 1
    prints = {"help": usage, "license": LICENSE}
    opts = _TiniArgs()
    for key, value in found:
        text = prints.get(key)
        if text is not None:
            sys.stdout.write(text)
            return 0
        try:
            if value is None:
                _TINI_FLAGS[key](opts)
            else:
                _TINI_SETTERS[key](opts, value)
        except UsageError as exc:
            # tini's own checks name the flag, without the usage text.
            sys.stderr.write(f"tini: {exc}\n")
            return 1
    if not command:
        sys.stderr.write(usage)
        return 1
    return _run_tini(opts, command)


def _run_tini(opts: _TiniArgs, command: list[str]) -> int:
    from pyinit.wrapper import Wrapper, WrapperOptions

    wrapper_opts = WrapperOptions(
        argv=command,
        name="tini",
        isolation="new-group",
        forward_to_group=opts.group,
        remap_exit=frozenset(opts.remap),
        grace=None,
        suspend_on_job_control=False,
        # tini leaves stop requests on the terminal to the child's group alone.
        ignored_signals=frozenset({signal.SIGTTIN, signal.SIGTTOU}),
        # ...and hands CMD the blocked and ignored signals it started with.
        inherit_signal_state=True,
        subreaper=opts.subreaper,
        warn_not_reaper=True,
        warn_on_reap=opts.warn,
        parent_death_signal=opts.death_signal,
        # tini's levels: 1 fatal and warnings, 2 info, 3 debug, 4 trace.
        verbosity=max(0, opts.verbosity - 1),
        exec_failure_code=_tini_exec_failure,
    )
    return Wrapper(wrapper_opts).run()


DUMB_INIT_USAGE = """\
Usage: dumb-init [OPTIONS] COMMAND [ARGS...]

A minimal init for containers: runs COMMAND in its own session, forwards every
signal to its process group, reaps zombies and exits with COMMAND's status.
(This is pyinit {version} answering to the name 'dumb-init'.)

Options:
  -c, --single-child   signal the child alone, and keep it in our session
  -r, --rewrite S:R    forward signal number S as signal number R; R=0 drops S
                       (repeatable)
  -v, --verbose        print what happens on stderr
  -h, --help           print this help and exit
  -V, --version        print the version and exit

Environment: DUMB_INIT_SETSID=0 as -c; DUMB_INIT_DEBUG=1 as -v.
"""

DUMB_INIT_OPTIONS = [
    Option("single", "c", "single-child"),
    Option("rewrite", "r", "rewrite", True),
    Option("verbose", "v", "verbose"),
    Option("version", "V", "version"),
    Option("help", "h", "help"),
]


def _dumb_init_rewrite(text: str) -> tuple[int, int]:
    source, sep, target = text.partition(":")
    if sep and source.isdigit() and target.isdigit():
        s, r = int(source), int(target)
        if 1 <= s <= 31 and 0 <= r <= 31:
            return s, r
    raise UsageError(
        f"-r expects S:R, signal numbers with S from 1 to 31 and R from 0 to 31; got {text!r}"
    )


def dumb_init_main(args: list[str]) -> int:
    from pyinit.wrapper import Wrapper, WrapperOptions

    usage = DUMB_INIT_USAGE.format(version=__version__)
    try:
        found, command = parse(args, DUMB_INIT_OPTIONS)
        rewrite: dict[int, int] = {}
        for key, value in found:
            if key == "rewrite" and value is not None:
                source, target = _dumb_init_rewrite(value)
                rewrite[source] = target
    except UsageError as exc:
        sys.stderr.write(f"dumb-init: {exc}\nTry 'dumb-init --help'.\n")
        return 1
    single = os.environ.get("DUMB_INIT_SETSID") == "0"
    verbose = os.environ.get("DUMB_INIT_DEBUG") == "1"
    for key, _ in found:
        # dumb-init prints its help and version on stderr (exit 0); so do we, for
        # scripts that capture one stream or the other.
        if key == "help":
            sys.stderr.write(usage)
            return 0
        if key == "version":
            sys.stderr.write(f"dumb-init v1.2.5 (pyinit {__version__})\n")
            return 0
        if key == "single":
            single = True
        elif key == "verbose":
            verbose = True
    if not command:
        sys.stderr.write(usage)
        return 1
    defaults: dict[int, int] = {}
    if not single:
        defaults = job_stop_rewrites()
    opts = WrapperOptions(
        argv=command,
        name="dumb-init",
        isolation="inherit" if single else "new-session",
        forward_to_group=not single,
        rewrite={**defaults, **rewrite},
        grace=None,
        term_group_on_exit=not single,
        # dumb-init stops itself after forwarding TSTP/TTIN/TTOU, with -c too.
        suspend_on_job_control=True,
        subreaper=False,
        verbosity=2 if verbose else 0,
        exec_failure_code=lambda exc: 2,
    )
    return Wrapper(opts).run()
