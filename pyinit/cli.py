"""Command line -> what to run. The only module that calls ``sys.exit``.

The personality comes from the name pyinit was invoked under: ``tini`` and
``dumb-init`` (a symlink or a copy of the entry point) parse those tools' own
command lines; any other name is pyinit's.
"""

from __future__ import annotations

import os
import sys

from pyinit import __version__
from pyinit.errors import UsageError
from pyinit.options import Option, parse
from pyinit.signals import job_stop_rewrites, parse_signal, signal_name, waitable_signals
from pyinit.signals import sigmod as signal

TYPE_CHECKING = False  # typing costs start-up time; annotations only
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

USAGE = """\
Usage: pyinit [OPTIONS] [--] COMMAND [ARGS...]
       pyinit -c services.yaml [OPTIONS] [-- COMMAND [ARGS...]]
       pyinit check [services.yaml]     validate only
       pyinit health                    exit 0 when every service is up and healthy
       pyinit status [--json]           the services of a running pyinit
       pyinit start|stop|restart NAME...
       pyinit signal SIG NAME...
       pyinit scale NAME COUNT          run COUNT instances of a scaled service
       pyinit reload                    re-read the config file and apply it
       pyinit wait --ready NAME... [--timeout DURATION]
       pyinit logs [NAME...] [-f] [-n N] (pyinit status --help: more on these)
       pyinit top [--interval DURATION] a live view of the services (extra: tui)
       pyinit rehearse [OPTIONS] -- COMMAND   rehearse a `docker stop` of COMMAND

Run COMMAND as PID 1: reap every zombie, forward signals to COMMAND's process
group, stop what is left when it exits, and exit with its status.

Options:
  -c, --config FILE          run the services declared in FILE (env PYINIT_CONFIG)
  -v, --verbose              trace every signal and every reaped process (repeatable)
      --single-child         keep COMMAND in pyinit's session; signal it alone
  -r, --rewrite FROM:TO      forward signal FROM as TO; TO=0 drops it (repeatable)
  -e, --remap-exit CODE      exit 0 when COMMAND exits with CODE (repeatable)
      --grace DURATION       after COMMAND exits, wait this long for the processes
                             left (sent SIGTERM) before SIGKILL (default 5s)
  -p, --parent-death-signal SIG
                             signal pyinit receives when its parent dies
      --http ADDR            with -c: serve /healthz /readyz /metrics /status on
                             ADDR ([host]:port, e.g. :9000; settings.http)
      --profile NAME         with -c: start the services with this profile too
                             (repeatable; env PYINIT_PROFILES=a,b)
      --only NAME[,NAME]     with -c: start only these and what they depend on
      --env-file PATH        with -c: variables for ${VAR} instead of the .env
                             next to FILE (the environment wins over both)

With no -c and no COMMAND, pyinit runs ./services.yaml (or ./services.yml).
  -V, --version              print the version and exit
  -h, --help                 print this help and exit

Signals are names (TERM, SIGTERM) or numbers. Durations: 10s, 1m30s, 500ms, 2.5.
Invoked as 'tini' or 'dumb-init' (a symlink), pyinit accepts that tool's options.
"""

NATIVE_OPTIONS = [
    Option("config", "c", "config", True),
    Option("verbose", "v", "verbose"),
    Option("single-child", None, "single-child"),
    Option("rewrite", "r", "rewrite", True),
    Option("remap-exit", "e", "remap-exit", True),
    Option("grace", None, "grace", True),
    Option("parent-death-signal", "p", "parent-death-signal", True),
    Option("log-format", None, "log-format", True),
    Option("http", None, "http", True),
    Option("profile", None, "profile", True),
    Option("only", None, "only", True),
    Option("env-file", None, "env-file", True),
    Option("version", "V", "version"),
    Option("help", "h", "help"),
]


def parse_rewrite(text: str) -> tuple[int, int]:
    source, sep, target = text.partition(":")
    if not sep:
        raise UsageError(f"--rewrite expects FROM:TO, e.g. TERM:QUIT or 15:0; got {text!r}")
    try:
        source_num, target_num = parse_signal(source), parse_signal(target, allow_zero=True)
    except ValueError as exc:
        raise UsageError(f"--rewrite {text}: {exc}") from None
    if source_num not in waitable_signals() or source_num == signal.SIGCHLD:
        # KILL and STOP never reach pyinit and CHLD is its own: a rule for them
        # could never apply. (A fault sent with kill is forwarded, so it may be.)
        raise UsageError(f"--rewrite {text}: pyinit never forwards {signal_name(source_num)}")
    return source_num, target_num


def parse_exit_code(text: str, flag: str) -> int:
    if not text.isdigit() or int(text) > 255:
        raise UsageError(f"{flag} expects an exit code from 0 to 255; got {text!r}")
    return int(text)


