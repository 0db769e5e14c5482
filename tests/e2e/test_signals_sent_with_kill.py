"""Any signal sent with kill(2) to a wrapper-mode init is forwarded, and none of
them kills the init: not the fault signals (ILL, TRAP, ABRT, BUS, FPE, SEGV,
SYS, STKFLT) either, which an operator sends to get a core dump of the app.

The init runs outside a PID namespace here, as a subreaper: as PID 1 the kernel
would drop any signal it does not take, which hides the bug. Where the real
dumb-init is installed, it runs the same test (it forwards every signal).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import Proc, Runner, helper, real_tool
from tests.helpers.commands import expect_ready, recorder
from tests.helpers.deadlines import wait_until
from tests.helpers.procs import proc_state

pytestmark = pytest.mark.timeout(60)

NOT_SENT = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
EVERY = [s for s in range(1, 32) if s not in NOT_SENT]
JOB_STOPS = {int(signal.SIGTSTP), int(signal.SIGTTIN), int(signal.SIGTTOU)}
CONT = int(signal.SIGCONT)

# id -> (personality or the real tool, arguments before "--")
FACES = {
    "pyinit": ("pyinit", []),
    "pyinit-single-child": ("pyinit", ["--single-child"]),
    "dumb-init": ("dumb-init", []),
    "dumb-init-c": ("dumb-init", ["--single-child"]),
    "real-dumb-init": ("real dumb-init", []),
    "real-dumb-init-c": ("real dumb-init", ["--single-child"]),
    "tini": ("tini", []),
}


def start(cli: Runner, face: str, args: list[str], cmd: list[str], cwd: Path | None = None) -> Proc:
    if face == "real dumb-init":
        program = [real_tool("dumb-init")]
        return cli.start([*args, "--", *cmd], namespace=False, program=program, cwd=cwd)
    personality = None if face == "pyinit" else face
    return cli.start([*args, "--", *cmd], namespace=False, personality=personality, cwd=cwd)


def alive(proc: Proc) -> bool:
    return proc.popen.poll() is None and proc_state(proc.pid) not in (None, "Z", "X")


@pytest.mark.parametrize("which", list(FACES))
def test_every_signal_is_forwarded_and_the_init_survives(cli: Runner, which: str) -> None:
    """Signals 1-31 but KILL, STOP and CHLD, one by one: CMD records each, and the
    init is alive at the end. Job control as each documents it: in a new session
    TSTP/TTIN/TTOU stop CMD (as SIGSTOP) and the init stops itself too; dumb-init
    -c forwards them as they are and stops itself; pyinit --single-child forwards
    them and keeps running; tini ignores TTIN/TTOU and forwards TSTP. SIGCONT to
    the init resumes it and is forwarded."""
    face, args = FACES[which]
    single = bool(args)
    proc = start(cli, face, args, recorder(*EVERY))
    expect_ready(proc.out, ["cmd"])
    (cmd,) = proc.lineage(1)
    for signum in EVERY:
        proc.signal(signum)
        if face == "tini" and signum in (signal.SIGTTIN, signal.SIGTTOU):
            continue  # ignored by tini: the next signal shows it is still there
        if signum not in JOB_STOPS or face == "tini":
            proc.out.expect(f"^cmd sig {signum}$")
            assert alive(proc), f"the init died of {signal.Signals(signum).name}"
            continue
        if single:
            proc.out.expect(f"^cmd sig {signum}$")  # forwarded as it is
        else:
            wait_until(lambda: proc_state(cmd) == "T", "CMD to be stopped")
        if face == "pyinit" and single:
            continue  # keeps running: the next signal is forwarded at once
        wait_until(lambda: proc_state(proc.pid) == "T", "the init to stop itself")
        proc.signal(CONT)
        proc.out.expect(f"^cmd sig {CONT}$")
        wait_until(lambda: proc_state(proc.pid) in ("S", "R"), "the init to run again")
    assert alive(proc)
    assert proc.finish()[0] == 0


def test_genuine_fault_in_the_init_still_kills_it() -> None:
    """The fault signals are blocked to take those sent with kill, yet a real
    fault in the init (here a NULL read after the wrapper's signal set-up) is
    delivered with its default action: the init dies of SIGSEGV, no hang."""
    code = (
        "import ctypes, sys\n"
        "from pyinit.signals import SignalWaiter, waitable_signals\n"
        "SignalWaiter(waitable_signals())\n"
        "ctypes.string_at(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == -signal.SIGSEGV, done.stderr


@pytest.mark.parametrize("which", ["pyinit", "dumb-init", "tini", "real-dumb-init"])
def test_init_leaves_the_directory_it_was_started_in(
    cli: Runner, tmp_path: Path, which: str
) -> None:
    """CMD starts in the invocation directory; the init itself moves to / so that
    it holds no reference to that directory (a volume mounted there can be
    unmounted)."""
    face = {"real-dumb-init": "real dumb-init"}.get(which, which)
    where = tmp_path / "workdir"
    where.mkdir()
    proc = start(cli, face, [], helper("recorder.py"), cwd=where)
    expect_ready(proc.out, ["cmd"])
    (cmd,) = proc.lineage(1)
    assert Path(f"/proc/{cmd}/cwd").resolve() == where
    wait_until(lambda: Path(f"/proc/{proc.pid}/cwd").resolve() == Path("/"), "the init in /")
    assert proc.finish()[0] == 0
