"""Compose's variable interpolation: ``$VAR``, ``${VAR:-default}``, ``${VAR:?message}``...

Applied to quoted and plain scalars of services.yaml (never to env files, whose
values are literal).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# The interpolation grammar (Compose's): $$ | $NAME | ${NAME} | ${NAME<op>arg}, with
# op one of :- - :? ? :+ +. Anything else after a '$' is an error, not literal text,
# so a shell snippet such as `echo $1` fails loudly instead of being half-expanded.
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
# Set by pyinit in each instance of a scaled service as it starts: in the file they
# would expand to nothing, so a bare one is a mistake (write $$ for the shell's).
_PER_INSTANCE = ("PYINIT_SERVICE", "PYINIT_REPLICA")


class InterpolationError(ValueError):
    """A malformed ``$`` expression, or a required variable that is not set.

    ``quotes_text``: the message shows part of the string, which must not be printed
    for an environment value (it may be a secret)."""

    def __init__(self, message: str, quotes_text: bool = True) -> None:
        super().__init__(message)
        self.quotes_text = quotes_text


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?message}``, ``${VAR?message}``, ``${VAR:+alt}``, ``${VAR+alt}`` and
    ``$$``. An unset ``$VAR``/``${VAR}`` expands to the empty string, as in Compose."""
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        after = text[dollar + 1 : dollar + 2]
        if after == "$":
            out.append("$")
            i = dollar + 2
        elif after == "{":
            end = _closing_brace(text, dollar + 2)
            if end < 0:
                raise InterpolationError(f"unclosed '${{' in {text!r}")
            out.append(_expand(text[dollar + 2 : end], environ))
            i = end + 1
        else:
            match = _VAR_NAME.match(text, dollar + 1)
            if match is None:
                raise InterpolationError(
                    f"invalid interpolation at {text[dollar : dollar + 8]!r}: '$' must be "
                    "followed by a name or '{'; write '$$' for a literal '$'"
                )
            out.append(_lookup(match.group(), environ))
            i = match.end()
    return "".join(out)


def _lookup(name: str, environ: Mapping[str, str]) -> str:
    if name in _PER_INSTANCE and name not in environ:
        raise InterpolationError(
            f"${name} is set in each instance's environment when it starts, not when "
            f"the file is read; write $${name} to leave it to the shell (sh -c '...')",
            quotes_text=False,
        )
    return environ.get(name, "")


def _closing_brace(text: str, start: int) -> int:
    """Index of the '}' closing a '${' whose body starts at ``start``; nested
    ``${...}`` in defaults are allowed, so braces are counted."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _expand(body: str, environ: Mapping[str, str]) -> str:
    match = _VAR_NAME.match(body)
    if match is None:
        raise InterpolationError(
            f"invalid interpolation '${{{body}}}'; expected ${{NAME}}, ${{NAME:-default}} "
            "or ${NAME:?message}"
        )
    name = match.group()
    rest = body[match.end() :]
    value = environ.get(name)
    if not rest:
        return _lookup(name, environ)
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(
            f"invalid interpolation '${{{body}}}'; after the name expected '}}', ':-', '-', "
            "':?', '?', ':+' or '+'"
        )
    arg = rest[len(op) :]
    # ':' makes an empty value count as unset, as in the shell.
    is_set = bool(value) if op.startswith(":") else value is not None
    if op in (":-", "-"):
        return value if is_set and value is not None else interpolate(arg, environ)
    if op in (":+", "+"):
        return interpolate(arg, environ) if is_set else ""
    if is_set and value is not None:
        return value
    state = "is empty" if value == "" else "is not set"
    message = interpolate(arg, environ).strip()
    raise InterpolationError(
        f"required variable {name} {state}" + (f": {message}" if message else ""),
        quotes_text=False,
    )
