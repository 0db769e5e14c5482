"""The control socket end to end: pyinit as PID 1 of a fresh PID namespace, driven
through the real ``pyinit status|start|stop|restart|signal|reload|wait|logs|health``
clients (run outside the namespace: the socket is a file in the test's directory)
and through raw sockets for the misbehaving clients.

PIDs in ``status`` are the namespace's; the tests only compare them with each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyinit
from tests.helpers.cli import DEVNULL, PYINIT, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import wait_for_lines
from tests.helpers.supervisor import (
    CLIENT_TIMEOUT,
    boot,
    ctl,
    ok,
    pids,
    start,
    status,
    stop_pyinit,
    write_config,
)


def request(path: str, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send raw ``data`` on a fresh connection; everything received until EOF."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return recv_all(sock)


def recv_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


TWO = f"""
services:
  db:
    command: {argv("sleep", "1000")}
  web:
    command: {argv(*sh("echo web line 1; echo web line 2; echo web line 3 >&2; exec sleep 1000"))}
    depends_on: [db]
  other:
    command: {argv("sleep", "1001")}
  setup:
    command: {argv("true")}
    type: oneshot
"""


@pytest.mark.timeout(30)
def test_status_logs_health(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``pyinit status`` shows each service's state and pid (the table and --json
    agree); ``logs NAME -n N`` gives its last N lines; ``health`` is answered live
    by the socket, not from the status file."""
    proc = boot(cli, tmp_path, env, TWO, "db", "web", "other", "setup")
    svcs = status(env)
    assert {n: s["state"] for n, s in svcs.items()} == {
        "db": "running",
        "web": "running",
        "other": "running",
        "setup": "completed",
    }
    assert all(isinstance(svcs[n]["pid"], int) for n in ("db", "web", "other"))
    assert svcs["setup"]["pid"] is None and svcs["setup"]["last_exit"] == 0
    assert len({svcs[n]["pid"] for n in ("db", "web", "other")}) == 3
    table = ok(env, "status").splitlines()
    assert table[0].split()[:4] == ["NAME", "STATE", "PID", "UPTIME"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["web"][1:3] == ["running", str(svcs["web"]["pid"])]
    assert rows["setup"][1:3] == ["completed", "-"]

    wait_for_lines_logged = ok(env, "logs", "web", "-n", "2").splitlines()
    assert wait_for_lines_logged == ["web line 2", "web line 3"]
    assert ok(env, "logs", "web").splitlines() == ["web line 1", "web line 2", "web line 3"]
    done = ctl(env, "logs", "nope")
    assert done.returncode == 1 and "no service named 'nope'" in done.stderr

    os.unlink(tmp_path / "run" / "status.json")  # the answer must come from the socket
    assert ok(env, "health") == "healthy: 4 services\n"
    assert stop_pyinit(proc) == 0
    assert not (tmp_path / "run" / "control.sock").exists()


@pytest.mark.timeout(30)
def test_restart_gives_new_pid(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``pyinit restart web`` stops and starts web again (a new pid); services that
    do not depend on it keep their pids; an unknown name exits 1 and names it."""
    boot(cli, tmp_path, env, TWO, "db", "web", "other")
    before = pids(env)
    assert ok(env, "restart", "web") == "restarting: web\nready: web\n"
    after = pids(env)
    assert after["web"] != before["web"]
    assert (after["db"], after["other"]) == (before["db"], before["other"])
    assert status(env)["web"]["state"] == "running"
    done = ctl(env, "restart", "--no-wait", "nope")
    assert done.returncode == 1 and "no service named 'nope'" in done.stderr


@pytest.mark.timeout(30)
def test_stop_then_start(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``pyinit stop db`` also stops web (it depends on db), dependants first; the
    container keeps running. Started again, db brings web back; a service stopped
    by name stays stopped until started by name."""
    proc = boot(cli, tmp_path, env, TWO, "db", "web", "other")
    assert proc.err is not None
    before = pids(env)
    assert ok(env, "stop", "--no-wait", "db") == "stopping: db, web\n"
    proc.err.expect(r"web: stopped in")
    proc.err.expect(r"db: stopped in")
    svcs = status(env)
    assert (svcs["db"]["state"], svcs["web"]["state"]) == ("stopped", "stopped")
    assert svcs["db"]["pid"] is None and svcs["other"]["pid"] == before["other"]
    done = ctl(env, "wait", "--ready", "web", "--timeout", "10s")
    assert done.returncode == 1 and "web: stopped" in done.stderr  # answered at once

    # Started again, db brings back web, which its stop took down (issue 14).
    assert ok(env, "start", "db") == "starting: db, web\nready: db\nready: web\n"
    svcs = status(env)
    assert svcs["db"]["state"] == "running" and svcs["db"]["pid"] != before["db"]
    assert svcs["web"]["pid"] not in (None, before["web"])
    # A service stopped by name stays stopped until it is started by name.
    assert ok(env, "stop", "web") == "stopping: web\nstopped: web\n"
    assert ok(env, "stop", "db") == "stopping: db\nstopped: db\n"
    assert ok(env, "start", "db") == "starting: db\nready: db\n"
    assert status(env)["web"]["state"] == "stopped"
    assert proc.popen.poll() is None


@pytest.mark.timeout(30)
def test_signal_reaches_service(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``pyinit signal USR1 worker`` delivers SIGUSR1 to the service's process group:
    its trap runs; an unknown signal is a usage error (2), a stopped service an
    error (1)."""
    got = tmp_path / "got"
    script = f'trap "echo usr1 >> {got}" USR1; echo up; while :; do sleep 1000 & wait; done'
    text = f"""
    services:
      worker:
        command: {argv(*sh(script))}
        ready: {{log_line: "^up$$"}}
    """
    proc = boot(cli, tmp_path, env, text, "worker")
    assert proc.err is not None
    assert ok(env, "signal", "USR1", "worker") == "signalled: worker\n"
    wait_for_lines(got, ["usr1"])
    done = ctl(env, "signal", "NOTASIG", "worker")
    assert done.returncode == 2 and "unknown signal" in done.stderr
    ok(env, "stop", "--no-wait", "worker")
    proc.err.expect(r"worker: stopped in")
    done = ctl(env, "signal", "USR1", "worker")
    assert done.returncode == 1 and "worker is not running" in done.stderr


@pytest.mark.timeout(40)
def test_reload(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``pyinit reload`` applies the edited file: an added service starts, a removed
    one stops and disappears, a changed one restarts (new pid), an unchanged one
    keeps its pid. An invalid file changes nothing and exits 1 naming the problem."""
    old = f"""
    services:
      keep:
        command: {argv("sleep", "1000")}
      change:
        command: {argv("sleep", "1001")}
      remove:
        command: {argv("sleep", "1002")}
    """
    proc = boot(cli, tmp_path, env, old, "keep", "change", "remove")
    assert proc.err is not None
    before = pids(env)
    write_config(
        tmp_path,
        f"""
        services:
          keep:
            command: {argv("sleep", "1000")}
          change:
            command: {argv("sleep", "1003")}
          add:
            command: {argv("sleep", "1004")}
        """,
    )
    out = ok(env, "reload")
    assert "added add" in out and "removed remove" in out and "changed change" in out
    proc.err.expect(r"remove: removed")
    ok(env, "wait", "--ready", "keep", "change", "add", "--timeout", "10s")
    after = pids(env)
    assert set(after) == {"keep", "change", "add"}
    assert after["keep"] == before["keep"]
    assert after["change"] not in (None, before["change"])

    write_config(
        tmp_path,
        f"""
        services:
          keep:
            comand: {argv("sleep", "1000")}
        """,
    )
    done = ctl(env, "reload")
    assert done.returncode == 1
    assert "comand" in done.stderr and "did you mean 'command'" in done.stderr
    assert pids(env) == after


@pytest.mark.timeout(30)
def test_wait_ready(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """``pyinit wait --ready NAME`` exits 0 once NAME is ready (held open until
    then), 1 after --timeout naming what is not ready, and 1 at once for a service
    that failed for good; a completed oneshot counts as ready."""
    flag = tmp_path / "flag"
    text = f"""
    services:
      slow:
        command: {
        argv(*sh(f"while [ ! -e {flag} ]; do sleep 0.05; done; echo up; exec sleep 1000"))
    }
        ready: {{log_line: "^up$$"}}
      bad:
        command: {argv("false")}
      setup:
        command: {argv("true")}
        type: oneshot
    """
    proc = boot(cli, tmp_path, env, text)
    assert proc.err is not None
    proc.err.expect(r"bad: failed")
    began = time.monotonic()
    done = ctl(env, "wait", "--ready", "slow", "--timeout", "300ms")
    assert done.returncode == 1 and "timed out" in done.stderr and "slow" in done.stderr
    assert time.monotonic() - began >= 0.3
    began = time.monotonic()
    done = ctl(env, "wait", "--ready", "bad", "--timeout", "20s")
    assert done.returncode == 1 and "bad: failed" in done.stderr
    assert time.monotonic() - began < 5  # not held until the timeout
    assert ok(env, "wait", "--ready", "setup") == "ready: setup\n"

    waiter = subprocess.Popen(
        [*PYINIT, "wait", "--ready", "slow", "setup", "--timeout", "20s"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert status(env)["slow"]["state"] == "starting"  # others are served meanwhile
        assert waiter.poll() is None
        flag.touch()
        out, err = waiter.communicate(timeout=CLIENT_TIMEOUT)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    assert out == "ready: slow, setup\n"
    assert status(env)["slow"]["ready"] is True


@pytest.mark.timeout(30)
def test_socket_mode_and_stale_file(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """The socket is created mode 0600 even under umask 0, replacing a stale socket
    file left by an earlier run, and is removed when pyinit exits."""
    run = tmp_path / "run"
    run.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(run / "control.sock"))
    stale.close()  # the file stays: nobody listens on it
    config = write_config(tmp_path, f"services:\n  a:\n    command: {argv('sleep', '1000')}\n")
    proc = start(cli, config, env=env, stdin=DEVNULL, umask=0)
    assert proc.err is not None
    proc.err.expect(r"a: started")
    mode = os.stat(run / "control.sock")
    assert stat.S_ISSOCK(mode.st_mode) and stat.S_IMODE(mode.st_mode) == 0o600
    assert mode.st_uid == os.getuid()
    assert status(env)["a"]["state"] == "running"
    assert stop_pyinit(proc) == 0
    assert not (run / "control.sock").exists()


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory another uid can traverse (pytest's tmp dirs are private)."""
    path = Path(tempfile.mkdtemp(prefix="pyinit-ctl-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(30)
def test_other_uid_refused(
    cli: Runner, tmp_path: Path, env: dict[str, str], public_dir: Path
) -> None:
    """A client of another uid (nobody) is refused: by the 0600 mode at connect, and,
    with the mode opened up, by the server's SO_PEERCRED check with
    ``permission denied``; either way exit 2 naming the socket. Root still gets in."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another uid")
    sock_path = public_dir / "control.sock"
    env = {**env, "PYINIT_SOCKET": str(sock_path)}
    boot(cli, tmp_path, env, f"services:\n  a:\n    command: {argv('sleep', '1000')}\n", "a")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # The console script may sit in root's private home: run the same main() from
    # the source tree, which nobody can read.
    source = str(Path(pyinit.__file__).resolve().parent.parent)
    client = [sys.executable, "-c", "import sys, pyinit.cli; pyinit.cli.main(['pyinit', 'status'])"]

    def as_nobody() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*nobody, *client],
            env={**env, "PYTHONPATH": source},
            stdin=DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )

    done = as_nobody()
    assert done.returncode == 2, done
    assert "Permission denied" in done.stderr and str(sock_path) in done.stderr

    sock_path.chmod(0o666)
    done = as_nobody()
    assert done.returncode == 2, done
    assert "permission denied (root or pyinit's own user only)" in done.stderr
    assert str(sock_path) in done.stderr
    assert status(env)["a"]["state"] == "running"


@pytest.mark.timeout(30)
def test_bad_clients_leave_it_serving(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """Garbage, a non-object, an unknown cmd, a request over 64 KiB, a half-sent
    request, a client that never reads its answer and more than 64 connections at
    once (the oldest idle ones make room) each get an error or are dropped; pyinit
    keeps serving (status works)."""
    proc = boot(cli, tmp_path, env, TWO, "db")
    path = str(tmp_path / "run" / "control.sock")

    def answer(data: bytes) -> dict[str, Any]:
        raw = request(path, data)
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1, raw
        result: dict[str, Any] = json.loads(raw)
        return result

    assert "invalid JSON" in answer(b"\x00\xff garbage\n")["error"]
    assert "JSON object" in answer(b"[1]\n")["error"]
    assert "unknown cmd" in answer(b'{"cmd": "selfdestruct"}\n')["error"]
    assert '"services"' in answer(b'{"cmd": "stop", "services": "db"}\n')["error"]
    big = answer(b'{"cmd": "status", "pad": "' + b"x" * (70 * 1024))
    assert big["ok"] is False and "too large" in big["error"]
    # a last line without its newline still counts when the client half-closes
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b'{"cmd": "health"}')
        sock.shutdown(socket.SHUT_WR)
        assert json.loads(recv_all(sock))["ok"] is True
    for data in (b'{"cmd": "sta', b'{"cmd": "status"}\n'):  # gone mid-request / unread
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)
            sock.sendall(data)
    crowd = []
    try:
        for _ in range(70):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            crowd.append(sock)
            sock.connect(path)  # blocking: a full backlog (EAGAIN otherwise) waits
            sock.settimeout(10)
        began = time.monotonic()
        # Over the limit the oldest idle connections make room for the newest,
        # which is served at once, well before the 5 s idle drop.
        assert crowd[0].recv(100) == b""
        crowd[-1].sendall(b'{"cmd": "health"}\n')
        assert json.loads(recv_all(crowd[-1]))["ok"] is True
        assert time.monotonic() - began < 4.0
    finally:
        for sock in crowd:
            sock.close()
    assert status(env)["db"]["state"] == "running"
    assert proc.popen.poll() is None


@pytest.mark.timeout(30)
def test_silent_client_does_not_block(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """A client that connects and sends nothing, and one that sends half a line, do
    not delay another client; both are dropped after 5 s without a request."""
    boot(cli, tmp_path, env, TWO, "db")
    path = str(tmp_path / "run" / "control.sock")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connected = time.monotonic()
        for sock in (silent, half):
            sock.settimeout(10)
            sock.connect(path)
        half.sendall(b'{"cmd": "sta')
        began = time.monotonic()
        assert status(env)["db"]["state"] == "running"
        assert time.monotonic() - began < 3.0
        assert silent.recv(100) == b""
        assert half.recv(100) == b""
        assert 4.5 <= time.monotonic() - connected < 9.0
    finally:
        silent.close()
        half.close()


@pytest.mark.timeout(30)
def test_without_socket(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """When the socket cannot be created pyinit says so in one line and runs the
    services anyway; a client with no pyinit to talk to exits 2 naming the path,
    and ``pyinit health`` falls back to the status file."""
    bad = str(tmp_path / "missing" / "dir" / "control.sock")
    env = {**env, "PYINIT_SOCKET": bad}
    config = write_config(tmp_path, f"services:\n  a:\n    command: {argv('sleep', '1000')}\n")
    proc = start(cli, config, env=env, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(rf"control socket: cannot listen on {bad}")
    proc.err.expect(r"a: started")
    done = ctl(env, "status")
    assert done.returncode == 2 and bad in done.stderr
    done = ctl(env, "health")  # the status file in PYINIT_RUNTIME_DIR answers
    assert (done.returncode, done.stdout) == (0, "healthy: 1 service\n"), done
    assert stop_pyinit(proc) == 0
    done = ctl(env, "health")
    assert done.returncode == 1 and done.stdout.startswith("unhealthy:")
