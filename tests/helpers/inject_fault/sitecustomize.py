"""Put this directory on PYTHONPATH and every Python process started with it runs
this first (site.py imports ``sitecustomize``): the supervisor's real signal sender
then raises RuntimeError("injected fault") when asked to send SIGWINCH, so
forwarding SIGWINCH fails inside a signal handler. pyinit itself has no hook for
this: tests/e2e/test_faults.py::test_injected_handler_fault uses the sender seam.
"""

from __future__ import annotations

import signal

from pyinit.supervisor.seams import RealSignalSender

_real_kill = RealSignalSender.kill


def _faulty_kill(self: RealSignalSender, pid: int, signum: int) -> None:
    if signum == signal.SIGWINCH:
        raise RuntimeError("injected fault")
    _real_kill(self, pid, signum)


RealSignalSender.kill = _faulty_kill  # type: ignore[method-assign]
