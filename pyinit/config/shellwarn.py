"""``pyinit check`` warnings for a string ``command`` that holds shell syntax.

pyinit splits a string command as a shell would but never runs it through one,
so ``a && b`` runs ``a`` with the arguments ``&&`` and ``b``. process-compose and
supervisord users write exactly that; the warning says how to ask for a shell."""

from __future__ import annotations

import json
import shlex

import yaml

_OPERATORS = {"&&", "||", "|", ";", ">", ">>", "<", "&", ";;", "|&", "2>", "2>&1"}


def shell_syntax(command: str) -> str | None:
    """The first piece of shell syntax in ``command`` (outside quotes), or None."""
    if "`" in command:
        return "`"
    if "$(" in command:
        return "$("
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None  # unbalanced quotes: the loader reports it
    return next((t for t in tokens if t in _OPERATORS or t.startswith((">", "<"))), None)


def warnings(text: str, path: str) -> list[str]:
    """``file:line: warning: ...`` for each string command with shell syntax."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    found: list[str] = []
    for name, service in _mapping(_mapping(root).get("services")).items():
        node = _mapping(service).get("command")
        if not isinstance(node, yaml.ScalarNode) or not isinstance(node.value, str):
            continue
        token = shell_syntax(node.value)
        if token is not None:
            found.append(
                f"{path}:{node.start_mark.line + 1}: warning: services.{name}.command holds "
                f"shell syntax ({token!r}) but runs without a shell; to run it in one, write "
                f'["sh", "-c", {json.dumps(node.value)}]'
            )
    return found


def _mapping(node: yaml.Node | None) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
