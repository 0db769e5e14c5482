"""Interactive use through a terminal (``docker run -it``): a shell under the init
gets a controlling terminal, job control signals from the terminal reach the
foreground job and not the init, and the shell's exit status comes back.

Two set-ups: the terminal is nobody's controlling tty yet ("free"), or the init
is a session leader that owns it, as in a container started with -t ("owned",
made with ``setsid --ctty``).
"""

from __future__ import annotations

import os
import pty
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import Proc, Runner, entry_point, real_tool
from tests.helpers.deadlines import LineReader, wait_until
from tests.helpers.procs import proc_state

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    master, slave = pty.openpty()
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def _find(proc: Proc, name: str) -> int | None:
    """Host pid of the init's descendant running ``name``, if any (no event tells us)."""
    for pid in proc.host_tree():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                return pid
        except OSError:
            pass
    return None


CASES = [
    ("pyinit", "free"),
    ("pyinit", "owned"),
    ("dumb-init", "free"),
    ("dumb-init", "owned"),
    ("tini", "owned"),
    ("real-dumb-init", "owned"),
    ("real-tini", "owned"),
]


@pytest.mark.parametrize(("face", "tty"), CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_interactive_shell(cli: Runner, terminal: tuple[int, int], face: str, tty: str) -> None:
    """Through a pty: the shell computes (42), owns /dev/tty, ^C interrupts its
    foreground job and is not seen by the init (nor are the SIGHUP/SIGCONT that
    handing over the terminal raises), and 'exit 3' makes the init exit 3."""
    master, slave = terminal
    if face.startswith("real-"):
        program = [real_tool(face[5:])]
    else:
        program = entry_point(None if face == "pyinit" else face)
    if tty == "owned":
        program = ["setsid", "--ctty", *program]
    proc = cli.start(
        ["--", "sh", "-i"],
        program=program,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={
            **os.environ,
            "PS1": "",  # no prompt mixed into output lines
            "PS2": "",
            # Our faces trace every signal they receive onto the terminal.
            "PYINIT_VERBOSE": "1",
            "DUMB_INIT_DEBUG": "1",
            "TINI_VERBOSITY": "2",
        },
    )
    os.close(slave)
    screen = LineReader(master, "terminal")

    def run(command: str) -> None:
        os.write(master, command.encode() + b"\n")

    # Typed-ahead input is echoed by the terminal before the shell answers; output
    # lines are matched whole, so an echoed command line never matches its result.
    run("echo $((6*7))")
    screen.expect(r"^42$")
    run("echo CTTY_$( (: </dev/tty) 2>/dev/null && echo yes || echo no)")
    assert screen.expect(r"^CTTY_(yes|no)$")[1] == "yes"
    run("sh -c 'echo SLEEP_STARTED; exec sleep 30'")
    screen.expect(r"^SLEEP_STARTED$")
    sleeper = wait_until(lambda: _find(proc, "sleep"), "the shell's sleep to start")
    os.write(master, b"\x03")  # ^C: SIGINT to the terminal's foreground job
    # ^C also flushes typed-ahead input, so type on only once it took effect.
    wait_until(lambda: proc_state(sleeper) in (None, "Z"), "^C to end the sleep")
    run("echo $((2+3))")
    screen.expect(r"^5$")
    run("exit 3")
    assert proc.wait() == 3
    transcript = screen.read_to_eof()
    if not face.startswith("real-"):
        assert "exited (status 3)" in transcript  # the trace is on: its silence counts
        assert "received" not in transcript, transcript
