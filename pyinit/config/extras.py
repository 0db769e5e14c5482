"""Readers of the service keys of scheduled jobs, file watching, log files, replicas.

``schedule`` / ``concurrency``, ``develop: {watch: [...]}`` (Compose's shape),
``logging: {driver: file, options: {...}}`` (Compose's json-file option names) and
``scale`` / ``deploy: {replicas: N}`` (Compose's two spellings of a count).
Each reader reports problems through the config loader (``file:line: key:
message``) and returns None after reporting one. Checks that need two keys of a
service (a schedule on a longrun) live in ``check_service``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import yaml

from pyinit.config.model import LogFileOptions
from pyinit.config.nodes import Entries, Reader
from pyinit.config.replicas import MAX_SCALE

if TYPE_CHECKING:
    from pyinit.schedule import Schedule
    from pyinit.watch import WatchSpec

CONCURRENCY = ("forbid", "replace")
_DEVELOP_KEYS = ("watch",)
_WATCH_KEYS = ("path", "action", "ignore")
_LOGGING_KEYS = ("driver", "options")
_FILE_OPTIONS = ("path", "max-size", "max-file", "stdout")
_OTHER_ACTIONS = ("sync", "rebuild", "sync+restart", "sync+exec")
# Docker's sizes (go-units RAMInBytes): binary multiples, an optional "b"/"ib".
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\Z", re.IGNORECASE)
_MULTIPLIERS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MIN_LOG_SIZE = 1024  # bytes; smaller rotates on nearly every line
# Compose's other deploy keys, each with what pyinit offers instead.
_DEPLOY_ELSEWHERE = {
    "restart_policy": "use restart and backoff",
    "resources": "use ulimits",
    "mode": "every service is one process or scale: N of them",
    "placement": "pyinit runs on one host",
    "update_config": "a reload replaces changed services",
    "rollback_config": "a reload replaces changed services",
    "endpoint_mode": "pyinit has no networking of its own",
    "labels": "pyinit has no labels",
}


# -- schedule ---------------------------------------------------------------------
def read_schedule(r: Reader, node: yaml.Node, key: str) -> Schedule | None:
    from pyinit.schedule import parse_schedule  # only for a config that has a schedule

    return r.parsed(node, key, "a cron expression or @every DURATION", parse_schedule)


def read_concurrency(r: Reader, node: yaml.Node, key: str) -> str | None:
    text = r.text(node, key, "forbid or replace")
    if text == "allow":
        r.add(
            node,
            key,
            "'allow' is not offered: a service runs one process at a time; use forbid "
            "(a run due while one is going is skipped) or replace (the old one is stopped)",
        )
        return None
    return r.choice(node, key, CONCURRENCY) if text is not None else None


# -- scale / deploy.replicas ------------------------------------------------------------
def read_scale(r: Reader, node: yaml.Node, key: str) -> int | None:
    what = f"a whole number of instances from 0 to {MAX_SCALE}"
    return r.whole_number(node, key, 0, MAX_SCALE, what)


def read_deploy(r: Reader, node: yaml.Node, key: str) -> int | None:
    """Compose's ``deploy: {replicas: N}``: the count; its other keys say what to use."""
    entries = r.mapping(node, key, "a mapping such as {replicas: 3}")
    if entries is None:
        return None
    for name, (knode, _vnode) in entries.items():
        if name in _DEPLOY_ELSEWHERE:
            r.add(
                knode,
                f"{key}.{name}",
                f"pyinit reads only deploy.replicas; {_DEPLOY_ELSEWHERE[name]}",
            )
    r.check_keys(
        {k: v for k, v in entries.items() if k not in _DEPLOY_ELSEWHERE}, ("replicas",), key
    )
    if "replicas" not in entries:
        return None
    return read_scale(r, entries["replicas"][1], f"{key}.replicas")


