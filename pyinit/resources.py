"""Per-service CPU and memory, sampled from /proc when someone asks.

Sampling runs on the request path only (a status request, a ``/metrics`` scrape,
a ``pyinit top`` refresh): there is no periodic sampler, so an idle pyinit still
makes no wake-ups. One pass over /proc serves every service: each process's
``/proc/<pid>/stat`` is read once, whatever the number of services.

Which processes belong to a service: a service's main process leads its own
session (the default isolation) or its own process group, so every process in
that session (or group) is the service's, including the orphans its workers left
behind, which the kernel re-parents to pyinit. Processes that left the session
(a daemon that calls ``setsid`` again) are still counted while their parent is a
member, by following parent links down from the members.

Why /proc and not psutil: psutil cannot tell a process's session, so the session
had to be read from /proc/<pid>/stat anyway, and that one read also holds the CPU
times and the resident set size; psutil would read two or three more files per
process (bench/bench_resources.py measures both). Unique and proportional set
sizes (USS/PSS) are left out: they need the kernel to walk every mapping of every
process (smaps), tens of times the cost of the rest, on every scrape.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")

# Indices in the fields after the command name (state is 0): see proc(5).
_PPID, _PGRP, _SESSION = 1, 2, 3
_UTIME, _STIME, _CUTIME, _CSTIME = 11, 12, 13, 14
_STARTTIME, _RSS = 19, 21


@dataclass(frozen=True, slots=True)
class Proc:
    """What one read of /proc/<pid>/stat says about a process."""

    pid: int
    ppid: int
    pgrp: int
    session: int
    cpu: float  # seconds: user + system, plus the children it waited for
    own_cpu: float  # seconds: user + system of the process alone (what ps shows)
    rss: int  # bytes
    start: int  # clock ticks after boot: with the pid, tells a reused pid apart


@dataclass(frozen=True, slots=True)
class Usage:
    """A service's processes at one sample."""

    cpu_seconds: float  # CPU time of the processes seen, counted since first seen
    cpu_percent: float | None  # since the previous sample (100 = one core)
    rss_bytes: int
    processes: int


def parse_stat(pid: int, data: bytes) -> Proc | None:
    """One /proc/<pid>/stat line; None when it does not parse."""
    # The command name may hold spaces or parentheses: the fields resume after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        utime, stime = int(fields[_UTIME]), int(fields[_STIME])
        children = int(fields[_CUTIME]) + int(fields[_CSTIME])
        return Proc(
            pid=pid,
            ppid=int(fields[_PPID]),
            pgrp=int(fields[_PGRP]),
            session=int(fields[_SESSION]),
            cpu=(utime + stime + children) / _TICKS,
            own_cpu=(utime + stime) / _TICKS,
            rss=int(fields[_RSS]) * _PAGE,
            start=int(fields[_STARTTIME]),
        )
    except (IndexError, ValueError):
        return None


