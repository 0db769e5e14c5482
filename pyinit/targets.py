"""Which services a client command means: names, shell-style globs, ``all``.

``worker*`` is every service whose name matches (fnmatch, case-sensitive);
``all`` is every service. A pattern that matches nothing is an error naming it,
so a typo never silently does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

ALL = "all"
_GLOB = frozenset("*?[")


def is_pattern(text: str) -> bool:
    return text == ALL or any(c in _GLOB for c in text)


def expand(
    patterns: list[str], names: list[str], groups: Mapping[str, list[str]] | None = None
) -> tuple[list[str], list[str]]:
    """(service names, in ``patterns`` order then config order; errors).

    A scaled service's name (a key of ``groups``) means its instances. A plain
    name is kept as given even when unknown (the command's own answer names it,
    as before); a glob or ``all`` matching nothing is an error."""
    chosen: dict[str, None] = {}
    errors: list[str] = []
    for pattern in patterns:
        if groups is not None and pattern in groups:
            chosen.update(dict.fromkeys(groups[pattern]))
            continue
        if not is_pattern(pattern) or pattern in names:
            chosen[pattern] = None
            continue
        matched = names if pattern == ALL else [n for n in names if fnmatchcase(n, pattern)]
        if not matched:
            errors.append(f"no service matches {pattern!r}")
        chosen.update(dict.fromkeys(matched))
    return list(chosen), errors
