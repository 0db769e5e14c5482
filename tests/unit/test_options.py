"""Unit tests for the small getopt in pyinit.options (no processes)."""

from __future__ import annotations

import pytest

from pyinit.errors import UsageError
from pyinit.options import Option, parse

OPTS = [
    Option("verbose", "v", "verbose"),
    Option("single", None, "single-child"),
    Option("rewrite", "r", "rewrite", True),
    Option("grace", None, "grace", True),
    Option("help", "h", "help"),
]


def test_no_arguments() -> None:
    """An empty command line yields no options and no operands."""
    assert parse([], OPTS) == ([], [])


def test_stops_at_first_operand() -> None:
    """POSIX '+' mode: options after the command belong to the command."""
    found, rest = parse(["-v", "sh", "-c", "x", "-v"], OPTS)
    assert found == [("verbose", None)]
    assert rest == ["sh", "-c", "x", "-v"]


def test_double_dash_ends_options() -> None:
    """'--' ends the options; what follows is the command, even if it looks like one."""
    found, rest = parse(["-v", "--", "-h", "x"], OPTS)
    assert found == [("verbose", None)]
    assert rest == ["-h", "x"]


def test_double_dash_only_the_first() -> None:
    """A second '--' is an operand of the command."""
    assert parse(["--", "--", "a"], OPTS) == ([], ["--", "a"])


def test_lone_dash_is_an_operand() -> None:
    """'-' alone is an operand (stdin by convention), not an option."""
    assert parse(["-", "x"], OPTS) == ([], ["-", "x"])


def test_combined_short_flags() -> None:
    """'-vvh' is -v -v -h, in order."""
    found, rest = parse(["-vvh", "cmd"], OPTS)
    assert found == [("verbose", None), ("verbose", None), ("help", None)]
    assert rest == ["cmd"]


def test_short_value_attached_and_separate() -> None:
    """A short option's value may be attached ('-r15:0') or the next argument."""
    assert parse(["-r15:0", "-r", "TERM:QUIT", "x"], OPTS) == (
        [("rewrite", "15:0"), ("rewrite", "TERM:QUIT")],
        ["x"],
    )


def test_short_value_ends_cluster() -> None:
    """In '-vrTERM:0' the value-taking -r consumes the rest of the cluster."""
    assert parse(["-vrTERM:0", "x"], OPTS) == ([("verbose", None), ("rewrite", "TERM:0")], ["x"])


def test_value_may_look_like_an_option() -> None:
    """The argument after a value-taking option is its value, whatever it looks like."""
    assert parse(["-r", "--", "x"], OPTS) == ([("rewrite", "--")], ["x"])


def test_long_value_forms() -> None:
    """'--grace=1s' and '--grace 1s' are the same; '--grace=' gives an empty value."""
    assert parse(["--grace=1s", "--grace", "2s", "--grace=", "x"], OPTS) == (
        [("grace", "1s"), ("grace", "2s"), ("grace", "")],
        ["x"],
    )


def test_long_flag() -> None:
    """A long flag without a value is recorded with value None."""
    assert parse(["--single-child", "x"], OPTS) == ([("single", None)], ["x"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nope", "x"], "unknown option '--nope'"),
        (["-z", "x"], "unknown option '-z'"),
        (["-vz", "x"], "unknown option '-z'"),
        (["--grace"], "option '--grace' needs a value"),
        (["-r"], "option '-r' needs a value"),
        (["--single-child=yes", "x"], "option '--single-child' takes no value"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    """Bad command lines raise UsageError with a message naming the option."""
    with pytest.raises(UsageError) as info:
        parse(args, OPTS)
    assert str(info.value) == message


def test_options_only() -> None:
    """Options with no command leave the operand list empty (the caller complains)."""
    assert parse(["-v"], OPTS) == ([("verbose", None)], [])
