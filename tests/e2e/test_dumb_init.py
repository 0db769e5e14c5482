"""pyinit invoked as ``dumb-init``: its command line and behaviour, as PID 1.

dumb-init runs CMD in a new session and forwards to its process group, unless
-c; -r rewrites signal numbers; exec failures exit 2; when CMD exits, its group
gets SIGTERM and dumb-init exits at once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers.cli import Runner, helper, real_tool
from tests.helpers.commands import expect_ready, recorder
from tests.helpers.deadlines import wait_for_file, wait_until
from tests.helpers.procs import proc_state

pytestmark = pytest.mark.timeout(20)

USR1, USR2 = int(signal.SIGUSR1), int(signal.SIGUSR2)
MARKER = int(signal.SIGRTMAX)


def test_new_session_and_group_forwarding(cli: Runner) -> None:
    """By default CMD leads a new session and signals reach its whole group."""
    proc = cli.start(["--", *recorder(USR1, child=True)], personality="dumb-init")
    ready = expect_ready(proc.out, ["cmd", "grandchild"])
    assert ready["cmd"]["sid"] == ready["cmd"]["pid"] == ready["grandchild"]["pgid"]
    proc.signal(USR1)
    proc.out.expect_all([f"cmd sig {USR1}", f"grandchild sig {USR1}"])
    assert proc.finish()[0] == 0


@pytest.mark.parametrize("how", ["-c", "--single-child", "DUMB_INIT_SETSID=0"])
def test_single_child(cli: Runner, how: str) -> None:
    """-c (or DUMB_INIT_SETSID=0): CMD stays in dumb-init's session and only CMD
    itself is signalled."""
    env = dict(os.environ)
    args = ["--", *recorder(USR1, MARKER, child=True)]
    if how.startswith("-"):
        args = [how, *args]
    else:
        env["DUMB_INIT_SETSID"] = "0"
    proc = cli.start(args, personality="dumb-init", env=env)
    ready = expect_ready(proc.out, ["cmd", "grandchild"])
    assert ready["cmd"]["sid"] != ready["cmd"]["pid"]
    proc.signal(USR1)
    proc.out.expect(f"^cmd sig {USR1}$")
    _, grandchild = proc.lineage(2)
    os.kill(grandchild, MARKER)
    proc.out.expect(f"^grandchild sig {MARKER}$")
    assert f"grandchild sig {USR1}" not in proc.out.lines
    assert proc.finish()[0] == 0


def test_rewrite_by_number(cli: Runner) -> None:
    """-r 10:12 forwards SIGUSR1 as SIGUSR2 (and never as SIGUSR1)."""
    proc = cli.start(["-r", "10:12", "--", *recorder(USR1, USR2, MARKER)], personality="dumb-init")
    expect_ready(proc.out, ["cmd"])
    proc.signal(USR1)
    proc.out.expect(f"^cmd sig {USR2}$")
    proc.signal(MARKER)
    proc.out.expect(f"^cmd sig {MARKER}$")
    assert f"cmd sig {USR1}" not in proc.out.lines
    assert proc.finish()[0] == 0


def test_rewrite_to_zero_drops(cli: Runner) -> None:
    """-r 10:0 drops SIGUSR1; other signals still pass."""
    proc = cli.start(["-r", "10:0", "--", *recorder(USR1, MARKER)], personality="dumb-init")
    expect_ready(proc.out, ["cmd"])
    proc.signal(USR1)
    proc.signal(MARKER)
    proc.out.expect(f"^cmd sig {MARKER}$")
    assert f"cmd sig {USR1}" not in proc.out.lines
    assert proc.finish()[0] == 0


@pytest.mark.parametrize("program", ["ours", "real"])
def test_group_gets_term_when_cmd_exits(cli: Runner, tmp_path: Path, program: str) -> None:
    """When CMD exits, dumb-init sends SIGTERM to CMD's process group (a process CMD
    left behind gets it) and exits with CMD's status. Run outside a namespace, so
    only dumb-init's SIGTERM can reach the leftover."""
    kwargs = (
        {"personality": "dumb-init"} if program == "ours" else {"program": [real_tool("dumb-init")]}
    )
    flag = tmp_path / "got-term"
    proc = cli.start(["--", *helper("leftover.py", flag, "--code", 7)], namespace=False, **kwargs)  # type: ignore[arg-type]
    proc.out.expect("^ready leftover")
    assert proc.wait() == 7
    assert wait_for_file(flag, "TERM") == "TERM\n"


@pytest.mark.parametrize("stop", ["SIGTSTP", "SIGTTIN", "SIGTTOU"])
def test_job_control_stops_and_resumes_the_group(cli: Runner, stop: str) -> None:
    """A stop request becomes SIGSTOP for CMD's group (which, orphaned, would ignore
    TSTP); SIGCONT resumes it."""
    cont = int(signal.SIGCONT)
    proc = cli.start(["--", *recorder(cont, child=True)], personality="dumb-init")
    expect_ready(proc.out, ["cmd", "grandchild"])
    pids = proc.lineage(2)
    proc.signal(getattr(signal, stop))
    wait_until(lambda: all(proc_state(p) == "T" for p in pids), "CMD's group to stop")
    proc.signal(cont)
    proc.out.expect_all([f"cmd sig {cont}", f"grandchild sig {cont}"])
    assert proc.finish()[0] == 0


def test_exec_failure_exits_2_naming_command(cli: Runner) -> None:
    """A command that cannot be run: exit 2 and a message naming it."""
    done = cli.run(["--", "no-such-command-xyz"], personality="dumb-init")
    assert done.code == 2
    assert "no-such-command-xyz" in done.err
