"""What wrapper mode sets up in its own process before starting COMMAND: the
subreaper role when it is not PID 1, and the parent-death signal."""

from __future__ import annotations

import os

from pyinit.reaper import PR_SET_PDEATHSIG, become_subreaper, prctl

TYPE_CHECKING = False  # typing costs start-up time; annotations only
if TYPE_CHECKING:
    from pyinit.wrapper.options import Tracer, WrapperOptions


def prepare_process(opts: WrapperOptions, trace: Tracer) -> None:
    """Become a child subreaper when not PID 1 (or warn), and ask for the
    parent-death signal."""
    if os.getpid() != 1:
        if opts.subreaper:
            try:
                become_subreaper()
                trace("registered as child subreaper", 2)
            except OSError as exc:
                trace(f"cannot become a child subreaper: {exc}", 0)
        elif opts.warn_not_reaper:
            trace(
                "warning: not PID 1 and not a child subreaper, so orphans of the "
                "command will not be reaped here; use -s or TINI_SUBREAPER",
                0,
            )
    if opts.parent_death_signal:
        prctl(PR_SET_PDEATHSIG, opts.parent_death_signal)
