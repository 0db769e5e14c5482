"""Wrapper mode end to end: the real CLI as PID 1 of a fresh PID namespace (issue #2).

Each test starts ``unshare --pid --fork --mount-proc pyinit ... -- CMD`` (or pyinit
directly, where the subreaper is the point) and talks to it through pipes:
CMD's ready lines, signals sent to pyinit's host pid, and exit codes.
"""

from __future__ import annotations

import os
import platform
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.cli import Runner, helper
from tests.helpers.commands import expect_ready, recorder, rt, sh
from tests.helpers.deadlines import wait_until
from tests.helpers.procs import proc_ppid, proc_state, proc_status

pytestmark = pytest.mark.timeout(20)

S = signal.Signals
FORWARDED = [
    S.SIGHUP, S.SIGINT, S.SIGQUIT, S.SIGUSR1, S.SIGUSR2, S.SIGTERM, S.SIGWINCH, S.SIGALRM,
    S.SIGCONT, rt(1), rt(-1),
]  # fmt: skip
FORWARDED = [int(s) for s in FORWARDED]
# Sent after a probe to prove a signal did *not* arrive: the highest number, so
# a probe pending at the same moment would still be handled first.
MARKER = int(signal.SIGRTMAX)


# -- reaping ------------------------------------------------------------------------


@pytest.mark.timeout(40)
def test_2000_orphans_leave_no_zombie(cli: Runner) -> None:
    """Every orphan re-parented to PID 1 is reaped: after 2,000 orphans exit, the
    namespace holds no zombie (nor any other process), and pyinit -v reports
    exactly 2,000 reaped orphans."""
    proc = cli.start(["-v", "--", *helper("orphans.py", 2000)])
    code, out, err = proc.finish(timeout=35)
    assert out == "orphans 2000 zombies 0 others 0"
    assert code == 0
    assert err.count("reaped orphan pid") == 2000


def test_signals_and_exit_during_an_orphan_storm(cli: Runner) -> None:
    """In an orphan storm pyinit leaves SIGCHLD pending for a moment to reap many
    orphans per wake-up; signals are still forwarded meanwhile, CMD's exit still
    ends the run, and no orphan is left unreaped."""
    usr1 = int(signal.SIGUSR1)
    storm = "while :; do (true &); done"
    script = f'({storm}) & exec "$@"'
    proc = cli.start(["--grace", "5", "--", *sh(script, *recorder(usr1))])
    expect_ready(proc.out, ["cmd"])
    for _ in range(20):
        proc.signal(usr1)
        proc.out.expect(f"^cmd sig {usr1}$")
    code, _, err = proc.finish()
    assert code == 0, err


# -- signal forwarding -------------------------------------------------------------


def test_signals_reach_cmd_and_its_process_group(cli: Runner) -> None:
    """Each forwarded signal (standard and real-time) sent to pyinit reaches CMD and
    a grandchild in CMD's process group; CMD leads its own session."""
    proc = cli.start(["--", *recorder(*FORWARDED, child=True)])
    ready = expect_ready(proc.out, ["cmd", "grandchild"])
    assert ready["cmd"]["sid"] == ready["cmd"]["pid"] == ready["cmd"]["pgid"]
    assert ready["grandchild"]["pgid"] == ready["cmd"]["pid"]
    for signum in FORWARDED:
        proc.signal(signum)
        proc.out.expect_all([f"cmd sig {signum}", f"grandchild sig {signum}"])
    code, out, _ = proc.finish()
    assert code == 0


def test_single_child_signals_only_cmd(cli: Runner) -> None:
    """With --single-child, forwarded signals reach CMD alone, and CMD stays in
    pyinit's session and group."""
    proc = cli.start(["--single-child", "--", *recorder(*FORWARDED, MARKER, child=True)])
    ready = expect_ready(proc.out, ["cmd", "grandchild"])
    assert ready["cmd"]["sid"] != ready["cmd"]["pid"]
    assert ready["cmd"]["pgid"] != ready["cmd"]["pid"]
    for signum in FORWARDED:
        proc.signal(signum)
        proc.out.expect(f"^cmd sig {signum}$")
    cmd, grandchild = proc.lineage(2)
    os.kill(grandchild, MARKER)  # anything pyinit had sent it is handled before this
    proc.out.expect(f"^grandchild sig {MARKER}$")
    assert [x for x in proc.out.lines if x.startswith("grandchild sig")] == [
        f"grandchild sig {MARKER}"
    ]
    code, _, _ = proc.finish()
    assert code == 0


