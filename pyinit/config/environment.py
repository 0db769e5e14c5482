"""A service's environment: ``env_file`` entries, then ``environment``.

No value is ever quoted in a problem: environments carry secrets.
"""

from __future__ import annotations

import os
import re

import yaml

from pyinit.config.model import Problem
from pyinit.config.nodes import Reader, is_null
from pyinit.safefile import ENV_FILE_CAP, UnsafeFile, read_bytes

# Environment names: POSIX allows almost anything, but Compose-style names with '.'
# and '-' (Java properties) are the widest set worth accepting without surprises.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")

_Pair = tuple[str, str | None, yaml.Node, str]  # name, value (None: NAME alone), node, key


def environment(r: Reader, node: yaml.Node, key: str) -> dict[str, str]:
    """A mapping of NAME: value or a list of NAME=value; NAME alone passes pyinit's
    own value through (and nothing when pyinit has none)."""
    pairs = _listed(r, node, key) if isinstance(node, yaml.SequenceNode) else _mapped(r, node, key)
    env: dict[str, str] = {}
    for name, value, item_node, item_key in pairs:
        if not _ENV_NAME.match(name):
            # Never echo the value: environments carry secrets.
            r.add(item_node, item_key, f"invalid variable name {name!r}")
        elif value is not None:
            env[name] = value
        elif name in r.environ:  # NAME alone: pass pyinit's own value through
            env[name] = r.environ[name]
    return env


def _listed(r: Reader, node: yaml.SequenceNode, key: str) -> list[_Pair]:
    pairs: list[_Pair] = []
    for i, item in enumerate(node.value):
        text = r.text(item, f"{key}[{i}]", "NAME=value", secret=True)
        if text is not None:
            name, sep, rest = text.partition("=")
            pairs.append((name, rest if sep else None, item, f"{key}[{i}]"))
    return pairs


def _mapped(r: Reader, node: yaml.Node, key: str) -> list[_Pair]:
    pairs: list[_Pair] = []
    entries = r.mapping(node, key, "a mapping of NAME: value or a list of NAME=value")
    for name, (knode, vnode) in (entries or {}).items():
        item_key = f"{key}.{name}"
        if is_null(vnode):
            pairs.append((name, None, knode, item_key))  # `NAME:` alone
            continue
        text = r.text(vnode, item_key, "a string, number or boolean", secret=True)
        if text is not None:
            pairs.append((name, text, knode, item_key))
    return pairs


def env_files(r: Reader, node: yaml.Node, key: str, base_dir: str) -> dict[str, str]:
    """A path or a list of paths (or Compose's {path: ..., required: false}),
    relative to ``base_dir``; later files win."""
    items: list[tuple[yaml.Node, str]]
    if isinstance(node, yaml.SequenceNode):
        items = [(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
    elif isinstance(node, yaml.ScalarNode):
        items = [(node, key)]
    else:
        r.expected(node, key, "a path or a list of paths")
        return {}
    env: dict[str, str] = {}
    for item, item_key in items:
        entry = _entry(r, item, item_key)
        if entry is None:
            continue
        path_node, required = entry
        rel = r.text(path_node, item_key, "a path")
        if rel is None:
            continue
        env.update(env_file(r, os.path.join(base_dir, rel), path_node, item_key, required))
    return env


def _entry(r: Reader, item: yaml.Node, key: str) -> tuple[yaml.Node, bool] | None:
    """(the path's node, required) of one env_file entry."""
    if not isinstance(item, yaml.MappingNode):
        return item, True
    options = r.mapping(item, key) or {}  # Compose's {path: ..., required: false}
    r.check_keys(options, ("path", "required"), key)
    if "path" not in options:
        r.add(item, f"{key}.path", "required key missing")
        return None
    required = True
    if "required" in options:
        required = r.boolean(options["required"][1], f"{key}.required") is not False
    return options["path"][1], required


def env_file(r: Reader, path: str, node: yaml.Node, key: str, required: bool) -> dict[str, str]:
    """``NAME=value`` lines; ``#`` comments, blank lines and an ``export `` prefix
    are allowed; one pair of surrounding quotes is removed. Values are taken
    literally (no interpolation, no escapes) so secrets with '$' survive."""
    try:
        lines = read_bytes(path, ENV_FILE_CAP).decode("utf-8").splitlines()
    except UnsafeFile as e:
        if e.missing:
            if required:
                r.add(node, key, f"env file {path!r} not found")
        else:
            r.add(node, key, f"cannot read env file {path!r}: {e}")
        return {}
    except UnicodeDecodeError:
        r.add(node, key, f"env file {path!r} is not UTF-8 text")
        return {}
    env: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not _ENV_NAME.match(name):
            # The line is not echoed: it may hold a secret.
            r.problems.append(
                Problem(path, number, key, "expected NAME=value, a # comment or a blank line")
            )
            continue
        if not sep:
            if name in r.environ:
                env[name] = r.environ[name]
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[name] = value
    return env
