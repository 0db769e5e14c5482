"""YAML text -> a node tree (nodes keep line numbers), safe against hostile input.

Syntax errors, nesting past MAX_DEPTH, duplicate keys and bad ``<<`` merge keys
become problems; merge keys are applied, so readers see plain mappings.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any, TypeAlias

import yaml
from yaml.composer import Composer

from pyinit.config.model import Problem

STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"
NULL_TAG = "tag:yaml.org,2002:null"
# A limit far beyond any real file, so that a hostile or generated one is a problem
# line, not a RecursionError (PyYAML composes recursively) or a long stall.
MAX_DEPTH = 64  # nested lists/mappings


def line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None and node.start_mark else None


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark | None, path: str) -> None:
        self.mark = mark
        self.path = path


class _DepthLimit:
    """Refuses nesting deeper than MAX_DEPTH while composing, before PyYAML's
    recursion gets anywhere near Python's limit (a mixin of both loaders)."""

    _path: list[str]  # key path of the node being composed

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # ``index``: PyYAML passes an int (a list item), a key node (a mapping's
        # value) or None (the root, or a mapping key).
        if isinstance(index, yaml.ScalarNode):
            self._path.append(f".{index.value}")
        elif isinstance(index, int):
            self._path.append(f"[{index}]")
        else:  # the root, or a mapping key
            self._path.append("")
        try:
            if len(self._path) > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _TooDeep(mark, "".join(self._path).lstrip("."))
            node: yaml.Node | None = super().compose_node(parent, index)  # type: ignore[misc]
            return node
        finally:
            self._path.pop()