class _NativeArgs:
    """What pyinit's own options asked for, gathered left to right."""

    __slots__ = (
        "verbosity",
        "rewrite",
        "remap",
        "grace",
        "single_child",
        "death_signal",
        "config",
        "log_format",
        "http",
        "profiles",
        "only",
        "seen",
    )

    def __init__(self) -> None:
        self.verbosity = _env_int("PYINIT_VERBOSE", 0)
        self.rewrite: dict[int, int] = {}
        self.remap: set[int] = set()
        self.grace = 5.0
        self.single_child = False
        self.death_signal: int | None = None
        self.config = os.environ.get("PYINIT_CONFIG") or None
        self.log_format: str | None = None
        self.http: str | None = None
        self.profiles: list[str] = []
        self.only: list[str] = []
        self.seen: set[str] = set()

    def add_profile(self, value: str) -> None:
        self.profiles.extend(p.strip() for p in value.split(",") if p.strip())

    def set_env_file(self, value: str) -> None:
        # Through the environment, so the reload's child reads the same file.
        os.environ["PYINIT_ENV_FILE"] = os.path.abspath(value)

    def add_only(self, value: str) -> None:
        self.only.extend(n.strip() for n in value.split(",") if n.strip())

    def add_verbose(self) -> None:
        self.verbosity += 1

    def set_single_child(self) -> None:
        self.single_child = True

    def add_rewrite(self, value: str) -> None:
        source, target = parse_rewrite(value)
        self.rewrite[source] = target

    def add_remap(self, value: str) -> None:
        self.remap.add(parse_exit_code(value, "--remap-exit"))

    def set_grace(self, value: str) -> None:
        self.grace = _duration(value, "--grace")

    def set_death_signal(self, value: str) -> None:
        try:
            self.death_signal = parse_signal(value)
        except ValueError as exc:
            raise UsageError(f"--parent-death-signal: {exc}") from None

    def set_config(self, value: str) -> None:
        # -c again: the files merge in order, as Compose merges -f files (NUL
        # joins them: no path holds one). PYINIT_CONFIG is replaced, not merged.
        if self.config and "config" in self.seen:
            self.config += "\0" + value
        else:
            self.config = value
        self.seen.add("config")

    def set_log_format(self, value: str) -> None:
        if value not in ("text", "json"):
            raise UsageError(f"--log-format expects text or json; got {value!r}")
        self.log_format = value

    def set_http(self, value: str) -> None:
        from pyinit.addresses import parse_address

        try:
            parse_address(value)
        except ValueError as exc:
            raise UsageError(f"--http: {exc}") from None
        self.http = value


# What each option does, by NATIVE_OPTIONS key: print and exit 0, a flag, or a
# setter for an option with a value. Options apply left to right, so
# `--help --grace x` prints the help and `--grace x --help` is a usage error.
_NATIVE_PRINTS = {"help": USAGE, "version": f"pyinit {__version__}\n"}
_NATIVE_FLAGS: dict[str, Callable[[_NativeArgs], None]] = {
    "verbose": _NativeArgs.add_verbose,
    "single-child": _NativeArgs.set_single_child,
}
_NATIVE_SETTERS: dict[str, Callable[[_NativeArgs, str], None]] = {
    "rewrite": _NativeArgs.add_rewrite,
    "remap-exit": _NativeArgs.add_remap,
    "grace": _NativeArgs.set_grace,
    "parent-death-signal": _NativeArgs.set_death_signal,
    "config": _NativeArgs.set_config,
    "log-format": _NativeArgs.set_log_format,
    "http": _NativeArgs.set_http,
    "profile": _NativeArgs.add_profile,
    "only": _NativeArgs.add_only,
    "env-file": _NativeArgs.set_env_file,
}


def native_main(args: list[str]) -> int:
    found, command = parse(args, NATIVE_OPTIONS)
    opts = _NativeArgs()
    for key, value in found:
        text = _NATIVE_PRINTS.get(key)
        if text is not None:
            sys.stdout.write(text)
            return 0
        if value is None:
            _NATIVE_FLAGS[key](opts)
        else:
            _NATIVE_SETTERS[key](opts, value)
    if not opts.config and not command:
        opts.config = _default_config()
    if opts.config:
        from pyinit.config.profiles import ENV, from_env

        selection = (opts.profiles or from_env(os.environ.get(ENV)), opts.only)
        return supervisor_main(
            opts.config, command or None, opts.verbosity, opts.log_format, opts.http, selection
        )
    return _wrapper_main(opts, command)


def _default_config() -> str | None:
    """No -c and no command: services.yaml, then services.yml, here (as ``pyinit
    check`` looks); which one runs is said."""
    for name in ("services.yaml", "services.yml"):
        if os.path.isfile(name):
            sys.stderr.write(f"pyinit: no -c and no command: running {name}\n")
            return name
    return None