def read_proc(pid: int, proc_dir: str = "/proc") -> Proc | None:
    """The stat of ``pid``, or None if it is gone (or cannot be read)."""
    try:
        fd = os.open(f"{proc_dir}/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse_stat(pid, data)


def scan(proc_dir: str = "/proc") -> list[Proc]:
    """Every process visible in /proc; those that vanish mid-scan are skipped."""
    found = []
    for entry in os.listdir(proc_dir):
        if entry.isdigit():
            proc = read_proc(int(entry), proc_dir)
            if proc is not None:
                found.append(proc)
    return found


def attribute(procs: Iterable[Proc], roots: Mapping[str, int]) -> dict[str, list[Proc]]:
    """Which processes belong to which service, given each one's main pid.

    A member is the main process, anything in the session (or group) it leads,
    and any descendant of a member. A pid claimed by two services (cannot happen
    unless one's pid was reused) goes to the first.
    """
    by_pid = {p.pid: p for p in procs}
    leaders: dict[int, str] = {}  # session (or group) id -> service
    owner: dict[int, str] = {}
    for name, pid in roots.items():
        root = by_pid.get(pid)
        if root is None or pid in owner:
            continue
        owner[pid] = name
        if root.session == pid or root.pgrp == pid:
            leaders.setdefault(pid, name)
    children: dict[int, list[int]] = {}
    for p in by_pid.values():
        children.setdefault(p.ppid, []).append(p.pid)
        if p.pid not in owner:
            leader = leaders.get(p.session) or leaders.get(p.pgrp)
            if leader is not None:
                owner[p.pid] = leader
    stack = list(owner)
    while stack:
        pid = stack.pop()
        for child in children.get(pid, ()):
            if child not in owner:
                owner[child] = owner[pid]
                stack.append(child)
    members: dict[str, list[Proc]] = {name: [] for name in roots}
    for pid, name in owner.items():
        members[name].append(by_pid[pid])
    return members


class Sampler:
    """Samples services on demand and remembers the last sample, for CPU% and a
    CPU counter that never goes down.

    ``cpu_seconds`` adds, for each process, the CPU it used since the previous
    sample (all of it for a process seen the first time). A process that ends
    between two samples loses its last slice, unless a member waited for it (its
    time then shows in the waiter's children times); the counter never falls back
    when a process ends, which Prometheus would take for a reset.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        scanner: Callable[[], list[Proc]] = scan,
        since_boot: Callable[[], float] = lambda: time.clock_gettime(time.CLOCK_BOOTTIME),
    ) -> None:
        self.clock = clock
        self.scanner = scanner
        self.since_boot = since_boot
        # service -> (time of its last sample, its counter, {(pid, start): cpu})
        self._last: dict[str, tuple[float, float, dict[tuple[int, int], float]]] = {}

    def sample(self, roots: Mapping[str, int | None]) -> dict[str, Usage]:
        """Usage of each named service; a service without a live main pid has
        none (it is left out, its counter kept for when it runs again)."""
        live = {name: pid for name, pid in roots.items() if pid is not None}
        members = attribute(self.scanner(), live) if live else {}
        now = self.clock()
        usage: dict[str, Usage] = {}
        for name, procs in members.items():
            if not procs:
                continue
            before, counter, seen = self._last.get(name, (None, 0.0, {}))
            delta = 0.0
            now_seen: dict[tuple[int, int], float] = {}
            for p in procs:
                key = (p.pid, p.start)
                now_seen[key] = p.cpu
                delta += max(0.0, p.cpu - seen.get(key, 0.0))
            counter += delta
            if before is not None:
                percent = _percent(delta, now - before)
            else:  # the first sample: over the main process's life, as ps shows it
                root = next(p for p in procs if p.pid == live[name])
                percent = _percent(delta, self.since_boot() - root.start / _TICKS)
            self._last[name] = (now, counter, now_seen)
            usage[name] = Usage(
                cpu_seconds=round(counter, 2),
                cpu_percent=percent,
                rss_bytes=sum(p.rss for p in procs),
                processes=len(procs),
            )
        for gone in set(self._last) - set(roots):
            del self._last[gone]  # removed by a reload
        return usage


def _percent(cpu: float, elapsed: float) -> float | None:
    return round(100.0 * cpu / elapsed, 1) if elapsed > 0 else None


@dataclass(frozen=True, slots=True)
class SelfUsage:
    """pyinit's own process, for the standard ``process_*`` metrics."""

    cpu_seconds: float
    rss_bytes: int
    open_fds: int
    start_time: float  # unix time


def self_usage(proc_dir: str = "/proc") -> SelfUsage | None:
    """pyinit's own CPU (not its reaped children's), memory, fds and start time."""
    pid = os.getpid()
    me = read_proc(pid, proc_dir)
    if me is None:
        return None
    try:
        fds = len(os.listdir(f"{proc_dir}/self/fd")) - 1  # less the one listdir holds
    except OSError:
        fds = 0
    return SelfUsage(
        cpu_seconds=me.own_cpu,
        rss_bytes=me.rss,
        open_fds=max(0, fds),
        start_time=round(_boot_time(proc_dir) + me.start / _TICKS, 3),
    )


def _boot_time(proc_dir: str) -> float:
    try:
        with open(f"{proc_dir}/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
