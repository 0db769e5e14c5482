"""Fault injection on output, end to end (issue #6): services that close their
stdout or flood stderr, and pyinit's own stdout closed, broken or never read.

pyinit runs as PID 1 of a fresh PID namespace; each test also checks: no zombie,
no traceback, the service exits pyinit saw are the ones that happened, and the
exit code the README documents (0 for a SIGTERM with every service stopped
cleanly).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import PYTHON, Runner, entry_point
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import file_lines, pump_to_eof, wait_line, wait_until
from tests.helpers.procs import assert_no_traceback, assert_no_zombies, blocked_writing, one_live
from tests.helpers.supervisor import runtime_env, start_pyinit, status_json, write_config

TICKER = argv(*sh("i=0; while :; do i=$((i+1)); echo tick $i >&2; sleep 0.02; done"))


@pytest.mark.timeout(20)
def test_service_closes_stdout_early(cli: Runner, tmp_path: Path) -> None:
    """A service that closes its stdout (``exec >&-``) and keeps running is not
    taken for dead: no exit is logged, it keeps its pid, its stderr still arrives,
    and the other service's lines keep coming. SIGTERM exits 0."""
    config = write_config(
        tmp_path,
        f"""
        services:
          closer:
            command: {
            argv(*sh("echo before; exec >&-; sleep 0.3; echo after >&2; exec sleep 1020"))
        }
          ticker:
            command: {TICKER}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    wait_line(proc.out, r"^closer +\| before$")
    pid = one_live(proc, "sleep 1020")
    proc.out.expect(r"^closer +\| after$")
    for _ in range(5):  # the ticker goes on after closer closed its stdout
        proc.out.expect(r"^ticker +\| tick \d+$")
    assert one_live(proc, "sleep 1020") == pid
    snap = status_json(tmp_path)["services"]["closer"]
    assert snap["state"] == "running" and snap["restarts"] == 0, snap
    assert_no_zombies(proc)
    proc.signal(signal.SIGTERM)
    code, out, _ = proc.finish()
    assert_no_traceback(out)
    assert "closer: exited" not in out, out
    assert "pyinit: report: closer: stopped (status 143), 0 restarts" in out, out
    assert code == 0, out


FLOOD = """
import os, sys
stop, done = sys.argv[1], sys.argv[2]
block = b"".join(b"flood %06d %s\\n" % (i, b"x" * 1000) for i in range(100))
n = 0
while not os.path.exists(stop):
    os.write(2, block)
    n += 100
with open(done, "w") as f:
    f.write(f"{n}\\n")
os.write(2, b"flood stopped\\n")
os.execvp("sleep", ["sleep", "1021"])
"""


@pytest.mark.timeout(30)
def test_stderr_flood_does_not_starve_others(cli: Runner, tmp_path: Path) -> None:
    """A service floods stderr as fast as it can (MBs of 1 KB lines) until the test
    has seen 20 lines of another service arrive in the middle of the flood: a flood
    does not starve the other services' output. Not one flood line is lost (their
    count equals what the flooder says it wrote). SIGTERM exits 0."""
    stop, done = tmp_path / "stop", tmp_path / "done"
    config = write_config(
        tmp_path,
        f"""
        services:
          ticker:
            command: {TICKER}
          flood:
            command: {argv(PYTHON, "-c", FLOOD, stop, done)}
            depends_on: {{ticker: {{condition: service_started}}}}
        """,
    )
    proc = cli.start(["-c", str(config)], env=runtime_env(tmp_path))
    assert proc.out is not None and proc.err is not None
    err = proc.err
    first = wait_line(err, r"^flood +\| flood 000000 ")
    wait_until(
        lambda: (
            err.read_available() is None
            and sum("ticker" in line for line in err.lines[first:]) >= 20
        ),
        "20 ticker lines during the flood",
        15,
    )
    stop.touch()  # only now: the flood was on while those ticks arrived
    wait_line(err, r"^flood +\| flood stopped$", 15)
    wrote = int(file_lines(done)[0])
    assert wrote >= 2000, f"a flood of {wrote} lines only"
    proc.signal(signal.SIGTERM)
    code, _, text = proc.finish(20)
    assert_no_traceback(text)
    flood_line = re.compile(r"^flood +\| flood \d{6} x{1000}$")
    assert sum(bool(flood_line.match(line)) for line in err.lines) == wrote
    assert code == 0, text[-2000:]


CHATTY = argv(*sh("i=0; while :; do i=$((i+1)); echo chat $i; sleep 0.01; done"))
FLOODER = argv(*sh("exec yes flood-out-flood-out-flood-out"))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["closed", "reader-gone", "never-read"])
def test_own_stdout_closed_or_blocked(cli: Runner, tmp_path: Path, how: str) -> None:
    """pyinit's own stdout closed at start (``pyinit ... >&-``), a pipe whose reader
    goes away, or a pipe nobody ever reads (while a service writes to it as fast as
    it can): pyinit keeps supervising (a service SIGKILLed is restarted, logged on
    stderr), answers ``pyinit status``, and shuts down on SIGTERM with exit 0."""
    config = write_config(
        tmp_path,
        f"""
        services:
          chatty:
            command: {FLOODER if how == "never-read" else CHATTY}
          victim:
            command: ["sleep", "1022"]
            restart: always
            backoff: {{initial: 100ms, multiplier: 1, jitter: 0}}
        """,
    )
    env = runtime_env(tmp_path)
    args = ["-c", str(config)]
    if how == "closed":
        program = ["sh", "-c", 'exec "$@" >&-', "sh", *entry_point()]
        proc = cli.start(args, program=program, env=env, stdout=subprocess.DEVNULL)
    else:
        proc = cli.start(args, env=env)
    assert proc.err is not None
    err = proc.err
    if how == "reader-gone":
        assert proc.out is not None
        wait_line(proc.out, r"^chatty +\| chat 3$")
        assert proc.popen.stdout is not None
        proc.popen.stdout.close()  # the only reader: pyinit's next write gets EPIPE
        proc.out = None
    elif how == "never-read":
        # pyinit's queue fills (1 MiB), then it stops reading chatty, which blocks.
        wait_until(lambda: blocked(proc.host_tree()), "the flooder blocked on its pipe", 15)
    victim = one_live(proc, "sleep 1022")
    os.kill(victim, signal.SIGKILL)
    wait_line(err, r"^pyinit: victim: exited \(killed by SIGKILL\); restart 1 in ")
    one_live(proc, "sleep 1022", other_than=victim)
    snap = status_json(tmp_path)["services"]
    assert snap["victim"]["restarts"] == 1 and snap["victim"]["state"] == "running", snap
    assert snap["chatty"]["state"] == "running", snap
    assert_no_zombies(proc)
    proc.signal(signal.SIGTERM)
    pump_to_eof([err], 15)
    code = proc.wait(15)
    text = err.text()
    assert_no_traceback(text)
    assert "pyinit: report: victim: stopped (status 143), 1 restart" in text, text
    assert code == 0, text


def blocked(pids: list[int]) -> bool:
    return any(blocked_writing(pid) for pid in pids)