def test_rewrite_changes_the_forwarded_signal(cli: Runner) -> None:
    """--rewrite USR1:USR2 delivers USR2 when pyinit receives USR1, and never USR1."""
    usr1, usr2 = int(signal.SIGUSR1), int(signal.SIGUSR2)
    proc = cli.start(["--rewrite", "USR1:USR2", "--", *recorder(usr1, usr2, MARKER)])
    expect_ready(proc.out, ["cmd"])
    proc.signal(usr1)
    proc.out.expect(f"^cmd sig {usr2}$")
    proc.signal(MARKER)
    proc.out.expect(f"^cmd sig {MARKER}$")
    assert f"cmd sig {usr1}" not in proc.out.lines
    assert proc.finish()[0] == 0


def test_rewrite_to_zero_drops_the_signal(cli: Runner) -> None:
    """--rewrite USR1:0 drops USR1; other signals are still forwarded."""
    usr1 = int(signal.SIGUSR1)
    proc = cli.start(["--rewrite", "USR1:0", "--", *recorder(usr1, MARKER)])
    expect_ready(proc.out, ["cmd"])
    proc.signal(usr1)
    proc.signal(MARKER)
    proc.out.expect(f"^cmd sig {MARKER}$")
    assert f"cmd sig {usr1}" not in proc.out.lines
    assert proc.finish()[0] == 0


def test_signals_blocked_by_the_launcher_are_still_forwarded(cli: Runner) -> None:
    """A signal mask inherited from whoever started pyinit does not stop forwarding
    (pyinit unblocks what it handles), and CMD starts with an empty mask."""
    usr1, term = int(signal.SIGUSR1), int(signal.SIGTERM)

    def dirty() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {usr1, term})

    proc = cli.start(["--", *recorder(usr1, term)], preexec_fn=dirty)
    expect_ready(proc.out, ["cmd"])
    for signum in (usr1, term):
        proc.signal(signum)
        proc.out.expect(f"^cmd sig {signum}$")
    assert proc.finish()[0] == 0


def test_sigpipe_of_pyinits_own_write_is_not_forwarded(cli: Runner) -> None:
    """When nobody reads pyinit's stderr any more, its next trace line raises
    SIGPIPE in pyinit itself: that one is not CMD's business and is dropped, while
    a SIGPIPE sent with kill is forwarded."""
    usr1, pipe = int(signal.SIGUSR1), int(signal.SIGPIPE)
    proc = cli.start(["-v", "--", *recorder(usr1, pipe, MARKER)])
    expect_ready(proc.out, ["cmd"])
    assert proc.popen.stderr is not None
    proc.popen.stderr.close()  # the only reader: pyinit's next write gets EPIPE
    proc.signal(usr1)  # traced: "SIGUSR1 received; forwarded ..."
    proc.out.expect(f"^cmd sig {usr1}$")
    proc.signal(MARKER)
    proc.out.expect(f"^cmd sig {MARKER}$")
    assert f"cmd sig {pipe}" not in proc.out.lines
    proc.signal(pipe)
    proc.out.expect(f"^cmd sig {pipe}$")
    proc.close_stdin()
    assert proc.wait() == 0


# -- exit codes -------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 2, 3, 42, 126, 127, 128, 200, 255])
def test_exit_code_is_cmds(cli: Runner, code: int) -> None:
    """pyinit exits with CMD's exit code, whatever it is (0..255)."""
    assert cli.run(["--", *sh(f"exit {code}")]).code == code


@pytest.mark.parametrize("signame", ["HUP", "INT", "QUIT", "KILL", "USR1", "SEGV", "TERM"])
def test_death_by_signal_is_128_plus_n(cli: Runner, signame: str) -> None:
    """When CMD dies of signal N (with or without a core dump), pyinit exits 128+N."""
    signum = int(getattr(signal, "SIG" + signame))
    done = cli.run(["--", *sh(f"ulimit -c 0; kill -{signame} $$; sleep 5")])
    assert done.code == 128 + signum


def test_forwarded_term_kills_cmd_exit_143(cli: Runner) -> None:
    """SIGTERM to pyinit is forwarded; CMD dying of it makes pyinit exit 143."""
    proc = cli.start(["--", *sh("echo ready; exec sleep 30")])
    proc.out.expect("^ready$")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 143


@pytest.mark.parametrize(
    ("script", "expected"),
    [("exit 143", 0), ("exit 142", 142), ("kill -TERM $$", 0), ("kill -HUP $$", 129)],
)
def test_remap_exit(cli: Runner, script: str, expected: int) -> None:
    """--remap-exit 143 turns exactly status 143 (including death by SIGTERM) into 0."""
    assert cli.run(["--remap-exit", "143", "--", *sh(script)]).code == expected


