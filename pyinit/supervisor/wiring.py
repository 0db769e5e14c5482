"""How the supervisor's parts are wired to it: the service driver and the reloader
at construction, and what ``run`` opens first (signal intake, the signalfd, HTTP).
Module functions, so the Supervisor class stays one screenful of responsibilities."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

from pyinit import startdir
from pyinit.configload import Reloader
from pyinit.httpd import serve
from pyinit.reaper import become_subreaper
from pyinit.signalfd import SignalFd
from pyinit.signals import SYNCHRONOUS_FAULTS, SignalIntake, catchable_signals
from pyinit.supervisor.driver import ServiceDriver
from pyinit.supervisor.selection import apply_file_reload

if TYPE_CHECKING:
    from pyinit.supervisor.core import Supervisor
    from pyinit.supervisor.seams import Launcher


def new_driver(sup: Supervisor, launcher: Launcher) -> ServiceDriver:
    """What runs each service's state machine, wired to the supervisor's seams."""
    return ServiceDriver(
        clock=sup.clock,
        loop=sup.loop,
        logs=sup.logs,
        launcher=launcher,
        sender=sup.sender,
        owners=sup.owners,
        register_child=sup._register_child,
        kill_delay=lambda delay: sup.shutdown.kill_timer_delay(delay),
        reconcile=sup.reconcile,
        runtime_dir=sup.runtime_dir,
        log=sup.log,
    )


def new_reloader(sup: Supervisor) -> Reloader:
    """Reloads: the loader's child compares the file with the running config (base)
    and sends back only what differs."""
    return Reloader(
        sup.loop,
        lambda: sup.config.path,
        sup._register_child,
        lambda new, plan: apply_file_reload(sup.actions, sup.selection, new, plan),
        sup.log,
        base=lambda: sup.config,
    )


def open_intake(sup: Supervisor) -> int | None:
    """Take signals and serve HTTP; an exit code when that is impossible."""
    if os.getpid() != 1:
        try:
            become_subreaper()
        except OSError as exc:
            sup.log(f"cannot become a child subreaper: {exc}")
    problem = startdir.leave()
    if problem:
        sup.log(problem)
    # SIGPIPE stays ignored (CPython's default): the kernel raises it when
    # pyinit writes to a stdout nobody reads any more; the write fails with
    # EPIPE and the log sink discards output from then on. It is blocked and
    # read from the signalfd below too, so one sent with kill is forwarded.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sup.intake = SignalIntake(s for s in catchable_signals() if s != signal.SIGPIPE)
    sup.loop.add_reader(sup.intake.read_fd, sup._on_signals)
    # Those whose sender decides what they mean (see signalfd).
    try:
        sup.sent = SignalFd(SYNCHRONOUS_FAULTS | {signal.SIGPIPE})
        sup.loop.add_reader(sup.sent.fd, sup._on_sent_signals)
    except OSError as exc:
        sup.log(f"cannot take fault signals sent with kill: {exc}")
    sup.http = None
    if sup.http_address:  # asked for explicitly: failing to serve it is fatal
        try:
            sup.http = serve(
                sup.loop,
                sup.http_address,
                sup.snapshot,
                lambda: [n for n, rt in sup.services.items() if rt.cfg.critical],
                sup.log,
                sampled=sup.sampled_snapshot,
            )
        except (OSError, ValueError) as exc:
            sup.log(f"cannot serve HTTP on {sup.http_address}: {exc}; nothing started")
            sup.logs.close(time.monotonic() + 2.0)
            return 2
    return None
