"""Several config files as one, in order, as Compose merges ``-f`` files.

Mappings merge key by key; anything else (a scalar, a list such as a command)
from a later file replaces the earlier value. A mapping in one file where the
other has a list is a problem naming both places. Each node keeps the file it
came from (its mark's name), so a problem names the right file and line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from pyinit.config.model import Problem
from pyinit.config.yamltree import compose, prepare

if TYPE_CHECKING:
    from pyinit.config.yamltree import Loader

SEPARATOR = "\0"  # joins the paths of one config (no path holds a NUL)


def split(path: str) -> list[str]:
    return path.split(SEPARATOR)


def _where(node: yaml.Node) -> str:
    return f"{node.start_mark.name}:{node.start_mark.line + 1}"


def merge(base: yaml.Node, over: yaml.Node, key: str, problems: list[Problem]) -> yaml.Node:
    """``over`` on top of ``base``; the result (``base``, updated, for two mappings)."""
    kinds = (yaml.MappingNode, yaml.SequenceNode)
    if isinstance(base, yaml.MappingNode) and isinstance(over, yaml.MappingNode):
        index = {str(k.value): i for i, (k, _v) in enumerate(base.value)}
        for knode, vnode in over.value:
            name = str(knode.value)
            child = f"{key}.{name}" if key else name
            if name in index:
                old_k, old_v = base.value[index[name]]
                base.value[index[name]] = (old_k, merge(old_v, vnode, child, problems))
            else:
                index[name] = len(base.value)
                base.value.append((knode, vnode))
        return base
    if isinstance(base, kinds) and isinstance(over, kinds) and type(base) is not type(over):
        what = {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}
        problems.append(
            Problem(
                str(over.start_mark.name),
                over.start_mark.line + 1,
                key,
                f"{what[type(over)]} here, but {what[type(base)]} at {_where(base)}; "
                "files merge only like with like",
            )
        )
    return over


def compose_all(
    sources: list[tuple[str, str]], problems: list[Problem]
) -> tuple[Loader, yaml.Node] | None:
    """(path, text) of each file -> the loader of the first and the merged root."""
    merged: tuple[Loader, yaml.Node] | None = None
    for path, text in sources:
        tree = compose(text, path, problems)
        if tree is None:
            continue
        loader, root = tree
        prepare(loader, root, path, problems)
        if merged is None:
            merged = tree
        else:
            merged = (merged[0], merge(merged[1], root, "", problems))
    return merged
