"""How wrapper mode ends once COMMAND has exited: its exit code (remapped if asked),
then, with a grace period, the leftover processes get SIGTERM and, if still there,
SIGKILL; pyinit exits as soon as none is left, never after a fixed sleep."""

from __future__ import annotations

import os
import time

from pyinit import proctree
from pyinit.signals import sigmod as signal

TYPE_CHECKING = False  # typing costs start-up time; annotations only
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.reaper import ExitStatus
    from pyinit.wrapper.options import Tracer, WrapperOptions

KILL_WAIT_LIMIT = 2.0


class EndingMixin:
    """The Wrapper's end: a mixin, so the loop's hot path stays one class."""

    opts: WrapperOptions
    trace: Tracer
    child_pid: int | None
    child_status: ExitStatus | None
    exit_code: int
    draining: bool
    _drain_started: float
    _killing: bool
    _running: bool

    if TYPE_CHECKING:

        def _call_later(self, delay: float, call: Callable[[], None]) -> None: ...

    def _child_exited(self, none_left: bool) -> None:
        assert self.child_status is not None and self.child_pid is not None
        code = self.child_status.shell_code
        if code in self.opts.remap_exit:
            self.trace(f"exit status {code} remapped to 0")
            code = 0
        self.exit_code = code
        if self.opts.term_group_on_exit and self.opts.isolation != "inherit":
            sent = self.opts.rewrite.get(signal.SIGTERM, signal.SIGTERM)
            if sent:
                try:
                    os.kill(-self.child_pid, sent)
                except ProcessLookupError:
                    pass
        if self.opts.grace is None or none_left:
            self._finish()
            return
        self.draining = True
        self._drain_started = time.monotonic()
        count = proctree.signal_descendants(signal.SIGTERM)
        self.trace(
            f"{count} process(es) left; sent SIGTERM, SIGKILL in {self.opts.grace:g}s "
            "if still running"
        )
        self._call_later(self.opts.grace, self._kill_remaining)

    def _kill_remaining(self) -> None:
        if self._killing or not self._running:
            return
        self._killing = True
        count = proctree.signal_descendants(signal.SIGKILL)
        self.trace(f"sent SIGKILL to {count} process(es) still running")
        # SIGKILL cannot be refused, but a process in uninterruptible sleep may take
        # its time; do not hold the container hostage for it.
        self._call_later(KILL_WAIT_LIMIT, self._give_up)

    def _give_up(self) -> None:
        self.trace(f"processes still present {KILL_WAIT_LIMIT:g}s after SIGKILL; exiting anyway", 0)
        self._finish()

    def _finish(self) -> None:
        if self.draining:
            took = time.monotonic() - self._drain_started
            self.trace(f"all processes gone after {took:.2f}s")
        self.trace(f"exiting with status {self.exit_code}")
        self._running = False
