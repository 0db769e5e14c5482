"""Typed reads of YAML nodes, each reporting a problem where it fails.

The generic part of the loader: scalars (interpolated), mappings, strings, choices,
booleans, numbers, durations, commands, and key checks with did-you-mean. Every
reader returns None after adding a problem, so one pass reports every mistake.
"""

from __future__ import annotations

import difflib
import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

import yaml

from pyinit.config.interpolation import InterpolationError, interpolate
from pyinit.config.model import Problem
from pyinit.config.yamltree import NULL_TAG, STR_TAG, join, line
from pyinit.durations import parse_duration

if TYPE_CHECKING:
    from pyinit.config.yamltree import Loader

Entries = Mapping[str, tuple[yaml.Node, yaml.Node]]  # key text -> (key node, value node)
_E = TypeVar("_E", bound=Enum)
_T = TypeVar("_T")


def did_you_mean(value: str, options: tuple[str, ...] | list[str]) -> str:
    """``"; did you mean 'always'?"`` for a near miss (``allways``, ``on_failure``), else ""."""
    folded = {o.lower().replace("_", "-"): o for o in options}
    close = difflib.get_close_matches(value.lower().replace("_", "-"), list(folded), n=1)
    return f"; did you mean {folded[close[0]]!r}?" if close else ""


def enum_values(enum: type[Enum]) -> tuple[str, ...]:
    return tuple(str(member.value) for member in enum)


def enum_member(enum: type[_E], value: str | None) -> _E | None:
    return None if value is None else enum(value)


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG


@dataclass
class Scalar:
    value: object  # as YAML types it (after interpolation, for plain scalars)
    text: str  # as written (after interpolation)
    interpolated: bool


