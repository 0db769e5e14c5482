"""``pyinit check FILE``: validate a services file and summarise it, or list every problem.

Exit 0 when the file is valid, 2 for anything the user can fix (as every user mistake
in pyinit). Environment values are never printed: they may hold secrets.
"""

from __future__ import annotations

import os
import shlex
import sys

from pyinit.config import (
    Config,
    ConfigError,
    HealthCheck,
    Probe,
    Readiness,
    ServiceConfig,
    load_config_text,
)
from pyinit.durations import format_duration
from pyinit.safefile import CONFIG_CAP, UnsafeFile, read_bytes
from pyinit.signals import signal_name

USAGE = """\
Usage: pyinit check [--print] [FILE...]

Validate FILE (default: $PYINIT_CONFIG, else services.yaml) and print a summary:
the services, their type, restart policy, dependencies, readiness source and
healthcheck, and the start order. Several FILEs merge in order (as `pyinit -c A
-c B`, and as Compose merges -f files); --print prints the merged YAML (before
${VAR} interpolation) instead of the summary.
Exit 0 when valid; otherwise print every problem and exit 2.
"""


def check_main(args: list[str]) -> int:
    """Entry point for ``pyinit check``; returns the exit status."""
    if args and args[0] == "--":
        args = args[1:]
    elif args and args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    show = "--print" in args
    args = [a for a in args if a != "--print"]
    if any(a.startswith("-") for a in args):
        print(f"pyinit check: unknown option in {' '.join(args)}", file=sys.stderr)
        sys.stderr.write(USAGE)
        return 2
    if len(args) > 1 or show:
        return _check_merged(args or [os.environ.get("PYINIT_CONFIG") or "services.yaml"], show)
    path = args[0] if args else os.environ.get("PYINIT_CONFIG") or "services.yaml"
    try:
        text = read_bytes(path, CONFIG_CAP).decode("utf-8")
    except UnsafeFile as e:
        print(f"pyinit check: cannot read {path}: {e}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as e:
        print(f"pyinit check: {path} is not UTF-8 text (byte {e.start})", file=sys.stderr)
        return 2
    try:
        config = load_config_text(text, path)
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        count = len(e.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 2
    from pyinit.config.shellwarn import warnings

    for warning in warnings(text, path):
        print(warning, file=sys.stderr)
    sys.stdout.write(summary(config))
    return 0


def _check_merged(paths: list[str], show: bool) -> int:
    from pyinit.config import load_config
    from pyinit.config.merge import SEPARATOR, compose_all, split

    joined = SEPARATOR.join(paths)
    try:
        config = load_config(joined)
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        count = len(e.problems)
        print(f"{' + '.join(paths)}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 2
    if show:
        import yaml

        tree = compose_all([(p, read_bytes(p, CONFIG_CAP).decode()) for p in split(joined)], [])
        assert tree is not None  # it loaded
        text = yaml.serialize(tree[1], Dumper=yaml.SafeDumper)
        sys.stdout.write(str(text))
        return 0
    sys.stdout.write(summary(config).replace(SEPARATOR, " + "))
    return 0


def summary(config: Config) -> str:
    """What the file declares, one service a line, then the start order."""
    count = len(config.services)
    settings = config.settings
    lines = [
        f"{config.path}: valid, {count} service{'s' if count != 1 else ''} "
        f"(shutdown_timeout {format_duration(settings.shutdown_timeout)}, "
        f"log_format {settings.log_format})"
    ]
    rows = _rows(config)
    width = max(len(name) for name, _ in rows)
    for name, service in rows:
        lines.append(f"  {name:<{width}}  {_describe(service)}")
    tiers = " -> ".join("[" + ", ".join(tier) + "]" for tier in config.start_tiers())
    lines.append(f"start order: {tiers}")
    return "\n".join(lines) + "\n"


def _rows(config: Config) -> list[tuple[str, ServiceConfig]]:
    """One row a declared service: a scaled one as ``web x3`` (its declaration)."""
    rows: list[tuple[str, ServiceConfig]] = []
    for service in config.services.values():
        if service.replica_of is None:
            rows.append((service.name, service))
        elif service.replica == 1:
            rows.append(_scaled_row(config.scaled[service.replica_of]))
    rows += [_scaled_row(d) for d in config.scaled.values() if not d.scale]
    return rows


def _scaled_row(declared: ServiceConfig) -> tuple[str, ServiceConfig]:
    return f"{declared.name} x{declared.scale}", declared


def _describe(service: ServiceConfig) -> str:
    parts = [service.type.value, f"restart {service.restart.value}"]
    if service.depends_on:
        deps = ", ".join(f"{d.name} ({d.condition.value})" for d in service.depends_on)
        parts.append(f"depends on {deps}")
    else:
        parts.append("no dependencies")
    if service.ready is not None:
        parts.append(f"ready: {_describe_ready(service.ready)}")
    if service.healthcheck is not None:
        parts.append(f"healthcheck: {_describe_health(service.healthcheck)}")
    if service.critical:
        parts.append("critical")
    if service.stop_signal != 15:
        parts.append(f"stop_signal {signal_name(service.stop_signal)}")
    if service.user:
        parts.append(f"user {service.user}")
    if service.no_new_privs:
        parts.append("no_new_privs")
    if service.umask is not None:
        parts.append(f"umask {service.umask:04o}")
    if service.ulimits:
        shown = ", ".join(f"{n} {_limit(s)}:{_limit(h)}" for n, s, h in service.ulimits)
        parts.append(f"ulimits {shown}")
    if service.environment:  # how many, never a value: they may be secrets
        n = len(service.environment)
        parts.append(f"{n} environment variable{'s' if n != 1 else ''}")
    return ", ".join(parts)


def _limit(value: int) -> str:
    return "unlimited" if value < 0 else str(value)


_COMMAND_WIDTH = 40  # longer probe commands are cut, keeping a summary line readable


def _describe_probe(probe: Probe, every: float) -> str:
    """``exec CMD`` (cut), ``tcp host:port`` or ``http URL``, the period, and the
    expected status if any."""
    if probe.kind == "exec":
        command = probe.command
        if len(command) == 3 and command[:2] == ("/bin/sh", "-c"):
            text = "sh -c " + shlex.quote(command[2])
        else:
            text = shlex.join(command)
        if len(text) > _COMMAND_WIDTH:
            text = text[: _COMMAND_WIDTH - 3].rstrip() + " ..."
        text = f"exec {text}"
    else:
        text = probe.describe()
    text += f" every {format_duration(every)}"
    if probe.expect_status is not None:
        text += f" (expect {probe.expect_status})"
    return text


def _describe_ready(ready: Readiness) -> str:
    extras: list[str] = []
    if ready.kind == "notify":
        text = "notify"
        if ready.watchdog:
            extras.append(f"watchdog {format_duration(ready.watchdog)}")
    elif ready.kind == "log_line":
        text = f'log_line "{ready.pattern}"'
    elif ready.kind == "fd":
        text = f"fd {ready.fd}"
    else:
        assert ready.probe is not None
        text = _describe_probe(ready.probe, ready.interval)
    if ready.timeout != Readiness.timeout:
        extras.append(
            f"timeout {format_duration(ready.timeout)}" if ready.timeout else "no timeout"
        )
    return text + (f" ({', '.join(extras)})" if extras else "")


def _describe_health(check: HealthCheck) -> str:
    return _describe_probe(check.probe, check.interval)