# -- develop.watch ----------------------------------------------------------------------
def read_develop(
    r: Reader, node: yaml.Node, key: str, base_dir: str
) -> tuple[WatchSpec, ...] | None:
    """``base_dir``: the config file's directory, where relative paths start."""
    entries = r.mapping(node, key)
    if entries is None:
        return None
    r.check_keys(entries, _DEVELOP_KEYS, key)
    if "watch" not in entries:
        return ()
    wnode = entries["watch"][1]
    if not isinstance(wnode, yaml.SequenceNode):
        r.expected(wnode, f"{key}.watch", "a list of {path, action: restart, ignore} entries")
        return None
    specs = [
        _watch_entry(r, item, f"{key}.watch[{i}]", base_dir) for i, item in enumerate(wnode.value)
    ]
    if any(spec is None for spec in specs):
        return None
    return tuple(spec for spec in specs if spec is not None)


def _watch_entry(r: Reader, node: yaml.Node, key: str, base_dir: str) -> WatchSpec | None:
    entries = r.mapping(node, key)
    if entries is None:
        return None
    unknown = r.check_keys(entries, _WATCH_KEYS, key)
    ok = not unknown
    for required in ("path", "action"):
        if required not in entries:
            r.add(node, f"{key}.{required}", "required key missing")
            ok = False
    if "action" in entries:
        anode = entries["action"][1]
        action = r.text(anode, f"{key}.action", "restart")
        if action in _OTHER_ACTIONS:
            r.add(
                anode,
                f"{key}.action",
                f"{action!r} is a Compose action for containers (copy files in, rebuild an "
                "image); pyinit runs processes from the files in place: use restart",
            )
            ok = False
        elif action is not None and action != "restart":
            r.add(anode, f"{key}.action", f"expected restart; got {action!r}")
            ok = False
    path = None
    if "path" in entries:
        path = r.text(entries["path"][1], f"{key}.path", "a path")
        if path == "":
            r.add(entries["path"][1], f"{key}.path", "expected a path; got an empty string")
            path = None
    ignore = _ignore_list(r, entries["ignore"][1], f"{key}.ignore") if "ignore" in entries else ()
    if not ok or path is None or ignore is None:
        return None
    from pyinit.watch import WatchSpec

    # Relative to the config file, as Compose reads it relative to the compose file.
    return WatchSpec(os.path.normpath(os.path.join(base_dir, path)), ignore)


def _ignore_list(r: Reader, node: yaml.Node, key: str) -> tuple[str, ...] | None:
    if not isinstance(node, yaml.SequenceNode):
        r.expected(node, key, 'a list of patterns such as ["*.pyc", ".git/"]')
        return None
    patterns = [r.text(item, f"{key}[{i}]", "a pattern") for i, item in enumerate(node.value)]
    if any(p is None for p in patterns):
        return None
    return tuple(p for p in patterns if p is not None)


# -- logging ------------------------------------------------------------------------------
def read_logging(r: Reader, node: yaml.Node, key: str) -> str | LogFileOptions | None:
    """``capture`` | ``inherit`` | the file driver's options."""
    if not isinstance(node, yaml.MappingNode):
        return r.choice(node, key, ("capture", "inherit"))
    entries = r.mapping(node, key)
    if entries is None:
        return None
    r.check_keys(entries, _LOGGING_KEYS, key)
    if "driver" not in entries:
        r.add(node, f"{key}.driver", "required key missing (driver: file)")
        return None
    dnode = entries["driver"][1]
    driver = r.text(dnode, f"{key}.driver", "file")
    if driver is None:
        return None
    if driver != "file":
        hint = " (the options keep json-file's names)" if driver in ("json-file", "local") else ""
        r.add(dnode, f"{key}.driver", f"expected file; got {driver!r}{hint}")
        return None
    if "options" not in entries:
        r.add(node, f"{key}.options", "required key missing (options: {path: /var/log/...})")
        return None
    return _file_options(r, *entries["options"], f"{key}.options")


