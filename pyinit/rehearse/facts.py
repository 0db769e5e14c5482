"""What one rehearsal observed, and the verdict it earns (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyinit.reaper import ExitStatus
from pyinit.rehearse.probe import ProcInfo, disposition
from pyinit.signals import sigmod as signal
from pyinit.signals import signal_name

# How a process of the app's tree ended, once the stop signal was sent.
EXITED = "exited"  # on its own before the deadline (handler, default action, parent)
KILLED_AT_DEADLINE = "killed-at-deadline"  # still running at the deadline: SIGKILLed
KILLED_WITH_PID1 = "killed-with-pid1"  # --as-pid1: running when PID 1 exited; the kernel killed it

# Verdicts: the first is a pass, the others fail the rehearsal.
CLEAN = "clean"
KILLED = "killed"
LEFT_BEHIND = "left-behind"
NOT_READY = "not-ready"
EXITED_EARLY = "exited-early"


@dataclass
class ProcFacts:
    info: ProcInfo
    main: bool  # the command itself, not one of its descendants
    outcome: str = EXITED
    exit_seconds: float | None = None  # after the stop signal; None when not seen
    status: ExitStatus | None = None  # when its exit status could be read

    def disposition(self, signum: int) -> str:
        return disposition(self.info, signum)

    def received(self, facts: RunFacts) -> bool:
        """Whether the stop signal was sent to it: the app always; the others
        when the signal went to the app's process group and they are in it."""
        main = facts.main
        if self.main or main is None:
            return True
        return facts.to_group and self.info.pgid == main.info.pid


@dataclass
class RunFacts:
    command: list[str]
    signum: int
    to_group: bool
    timeout: float
    grace_source: str
    as_pid1: bool
    ready_how: str  # "after 1s", "port 8000 open", ...
    ready_timeout: float = 30.0
    not_ready: str = ""  # "port 8000 did not open", for the verdict line
    ready: bool = True
    ready_seconds: float = 0.0
    early_status: ExitStatus | None = None  # the app ended before the stop signal
    main_status: ExitStatus | None = None
    main_exit_seconds: float | None = None
    all_gone_seconds: float | None = None
    processes: list[ProcFacts] = field(default_factory=list)
    # Processes started after the snapshot and still running at the deadline.
    late_killed: list[ProcInfo] = field(default_factory=list)

    @property
    def main(self) -> ProcFacts | None:
        return next((p for p in self.processes if p.main), None)

    @property
    def exit_code(self) -> int | None:
        status = self.main_status or self.early_status
        return None if status is None else status.shell_code

    def killed(self) -> list[ProcFacts]:
        return [p for p in self.processes if p.outcome == KILLED_AT_DEADLINE]

    def left_behind(self) -> list[ProcFacts]:
        return [p for p in self.processes if p.outcome == KILLED_WITH_PID1]

    @property
    def handled(self) -> bool:
        """The app ended of the stop signal before the deadline (by its own handler
        or by the signal's default action), rather than being SIGKILLed."""
        main = self.main
        return self.ready and main is not None and main.outcome == EXITED


def verdict(facts: RunFacts) -> str:
    if not facts.ready:
        return NOT_READY
    if facts.early_status is not None:
        return EXITED_EARLY
    if facts.killed() or facts.late_killed:
        return KILLED
    if facts.left_behind():
        return LEFT_BEHIND
    return CLEAN


def passed(facts: RunFacts) -> bool:
    return verdict(facts) == CLEAN


def killed_with_pid1(status: ExitStatus | None, ended_before_pid1: bool) -> bool:
    """Whether a process of an ``--as-pid1`` namespace went down with its PID 1.

    As PID 1 exits, the kernel SIGKILLs every other process of the namespace,
    before we hear that PID 1 is gone; their pidfds fire a moment earlier, so
    timing alone cannot tell them from a worker the app stopped and waited for.
    The exit status can (Linux 6.15+ gives it through the pidfd): anything but
    SIGKILL ended on its own. Without it, a process whose end we saw while PID 1
    was still alive (``ended_before_pid1``) ended on its own.
    """
    if status is not None:
        return status.signal == signal.SIGKILL and not ended_before_pid1
    return not ended_before_pid1


def exit_meaning(status: ExitStatus) -> str:
    """What an exit status means to someone reading ``docker ps``."""
    code = status.shell_code
    if status.signal is not None:
        name = signal_name(status.signal)
        if status.signal == signal.SIGKILL:
            return f"{code} = 128+9: killed by SIGKILL, as at the end of the grace period"
        return f"{code} = 128+{status.signal}: ended by {name}"
    if code == 0:
        return "0: a clean exit"
    if 128 < code <= 128 + 64:
        name = signal_name(code - 128)
        return f"{code} = 128+{code - 128}: how a shell reports a child ended by {name}"
    return f"{code}: the app reported an error on the way out"