class _DepthLimitedLoader(_DepthLimit, yaml.SafeLoader):
    """PyYAML's own SafeLoader, pure Python: what every problem is worded by."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path = []


if TYPE_CHECKING or yaml.__with_libyaml__:

    class _FastLoader(_DepthLimit, Composer, yaml.CSafeLoader):
        """libyaml scans and parses (in C: ten times faster, and far less garbage
        left in PID 1's heap); PyYAML's composer, ahead of the C one, builds the
        nodes, so the depth limit and anchors work as in the pure loader; the
        scalars are typed by SafeLoader's own constructor and resolver."""

        def __init__(self, stream: _Named) -> None:
            yaml.CSafeLoader.__init__(self, stream)  # marks are named by stream.name
            Composer.__init__(self)
            self._path = []

        def compose_scalar_node(self, anchor: dict[Any, yaml.Node]) -> yaml.ScalarNode:
            node = super().compose_scalar_node(anchor)
            if node.style == "":  # libyaml's word for plain; PyYAML's is None
                node.style = None
            return node


if TYPE_CHECKING:
    # What readers construct and resolve scalars with: either loader.
    Loader: TypeAlias = _DepthLimitedLoader | _FastLoader


class _Named(io.StringIO):
    """The text as a stream with a name: libyaml names marks after ``stream.name``."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


def _code(character: object) -> int:
    """PyYAML's ReaderError holds the offending character as an int or a 1-char str."""
    return character if isinstance(character, int) else ord(str(character)[:1] or "\0")


def fast_compose(source: str, path: str) -> tuple[_FastLoader, yaml.Node | None]:
    """libyaml's loader and tree for ``source``. Raises for any text libyaml objects
    to, and for text with what libyaml reads otherwise than PyYAML (found by
    tests/fuzz/test_fuzz_yaml_parsers.py): see _PURE_ONLY."""
    if not yaml.__with_libyaml__ or not source.endswith("\n") or _PURE_ONLY.search(source):
        raise ValueError("left to the pure parser")
    if "?" in source and ("[" in source or "{" in source):
        raise ValueError("left to the pure parser")
    loader = _FastLoader(_Named(source, path))
    return loader, loader.get_single_node()


# Text libyaml reads otherwise than PyYAML is left to the pure parser: a tab after a
# plain scalar (``a: b<TAB>``, which PyYAML refuses); what may be a tag (``!:!str``,
# which PyYAML refuses; ``{"a":!x}``, right after a flow collection's colon); a
# comment right after a block scalar's indicator (``|#``, which PyYAML refuses);
# and, to be safe, line breaks other than LF, byte order marks and directives.
# Above: a ``?`` in a file with flow collections (in ``{a?: 1}`` PyYAML ends the
# scalar at ``?``), and a text with no final line break (libyaml places an empty
# node there on a line after the last).
_PURE_ONLY = re.compile(
    r"[\t\r\x85\u2028\u2029\ufeff]|^%|(?:^|[\s\[{,:])!|[|>][-+0-9]*#", re.MULTILINE
)


def compose(source: str, path: str, problems: list[Problem]) -> tuple[Loader, yaml.Node] | None:
    """The loader (readers construct and resolve scalars with it) and the root node;
    None for an empty document, or after adding a problem to ``problems``."""
    try:
        fast, root = fast_compose(source, path)
    except Exception:  # noqa: S110 - the pure loader words the problem, below
        pass
    else:
        return None if root is None else (fast, root)
    # Pure Python: for any text libyaml objects to (or no libyaml), so every problem
    # is reported exactly as PyYAML words it, whichever parser is built in.
    try:
        loader = _DepthLimitedLoader(source)
        loader.name = path  # marks name their file: merged files keep theirs
        root = loader.get_single_node()
    except _TooDeep as e:
        at = e.mark.line + 1 if e.mark else None
        key = e.path if len(e.path) <= 60 else e.path[:57] + "..."
        problems.append(Problem(path, at, key, f"nested deeper than {MAX_DEPTH} levels"))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = "; ".join(p for p in (e.context, e.problem) if p)
        where = f" (column {mark.column + 1})" if mark else ""
        at = mark.line + 1 if mark else None
        problems.append(Problem(path, at, "", f"YAML syntax error: {what}{where}"))
    except yaml.reader.ReaderError as e:
        at = source.count("\n", 0, e.position) + 1
        message = f"YAML syntax error: {e.reason} (#x{_code(e.character):04x})"
        problems.append(Problem(path, at, "", message))
    except yaml.YAMLError as e:
        problems.append(Problem(path, None, "", f"YAML syntax error: {e}"))
    else:
        return None if root is None else (loader, root)
    return None


def prepare(loader: Loader, root: yaml.Node, path: str, problems: list[Problem]) -> None:
    """Report duplicate keys, then apply ``<<`` merge keys (YAML anchors are how
    Compose files share settings). Aliased nodes are visited once. Iterative
    (aliases can nest deeper than the text does); a mapping is flattened after
    its values, so PyYAML's own recursion in flatten_mapping stays shallow."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
    while stack:
        node, key, values_done = stack.pop()
        if values_done:
            assert isinstance(node, yaml.MappingNode)
            try:
                loader.flatten_mapping(node)
            except yaml.MarkedYAMLError as e:
                problems.append(Problem(path, line(node), key, f"bad merge key '<<': {e.problem}"))
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            items = [(item, f"{key}[{i}]", False) for i, item in enumerate(node.value)]
            stack.extend(reversed(items))
        elif isinstance(node, yaml.MappingNode):
            stack.append((node, key, True))
            stack.extend(reversed(_mapping_values(node, key, path, problems)))


def _mapping_values(
    node: yaml.MappingNode, key: str, path: str, problems: list[Problem]
) -> list[tuple[yaml.Node, str, bool]]:
    """The mapping's values to visit, with their key paths; duplicate keys reported."""
    first: dict[str, int | None] = {}
    values: list[tuple[yaml.Node, str, bool]] = []
    for knode, vnode in node.value:
        name = str(knode.value) if isinstance(knode, yaml.ScalarNode) else "?"
        if isinstance(knode, yaml.ScalarNode) and knode.tag != MERGE_TAG:
            if name in first:
                message = f"duplicate key (first at line {first[name]})"
                problems.append(Problem(path, line(knode), join(key, name), message))
            else:
                first[name] = line(knode)
        merge = knode.tag == MERGE_TAG
        values.append((vnode, key if merge else join(key, name), False))
    return values