def _file_options(r: Reader, knode: yaml.Node, node: yaml.Node, key: str) -> LogFileOptions | None:
    entries = r.mapping(node, key)
    if entries is None:
        return None
    ok = not r.check_keys(entries, _FILE_OPTIONS, key)
    if "path" not in entries:
        r.add(knode, f"{key}.path", "required key missing")
        return None
    pnode = entries["path"][1]
    path = r.text(pnode, f"{key}.path", "an absolute path")
    if path is not None and not os.path.isabs(path):
        r.add(pnode, f"{key}.path", f"must be an absolute path; got {path!r}")
        path = None
    if path is not None and path.endswith("/"):
        r.add(pnode, f"{key}.path", f"must name a file, not a directory; got {path!r}")
        path = None
    max_size = None
    if "max-size" in entries:
        max_size = read_size(r, entries["max-size"][1], f"{key}.max-size")
        ok = ok and max_size is not None
    max_files = 1
    if "max-file" in entries:
        fnode = entries["max-file"][1]
        count = _count(r, fnode, f"{key}.max-file")
        if count is not None and "max-size" not in entries:
            r.add(fnode, f"{key}.max-file", "needs max-size: files are rotated by size")
            count = None
        ok = ok and count is not None
        max_files = count or 1
    stdout = True
    if "stdout" in entries:
        flag = r.boolean(entries["stdout"][1], f"{key}.stdout")
        ok = ok and flag is not None
        stdout = bool(flag)
    if not ok or path is None:
        return None
    return LogFileOptions(os.path.normpath(path), max_size, max_files, stdout)


def parse_size(text: str) -> int:
    """Bytes from ``10m``, ``500k``, ``1g``, ``2MiB``; ValueError names the forms.
    A number needs its unit: Docker reads a bare ``10`` as 10 bytes, rarely meant."""
    match = _SIZE.match(text.strip())
    if match is None or not (match.group(2) or match.group(3)):
        raise ValueError(
            f"expected a size with a unit such as 500k, 10m or 1g; got {text!r}"
            + (" (a number needs its unit)" if match is not None else "")
        )
    size = int(float(match.group(1)) * _MULTIPLIERS[match.group(2).lower()])
    if size < MIN_LOG_SIZE:
        raise ValueError(f"a log file's max-size must be at least 1k; got {text!r}")
    return size


def read_size(r: Reader, node: yaml.Node, key: str) -> int | None:
    return r.parsed(node, key, "a size such as 10m", parse_size)


def _count(r: Reader, node: yaml.Node, key: str) -> int | None:
    text = r.text(node, key, "a whole number >= 1")
    if text is not None and text.isdigit() and 1 <= int(text) <= 1000:
        return int(text)
    if text is not None:
        r.add(node, key, f"expected a whole number from 1 to 1000; got {text!r}")
    return None


# -- keys together ----------------------------------------------------------------------
def check_service(
    r: Reader,
    key: str,
    fields: Mapping[str, object],
    entries: Entries,
) -> None:
    """What one key of a service says about another: schedule and concurrency are
    for oneshots, develop.watch and scale for longruns."""
    oneshot = getattr(fields.get("type"), "value", "longrun") == "oneshot"
    if "scale" in entries and "deploy" in entries:
        r.add(
            entries["deploy"][1], f"{key}.deploy.replicas", "scale is set too; keep one of the two"
        )
    counted = "scale" if "scale" in entries else "deploy" if "deploy" in entries else None
    if counted is not None and oneshot:
        r.add(
            entries[counted][1],
            f"{key}.{counted}",
            "replicas are for a longrun; a oneshot runs once (give it a schedule to repeat it)",
        )
    if "schedule" in entries and not oneshot:
        r.add(
            entries["schedule"][1],
            f"{key}.schedule",
            "a schedule runs a oneshot at times (add type: oneshot); a longrun runs all the time",
        )
    if "concurrency" in entries and "schedule" not in entries:
        r.add(entries["concurrency"][1], f"{key}.concurrency", "only a scheduled job has it")
    if fields.get("watch") and oneshot:
        r.add(
            entries["develop"][1],
            f"{key}.develop.watch",
            "restarting on file change is for a longrun; a oneshot runs once (or on schedule)",
        )


def scheduled_dependency(target: str, schedule: object) -> str:
    """Why a service cannot depend on scheduled job ``target`` (``schedule``: its
    Schedule)."""
    described = getattr(schedule, "describe", lambda: "")()
    return (
        f"{target!r} is a scheduled job ({described}): it runs at times, not "
        "once, so there is no moment a dependant could start on; drop the dependency or "
        "the schedule"
    )
