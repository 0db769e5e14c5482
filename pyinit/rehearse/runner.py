"""One rehearsal: start the app as pyinit would, wait until it is up, record its
tree, send the stop signal, watch every process end (or not) until the deadline.

Everything is event-driven on pyinit's selector loop: SIGCHLD through the
wake-up pipe (the one reaper, ``reaper.reap``), each recorded process's exit
through a pidfd (which fires for grandchildren too, whose status we never
get), the app's output through its pipe, the deadline as a timer. The only
repeated attempt is ``--ready-port``'s connect, every READY_PORT_INTERVAL.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time

from pyinit import proctree
from pyinit.loop import EventLoop
from pyinit.reaper import ExitStatus, reap
from pyinit.rehearse.facts import (
    EXITED,
    KILLED_AT_DEADLINE,
    KILLED_WITH_PID1,
    ProcFacts,
    RunFacts,
    killed_with_pid1,
)
from pyinit.rehearse.options import RehearseOptions
from pyinit.rehearse.pidns import PidNamespaces, proc_mounting_argv
from pyinit.rehearse.probe import ProcInfo, pidfd_exit_status, read_proc
from pyinit.signals import SignalIntake
from pyinit.signals import sigmod as signal
from pyinit.spawn import SpawnSpec, spawn

READY_PORT_INTERVAL = 0.05  # seconds between connect attempts for --ready-port
KILL_WAIT_LIMIT = 2.0  # after SIGKILL, how long to wait for the tree to be reaped
LINE_LIMIT = 65536  # bytes of a partial output line kept for --ready-log
PF_EXITING = 0x4  # include/linux/sched.h: the task is in do_exit()

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """The user stopped the rehearsal (Ctrl-C): the app's tree was killed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Rehearsal:
    def __init__(self, opts: RehearseOptions, namespaces: PidNamespaces | None = None) -> None:
        self.opts = opts
        self.namespaces = namespaces
        self.loop = EventLoop()
        self.main_pid = 0
        self.started = 0.0
        self.sent_at = 0.0  # when the stop signal went out
        self.statuses: dict[int, ExitStatus] = {}
        self.ended_at: dict[int, float] = {}  # pid -> seconds after the signal
        self.none_left = False
        self.phase = "ready"
        self.is_ready = False
        self.interrupted: int | None = None
        self.tracked: dict[int, ProcFacts] = {}
        self.pidfds: dict[int, int] = {}  # pid -> pidfd, kept open to read the exit status
        self.main_exiting: set[int] = set()  # pids that ended while PID 1 was exiting
        self._line = b""
        self._ready_re = re.compile(opts.ready_log) if opts.ready_log else None
        self._out_fd: int | None = None

    # -- the run, phase by phase -------------------------------------------
    def run(self) -> RunFacts:
        """Raises SpawnError (nothing started), NamespaceUnavailable, Interrupted."""
        opts = self.opts
        facts = RunFacts(
            command=opts.command,
            signum=opts.signum,
            to_group=not (opts.single_child or opts.as_pid1),
            timeout=opts.timeout,
            grace_source=opts.grace_source,
            as_pid1=opts.as_pid1,
            ready_how=self._ready_how(),
            ready_timeout=opts.ready_timeout,
            not_ready=self._not_ready(),
        )
        intake = SignalIntake([signal.SIGCHLD, *INTERRUPTS])
        self.loop.add_reader(intake.read_fd, lambda: intake.drain(self._on_signal))
        try:
            self._start()
            self._wait_ready(facts)
            if facts.ready and facts.early_status is None:
                self._stop(facts)
            else:
                self._kill_all()
        finally:
            self._drain_output()
            self.loop.close()
            intake.close()
        if self.interrupted is not None:
            raise Interrupted(self.interrupted)
        return facts

    def _ready_how(self) -> str:
        opts = self.opts
        if opts.ready_port is not None:
            host, port = opts.ready_port
            return f"port {port} open" if host == "127.0.0.1" else f"{host}:{port} open"
        if opts.ready_log is not None:
            return f"a line matching {opts.ready_log!r}"
        return f"--after {opts.after:g}s"

    def _not_ready(self) -> str:
        if self.opts.ready_port is not None:
            return f"{self._ready_how().removesuffix(' open')} did not open"
        return f"no line of its output matched {self.opts.ready_log!r}"

    def _start(self) -> None:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        argv = list(self.opts.command)
        if self.namespaces is not None:
            argv = proc_mounting_argv(_resolved(argv))
            self.namespaces.enter()
        try:
            # As wrapper mode starts it: its own session, default signals, empty
            # mask. Its output comes to us so stdout stays the report's.
            spec = SpawnSpec(
                argv=argv,
                isolation="new-session",
                fds={0: devnull, 1: out_w, 2: out_w},
                close_fds=False,
                exact_signals=True,
            )
            self.main_pid = spawn(spec)
        finally:
            if self.namespaces is not None:
                self.namespaces.leave()
            os.close(out_w)
            os.close(devnull)
        self.started = time.monotonic()
        os.set_blocking(out_r, False)
        self._out_fd = out_r
        self.loop.add_reader(out_r, self._on_output)

    def _wait_ready(self, facts: RunFacts) -> None:
        opts = self.opts
        timers = []
        if opts.ready_port is not None:
            self.loop.call_later(0, self._try_port)
        elif opts.ready_log is None:
            timers.append(self.loop.call_later(opts.after, self._became_ready))
        if opts.ready_port is not None or opts.ready_log is not None:
            timers.append(self.loop.call_later(opts.ready_timeout, self.loop.stop))
        self.loop.run()
        self.phase = "ready-done"
        for timer in timers:
            timer.cancel()
        facts.ready_seconds = time.monotonic() - self.started
        if self.main_pid in self.statuses:
            facts.early_status = self.statuses[self.main_pid]
        elif not self.is_ready and self.interrupted is None:
            facts.ready = False

    def _became_ready(self) -> None:
        if self.phase == "ready":
            self.is_ready = True
            self.loop.stop()

    def _try_port(self) -> None:
        if self.phase != "ready":
            return
        assert self.opts.ready_port is not None
        try:
            with socket.create_connection(self.opts.ready_port, timeout=0.5):
                pass
        except OSError:
            self.loop.call_later(READY_PORT_INTERVAL, self._try_port)
            return
        self._became_ready()

    def _stop(self, facts: RunFacts) -> None:
        self.phase = "stopping"
        self._record_tree(facts)
        target = -self.main_pid if facts.to_group else self.main_pid
        self.sent_at = time.monotonic()
        try:
            os.kill(target, self.opts.signum)
        except ProcessLookupError:
            pass  # it just exited: its SIGCHLD tells the rest
        self.loop.call_later(self.opts.timeout, lambda: self._deadline(facts))
        self.loop.run()
        self._settle(facts)

    def _settle(self, facts: RunFacts) -> None:
        main_ended = self.ended_at.get(self.main_pid)
        for pid, fd in self.pidfds.items():
            raw = pidfd_exit_status(fd) if pid not in self.statuses else None
            if raw is not None:
                self.statuses[pid] = ExitStatus.from_wait_status(raw)
            os.close(fd)
        self.pidfds.clear()
        for proc in facts.processes:
            if proc.main or proc.outcome != EXITED or not self.opts.as_pid1:
                continue
            pid = proc.info.pid
            seen = pid in self.ended_at and pid not in self.main_exiting
            if killed_with_pid1(self.statuses.get(pid), seen):
                proc.outcome = KILLED_WITH_PID1
                proc.exit_seconds = main_ended
        facts.main_status = self.statuses.get(self.main_pid)
        main = facts.main
        facts.main_exit_seconds = self.ended_at.get(self.main_pid)
        if main is not None and main.outcome == KILLED_AT_DEADLINE:
            facts.main_exit_seconds = self.opts.timeout
        if self.none_left:
            facts.all_gone_seconds = time.monotonic() - self.sent_at
        for proc in facts.processes:
            proc.status = proc.status or self.statuses.get(proc.info.pid)
            if proc.exit_seconds is None:
                proc.exit_seconds = self.ended_at.get(proc.info.pid)

    def _record_tree(self, facts: RunFacts) -> None:
        main = read_proc(self.main_pid)
        if main is None:  # exited this instant: a zombie, or reaped already
            self._record(facts, _gone(self.main_pid), True)
        else:
            self._record(facts, main, True)
        for pid in proctree.descendants():
            info = read_proc(pid) if pid != self.main_pid else None
            if info is not None:
                self._record(facts, info, False)

    def _record(self, facts: RunFacts, info: ProcInfo, main: bool) -> None:
        proc = ProcFacts(info=info, main=main)
        facts.processes.append(proc)
        self.tracked[info.pid] = proc
        try:
            fd = os.pidfd_open(info.pid)
        except OSError:
            return  # gone already, or a kernel without pidfds: the reaper still tells
        self.pidfds[info.pid] = fd
        self.loop.add_reader(fd, lambda: self._on_pidfd(fd, info.pid))

    def _on_pidfd(self, fd: int, pid: int) -> None:
        self.loop.remove_reader(fd)
        self._ended(pid)
        if self.opts.as_pid1 and pid != self.main_pid and _exiting(self.main_pid):
            self.main_exiting.add(pid)

    def _ended(self, pid: int) -> None:
        if self.phase in ("stopping", "killing") and pid not in self.ended_at:
            self.ended_at[pid] = time.monotonic() - self.sent_at

    def _deadline(self, facts: RunFacts) -> None:
        """The runtime's SIGKILL: note who is still running, then kill them all."""
        self.phase = "killing"
        for proc in facts.processes:
            if proc.info.pid not in self.ended_at and read_proc(proc.info.pid) is not None:
                proc.outcome = KILLED_AT_DEADLINE
                proc.exit_seconds = self.opts.timeout
        known = {p.info.pid for p in facts.processes}
        for pid in proctree.descendants():
            info = read_proc(pid)
            if pid not in known and info is not None:
                facts.late_killed.append(info)
        self._send_kill()

    def _send_kill(self) -> None:
        """SIGKILL the tree; the loop ends when it is reaped, or after KILL_WAIT_LIMIT
        (a process in uninterruptible sleep may take its time)."""
        proctree.signal_descendants(signal.SIGKILL)
        self.loop.call_later(KILL_WAIT_LIMIT, self.loop.stop)

    def _kill_all(self) -> None:
        """Kill and reap what is left, from outside the loop."""
        reaped, self.none_left = reap()
        for item in reaped:
            self.statuses.setdefault(item.pid, item.status)
        if self.none_left:
            return
        self.phase = "killing"
        self._send_kill()
        self.loop.run()

    # -- events --------------------------------------------------------------
    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        elif self.interrupted is None:
            self.interrupted = signum
            if self.phase == "ready":
                self.loop.stop()
            self.phase = "killing"
            self._send_kill()

    def _reap(self) -> None:
        reaped, self.none_left = reap()
        for item in reaped:
            self.statuses[item.pid] = item.status
            self._ended(item.pid)
        if self.main_pid in self.statuses and self.phase == "ready":
            self.loop.stop()  # exited before the stop signal
        elif self.none_left and self.phase != "ready":
            self.loop.stop()

    def _on_output(self) -> None:
        assert self._out_fd is not None
        try:
            data = os.read(self._out_fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self.loop.remove_reader(self._out_fd)
            return
        _write_err(data)
        if self._ready_re is not None and self.phase == "ready":
            self._match_lines(data)

    def _match_lines(self, data: bytes) -> None:
        assert self._ready_re is not None
        *lines, self._line = (self._line + data).split(b"\n")
        self._line = self._line[-LINE_LIMIT:]
        for line in lines:
            if self._ready_re.search(line.decode(errors="replace")):
                self._became_ready()
                return

    def _drain_output(self) -> None:
        """What the app wrote last, then close our end (a worker that escaped the
        kill would otherwise hold us on a pipe)."""
        if self._out_fd is None:
            return
        try:
            while data := os.read(self._out_fd, 65536):
                _write_err(data)
        except OSError:
            pass
        os.close(self._out_fd)
        self._out_fd = None


def _write_err(data: bytes) -> None:
    try:
        sys.stderr.buffer.write(data)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _gone(pid: int) -> ProcInfo:
    empty: frozenset[int] = frozenset()
    return ProcInfo(pid, pid, 0, pid, "?", "", empty, empty, empty)


def _exiting(pid: int) -> bool:
    """Whether ``pid`` has begun to exit (or is a zombie, or gone)."""
    flags = proctree.stat_field(pid, 6)  # the kernel's task flags word
    state = _state(pid)
    return flags is None or state in ("Z", "X") or bool(flags & PF_EXITING)


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :][:1].decode()


def _resolved(argv: list[str]) -> list[str]:
    """argv with the command looked up on PATH, so a missing command is our
    one-line 127 rather than unshare(1)'s message."""
    import errno
    import shutil

    from pyinit.spawn import SpawnError

    found = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if found is None or not os.path.exists(found):
        raise SpawnError(None, argv[0], "exec", errno.ENOENT)
    return [found, *argv[1:]]
