"""pyinit invoked as ``tini``: tini's command line and behaviour, as PID 1.

Differences from native mode checked here: CMD gets its own process group (not
a session), signals go to CMD alone unless -g, nothing is drained after CMD
exits, TTIN/TTOU are ignored, and -s/-e/-p are tini's.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.cli import Runner, helper, real_tool
from tests.helpers.commands import expect_ready, recorder, sh
from tests.helpers.deadlines import wait_until
from tests.helpers.procs import proc_ppid, proc_state

pytestmark = pytest.mark.timeout(20)

USR1 = int(signal.SIGUSR1)
MARKER = int(signal.SIGRTMAX)


def test_child_gets_own_group_and_signals_go_to_it_alone(cli: Runner) -> None:
    """By default tini puts CMD in its own process group (same session) and forwards
    to CMD's pid only: a grandchild in the group hears nothing."""
    proc = cli.start(["--", *recorder(USR1, MARKER, child=True)], personality="tini")
    ready = expect_ready(proc.out, ["cmd", "grandchild"])
    assert ready["cmd"]["pgid"] == ready["cmd"]["pid"] != ready["cmd"]["sid"]
    proc.signal(USR1)
    proc.out.expect(f"^cmd sig {USR1}$")
    _, grandchild = proc.lineage(2)
    os.kill(grandchild, MARKER)
    proc.out.expect(f"^grandchild sig {MARKER}$")
    assert f"grandchild sig {USR1}" not in proc.out.lines
    assert proc.finish()[0] == 0


@pytest.mark.parametrize("how", ["-g", "TINI_KILL_PROCESS_GROUP"])
def test_group_forwarding(cli: Runner, how: str) -> None:
    """-g (or TINI_KILL_PROCESS_GROUP) forwards signals to CMD's whole group."""
    env = dict(os.environ)
    args = ["--", *recorder(USR1, child=True)]
    if how == "-g":
        args = ["-g", *args]
    else:
        env["TINI_KILL_PROCESS_GROUP"] = "1"
    proc = cli.start(args, personality="tini", env=env)
    expect_ready(proc.out, ["cmd", "grandchild"])
    proc.signal(USR1)
    proc.out.expect_all([f"cmd sig {USR1}", f"grandchild sig {USR1}"])
    assert proc.finish()[0] == 0


@pytest.mark.parametrize("program", ["ours", "real"])
def test_exits_at_once_without_draining(cli: Runner, tmp_path: Path, program: str) -> None:
    """tini exits with CMD's status as soon as CMD exits; it neither waits for nor
    signals what is left (here a leftover that would survive SIGTERM)."""
    kwargs = {"personality": "tini"} if program == "ours" else {"program": [real_tool("tini")]}
    args = ["--", *helper("leftover.py", tmp_path / "x", "--ignore-term", "--code", 7)]
    proc = cli.start(args, **kwargs)  # type: ignore[arg-type]
    proc.out.expect("^ready leftover")
    start = time.monotonic()
    assert proc.wait() == 7
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(
    ("flags", "script", "code"),
    [
        (["-e", "3"], "exit 3", 0),
        (["-e", "3", "-e", "4"], "exit 4", 0),
        (["-e", "3"], "exit 5", 5),
        (["-e", "143"], "kill -TERM $$", 0),
        (["-e", "0"], "exit 0", 0),
    ],
)
def test_remap_exit_like_real_tini(cli: Runner, flags: list[str], script: str, code: int) -> None:
    """-e CODE (repeatable) maps exactly those exit codes (128+N included) to 0."""
    ours = cli.run([*flags, "--", *sh(script)], personality="tini")
    real = cli.run([*flags, "--", *sh(script)], program=[real_tool("tini")])
    assert (ours.code, real.code) == (code, code)


@pytest.mark.parametrize("how", ["-s", "TINI_SUBREAPER"])
def test_subreaper_flag_adopts_orphans(cli: Runner, how: str) -> None:
    """Not PID 1, tini -s (or TINI_SUBREAPER) registers as subreaper: CMD's orphan
    becomes tini's child, and no 'not a subreaper' warning is printed."""
    env = dict(os.environ)
    script = 'sh -c "sleep 30 >/dev/null & echo orphan \\$!"; echo orphaned; read x; exit 0'
    args = ["--", *sh(script)]
    if how == "-s":
        args = ["-s", *args]
    else:
        env["TINI_SUBREAPER"] = ""
    proc = cli.start(args, personality="tini", namespace=False, env=env)
    orphan = int(proc.out.expect(r"^orphan (\d+)$")[1])
    proc.out.expect("^orphaned$")
    assert proc_ppid(orphan) == proc.pid
    os.kill(orphan, signal.SIGKILL)  # tini does not stop leftovers: do it ourselves
    code, _, err = proc.finish()
    assert code == 0
    assert "subreaper" not in err


@pytest.mark.parametrize("program", ["ours", "real"])
def test_warns_when_not_a_reaper(cli: Runner, program: str) -> None:
    """Neither PID 1 nor a subreaper, tini warns (on stderr) that orphans will not be
    reaped, and still runs CMD."""
    kwargs = {"personality": "tini"} if program == "ours" else {"program": [real_tool("tini")]}
    done = cli.run(["--", *sh("exit 4")], namespace=False, **kwargs)  # type: ignore[arg-type]
    assert done.code == 4
    assert "subreaper" in done.err


def test_ttin_ttou_ignored_tstp_forwarded(cli: Runner) -> None:
    """tini ignores TTIN/TTOU (they are not forwarded) but forwards TSTP as is: CMD,
    in a non-orphaned group, stops; SIGCONT resumes it."""
    cont = int(signal.SIGCONT)
    ttin, ttou = int(signal.SIGTTIN), int(signal.SIGTTOU)
    proc = cli.start(["--", *recorder(ttin, ttou, cont, MARKER)], personality="tini")
    expect_ready(proc.out, ["cmd"])
    (cmd,) = proc.lineage(1)
    proc.signal(ttin)
    proc.signal(ttou)
    proc.signal(MARKER)
    proc.out.expect(f"^cmd sig {MARKER}$")
    assert f"cmd sig {ttin}" not in proc.out.lines
    assert f"cmd sig {ttou}" not in proc.out.lines
    proc.signal(signal.SIGTSTP)
    wait_until(lambda: proc_state(cmd) == "T", "CMD to stop")
    proc.signal(cont)
    proc.out.expect(f"^cmd sig {cont}$")
    assert proc_state(cmd) in ("S", "R")
    assert proc.finish()[0] == 0


def test_exec_failure_message_names_command(cli: Runner) -> None:
    """A missing command exits 127 with a message naming it."""
    done = cli.run(["--", "no-such-command-xyz"], personality="tini")
    assert done.code == 127
    assert "no-such-command-xyz" in done.err
