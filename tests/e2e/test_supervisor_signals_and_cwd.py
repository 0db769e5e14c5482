"""Supervisor mode (issue 17): a signal sent with kill never kills pyinit, and
pyinit holds no reference to the directory it was started in.

pyinit runs outside a PID namespace for the signals, as a subreaper: as PID 1
the kernel would drop a signal it does not take, which hides the bug.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import Proc, Runner
from tests.helpers.commands import argv, expect_ready, recorder
from tests.helpers.deadlines import wait_until
from tests.helpers.procs import one_live, proc_state
from tests.helpers.supervisor import runtime_env, write_config

pytestmark = pytest.mark.timeout(60)

# Supervisor mode acts on TERM, INT, QUIT (stop) and HUP (reload) itself.
OWN = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP}
NOT_SENT = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD} | OWN
FORWARDED = [s for s in range(1, 32) if s not in NOT_SENT]


def idle_service(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        f"""
        services:
          idle:
            command: {argv("sleep", "3600")}
        """,
    )


def cwd_of(pid: int) -> Path:
    return Path(f"/proc/{pid}/cwd").resolve()


def test_every_signal_sent_with_kill_reaches_the_main_command(cli: Runner, tmp_path: Path) -> None:
    """Signals 1-31 but KILL, STOP, CHLD and those pyinit acts on, one by one: the
    main command records each (the faults and PIPE included), and pyinit is alive
    at the end and exits with the main command's status."""
    config = idle_service(tmp_path)
    proc = cli.start(
        ["-c", str(config), "--", *recorder(*FORWARDED)],
        namespace=False,
        env=runtime_env(tmp_path),
    )
    expect_ready(proc.out, ["cmd"])
    for signum in FORWARDED:
        proc.signal(signum)
        proc.out.expect(f"^cmd sig {signum}$")
        assert alive(proc), f"pyinit died of {signal.Signals(signum).name}"
    assert proc.finish()[0] == 0


def alive(proc: Proc) -> bool:
    return proc.popen.poll() is None and proc_state(proc.pid) not in (None, "Z", "X")


def test_genuine_fault_in_the_supervisor_still_kills_it() -> None:
    """The fault signals are blocked to read those sent with kill from a signalfd,
    yet a real fault in pyinit (a NULL read after that set-up) is delivered with its
    default action: pyinit dies of SIGSEGV, no hang."""
    code = (
        "import ctypes, signal\n"
        "from pyinit.signalfd import SignalFd\n"
        "from pyinit.signals import SYNCHRONOUS_FAULTS\n"
        "SignalFd(SYNCHRONOUS_FAULTS | {signal.SIGPIPE})\n"
        "ctypes.string_at(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == -signal.SIGSEGV, done.stderr


def test_supervisor_leaves_the_directory_it_was_started_in(cli: Runner, tmp_path: Path) -> None:
    """pyinit moves to /; a service without working_dir and the main command start
    where pyinit was started; a relative working_dir is relative to the config file."""
    conf = tmp_path / "conf"
    (conf / "data").mkdir(parents=True)
    where = tmp_path / "workdir"
    where.mkdir()
    config = write_config(
        conf,
        f"""
        services:
          here:
            command: {argv("sleep", "3601")}
          there:
            command: {argv("sleep", "3602")}
            working_dir: data
        """,
    )
    proc = cli.start(
        ["-c", str(config), "--", *recorder()],
        namespace=False,
        env=runtime_env(tmp_path),
        cwd=where,
    )
    expect_ready(proc.out, ["cmd"])
    assert cwd_of(one_live(proc, "sleep 3601")) == where
    assert cwd_of(one_live(proc, "sleep 3602")) == conf / "data"
    assert cwd_of(one_live(proc, "recorder.py")) == where
    assert cwd_of(proc.pid) == Path("/")
    assert proc.finish()[0] == 0


def test_reload_after_leaving_rereads_the_same_file(cli: Runner, tmp_path: Path) -> None:
    """Started with a relative config path, pyinit moves to /, and a reload still
    reads the same file, with env_file relative to it."""
    (tmp_path / "late.env").write_text("LATE_VALUE=from-env-file\n")
    config = idle_service(tmp_path)
    proc = cli.start(
        ["-c", config.name],
        namespace=False,
        env=runtime_env(tmp_path),
        cwd=tmp_path,
        stderr=subprocess.STDOUT,
    )
    one_live(proc, "sleep 3600")
    wait_until(lambda: cwd_of(proc.pid) == Path("/"), "pyinit in /")
    late = "import os, signal; print('late', os.environ['LATE_VALUE'], flush=True); signal.pause()"
    write_config(
        tmp_path,
        f"""
        services:
          idle:
            command: {argv("sleep", "3600")}
          late:
            command: {argv(sys.executable, "-c", late)}
            env_file: late.env
        """,
    )
    proc.signal(signal.SIGHUP)
    proc.out.expect("late from-env-file$")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
