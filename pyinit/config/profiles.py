"""``profiles:`` on a service (as in Compose) and which profiles are active.

A service with profiles starts only when one of them is active (``--profile
NAME``, repeatable, or ``PYINIT_PROFILES=a,b``); a service without any always
starts. An inactive service is still known: ``pyinit start NAME`` starts it,
with what it depends on, and it counts for ``/readyz`` and ``pyinit health``
only once started.
"""

from __future__ import annotations

import re

import yaml

from pyinit.config.model import Config
from pyinit.config.nodes import Reader

_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
ENV = "PYINIT_PROFILES"


def profiles(r: Reader, node: yaml.Node, key: str) -> tuple[str, ...] | None:
    """A list of profile names."""
    if not isinstance(node, yaml.SequenceNode):
        r.expected(node, key, "a list of profile names such as [debug, tools]")
        return None
    names: list[str] = []
    for i, item in enumerate(node.value):
        text = r.text(item, f"{key}[{i}]", "a profile name")
        if text is None:
            continue
        if not _PROFILE.match(text):
            r.add(item, f"{key}[{i}]", f"invalid profile name {text!r}")
            continue
        names.append(text)
    return tuple(dict.fromkeys(names))


def from_env(value: str | None) -> list[str]:
    """``PYINIT_PROFILES=a,b`` -> [a, b]."""
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def unknown(active: list[str], declared: set[str]) -> list[str]:
    """Active profiles no service declares (a typo, most likely)."""
    return [p for p in active if p not in declared]


def unselected(
    services: dict[str, tuple[tuple[str, ...], tuple[str, ...]]],
    active: list[str],
    only: list[str],
) -> tuple[set[str], list[str]]:
    """(services not to start at boot, problems) for ``services`` given as
    name -> (profiles, depends_on names), the ``active`` profiles and ``--only``.

    Selected: with ``only``, those names; else every service without profiles or
    with an active one. What a selected service depends on is selected too."""
    from pyinit.config.nodes import did_you_mean

    problems: list[str] = []
    declared = {p for profs, _deps in services.values() for p in profs}
    for name in unknown(active, declared):
        known = ", ".join(sorted(declared)) or "none"
        problems.append(f"--profile {name}: no service has this profile (profiles: {known})")
    names = list(services)
    for name in only:
        if name not in services:
            problems.append(f"--only {name}: no such service{did_you_mean(name, names)}")
    if only:
        todo = [n for n in only if n in services]
    else:
        todo = [n for n, (profs, _d) in services.items() if not profs or set(profs) & set(active)]
    chosen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in chosen:
            chosen.add(name)
            todo.extend(d for d in services[name][1] if d in services)
    return set(services) - chosen, problems


def unselected_in(config: Config, active: list[str], only: list[str]) -> tuple[set[str], list[str]]:
    """``unselected`` for a loaded config, where a scaled service's name (in
    ``depends_on`` or ``--only``) means its instances."""
    each = config.members
    shape = {
        n: (s.profiles, tuple(m for d in s.depends_on for m in each(d.name)))
        for n, s in config.services.items()
    }
    # A scale-0 service has no instance to select, but declares its profiles
    # (stands in for itself, then leaves the answer); --only naming it says so.
    idle = {n: (d.profiles, ()) for n, d in config.scaled.items() if not d.scale}
    empty = [f"--only {n}: scale: 0 runs no instance of it" for n in only if n in idle]
    names = [m for n in only if n not in idle for m in each(n)]
    if only and not names:  # --only named nothing that runs: nothing is selected
        return set(shape), empty
    skipped, problems = unselected({**shape, **idle}, active, names)
    return skipped - idle.keys(), problems + empty
