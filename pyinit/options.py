"""A small getopt: short and long options, stops at ``--`` or the first operand.

Stopping at the first operand (POSIX "+" mode, as tini and dumb-init do) means
``pyinit sh -c 'x' -v`` gives ``-v`` to sh, not to pyinit. Hand-written rather
than argparse to keep wrapper start-up small and the messages our own.
"""

from __future__ import annotations

from pyinit.errors import UsageError


class Option:
    """One option: ``key`` is what the caller sees, ``short`` "v" for -v, ``long``
    "verbose" for --verbose. (Not a dataclass: that import costs start-up time.)"""

    __slots__ = ("key", "short", "long", "takes_value")

    def __init__(
        self,
        key: str,
        short: str | None = None,
        long: str | None = None,
        takes_value: bool = False,
    ) -> None:
        self.key = key
        self.short = short
        self.long = long
        self.takes_value = takes_value


def parse(args: list[str], options: list[Option]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Return ([(key, value)], operands) or raise UsageError."""
    by_short = {o.short: o for o in options if o.short}
    by_long = {o.long: o for o in options if o.long}
    found: list[tuple[str, str | None]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return found, args[i + 1 :]
        if arg.startswith("--"):
            i = _take_long(args, i, by_long, found)
        elif arg.startswith("-") and arg != "-":
            i = _take_short(args, i, by_short, found)
        else:
            return found, args[i:]
        i += 1
    return found, []


# The two helpers below read args[i], append what they find and return the index
# of the last argument they used (i, or i + 1 when a value was the next argument).


def _take_long(
    args: list[str], i: int, by_long: dict[str, Option], found: list[tuple[str, str | None]]
) -> int:
    """``--name``, ``--name=value`` or ``--name value``."""
    name, eq, inline = args[i][2:].partition("=")
    opt = by_long.get(name)
    if opt is None:
        raise UsageError(f"unknown option '--{name}'")
    if opt.takes_value:
        # --name= is an explicit empty value, not a request for the next argument.
        value, i = _value(args, i, inline if eq else None, f"--{name}")
        found.append((opt.key, value))
    elif eq:
        raise UsageError(f"option '--{name}' takes no value")
    else:
        found.append((opt.key, None))
    return i


def _take_short(
    args: list[str], i: int, by_short: dict[str, Option], found: list[tuple[str, str | None]]
) -> int:
    """A cluster such as ``-vv``, ``-ec3`` or ``-e 3``: the first letter that takes
    a value takes the rest of the cluster, or the next argument."""
    arg = args[i]
    for j in range(1, len(arg)):
        letter = arg[j]
        opt = by_short.get(letter)
        if opt is None:
            raise UsageError(f"unknown option '-{letter}'")
        if opt.takes_value:
            value, i = _value(args, i, arg[j + 1 :] or None, f"-{letter}")
            found.append((opt.key, value))
            return i
        found.append((opt.key, None))
    return i


def _value(args: list[str], i: int, inline: str | None, flag: str) -> tuple[str, int]:
    """The option's value: ``inline`` when given, else the next argument."""
    if inline is not None:
        return inline, i
    if i + 1 < len(args):
        return args[i + 1], i + 1
    raise UsageError(f"option '{flag}' needs a value")
