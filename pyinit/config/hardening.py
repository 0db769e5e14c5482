"""Hardening settings of a service: ``user``, ``umask`` and ``ulimits``."""

from __future__ import annotations

import difflib
import re

import yaml

from pyinit import rlimits
from pyinit.config.nodes import Reader
from pyinit.users import group_id, user_id

_USER_PART = r"(?:\d+|[A-Za-z_][A-Za-z0-9_.-]*\$?)"
_USER = re.compile(rf"{_USER_PART}(?::{_USER_PART})?\Z")
_OCTAL_MODE = re.compile(r"[0-7]{1,4}\Z")
_ULIMIT_WHAT = "a whole number >= 0, or unlimited"
_LIMIT_MAX = 2**63 - 1  # what setrlimit takes from Python (a C long long)


def user(r: Reader, node: yaml.Node, key: str) -> str | None:
    text = r.text(node, key, "a user: name, uid, name:group or uid:gid")
    if text is not None and not _USER.match(text):
        r.add(node, key, f"expected a user: name, uid, name:group or uid:gid; got {text!r}")
        return None
    return text


def user_switch_problem(user: str, euid: int, egid: int) -> str | None:
    """Why a process running as ``euid``:``egid`` cannot start a service as ``user``,
    or None: only root may switch to another uid or gid. A ``user`` naming pyinit's
    own uid (and its own gid, or none) switches nothing. Names are looked up in the
    passwd and group files; an unknown one cannot be pyinit's own."""
    if euid == 0:
        return None
    who, _, group = user.partition(":")
    if user_id(who) != euid:
        return f"switching to another user needs root; pyinit runs as uid {euid}"
    if group and group_id(group) != egid:
        return f"switching to another group needs root; pyinit runs as uid {euid}, gid {egid}"
    return None


def umask(r: Reader, node: yaml.Node, key: str) -> int | None:
    """Always octal, as the umask command and systemd's UMask= read it: `0027`,
    `"027"`, `0o027`. (Unquoted YAML 1.1 would read 0027 as octal but 22 as
    decimal; the text as written is used instead.)"""
    what = 'an octal mode such as "0027"'
    text = r.text(node, key, what)
    if text is None:
        return None
    digits = text.strip()
    if digits[:2] in ("0o", "0O"):
        digits = digits[2:]
    if not _OCTAL_MODE.match(digits) or int(digits, 8) > 0o777:
        r.add(node, key, f"expected {what} (000-777); got {text!r}")
        return None
    return int(digits, 8)


def ulimits(r: Reader, node: yaml.Node, key: str) -> tuple[tuple[str, int, int], ...] | None:
    """Compose's ``ulimits``: NAME: N (soft and hard), [soft, hard] or
    {soft: N, hard: N}; NAME is an RLIMIT_* constant without the prefix."""
    entries = r.mapping(node, key, "a mapping such as {nofile: 1024, core: 0}")
    if entries is None:
        return None
    before = len(r.problems)
    limits: list[tuple[str, int, int]] = []
    for name, (knode, vnode) in entries.items():
        item_key = f"{key}.{name}"
        if name not in rlimits.NAMES:
            close = difflib.get_close_matches(name, rlimits.NAMES, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else "expected one of " + ", ".join(rlimits.NAMES)
            )
            r.add(knode, item_key, f"unknown limit; {hint}")
            continue
        pair = ulimit(r, vnode, item_key)
        if pair is not None:
            limits.append((name, *pair))
    if len(r.problems) > before:
        return None
    return tuple(limits)


def ulimit(r: Reader, node: yaml.Node, key: str) -> tuple[int, int] | None:
    if isinstance(node, yaml.SequenceNode):
        if len(node.value) != 2:
            r.add(node, key, f"expected [soft, hard]; got a list of {len(node.value)}")
            return None
        soft = limit(r, node.value[0], f"{key}[0]")
        hard = limit(r, node.value[1], f"{key}[1]")
    elif isinstance(node, yaml.MappingNode):
        entries = r.mapping(node, key) or {}
        if r.check_keys(entries, ("soft", "hard"), key):
            return None
        missing = [n for n in ("soft", "hard") if n not in entries]
        if missing:
            r.add(node, f"{key}.{missing[0]}", "required key missing")
            return None
        soft = limit(r, entries["soft"][1], f"{key}.soft")
        hard = limit(r, entries["hard"][1], f"{key}.hard")
    else:
        soft = hard = limit(r, node, key)  # Compose: one number sets both
    if soft is None or hard is None:
        return None
    if hard != rlimits.UNLIMITED and (soft == rlimits.UNLIMITED or soft > hard):
        shown = "unlimited" if soft == rlimits.UNLIMITED else str(soft)
        r.add(node, key, f"the soft limit ({shown}) is above the hard limit ({hard})")
        return None
    return soft, hard


def limit(r: Reader, node: yaml.Node, key: str) -> int | None:
    """One limit: a whole number >= 0, or ``unlimited`` (also -1, as Docker writes it)."""
    scalar = r.scalar(node, key)
    value = scalar.value if scalar is not None else None
    if value in ("unlimited", "infinity", -1):
        return rlimits.UNLIMITED
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        if value > _LIMIT_MAX:
            r.add(node, key, f"{value} is too large; write unlimited")
            return None
        return value
    if scalar is not None or not isinstance(node, yaml.ScalarNode):
        r.expected(node, key, _ULIMIT_WHAT, scalar)
    return None
