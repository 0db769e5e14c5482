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
            name, eq, inline = arg[2:].partition("=")
            opt = by_long.get(name)
            if opt is None:
                raise UsageError(f"unknown option '--{name}'")
            if opt.takes_value:
                if eq:
                    value = inline
                elif i + 1 < len(args):
                    i += 1
                    value = args[i]
                else:
                    raise UsageError(f"option '--{name}' needs a value")
                found.append((opt.key, value))
            elif eq:
                raise UsageError(f"option '--{name}' takes no value")
            else:
                found.append((opt.key, None))
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                letter = arg[j]
                opt = by_short.get(letter)
                if opt is None:
                    raise UsageError(f"unknown option '-{letter}'")
                if opt.takes_value:
                    rest = arg[j + 1 :]
                    if rest:
                        value = rest
                    elif i + 1 < len(args):
                        i += 1
                        value = args[i]
                    else:
                        raise UsageError(f"option '-{letter}' needs a value")
                    found.append((opt.key, value))
                    break
                found.append((opt.key, None))
                j += 1
        else:
            return found, args[i:]
        i += 1
    return found, []
