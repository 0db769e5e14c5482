"""``pyinit check FILE``: validate a services file and summarise it, or list every problem.

Exit 0 when the file is valid, 2 for anything the user can fix (as every user mistake
in pyinit). Environment values are never printed: they may hold secrets.
"""

from __future__ import annotations

import os
import sys

from pyinit.config import Config, ConfigError, ServiceConfig, load_config_text
from pyinit.durations import format_duration
from pyinit.signals import signal_name

USAGE = """\
Usage: pyinit check [FILE]

Validate FILE (default: $PYINIT_CONFIG, else services.yaml) and print a summary:
the services, their type, restart policy and dependencies, and the start order.
Exit 0 when valid; otherwise print every problem and exit 2.
"""


def check_main(args: list[str]) -> int:
    """Entry point for ``pyinit check``; returns the exit status."""
    if args and args[0] == "--":
        args = args[1:]
    elif args and args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if len(args) > 1 or (args and args[0].startswith("-")):
        print(f"pyinit check: expected one FILE; got {' '.join(args)}", file=sys.stderr)
        sys.stderr.write(USAGE)
        return 2
    path = args[0] if args else os.environ.get("PYINIT_CONFIG") or "services.yaml"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print(f"pyinit check: cannot read {path}: {e.strerror or e}", file=sys.stderr)
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
    sys.stdout.write(summary(config))
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
    width = max(len(name) for name in config.services)
    for service in config.services.values():
        lines.append(f"  {service.name:<{width}}  {_describe(service)}")
    tiers = " -> ".join("[" + ", ".join(tier) + "]" for tier in config.start_tiers())
    lines.append(f"start order: {tiers}")
    return "\n".join(lines) + "\n"


def _describe(service: ServiceConfig) -> str:
    parts = [service.type.value, f"restart {service.restart.value}"]
    if service.depends_on:
        deps = ", ".join(f"{d.name} ({d.condition.value})" for d in service.depends_on)
        parts.append(f"depends on {deps}")
    else:
        parts.append("no dependencies")
    if service.critical:
        parts.append("critical")
    if service.stop_signal != 15:
        parts.append(f"stop_signal {signal_name(service.stop_signal)}")
    if service.environment:
        n = len(service.environment)
        parts.append(f"{n} environment variable{'s' if n != 1 else ''}")
    return ", ".join(parts)
