"""The wrapper: start the one command, then reap and forward until it is gone."""

from __future__ import annotations

import os
import time

from pyinit.reaper import (
    ExitStatus,
    reap_raw,
    reap_watching,
)
from pyinit.signals import (
    JOB_CONTROL_STOPS,
    SHUTDOWN_SIGNALS,
    SYNCHRONOUS_FAULTS,
    SignalWaiter,
    sent_by_a_process,
    signal_name,
    waitable_signals,
)
from pyinit.signals import sigmod as signal
from pyinit.spawn import SpawnError, SpawnSpec, release_controlling_tty, spawn
from pyinit.wrapper.ending import EndingMixin
from pyinit.wrapper.options import Tracer, WrapperOptions, inherited_signal_state
from pyinit.wrapper.setup import prepare_process

# Annotations only: typing and dataclasses would cost start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Orphan storms: a SIGCHLD within STORM_GAP of the last one is left pending for
# HOLD seconds (other signals are still taken at once), so one wake-up reaps many.
STORM_GAP = 0.05
HOLD = 0.02


class Wrapper(EndingMixin):
    def __init__(self, options: WrapperOptions) -> None:
        self.opts = options
        self.trace = Tracer(options.name, options.verbosity)
        self.verbose = options.verbosity >= 1  # guards the hot paths' f-strings
        self._trace_reaps = self.verbose or options.warn_on_reap
        self.child_pid: int | None = None
        self.child_status: ExitStatus | None = None
        self.draining = False
        self._drain_started = 0.0
        self._running = False
        self._timers: list[tuple[float, int, Callable[[], None]]] = []  # (when, seq, call)
        self._seq = 0
        self._killing = False
        self.exit_code = 0
        # (mask, ignored) for CMD: clean unless inherit_signal_state.
        self._inherited: tuple[frozenset[int], frozenset[int]] = (frozenset(), frozenset())

    # -- set-up ------------------------------------------------------------
    def _prepare(self) -> None:
        opts = self.opts
        prepare_process(opts, self.trace)
        if opts.inherit_signal_state:
            self._inherited = inherited_signal_state()
        for signum in opts.ignored_signals:
            signal.signal(signum, signal.SIG_IGN)
        # The faults too: one sent with kill is forwarded; a genuine one still
        # kills pyinit (see SYNCHRONOUS_FAULTS).
        wanted = [s for s in waitable_signals() if s not in opts.ignored_signals]
        self.waiter = SignalWaiter(wanted)
        self._others = tuple(s for s in self.waiter.signals if s != signal.SIGCHLD)

    def _release_tty(self) -> bool:
        if self.opts.isolation != "new-session":
            return False
        return release_controlling_tty()

    def run(self) -> int:
        self._prepare()
        take_tty = self._release_tty() or (self.opts.isolation == "new-group" and os.isatty(0))
        # Inherited fds pass through (socket activation, --preserve-fds), as with
        # tini and dumb-init; pyinit's own fds are all close-on-exec.
        mask, ignored = self._inherited
        spec = SpawnSpec(
            argv=self.opts.argv,
            isolation=self.opts.isolation,
            take_tty=take_tty,
            close_fds=False,
            exact_signals=True,
            sigmask=mask,
            ignored=ignored,
        )
        try:
            self.child_pid = spawn(spec)
        except SpawnError as exc:
            self.trace(str(exc), 0)
            if self.opts.exec_failure_code is not None:
                return self.opts.exec_failure_code(exc)
            return exc.exit_code
        except OSError as exc:
            self.trace(f"cannot start {self.opts.argv[0]!r}: {exc.strerror}", 0)
            return 126
        # As dumb-init does: CMD runs where we were started, but we hold no
        # reference to that directory, so a volume mounted there can be unmounted.
        try:
            os.chdir("/")
        except OSError as exc:
            self.trace(f"cannot change directory to /: {exc.strerror}", 0)
        if self.verbose:
            where = {"new-session": "session", "new-group": "group", "inherit": "pyinit's group"}
            self.trace(
                f"started {self.opts.argv[0]} (pid {self.child_pid}, {where[self.opts.isolation]})"
            )
        # A child that died already left SIGCHLD pending: nothing is missed.
        self._loop()
        return self.exit_code

    # -- the loop: signals and a few deadlines -----------------------------------
    def _loop(self) -> None:
        # The hot path: with no timer armed (always, until CMD exits), one pass
        # per signal taken. Reaping CPU and forwarding latency are benchmark
        # targets (bench/README.md), so the pass is written for speed: locals
        # instead of attribute lookups, SIGCHLD sent straight to _reap, a signal
        # that needs no special care killed straight away, and a try block (free
        # in 3.11) instead of _guarded.
        wait = signal.sigwaitinfo
        signals = self.waiter.signals
        sigchld = signal.SIGCHLD
        reap = self._reap
        clock = time.monotonic
        last_reap = -STORM_GAP
        plain = self._plain_signals()
        target = self._target()
        kill = os.kill
        self._running = True
        while self._running:
            if self._timers:
                self._timed_pass()
                continue
            info = wait(signals)
            try:
                signum = info.si_signo
                if signum in plain and self.child_status is None:
                    try:
                        kill(target, signum)
                    except ProcessLookupError:
                        self._forward(signum)  # which says so
                elif signum == sigchld:
                    reap()
                    now = clock()
                    if now - last_reap < STORM_GAP and self.child_status is None:
                        self._hold()
                    last_reap = now
                else:
                    self._on_signal(info)
            except Exception:
                self._internal_error()

    def _plain_signals(self) -> frozenset[int]:
        """Signals forwarded as they are with nothing to trace or decide: the loop
        sends these itself (a gone CMD raises, and _on_signal then says so)."""
        if self.verbose:
            return frozenset()
        special = SYNCHRONOUS_FAULTS | JOB_CONTROL_STOPS | {signal.SIGCHLD, signal.SIGPIPE}
        return frozenset(self.waiter.signals) - special - set(self.opts.rewrite)

    def _hold(self) -> None:
        """In an orphan storm, let SIGCHLDs pile up for HOLD seconds, taking every
        other signal at once meanwhile: one wake-up then reaps many orphans, where
        each would otherwise cost a wake-up of its own."""
        others = self._others
        deadline = time.monotonic() + HOLD
        while self._running and self.child_status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            info = signal.sigtimedwait(others, left)
            if info is None:
                return
            self._guarded(self._on_signal, info)

    def _timed_pass(self) -> None:
        """Wait for a signal until the next deadline, then run what is due."""
        # At most two deadlines are ever armed (SIGKILL, then give up): a list
        # and min() beat importing heapq. The timeout is capped: sigtimedwait
        # refuses one past ~292 years, and --grace 1e300 must not crash PID 1.
        timeout = min(86400.0, min(self._timers)[0] - time.monotonic())
        info = self.waiter.wait(timeout)
        if info is not None:
            self._guarded(self._on_signal, info)
        if self._timers and self._running:
            now = time.monotonic()
            for due in sorted(t for t in self._timers if t[0] <= now):
                self._timers.remove(due)
                if self._running:
                    self._guarded(due[2])

    def _call_later(self, delay: float, call: Callable[[], None]) -> None:
        self._seq += 1
        self._timers.append((time.monotonic() + delay, self._seq, call))

    def _guarded(self, call: Callable[..., None], *args: object) -> None:
        # PID 1 must not die of its own bug: report it and keep serving.
        try:
            call(*args)
        except Exception:
            self._internal_error()

    def _internal_error(self) -> None:
        import traceback

        self.trace("internal error (continuing):\n" + traceback.format_exc(), 0)

    # -- events ------------------------------------------------------------
    def _on_signal(self, info: signal.struct_siginfo) -> None:
        signum = info.si_signo
        if signum == signal.SIGCHLD:
            self._reap()
            return
        if signum in SYNCHRONOUS_FAULTS and not sent_by_a_process(info):
            # Not a request from anyone: the kernel reporting an event in pyinit
            # (an "action optional" memory error). Genuine faults never get here.
            self.trace(f"{signal_name(signum)} (code {info.si_code}) from the kernel; ignored", 0)
            return
        if signum == signal.SIGPIPE and self.opts.drop_own_sigpipe and info.si_pid == os.getpid():
            return  # our own write to a closed pipe raised it
        if self.draining:
            self._on_signal_while_draining(signum)
            return
        self._forward(signum)

    def _target(self) -> int:
        assert self.child_pid is not None
        if self.opts.forward_to_group and self.opts.isolation != "inherit":
            return -self.child_pid
        return self.child_pid

    @staticmethod
    def _label(target: int) -> str:
        return f"process group {-target}" if target < 0 else f"pid {target}"

    def _forward(self, signum: int) -> None:
        if self.child_pid is None or self.child_status is not None:
            self.trace(f"{signal_name(signum)} received; no command to forward it to")
            return
        sent = self.opts.rewrite.get(signum, signum)
        if sent == 0:
            self.trace(f"{signal_name(signum)} received; dropped (rewritten to 0)")
            return
        # Latency path: no string is built before the kill.
        target = self._target()
        try:
            os.kill(target, sent)
            if self.verbose:
                via = f" as {signal_name(sent)}" if sent != signum else ""
                self.trace(
                    f"{signal_name(signum)} received; forwarded{via} to {self._label(target)}"
                )
        except ProcessLookupError:
            self.trace(f"{signal_name(signum)} received; {self._label(target)} is already gone")
        if signum in JOB_CONTROL_STOPS and self.opts.suspend_on_job_control:
            # As dumb-init does: the job is stopped, so stop ourselves too and let
            # the shell's SIGCONT wake both. Not as PID 1: the kernel would ignore
            # the SIGSTOP, but not before discarding a SIGCONT already pending
            # (sent the moment the job stopped), which then never reaches CMD.
            if os.getpid() != 1:
                self.trace("suspending until SIGCONT", 2)
                os.kill(os.getpid(), signal.SIGSTOP)

    def _on_signal_while_draining(self, signum: int) -> None:
        if signum in SHUTDOWN_SIGNALS:
            self.trace(f"{signal_name(signum)} received while stopping; killing what is left")
            self._kill_remaining()
        else:
            self.trace(f"{signal_name(signum)} received while stopping; ignored")

    def _reap(self) -> None:
        # Hot path (one call per orphan in a storm): nothing is allocated or
        # traced for an orphan unless asked to (-v, tini -w).
        if self._trace_reaps:
            self._reap_traced()
            return
        raw, none_left = reap_watching(self.child_pid)
        if raw is not None:
            self._child_gone(raw)
        if self.child_status is not None:
            self._after_child(none_left)

    def _reap_traced(self) -> None:
        reaped, none_left = reap_raw()
        for pid, raw in reaped:
            if pid == self.child_pid:
                self._child_gone(raw)
            else:
                how = ExitStatus.from_wait_status(raw).describe()
                self.trace(f"reaped orphan pid {pid} ({how})")
                if self.opts.warn_on_reap:
                    self.trace(f"warning: reaped zombie process pid {pid}", 0)
        if self.child_status is not None:
            self._after_child(none_left)

    def _child_gone(self, raw: int) -> None:
        status = self.child_status = ExitStatus.from_wait_status(raw)
        self.trace(f"{self.opts.argv[0]} (pid {self.child_pid}) exited ({status.describe()})")

    def _after_child(self, none_left: bool) -> None:
        if not self.draining:
            self._child_exited(none_left)
        elif none_left:
            self._finish()