def _wrapper_main(opts: _NativeArgs, command: list[str]) -> int:
    from pyinit.wrapper import Wrapper, WrapperOptions

    if opts.log_format is not None:
        raise UsageError("--log-format applies to supervisor mode (-c FILE)")
    if opts.http is not None:
        raise UsageError("--http applies to supervisor mode (-c FILE)")
    if opts.profiles or opts.only:
        raise UsageError("--profile and --only apply to supervisor mode (-c FILE)")
    if not command:
        raise UsageError("no command given")
    single_child = opts.single_child
    # Job control as dumb-init does it: a stop request becomes SIGSTOP for the
    # whole job, which a process cannot catch and ignore by accident.
    job_control = {} if single_child else job_stop_rewrites()
    wrapper_opts = WrapperOptions(
        argv=command,
        isolation="inherit" if single_child else "new-session",
        forward_to_group=not single_child,
        rewrite={**job_control, **opts.rewrite},
        remap_exit=frozenset(opts.remap),
        grace=opts.grace,
        suspend_on_job_control=not single_child,
        # pyinit's own write to a closed stderr raises SIGPIPE in pyinit; forwarding
        # it would kill the app for pyinit's logging (tini and dumb-init do). One
        # sent with kill is forwarded.
        drop_own_sigpipe=True,
        parent_death_signal=opts.death_signal,
        verbosity=opts.verbosity,
    )
    return Wrapper(wrapper_opts).run()


def supervisor_main(
    path: str,
    command: list[str] | None,
    verbosity: int,
    log_format: str | None,
    http: str | None = None,
    selection: tuple[list[str], list[str]] = ([], []),
) -> int:
    from pyinit.config import ConfigError, load_config
    from pyinit.config.profiles import unselected_in
    from pyinit.supervisor import Supervisor

    try:
        # Absolute: pyinit moves to / once started, and a reload reads it again.
        config = load_config(os.path.abspath(path))
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        count = len(exc.problems)
        sys.stderr.write(
            f"pyinit: {path.replace(chr(0), ' + ')}: {count} problem{'s' if count != 1 else ''};"
            " nothing started\n"
        )
        return 2
    import shutil

    if command and command[0] in config.services and not shutil.which(command[0]):
        names = ",".join(n for n in command if n in config.services)
        sys.stderr.write(
            f"pyinit: {command[0]!r} is a service, not a command; to run only some "
            f"services: pyinit -c FILE --only {names}\n"
        )
        return 2
    skipped, problems = unselected_in(config, *selection)
    if problems:
        sys.stderr.write("".join(f"pyinit: {p}\n" for p in problems))
        return 2
    skip = frozenset(skipped)
    supervisor = Supervisor(
        config, command, verbosity, log_format, http, unselected=skip, selection=selection
    )
    _exit(supervisor.run(), os._exit)  # no clean-up of the heap (~30 ms), no atexit hook


# Talk to a running pyinit over its control socket (pyinit/client.py).
CLIENT_COMMANDS = tuple("status start stop restart signal scale reload wait logs health".split())
SUBCOMMANDS = ("check", "rehearse", "top", *CLIENT_COMMANDS)


def _duration(text: str, flag: str) -> float:
    from pyinit.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise UsageError(f"{name} must be a number; got {raw!r}") from None


def main(argv: list[str] | None = None) -> NoReturn:
    argv = sys.argv if argv is None else argv
    prog = os.path.basename(argv[0]) if argv else "pyinit"
    if prog == "tini":
        from pyinit.personalities import tini_main

        _exit(tini_main(argv[1:]))
    if prog == "dumb-init":
        from pyinit.personalities import dumb_init_main

        _exit(dumb_init_main(argv[1:]))
    args = argv[1:]
    try:
        if args and args[0] == "check":
            from pyinit.check import check_main

            code = check_main(args[1:])
        elif args and args[0] == "top":
            from pyinit.top import top_main

            code = top_main(args[1:])
        elif args and args[0] == "rehearse":
            from pyinit.rehearse import rehearse_main

            code = rehearse_main(args[1:])
        elif args and args[0] in CLIENT_COMMANDS:
            from pyinit.client import client_main

            code = client_main(args[0], args[1:])
        else:
            code = native_main(args)
    except UsageError as exc:
        sys.stderr.write(f"pyinit: {exc}\nTry 'pyinit --help' for more information.\n")
        code = 2
    _exit(code)


def _exit(code: int, end: Callable[[int], NoReturn] = sys.exit) -> NoReturn:
    """Exit with ``code`` even when nobody reads stdout or stderr any more (a failed
    final flush would make it 120): such a stream is pointed at /dev/null first."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # the fd was closed when pyinit started
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            except (OSError, ValueError):
                pass
    end(code)
