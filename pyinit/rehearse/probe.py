"""What a process does with each signal, from ``/proc/PID/status``.

``SigCgt``, ``SigBlk`` and ``SigIgn`` are 64-bit masks in hex: bit N-1 set means
signal N is caught (a handler is installed), blocked or ignored. Together with
whether the process is PID 1 of its namespace they predict what a stop signal
will do to it, which is the heart of the rehearsal report.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinit.proctree import stat_field
from pyinit.signals import sigmod as signal

PGRP = 2  # index of the process group in /proc/PID/stat after the command name

# Signals whose default action is to do nothing (signal(7)); the rest of the
# catchable ones terminate, or stop the process (TSTP, TTIN, TTOU).
DEFAULT_IGNORED = frozenset({signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH, signal.SIGCONT})
DEFAULT_STOPS = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})


def decode_mask(text: str) -> frozenset[int]:
    """Signal numbers of a hex mask: ``0000000000004002`` -> {2, 15}."""
    value = int(text, 16)
    found = set()
    bit = 1
    while value:
        if value & 1:
            found.add(bit)
        value >>= 1
        bit += 1
    return frozenset(found)


@dataclass(frozen=True)
class ProcInfo:
    """One process as /proc shows it: host ``pid``, ``ns_pid`` as it sees itself."""

    pid: int
    ns_pid: int
    ppid: int
    pgid: int
    name: str
    cmdline: str
    caught: frozenset[int]
    blocked: frozenset[int]
    ignored: frozenset[int]

    @property
    def is_ns_init(self) -> bool:
        return self.ns_pid == 1


def parse_status(pid: int, status: str, cmdline: str = "", pgid: int = 0) -> ProcInfo:
    """A ProcInfo from the text of /proc/PID/status (pure: unit-tested)."""
    fields: dict[str, str] = {}
    for line in status.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    ns_pids = fields.get("NSpid", str(pid)).split()
    return ProcInfo(
        pid=pid,
        ns_pid=int(ns_pids[-1]) if ns_pids else pid,
        ppid=int(fields.get("PPid", "0")),
        pgid=pgid,
        name=fields.get("Name", "?"),
        cmdline=cmdline,
        caught=decode_mask(fields.get("SigCgt", "0")),
        blocked=decode_mask(fields.get("SigBlk", "0")),
        ignored=decode_mask(fields.get("SigIgn", "0")),
    )


def read_proc(pid: int) -> ProcInfo | None:
    """The process's signal masks now, or None if it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            status = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if "\nState:\tZ" in status:
        return None
    cmdline = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    return parse_status(pid, status, cmdline, stat_field(pid, PGRP) or 0)


# What a stop signal will do to a process, by its masks.
CAUGHT = "caught"  # its handler runs
IGNORED = "ignored"  # SIG_IGN: nothing happens
BLOCKED = "blocked"  # pending until the process unblocks it (then handled or default)
DEFAULT = "default"  # the default action: terminate (most signals)
DEFAULT_NOTHING = "default-nothing"  # the default action does nothing (CHLD, WINCH...)
DEFAULT_STOP = "default-stop"  # the default action stops (suspends) it
DROPPED = "dropped"  # PID 1 of a namespace without a handler: the kernel discards it


def disposition(info: ProcInfo, signum: int) -> str:
    """How ``info`` will take ``signum`` (pure)."""
    if signum in info.blocked and signum not in info.ignored:
        return BLOCKED
    if signum in info.caught:
        return CAUGHT
    if signum in info.ignored:
        return IGNORED
    if signum in DEFAULT_IGNORED:
        return DEFAULT_NOTHING
    if info.is_ns_init:
        # The kernel gives a namespace's init no default action, even for a signal
        # sent from the parent namespace (only SIGKILL and SIGSTOP are forced):
        # observed with `kill -TERM` from the host on `unshare --pid --fork sleep`.
        return DROPPED
    if signum in DEFAULT_STOPS:
        return DEFAULT_STOP
    return DEFAULT


# ioctl(pidfd, PIDFD_GET_INFO) with PIDFD_INFO_EXIT (Linux 6.15): the wait status of
# any process we hold a pidfd on, once it has been reaped, even by someone else.
# How a grandchild or a process of another PID namespace ended; None on older kernels.
PIDFD_GET_INFO = 0xC040FF0B  # _IOWR(0xFF, 11, struct pidfd_info), 64 bytes
PIDFD_INFO_EXIT = 1 << 3
_EXIT_CODE_OFFSET = 60


def pidfd_exit_status(fd: int) -> int | None:
    """The raw wait status of the process behind ``fd``, or None if unknown."""
    import fcntl
    import struct

    buf = bytearray(64)
    struct.pack_into("Q", buf, 0, PIDFD_INFO_EXIT)
    try:
        fcntl.ioctl(fd, PIDFD_GET_INFO, buf)
    except OSError:
        return None
    mask = struct.unpack_from("Q", buf, 0)[0]
    if not mask & PIDFD_INFO_EXIT:
        return None
    return int(struct.unpack_from("i", buf, _EXIT_CODE_OFFSET)[0])