class Reader:
    """Reads nodes of one file (``path``, for problems) with its loader, interpolating
    from ``environ``; problems go to ``problems``."""

    def __init__(
        self,
        path: str,
        environ: Mapping[str, str],
        loader: Loader,
        problems: list[Problem],
    ) -> None:
        self.path = path
        self.environ = environ
        self.yaml = loader
        self.problems = problems

    # -- reporting ------------------------------------------------------------------

    def add(self, node: yaml.Node | None, key: str, message: str) -> None:
        name = node.start_mark.name if node is not None and node.start_mark else None
        where = name if isinstance(name, str) and name and not name.startswith("<") else None
        self.problems.append(Problem(where or self.path, line(node), key, message))

    def found(self, node: yaml.Node, scalar: Scalar | None = None) -> str:
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        if scalar is None:
            scalar = Scalar(self.construct(node), node.value, False)
        value = scalar.value
        if value is None:
            return "nothing (null)"
        if isinstance(value, bool):
            return f"a boolean ({scalar.text})"
        if isinstance(value, int | float):
            return f"a number ({scalar.text})"
        if isinstance(value, str):
            return f"a string ({value!r})"
        return f"a {type(value).__name__} ({scalar.text!r})"

    def expected(self, node: yaml.Node, key: str, what: str, scalar: Scalar | None = None) -> None:
        self.add(node, key, f"expected {what}; got {self.found(node, scalar)}")

    def construct(self, node: yaml.Node) -> object:
        try:
            value: object = self.yaml.construct_object(node, deep=True)
        except Exception:  # `!!timestamp x`, `!!int x`, an int() of 4300+ digits...
            return node.value
        return value

    # -- typed readers (each returns None after reporting a problem) ---------------------

    def scalar(self, node: yaml.Node, key: str, secret: bool = False) -> Scalar | None:
        """The node's value, interpolated. ``secret``: an environment value, never
        quoted in a problem."""
        if not isinstance(node, yaml.ScalarNode):
            return None
        text = str(node.value)
        if node.tag != STR_TAG or "$" not in text:
            return Scalar(self.construct(node), text, False)
        try:
            text = interpolate(text, self.environ)
        except InterpolationError as e:
            message = str(e)
            if secret and e.quotes_text:
                message = (
                    "invalid interpolation in the value (not shown: environment values may "
                    "be secrets); '$' must be followed by a name or '{', and '${' closed by "
                    "'}'; write '$$' for a literal '$'"
                )
            self.add(node, key, message)
            return None
        # A plain (unquoted) scalar is typed after interpolation as if the result had
        # been written there: `stop_grace_period: ${GRACE:-10}` is the number 10.
        tag = STR_TAG
        if not node.style:
            tag = str(self.yaml.resolve(yaml.ScalarNode, text, (True, False)))  # type: ignore[no-untyped-call]
        typed = yaml.ScalarNode(tag, text, node.start_mark, node.end_mark, style=node.style)
        return Scalar(self.construct(typed), text, True)

    def mapping(
        self, node: yaml.Node, key: str, what: str = "a mapping"
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """Key text -> (key node, value node); a null value reads as an empty mapping."""
        if is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.expected(node, key, what)
            return None
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:  # merged entries come first: later ones win
            if not isinstance(knode, yaml.ScalarNode):
                self.add(knode, key, f"keys must be plain names; got {self.found(knode)}")
                continue
            entries[str(knode.value)] = (knode, vnode)
        return entries

    def check_keys(self, entries: Entries, allowed: tuple[str, ...], key: str) -> bool:
        """Report unknown keys; True when there was one."""
        unknown = False
        for name, (knode, _) in entries.items():
            if name in allowed or name.startswith("x-"):  # x-*: Compose extension fields
                continue
            message = "unknown key"
            close = difflib.get_close_matches(name, allowed, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
            elif not key and name == "version":
                message += " (Compose's 'version' is not used by pyinit; remove it)"
            self.add(knode, join(key, name), message)
            unknown = True
        return unknown

    def text(
        self, node: yaml.Node, key: str, what: str = "a string", secret: bool = False
    ) -> str | None:
        """Any scalar but null, as written: `user: 1000:50` stays "1000:50" rather than
        YAML 1.1's base-60 integer, and `ZIP: 01234` keeps its leading zero."""
        scalar = self.scalar(node, key, secret)
        if not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, what)
            return None
        if scalar is None:
            return None
        if scalar.value is None and not scalar.interpolated:
            self.expected(node, key, what, scalar)
            return None
        return scalar.text

    def choice(
        self, node: yaml.Node, key: str, options: tuple[str, ...], scalar: Scalar | None = None
    ) -> str | None:
        if scalar is None:
            scalar = self.scalar(node, key)
        if scalar is None and isinstance(node, yaml.ScalarNode):
            return None
        if scalar is not None and isinstance(scalar.value, str) and scalar.value in options:
            return scalar.value
        got = repr(scalar.value) if scalar is not None and isinstance(scalar.value, str) else None
        message = f"expected one of {', '.join(options)}; got {got or self.found(node, scalar)}"
        if got is not None:
            message += did_you_mean(str(scalar.value if scalar else ""), options)
        self.add(node, key, message)
        return None

    def boolean(self, node: yaml.Node, key: str) -> bool | None:
        scalar = self.scalar(node, key)
        if scalar is not None and isinstance(scalar.value, bool):
            return scalar.value
        if scalar is not None or not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, "true or false", scalar)
        return None

    def number(self, node: yaml.Node, key: str, what: str = "a number") -> float | None:
        scalar = self.scalar(node, key)
        value = scalar.value if scalar is not None else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an int too large for a float
                number = math.inf
            if math.isfinite(number):
                return number
            self.add(node, key, f"expected a finite number; got {scalar.text if scalar else value}")
            return None
        if scalar is not None or not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, what, scalar)
        return None

    def duration(self, node: yaml.Node, key: str) -> float | None:
        scalar = self.scalar(node, key)
        if scalar is None:
            if not isinstance(node, yaml.ScalarNode):
                self.expected(node, key, "a duration such as 10s, 1m30s or 500ms")
            return None
        try:
            return parse_duration(scalar.value)
        except ValueError as e:
            self.add(node, key, str(e))
            return None

    def parsed(
        self, node: yaml.Node, key: str, what: str, parse: Callable[[str], _T]
    ) -> _T | None:
        """A string turned into a value by ``parse``; its ValueError is the problem."""
        text = self.text(node, key, what)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.add(node, key, str(exc))
            return None

    def positive_duration(self, node: yaml.Node, key: str) -> float | None:
        value = self.duration(node, key)
        if value is not None and value <= 0:
            self.add(node, key, "expected a duration longer than 0")
            return None
        return value

    def whole_number(
        self, node: yaml.Node, key: str, low: int, high: int | None, what: str
    ) -> int | None:
        scalar = self.scalar(node, key)
        value = scalar.value if scalar is not None else None
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and low <= value
            and (high is None or value <= high)
        ):
            return value
        if scalar is not None or not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, what, scalar)
        return None

    def command(self, node: yaml.Node, key: str) -> tuple[str, ...] | None:
        if isinstance(node, yaml.SequenceNode):
            words = [self.text(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
            if any(w is None for w in words):
                return None
            argv = tuple(w for w in words if w is not None)
        elif isinstance(node, yaml.ScalarNode):
            text = self.text(node, key, "a list of strings or a string")
            if text is None:
                return None
            try:
                # Split like a shell would, but never run through one: no globbing,
                # no expansion beyond our own interpolation, no pipes.
                argv = tuple(shlex.split(text))
            except ValueError as e:
                self.add(node, key, f"cannot split the command like a shell would: {e}")
                return None
        else:
            self.expected(node, key, "a list of strings or a string")
            return None
        if not argv or not argv[0]:
            self.add(node, key, "the command is empty")
            return None
        return argv
