"""``pyinit logs`` for an operator (issue 14): following, several services and globs,
``--since`` and ``--timestamps``, a slow follower that never holds up PID 1, and
usage errors with one ``pyinit:`` prefix."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.cli import DEVNULL, PYINIT, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import LineReader
from tests.helpers.supervisor import boot, ctl, make_fifo, ok, start, write_config, write_fifo

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def two(fifo: Path) -> str:
    return f"""
services:
  web:
    command: {argv(*sh(f"echo web 1; echo web 2; exec cat {fifo}"))}
  worker_a:
    command: {argv(*sh("echo a 1; exec sleep 1000"))}
  worker_b:
    command: {argv(*sh("echo b 1; exec sleep 1000"))}
"""


def follow(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], LineReader]:
    proc = subprocess.Popen(
        [*PYINIT, "logs", "-f", *args], env=env, stdout=subprocess.PIPE, stdin=DEVNULL
    )
    assert proc.stdout is not None
    return proc, LineReader(proc.stdout.fileno(), "pyinit logs -f")


@pytest.mark.timeout(40)
def test_follow_one_and_all(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``logs -f -n 1 web`` prints web's last line, then each new one as it comes;
    with no name every service is followed, each line prefixed as pyinit's own."""
    fifo = make_fifo(tmp_path, "in")
    boot(cli, tmp_path, env, two(fifo), "web", "worker_a", "worker_b")
    assert ok(env, "logs", "web", "-n", "1") == "web 2\n"
    one, lines = follow(env, "-n", "1", "web")
    everyone, all_lines = follow(env, "-n", "5")
    try:
        assert lines.next_line() == "web 2"
        all_lines.expect_all(["web      | web 2", "worker_a | a 1", "worker_b | b 1"])
        write_fifo(fifo, "web 3\nweb 4\n")
        assert [lines.next_line(), lines.next_line()] == ["web 3", "web 4"]
        all_lines.expect_all(["web      | web 3", "web      | web 4"])
        assert one.poll() is None  # still following
    finally:
        one.terminate()
        everyone.terminate()
        one.wait(5)
        everyone.wait(5)


@pytest.mark.timeout(30)
def test_logs_names_globs_since_timestamps(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """Several names, globs and ``all`` prefix each line; ``--timestamps`` puts an
    RFC 3339 time first; ``--since`` drops older lines; a glob matching nothing
    is an error naming it, exit 1."""
    fifo = make_fifo(tmp_path, "in")
    boot(cli, tmp_path, env, two(fifo), "web", "worker_a", "worker_b")
    assert sorted(ok(env, "logs", "worker*").splitlines()) == ["worker_a | a 1", "worker_b | b 1"]
    assert sorted(ok(env, "logs", "worker_a", "worker_b").splitlines()) == [
        "worker_a | a 1",
        "worker_b | b 1",
    ]
    assert len(ok(env, "logs", "all").splitlines()) == 4
    stamped = ok(env, "logs", "web", "--timestamps").splitlines()
    assert [re.fullmatch(f"{STAMP} (web [12])", line) is not None for line in stamped] == [1, 1]
    time.sleep(1.1)  # --since has a resolution of the clock; the lines above are older
    write_fifo(fifo, "web late\n")
    one, lines = follow(env, "web", "-n", "0")
    assert lines.next_line() == "web 1"  # the follower has the backlog: "late" is logged
    one.terminate()
    one.wait(5)
    assert ok(env, "logs", "web", "--since", "1s").splitlines()[-1] == "web late"
    assert "web 1" not in ok(env, "logs", "web", "--since", "1s")
    done = ctl(env, "logs", "nothing_*")
    assert done.returncode == 1 and done.stderr == "pyinit: no service matches 'nothing_*'\n"
    done = ctl(env, "restart", "nothing_*")
    assert done.returncode == 1 and "no service matches 'nothing_*'" in done.stderr


def test_usage_errors_have_one_prefix(env: dict[str, str]) -> None:
    """No pyinit needed: the client refuses the command line itself."""
    done = ctl(env, "logs", "--bogus", "web")
    assert (done.returncode, done.stderr.splitlines()[0]) == (
        2,
        "pyinit: logs: unknown option '--bogus'",
    )
    done = ctl(env, "wait", "web")
    assert done.stderr.splitlines()[0] == "pyinit: wait: expected --ready NAME..."


@pytest.mark.timeout(90)
def test_slow_follower_misses_lines_not_pid1(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """A follower that reads nothing while a service floods its output does not
    hold up pyinit (status answers, the flood ends) and, once it reads, is told
    how many lines it missed; it is not disconnected."""
    fifo, then = make_fifo(tmp_path, "go"), make_fifo(tmp_path, "then")
    flood = f"read x < {fifo}; seq 1 400000; read y < {then}; echo flood done; exec sleep 1000"
    config = write_config(tmp_path, f"services:\n  flood:\n    command: {argv(*sh(flood))}\n")
    proc = start(cli, config, env=env, stdin=DEVNULL, stdout=DEVNULL)
    assert proc.err is not None
    proc.err.expect(r": started \(pid \d+\)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(str(tmp_path / "run" / "control.sock"))
    request = {"cmd": "logs", "follow": True, "services": ["flood"]}
    sock.sendall(json.dumps(request).encode() + b"\n")
    head = b""
    while b"\n" not in head:
        head += sock.recv(1)
    assert json.loads(head) == {"ok": True, "follow": True, "lines": 0}
    write_fifo(fifo, "go\n")
    deadline = time.monotonic() + 40
    while ok(env, "logs", "flood", "-n", "1") != "400000\n":  # pyinit is not held up
        assert time.monotonic() < deadline, "the flood never went through: pyinit was held up"
    data = b""
    while b"this reader fell behind\n" not in data:
        chunk = sock.recv(1 << 20)
        assert chunk, "the follower was disconnected"
        data += chunk
    write_fifo(then, "go\n")
    while b"flood done\n" not in data:
        chunk = sock.recv(1 << 20)
        assert chunk, "the follower was disconnected"
        data += chunk
    sock.close()
    text = data.decode()
    missed = re.findall(r"^pyinit: missed (\d+) lines: this reader fell behind$", text, re.M)
    assert missed
    got = [line for line in text.splitlines() if line.isdigit()]
    assert len(got) + sum(int(n) for n in missed) == 400000
    assert got[0] == "1"  # the oldest lines are kept, the newest dropped


@pytest.mark.timeout(30)
def test_settings_log_timestamps(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``settings.log_timestamps: true``: each text line of pyinit's output carries
    its arrival time (RFC 3339, milliseconds) after the prefix, as pyinit's own do."""
    text = f"""
settings:
  log_timestamps: true
services:
  web:
    command: {argv(*sh("echo hello; exec sleep 1000"))}
"""
    proc = start(cli, write_config(tmp_path, text), env=env, stdin=DEVNULL)
    assert proc.out is not None and proc.err is not None
    proc.out.expect(f"^web \\| {STAMP} hello$")
    proc.err.expect(f"^pyinit: {STAMP} web: started")
    bad = write_config(tmp_path, text.replace("true", "sometimes"), "bad.yaml")
    done = subprocess.run([*PYINIT, "check", str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "settings.log_timestamps" in done.stderr