# -- job control ---------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["SIGTSTP", "SIGTTIN", "SIGTTOU"])
def test_job_control_stops_and_resumes_the_group(cli: Runner, stop: str) -> None:
    """A stop request (TSTP/TTIN/TTOU) to pyinit stops CMD's whole group (state T,
    even though the group is orphaned and would ignore TSTP itself); SIGCONT
    resumes it."""
    cont = int(signal.SIGCONT)
    proc = cli.start(["--", *recorder(cont, child=True)])
    expect_ready(proc.out, ["cmd", "grandchild"])
    pids = proc.lineage(2)
    proc.signal(getattr(signal, stop))
    wait_until(lambda: all(proc_state(p) == "T" for p in pids), "CMD's group to stop")
    proc.signal(cont)
    proc.out.expect_all([f"cmd sig {cont}", f"grandchild sig {cont}"])
    assert all(proc_state(p) in ("S", "R") for p in pids)
    assert proc.finish()[0] == 0


# -- starting CMD -----------------------------------------------------------------


def test_exec_not_found_127(cli: Runner) -> None:
    """A command that does not exist: exit 127, one stderr line naming it, no output."""
    done = cli.run(["--", "no-such-command-xyz", "arg"])
    assert done.code == 127
    assert done.out == ""
    lines = done.err.splitlines()
    assert len(lines) == 1 and "no-such-command-xyz" in lines[0]


@pytest.mark.parametrize("kind", ["not-executable", "directory"])
def test_exec_not_executable_126(cli: Runner, tmp_path: Path, kind: str) -> None:
    """A file without execute permission (or a directory): exit 126, one line naming it."""
    target = tmp_path / "thing"
    if kind == "directory":
        target.mkdir()
    else:
        target.write_text("#!/bin/sh\nexit 0\n")
        target.chmod(0o644)
    done = cli.run(["--", str(target)])
    assert done.code == 126
    lines = done.err.splitlines()
    assert len(lines) == 1 and str(target) in lines[0]


def test_script_without_shebang_runs_with_sh(cli: Runner, tmp_path: Path) -> None:
    """An executable file with no #! line runs through /bin/sh, as execvp(3) and a
    shell do (tini and dumb-init get this from libc)."""
    script = tmp_path / "plain"
    script.write_text('echo "args:$*"\nexit 5\n')
    script.chmod(0o755)
    done = cli.run(["--", str(script), "a", "b"])
    assert (done.code, done.out) == (5, "args:a b")


def test_cmd_starts_with_clean_signal_state(cli: Runner) -> None:
    """CMD starts with an empty signal mask, nothing ignored and no handler, even
    when pyinit itself inherited ignored and blocked signals."""

    def dirty() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGALRM})

    done = cli.run(["--", "cat", "/proc/self/status"], preexec_fn=dirty)
    fields = dict(line.split(":\t", 1) for line in done.out.splitlines() if ":\t" in line)
    assert done.code == 0
    assert int(fields["SigBlk"], 16) == 0
    assert int(fields["SigIgn"], 16) == 0
    assert int(fields["SigCgt"], 16) == 0


def test_no_leaked_file_descriptors(cli: Runner) -> None:
    """CMD gets fds 0, 1 and 2 only (ls's own directory fd aside): none of pyinit's."""
    done = cli.run(["--", "ls", "/proc/self/fd"])
    assert done.code == 0
    assert sorted(done.out.split()) == ["0", "1", "2", "3"]


# -- leftovers -------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", [True, False], ids=["pid1", "subreaper"])
def test_leftover_gets_term_and_pyinit_exits_when_gone(
    cli: Runner, tmp_path: Path, namespace: bool
) -> None:
    """After CMD exits, what is left gets SIGTERM, and pyinit exits with CMD's status
    as soon as it is gone, long before the grace period ends."""
    flag = tmp_path / "got-term"
    proc = cli.start(
        ["--grace", "30s", "--", *helper("leftover.py", flag, "--code", 7)], namespace=namespace
    )
    proc.out.expect("^ready leftover")
    assert proc.wait(timeout=10) == 7
    assert flag.read_text() == "TERM\n"
    assert time.monotonic() - proc.started < 10


@pytest.mark.parametrize("namespace", [True, False], ids=["pid1", "subreaper"])
def test_leftover_ignoring_term_is_killed_after_grace(
    cli: Runner, tmp_path: Path, namespace: bool
) -> None:
    """A leftover that ignores SIGTERM is SIGKILLed once --grace (1s) has passed, and
    pyinit exits right after, with CMD's status."""
    proc = cli.start(
        ["-v", "--grace", "1s", "--", *helper("leftover.py", tmp_path / "x", "--ignore-term",
                                               "--code", 7)],
        namespace=namespace,
    )  # fmt: skip
    leftover = int(proc.out.expect(r"^ready leftover (\d+)$")[1])
    start = time.monotonic()
    code, _, err = proc.finish(timeout=10)
    took = time.monotonic() - start
    assert code == 7
    assert 0.9 <= took < 4, took
    assert "sent SIGKILL to 1 process(es)" in err
    if not namespace:  # outside a namespace nothing else would have killed it
        assert proc_state(leftover) is None


