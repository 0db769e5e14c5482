"""Unit tests for the small command-line value parsers (no processes are started).

pyinit's ``--rewrite FROM:TO``, dumb-init's ``-r S:R`` (numbers only) and
tini's ``-e CODE`` validation, which rejects before anything is spawned.
"""

from __future__ import annotations

import signal

import pytest

from pyinit.cli import parse_exit_code, parse_rewrite
from pyinit.errors import UsageError
from pyinit.personalities import _dumb_init_rewrite, dumb_init_main, tini_main

USR1, USR2 = int(signal.SIGUSR1), int(signal.SIGUSR2)


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("USR1:USR2", (USR1, USR2)),
        ("SIGUSR1:SIGUSR2", (USR1, USR2)),
        ("10:12", (USR1, USR2)),
        ("USR1:0", (USR1, 0)),
        ("TERM:QUIT", (15, 3)),
        ("TSTP:STOP", (int(signal.SIGTSTP), int(signal.SIGSTOP))),
        ("RTMIN+1:HUP", (int(signal.SIGRTMIN) + 1, 1)),
    ],
)
def test_parse_rewrite(text: str, pair: tuple[int, int]) -> None:
    """FROM:TO takes names or numbers; TO may be 0 (drop)."""
    assert parse_rewrite(text) == pair


@pytest.mark.parametrize("text", ["USR1", "USR1:", ":USR2", "0:USR1", "USR1:FOO", "FOO:USR1", ""])
def test_parse_rewrite_rejects(text: str) -> None:
    """A missing colon, a missing or unknown side, or FROM=0 is a UsageError."""
    with pytest.raises(UsageError):
        parse_rewrite(text)


def test_parse_rewrite_message_names_input() -> None:
    """The message shows the expected form and what was given."""
    with pytest.raises(UsageError, match="FROM:TO.*'USR1'"):
        parse_rewrite("USR1")


@pytest.mark.parametrize(("text", "code"), [("0", 0), ("143", 143), ("255", 255)])
def test_parse_exit_code(text: str, code: int) -> None:
    """--remap-exit takes 0..255."""
    assert parse_exit_code(text, "--remap-exit") == code


@pytest.mark.parametrize("text", ["256", "-1", "", "x", "1.0", " 1"])
def test_parse_exit_code_rejects(text: str) -> None:
    """Anything but an integer 0..255 is a UsageError naming the flag."""
    with pytest.raises(UsageError, match="--remap-exit"):
        parse_exit_code(text, "--remap-exit")


@pytest.mark.parametrize(
    ("text", "pair"), [("15:3", (15, 3)), ("1:0", (1, 0)), ("31:31", (31, 31)), ("10:12", (10, 12))]
)
def test_dumb_init_rewrite(text: str, pair: tuple[int, int]) -> None:
    """dumb-init's -r takes S:R numbers, S in 1..31, R in 0..31."""
    assert _dumb_init_rewrite(text) == pair


@pytest.mark.parametrize(
    "text", ["USR1:USR2", "TERM:0", "0:1", "32:1", "1:32", "15", "15:", ":3", "-1:2", "15:3:1"]
)
def test_dumb_init_rewrite_rejects(text: str) -> None:
    """Names, 0 or out-of-range numbers and malformed pairs are rejected."""
    with pytest.raises(UsageError):
        _dumb_init_rewrite(text)


@pytest.mark.parametrize("args", [["-r", "USR1:USR2", "true"], ["-r", "99:1", "true"], ["-Z"], []])
def test_dumb_init_usage_errors_exit_1(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """dumb-init's usage errors (bad -r, unknown option, no command) exit 1 before spawning."""
    assert dumb_init_main(args) == 1
    assert capsys.readouterr().err


@pytest.mark.parametrize("value", ["256", "-1", "abc", "", "3x"])
def test_tini_e_validation(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """tini -e accepts 0..255 only; anything else exits 1 with a message, spawning nothing."""
    assert tini_main(["-e", value, "true"]) == 1
    assert "-e" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["-Z", "true"], [], ["-e"]])
def test_tini_usage_errors_exit_1(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """tini's usage errors (unknown option, no program, missing value) exit 1."""
    assert tini_main(args) == 1
    assert "Usage: tini" in capsys.readouterr().err


def test_tini_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    """-h and --version print to stdout and exit 0."""
    assert tini_main(["-h"]) == 0
    assert "Usage: tini" in capsys.readouterr().out
    assert tini_main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("tini version ")


def test_dumb_init_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    """-h/--help and -V/--version print to stderr (as dumb-init does) and exit 0."""
    for flag in ("-h", "--help"):
        assert dumb_init_main([flag]) == 0
        assert "Usage: dumb-init" in capsys.readouterr().err
    for flag in ("-V", "--version"):
        assert dumb_init_main([flag]) == 0
        assert capsys.readouterr().err.startswith("dumb-init v")


@pytest.mark.parametrize("rule", ["KILL:TERM", "STOP:0", "CHLD:USR1"])
def test_rewrite_of_a_signal_pyinit_never_forwards_is_refused(rule: str) -> None:
    """A --rewrite rule whose FROM signal never reaches the forwarding path (KILL and
    STOP cannot be caught, CHLD is pyinit's own) is a usage error rather than a
    rule that silently never applies."""
    with pytest.raises(UsageError, match="never forwards"):
        parse_rewrite(rule)


def test_rewrite_of_a_fault_signal_is_accepted() -> None:
    """A fault signal sent with kill is forwarded, so a rule for it can apply."""
    assert parse_rewrite("SEGV:TERM") == (int(signal.SIGSEGV), int(signal.SIGTERM))
