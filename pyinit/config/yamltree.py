"""YAML text -> a node tree (nodes keep line numbers), safe against hostile input.

Syntax errors, nesting past MAX_DEPTH, duplicate keys and bad ``<<`` merge keys
become problems; merge keys are applied, so readers see plain mappings.
"""

from __future__ import annotations

import yaml

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


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_DEPTH while composing,
    before PyYAML's recursion gets anywhere near Python's limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str] = []  # key path of the node being composed

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
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _TooDeep(mark, "".join(self._path).lstrip("."))
            node: yaml.Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._path.pop()


def _code(character: object) -> int:
    """PyYAML's ReaderError holds the offending character as an int or a 1-char str."""
    return character if isinstance(character, int) else ord(str(character)[:1] or "\0")


def compose(
    source: str, path: str, problems: list[Problem]
) -> tuple[yaml.SafeLoader, yaml.Node] | None:
    """The loader (readers construct and resolve scalars with it) and the root node;
    None for an empty document, or after adding a problem to ``problems``."""
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


def prepare(loader: yaml.SafeLoader, root: yaml.Node, path: str, problems: list[Problem]) -> None:
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
