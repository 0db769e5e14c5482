"""Unit tests for signal names and numbers (pyinit.signals), no processes."""

from __future__ import annotations

import signal
import threading

import pytest

from pyinit.signals import catchable_signals, parse_signal, signal_name

RTMIN = int(signal.SIGRTMIN)
RTMAX = int(signal.SIGRTMAX)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("TERM", 15),
        ("SIGTERM", 15),
        ("sigterm", 15),
        ("term", 15),
        ("15", 15),
        (" 15 ", 15),
        ("HUP", 1),
        ("USR1", int(signal.SIGUSR1)),
        ("KILL", 9),
        ("9", 9),
        ("STOP", int(signal.SIGSTOP)),
        ("CHLD", int(signal.SIGCHLD)),
        ("RTMIN", RTMIN),
        ("RTMIN+1", RTMIN + 1),
        ("SIGRTMIN+3", RTMIN + 3),
        ("rtmax", RTMAX),
        ("RTMAX-1", RTMAX - 1),
        (str(RTMAX), RTMAX),
    ],
)
def test_parse_signal_accepts(text: str, number: int) -> None:
    """Names with or without SIG, any case, numbers and RTMIN+n/RTMAX-n all parse."""
    assert parse_signal(text) == number


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIG",
        "FOO",
        "SIGFOO",
        "0",
        "-1",
        "65",
        "1000",
        "32",
        "RTMIN-1",
        "RTMAX+1",
        "RTMINX",
        "RTMIN+",
        "1.5",
        "TERM:QUIT",
    ],
)
def test_parse_signal_rejects(text: str) -> None:
    """Unknown names, 0 (unless allowed), out-of-range and glibc-reserved numbers fail."""
    with pytest.raises(ValueError):
        parse_signal(text)


def test_rtmin_plus_empty_offset_rejected_message() -> None:
    """An error message quotes what the user typed."""
    with pytest.raises(ValueError, match="'FOO'"):
        parse_signal("FOO")


def test_zero_only_when_allowed() -> None:
    """0 means 'drop' in a rewrite target and is accepted only there."""
    assert parse_signal("0", allow_zero=True) == 0
    with pytest.raises(ValueError):
        parse_signal("0")


def test_rt_range_is_bounded() -> None:
    """RTMIN+n must stay within SIGRTMIN..SIGRTMAX."""
    assert parse_signal(f"RTMIN+{RTMAX - RTMIN}") == RTMAX
    with pytest.raises(ValueError):
        parse_signal(f"RTMIN+{RTMAX - RTMIN + 1}")


@pytest.mark.parametrize(
    ("number", "name"),
    [
        (1, "SIGHUP"),
        (15, "SIGTERM"),
        (int(signal.SIGCHLD), "SIGCHLD"),
        (RTMIN, "SIGRTMIN"),
        (RTMIN + 1, "SIGRTMIN+1"),
        (RTMAX - 1, f"SIGRTMIN+{RTMAX - 1 - RTMIN}"),
        (RTMAX, "SIGRTMAX"),
        (0, "signal 0"),
        (99, "signal 99"),
    ],
)
def test_signal_name(number: int, name: str) -> None:
    """Names are SIGxxx, real-time ones relative to SIGRTMIN, unknown ones a number."""
    assert signal_name(number) == name


def test_signal_name_round_trips() -> None:
    """Every name signal_name gives for a catchable signal parses back to it."""
    for signum in catchable_signals():
        assert parse_signal(signal_name(signum)) == signum


def test_catchable_signals_excludes_faults_and_uncatchables() -> None:
    """KILL/STOP cannot be caught; SEGV/BUS/FPE/ILL keep their default (a crash, not a hang)."""
    catchable = catchable_signals()
    for excluded in ("SIGKILL", "SIGSTOP", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL"):
        assert int(getattr(signal, excluded)) not in catchable


def test_catchable_signals_includes_forwarded_ones() -> None:
    """Everything pyinit forwards or acts on is caught, real-time signals included."""
    catchable = set(catchable_signals())
    names = (
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGTERM",
        "SIGCHLD",
        "SIGCONT",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGWINCH",
        "SIGALRM",
        "SIGPIPE",
    )
    for name in names:
        assert int(getattr(signal, name)) in catchable
    assert set(range(RTMIN, RTMAX + 1)) <= catchable


def test_catchable_signals_sorted_ints_and_installable() -> None:
    """A sorted list of plain ints, each one a valid signal."""
    catchable = catchable_signals()
    assert catchable == sorted(catchable)
    assert all(type(s) is int for s in catchable)
    assert set(catchable) <= {int(s) for s in signal.valid_signals()}



def test_held_child_signals_keep_a_sigchld_pending_until_the_end() -> None:
    """SIGCHLD is blocked inside the ``with`` (one sent meanwhile stays pending:
    nothing is lost) and unblocked after it."""
    from pyinit.signals import HeldChildSignals

    with HeldChildSignals():
        assert signal.SIGCHLD in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        signal.pthread_kill(threading.get_ident(), signal.SIGCHLD)
        assert signal.SIGCHLD in signal.sigpending()
    assert signal.SIGCHLD not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert signal.SIGCHLD not in signal.sigpending()  # delivered (and ignored)
