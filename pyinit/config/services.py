"""One service: its keys read into a Draft (checks across services come later)."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable

import yaml

from pyinit.config.dependencies import Draft, depends_on
from pyinit.config.environment import env_files, environment
from pyinit.config.extras import (
    check_service,
    read_concurrency,
    read_deploy,
    read_develop,
    read_logging,
    read_scale,
    read_schedule,
)
from pyinit.config.hardening import ulimits, umask, user, user_switch_problem
from pyinit.config.model import Backoff, LogFileOptions, RestartPolicy, ServiceType, StartLimit
from pyinit.config.nodes import Entries, Reader, did_you_mean, enum_member, enum_values
from pyinit.config.probes import healthcheck, ready
from pyinit.config.profiles import profiles
from pyinit.config.yamltree import line
from pyinit.signals import parse_signal

SERVICE_KEYS = (
    "command",
    "type",
    "depends_on",
    "environment",
    "env_file",
    "working_dir",
    "user",
    "no_new_privs",
    "umask",
    "ulimits",
    "restart",
    "backoff",
    "start_limit",
    "stop_signal",
    "stop_grace_period",
    "critical",
    "optional",
    "profiles",
    "logging",
    "healthcheck",
    "ready",
    "schedule",
    "concurrency",
    "develop",
    "scale",
    "deploy",
)
BACKOFF_KEYS = ("initial", "max", "multiplier", "jitter", "reset_after")
START_LIMIT_KEYS = ("burst", "interval")
_SIGNAL_NAMES = tuple(s.name.removeprefix("SIG") for s in signal.Signals if "_" not in s.name)
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")

_Read = Callable[[Reader, yaml.Node, str], object]


def read_service(
    r: Reader, name: str, knode: yaml.Node, vnode: yaml.Node, ids: tuple[int, int], base_dir: str
) -> Draft:
    """``ids``: the (euid, egid) pyinit runs as; ``base_dir``: where relative
    env_file paths start."""
    key = f"services.{name}"
    draft = Draft(name, line(knode) or 0, {}, [])
    if not _SERVICE_NAME.match(name):
        r.add(
            knode,
            key,
            "invalid service name; use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit",
        )
    entries = r.mapping(vnode, key, "a mapping of service settings")
    if entries is None:
        return draft
    r.check_keys(entries, SERVICE_KEYS, key)
    fields = draft.fields
    if "command" not in entries:
        r.add(knode, f"{key}.command", "required key missing")
    else:
        command = r.command(entries["command"][1], f"{key}.command")
        if command is not None:
            fields["command"] = command
    _read_fields(r, entries, key, fields, _UP_TO_USER)
    user_name = fields.get("user")
    if isinstance(user_name, str):
        problem = user_switch_problem(user_name, *ids)
        if problem is not None:
            r.add(entries["user"][1], f"{key}.user", problem)
    _read_fields(r, entries, key, fields, _AFTER_USER)
    _read_extras(r, entries, key, fields, base_dir)
    _read_checks(r, entries, key, draft)
    if "depends_on" in entries:
        draft.deps = depends_on(r, entries["depends_on"][1], f"{key}.depends_on")
    env: dict[str, str] = {}
    if "env_file" in entries:
        env.update(env_files(r, entries["env_file"][1], f"{key}.env_file", base_dir))
    if "environment" in entries:
        env.update(environment(r, entries["environment"][1], f"{key}.environment"))
    fields["environment"] = env
    _check_oneshot_restart(r, entries, key, fields)
    return draft


def _read_fields(
    r: Reader,
    entries: Entries,
    key: str,
    fields: dict[str, object],
    readers: tuple[tuple[str, _Read], ...],
) -> None:
    """Each present key read by its reader, in order; kept unless it was a problem."""
    for name, read in readers:
        if name in entries:
            value = read(r, entries[name][1], f"{key}.{name}")
            if value is not None:
                fields[name] = value


def _read_extras(
    r: Reader, entries: Entries, key: str, fields: dict[str, object], base_dir: str
) -> None:
    """``logging`` (a mode, or a file), ``develop``, and keys that need each other."""
    if "logging" in entries:
        mode = read_logging(r, entries["logging"][1], f"{key}.logging")
        if isinstance(mode, LogFileOptions):
            fields["log_file"] = mode
        elif mode is not None:
            fields["logging"] = mode
    if "develop" in entries:
        watch = read_develop(r, entries["develop"][1], f"{key}.develop", base_dir)
        if watch:
            fields["watch"] = watch
    for name, read in (("scale", read_scale), ("deploy", read_deploy)):
        if name in entries:
            count = read(r, entries[name][1], f"{key}.{name}")
            if count is not None:
                fields["scale"] = count
    check_service(r, key, fields, entries)


def _read_checks(r: Reader, entries: Entries, key: str, draft: Draft) -> None:
    """``healthcheck`` (and whether dependants could wait for it) and ``ready``."""
    if "healthcheck" in entries:
        before = len(r.problems)
        check = healthcheck(r, *entries["healthcheck"], f"{key}.healthcheck")
        if len(r.problems) > before:
            draft.health = "invalid"
        else:
            draft.fields["healthcheck"] = check
            draft.health = "disabled" if check is None else "set"
    if "ready" in entries:
        readiness = ready(r, *entries["ready"], f"{key}.ready")
        if readiness is not None:
            draft.fields["ready"] = readiness


def _check_oneshot_restart(
    r: Reader, entries: Entries, key: str, fields: dict[str, object]
) -> None:
    # A oneshot that is restarted after exiting 0 never stays completed, so
    # service_completed_successfully dependants could start and then see it run
    # again; only retrying failures makes sense for a oneshot.
    restart = fields.get("restart")
    if fields.get("type") is ServiceType.ONESHOT and restart in (
        RestartPolicy.ALWAYS,
        RestartPolicy.UNLESS_STOPPED,
    ):
        assert isinstance(restart, RestartPolicy)
        r.add(
            entries["restart"][1],
            f"{key}.restart",
            f"a oneshot is not restarted after it completes; {restart.value!r} would run "
            "it forever (use no or on-failure)",
        )


def service_type(r: Reader, node: yaml.Node, key: str) -> ServiceType | None:
    return enum_member(ServiceType, r.choice(node, key, enum_values(ServiceType)))


def restart(r: Reader, node: yaml.Node, key: str) -> RestartPolicy | None:
    # YAML 1.1 reads a bare `no` as false; Compose users write exactly that.
    scalar = r.scalar(node, key)
    if scalar is None and isinstance(node, yaml.ScalarNode):
        return None
    if scalar is not None and scalar.value is False:
        return RestartPolicy.NO
    return enum_member(RestartPolicy, r.choice(node, key, enum_values(RestartPolicy), scalar))


def working_dir(r: Reader, node: yaml.Node, key: str) -> str | None:
    text = r.text(node, key, "a directory path")
    if text == "":
        r.add(node, key, "expected a directory path; got an empty string")
        return None
    # Relative to the config file's directory, as Compose has it (and env_file).
    return None if text is None else os.path.join(os.path.dirname(r.path), text)


def stop_signal(r: Reader, node: yaml.Node, key: str) -> int | None:
    text = r.text(node, key, "a signal name or number")
    if text is None:
        return None
    try:
        return parse_signal(text)
    except ValueError as e:
        hint = did_you_mean(text.upper().removeprefix("SIG"), _SIGNAL_NAMES)
        r.add(node, key, f"{e}; expected a name such as SIGTERM or TERM, or a number{hint}")
        return None


def backoff(r: Reader, node: yaml.Node, key: str) -> Backoff | None:
    entries = r.mapping(node, key)
    if entries is None:
        return None
    r.check_keys(entries, BACKOFF_KEYS, key)
    fields: dict[str, float | None] = {}
    for name in ("initial", "max", "reset_after"):
        if name in entries:
            fields[name] = r.duration(entries[name][1], f"{key}.{name}")
    if "multiplier" in entries:
        vnode = entries["multiplier"][1]
        value = fields["multiplier"] = r.number(vnode, f"{key}.multiplier")
        if value is not None and value < 1:
            r.add(vnode, f"{key}.multiplier", f"expected a number >= 1; got {value:g}")
            fields["multiplier"] = None
    if "jitter" in entries:
        vnode = entries["jitter"][1]
        value = fields["jitter"] = r.number(vnode, f"{key}.jitter", "a fraction 0..1")
        if value is not None and not 0 <= value <= 1:
            r.add(vnode, f"{key}.jitter", f"expected a fraction 0..1; got {value:g}")
            fields["jitter"] = None
    if any(v is None for v in fields.values()):
        return None
    backoff = Backoff(**fields)  # type: ignore[arg-type]
    if backoff.initial > backoff.max:
        r.add(
            node,
            key,
            f"initial ({backoff.initial:g}s) is longer than max ({backoff.max:g}s)",
        )
        return None
    return backoff


def start_limit(r: Reader, node: yaml.Node, key: str) -> StartLimit | None:
    entries = r.mapping(node, key)
    if entries is None:
        return None
    r.check_keys(entries, START_LIMIT_KEYS, key)
    limit = StartLimit()
    if "burst" in entries:
        vnode = entries["burst"][1]
        scalar = r.scalar(vnode, f"{key}.burst")
        value = scalar.value if scalar is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            limit = StartLimit(burst=value, interval=limit.interval)
        elif scalar is not None or not isinstance(vnode, yaml.ScalarNode):
            r.expected(vnode, f"{key}.burst", "a whole number >= 1", scalar)
            return None
        else:
            return None
    if "interval" in entries:
        vnode = entries["interval"][1]
        interval = r.duration(vnode, f"{key}.interval")
        if interval is None:
            return None
        if interval <= 0:
            r.add(vnode, f"{key}.interval", "expected a duration longer than 0")
            return None
        limit = StartLimit(burst=limit.burst, interval=interval)
    return limit


# The keys read in order after `command`; whether `user` may be switched to is
# checked between the two groups.
_UP_TO_USER: tuple[tuple[str, _Read], ...] = (
    ("type", service_type),
    ("restart", restart),
    ("working_dir", working_dir),
    ("user", user),
)
_AFTER_USER: tuple[tuple[str, _Read], ...] = (
    ("no_new_privs", Reader.boolean),
    ("umask", umask),
    ("ulimits", ulimits),
    ("backoff", backoff),
    ("start_limit", start_limit),
    ("stop_signal", stop_signal),
    ("stop_grace_period", Reader.duration),
    ("critical", Reader.boolean),
    ("schedule", read_schedule),
    ("concurrency", read_concurrency),
    ("optional", Reader.boolean),
    ("profiles", profiles),
)
