"""Wrapper mode's options, its stderr trace, and the signal state tini's CMD inherits."""

from __future__ import annotations

import sys

from pyinit.signals import sigmod as signal
from pyinit.signals import waitable_signals

# Annotations only: typing and dataclasses would cost start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pyinit.spawn import Isolation, SpawnError


class WrapperOptions:
    """How to run the one command; each personality fills it in its own way."""

    __slots__ = (
        "argv",
        "name",
        "isolation",
        "forward_to_group",
        "rewrite",
        "remap_exit",
        "grace",
        "term_group_on_exit",
        "suspend_on_job_control",
        "ignored_signals",
        "drop_own_sigpipe",
        "inherit_signal_state",
        "subreaper",
        "warn_not_reaper",
        "warn_on_reap",
        "parent_death_signal",
        "verbosity",
        "exec_failure_code",
    )

    def __init__(
        self,
        argv: list[str],
        name: str = "pyinit",  # log prefix: pyinit, tini or dumb-init
        isolation: Isolation = "new-session",
        forward_to_group: bool = True,
        rewrite: Mapping[int, int] | None = None,  # 0 drops the signal
        remap_exit: frozenset[int] = frozenset(),
        # After CMD exits: None exits at once (tini, dumb-init); a number stops
        # every process left, waiting that many seconds before SIGKILL.
        grace: float | None = 5.0,
        term_group_on_exit: bool = False,  # dumb-init: SIGTERM the group as CMD exits
        suspend_on_job_control: bool = True,  # dumb-init: stop ourselves on TSTP/TTIN/TTOU
        ignored_signals: frozenset[int] = frozenset(),  # tini ignores TTIN and TTOU
        # pyinit: SIGPIPE that pyinit's own write to a closed stderr raised is not
        # the user's; one sent with kill is forwarded like any other.
        drop_own_sigpipe: bool = False,
        # tini: CMD starts with the signal mask and ignored signals we started
        # with; otherwise with an empty mask and every disposition default.
        inherit_signal_state: bool = False,
        subreaper: bool = True,
        warn_not_reaper: bool = False,  # tini warns when it cannot reap orphans
        warn_on_reap: bool = False,  # tini -w
        parent_death_signal: int | None = None,
        verbosity: int = 0,
        # The exit code when CMD cannot be started; None: 127/126 as a shell would.
        exec_failure_code: Callable[[SpawnError], int] | None = None,
    ) -> None:
        self.argv = argv
        self.name = name
        self.isolation: Isolation = isolation
        self.forward_to_group = forward_to_group
        self.rewrite: Mapping[int, int] = rewrite or {}
        self.remap_exit = remap_exit
        self.grace = grace
        self.term_group_on_exit = term_group_on_exit
        self.suspend_on_job_control = suspend_on_job_control
        self.ignored_signals = ignored_signals
        self.drop_own_sigpipe = drop_own_sigpipe
        self.inherit_signal_state = inherit_signal_state
        self.subreaper = subreaper
        self.warn_not_reaper = warn_not_reaper
        self.warn_on_reap = warn_on_reap
        self.parent_death_signal = parent_death_signal
        self.verbosity = verbosity
        self.exec_failure_code = exec_failure_code


def inherited_signal_state() -> tuple[frozenset[int], frozenset[int]]:
    """The signal mask and ignored signals pyinit was started with, for tini's
    CMD. Python ignores SIGPIPE and SIGXFSZ before any of our code runs, so
    whether they were ignored before is unknowable: they are left out (default)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    mask = frozenset(int(s) for s in blocked if s in signal.valid_signals())
    python_ignores = {signal.SIGPIPE, signal.SIGXFSZ}
    ignored = frozenset(
        s
        for s in waitable_signals()
        if s not in python_ignores and signal.getsignal(s) == signal.SIG_IGN
    )
    return mask, ignored


class Tracer:
    """One line per event on stderr, prefixed with the personality's name."""

    def __init__(self, name: str, verbosity: int) -> None:
        self.name = name
        self.verbosity = verbosity

    def __call__(self, message: str, level: int = 1) -> None:
        if level <= self.verbosity:
            try:
                sys.stderr.write(f"{self.name}: {message}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not take PID 1 down