def test_no_drain_when_nothing_is_left(cli: Runner) -> None:
    """With nothing left behind, pyinit exits at once even with a long grace period."""
    done = cli.run(["--grace", "30s", "--", "true"])
    assert done.code == 0
    assert done.elapsed < 5


# -- subreaper -------------------------------------------------------------------------


def test_subreaper_adopts_orphans_outside_a_namespace(cli: Runner) -> None:
    """Not PID 1, pyinit is a child subreaper: an orphan of CMD becomes pyinit's child
    (and is stopped and reaped by pyinit once CMD exits)."""
    script = 'sh -c "sleep 30 & echo orphan \\$!"; echo orphaned; read x; exit 0'
    proc = cli.start(["--", *sh(script)], namespace=False)
    orphan = int(proc.out.expect(r"^orphan (\d+)$")[1])
    proc.out.expect("^orphaned$")
    assert proc_ppid(orphan) == proc.pid
    code, _, _ = proc.finish()
    assert code == 0
    assert proc_state(orphan) is None


# -- idle -------------------------------------------------------------------------------


@pytest.mark.timeout(15)
def test_idle_pyinit_makes_no_wakeups(cli: Runner) -> None:
    """An idle pyinit sleeps in the kernel with no timeout: over ~1s its context
    switch counts do not move (and on x86_64, it waits in rt_sigtimedwait with no
    timeout: sigwaitinfo, as tini does, but without tini's one-second tick)."""
    proc = cli.start(["--", *recorder()])
    expect_ready(proc.out, ["cmd"])
    pid = proc.init_pid
    syscall = Path(f"/proc/{pid}/syscall")

    def blocked() -> str | None:
        text = syscall.read_text().split()
        return text and text[0].isdigit() and proc_state(pid) == "S" and " ".join(text)

    line = wait_until(blocked, "pyinit to block in a system call")
    if platform.machine() == "x86_64":
        nr, _set, _info, timeout = line.split()[:4]
        assert nr == "128"  # rt_sigtimedwait
        assert timeout == "0x0"  # NULL: no timer armed, sleep until a signal

    def switches() -> tuple[str, str]:
        status = proc_status(pid)
        return status["voluntary_ctxt_switches"], status["nonvoluntary_ctxt_switches"]

    before = switches()
    time.sleep(1.0)  # the measurement itself, not a synchronisation
    assert switches() == before
    assert proc.finish()[0] == 0


# -- parent death -----------------------------------------------------------------------


@pytest.mark.parametrize("personality", [None, "tini"])
def test_parent_death_signal(cli: Runner, personality: str | None) -> None:
    """--parent-death-signal USR1 (tini: -p SIGUSR1): when pyinit's parent dies, pyinit
    receives USR1 and forwards it to CMD."""
    usr1 = int(signal.SIGUSR1)
    flag = ["-p", "SIGUSR1"] if personality else ["--parent-death-signal", "USR1"]
    proc = cli.start([*flag, "--", *recorder(usr1)], personality=personality)
    expect_ready(proc.out, ["cmd"])
    init = proc.init_pid
    proc.popen.kill()  # unshare, pyinit's parent
    proc.popen.wait()
    proc.out.expect(f"^cmd sig {usr1}$")
    proc.close_stdin()  # CMD exits; pyinit then exits: stdout reaches EOF
    proc.out.read_to_eof()
    wait_until(lambda: proc_state(init) in (None, "Z"), "pyinit to exit")


# -- CLI basics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "stream", "text"),
    [
        (["--version"], 0, "out", "pyinit "),
        (["-V"], 0, "out", "pyinit "),
        (["--help"], 0, "out", "Usage: pyinit"),
        (["-h"], 0, "out", "Usage: pyinit"),
        ([], 2, "err", "no command"),
        (["--no-such-flag", "true"], 2, "err", "--no-such-flag"),
        (["--grace", "soon", "true"], 2, "err", "--grace"),
        (["--grace", "inf", "true"], 2, "err", "--grace"),
        (["--rewrite", "USR1", "true"], 2, "err", "--rewrite"),
        (["--remap-exit", "256", "true"], 2, "err", "--remap-exit"),
    ],
)
def test_cli_basics(cli: Runner, args: list[str], code: int, stream: str, text: str) -> None:
    """--version/--help exit 0 on stdout; usage errors exit 2 with one message, no traceback."""
    done = cli.run(args, namespace=False)
    assert done.code == code
    assert text in getattr(done, stream)
    assert "Traceback" not in done.err


def test_stdin_is_passed_through(cli: Runner) -> None:
    """CMD reads pyinit's stdin and writes to its stdout."""
    proc = cli.start(["--", "cat"])
    proc.write(b"hello\n")
    proc.out.expect("^hello$")
    assert proc.finish()[0] == 0
