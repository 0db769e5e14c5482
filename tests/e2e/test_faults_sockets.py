"""Hostile clients of pyinit's sockets (the HTTP endpoints and the control socket),
with pyinit as PID 1 of a fresh PID namespace. Each case held up in the
reliability review; these keep it that way: pyinit keeps answering its probes
and operator requests, keeps no connection past its deadline, and leaks no fd.

Sizes are the review's (300 idle, 50 slowloris, 420 non-readers, 200 half-sent,
5,000 connect/close): loopback and Unix sockets take them in a second or two.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import DEVNULL, Proc, Runner
from tests.helpers.commands import argv
from tests.helpers.deadlines import wait_until
from tests.helpers.net import free_port, get
from tests.helpers.procs import fd_count
from tests.helpers.supervisor import runtime_env, start, status_json, write_config

QUICK = 2.0  # seconds a probe or a status request may take while under attack
DEADLINE = 5.0  # pyinit's per-connection deadline (httpd) and request timeout (control)


@dataclass
class Target:
    proc: Proc
    port: int
    control: str  # the control socket's path
    tmp_path: Path

    def pid(self) -> int:
        return self.proc.init_pid

    def web_pid(self) -> int:
        pid: int = status_json(self.tmp_path)["services"]["web"]["pid"]
        return pid


@pytest.fixture
def target(cli: Runner, tmp_path: Path) -> Iterator[Target]:
    """pyinit serving HTTP on a free loopback port and its control socket, one service."""
    port = free_port()
    config = write_config(tmp_path, f"services:\n  web:\n    command: {argv('sleep', '1000')}\n")
    env = runtime_env(tmp_path)
    proc = start(cli, config, "--http", f"127.0.0.1:{port}", env=env, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(rf"serving HTTP on 127\.0\.0\.1:{port} ")
    proc.err.expect(r"web: started")
    control = os.path.join(env["PYINIT_RUNTIME_DIR"], "control.sock")
    yield Target(proc, port, control, tmp_path)
    if proc.popen.poll() is None:
        proc.signal(signal.SIGTERM)
        code, _out, err = proc.finish()
        assert code == 0, err
        assert "Traceback" not in err, err


def probe_quickly(t: Target) -> None:
    """/healthz answers 200 and ``pyinit status`` answers, each within QUICK seconds."""
    began = time.monotonic()
    assert get(t.port, "/healthz")[0] == 200
    assert time.monotonic() - began < QUICK
    began = time.monotonic()
    assert status_json(t.tmp_path)["services"]["web"]["state"] == "running"
    assert time.monotonic() - began < QUICK + 1.0  # a client process starts, too


def settles_to(t: Target, baseline: int) -> None:
    """pyinit's fd count comes back to ``baseline``: every connection was closed."""
    wait_until(lambda: fd_count(t.pid()) == baseline, f"{baseline} fds in pyinit", DEADLINE + 4)


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True when the peer closed (EOF or reset) within ``timeout``; data is discarded."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def flood_one(address: Any, family: int, payload: bytes, limit: int) -> bytes:
    """Write ``payload`` while reading, until the peer answers and closes or ``limit``
    bytes are sent: what a server that stops reading early still sends back."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.setblocking(False)
        answer = b""
        sent = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            want_write = [sock] if sent < limit else []
            readable, writable, _ = select.select([sock], want_write, [], 1.0)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    return answer
                if not chunk:
                    return answer
                answer += chunk
            if writable:
                try:
                    sent += sock.send(payload[sent % len(payload) :][: 1 << 16])
                except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                    want_write = []
                    limit = sent
        pytest.fail(f"no end of the answer after 20 s ({sent} bytes sent): {answer[:200]!r}")


# -- HTTP ------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_http_300_idle_connections(target: Target) -> None:
    """300 connections that send nothing: the oldest are closed to make room (64
    kept), probes still answer at once, and everything is released."""
    baseline = fd_count(target.pid())
    idle = [socket.create_connection(("127.0.0.1", target.port), timeout=5) for _ in range(300)]
    try:
        probe_quickly(target)
        assert closed_by_server(idle[0], 3.0), "the oldest idle connection was kept"
        assert fd_count(target.pid()) <= baseline + 64 + 2
    finally:
        for sock in idle:
            sock.close()
    settles_to(target, baseline)


@pytest.mark.timeout(30)
def test_http_slowloris(target: Target) -> None:
    """50 connections each trickling a header byte every 0.2 s never finish their
    request: probes answer meanwhile, and each is cut at the 5 s deadline."""
    baseline = fd_count(target.pid())
    began = time.monotonic()
    slow = [socket.create_connection(("127.0.0.1", target.port), timeout=5) for _ in range(50)]
    open_ = {sock.fileno(): sock for sock in slow}
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        probe_quickly(target)
        while open_ and time.monotonic() - began < DEADLINE + 4:
            for fd, sock in list(open_.items()):
                try:
                    sock.send(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    del open_[fd]
            readable, _, _ = select.select(list(open_.values()), [], [], 0.2)
            for sock in readable:
                if closed_by_server(sock, 0.1):
                    del open_[sock.fileno()]
        assert not open_, f"{len(open_)} slow connections outlived the deadline"
        assert time.monotonic() - began >= DEADLINE - 0.5
    finally:
        for sock in slow:
            sock.close()
    settles_to(target, baseline)


@pytest.mark.timeout(30)
def test_http_10mb_of_headers_answered_431(target: Target) -> None:
    """A 10 MB header block gets 431 after pyinit has read past its 8 KiB cap, not
    an attempt to buffer it all."""
    head = b"GET /healthz HTTP/1.1\r\n" + b"X-Big: " + b"x" * (10 * 1024 * 1024)
    answer = flood_one(("127.0.0.1", target.port), socket.AF_INET, head, len(head))
    assert answer.startswith(b"HTTP/1.0 431 "), answer[:200]
    probe_quickly(target)


@pytest.mark.timeout(30)
def test_http_pipelined_requests(target: Target) -> None:
    """Two requests in one write: the first is answered (HTTP/1.0, Connection:
    close), the second dropped with the connection, and pyinit serves on."""
    with socket.create_connection(("127.0.0.1", target.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n")
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.0 200 OK\r\n"), data
    assert data.count(b"HTTP/1.0 ") == 1, data
    probe_quickly(target)


@pytest.mark.timeout(30)
def test_http_420_clients_never_read_status(target: Target) -> None:
    """420 clients ask for /status with a tiny receive buffer and never read: the
    oldest make room for the newest, probes answer, and nothing is leaked."""
    baseline = fd_count(target.pid())
    clients = []
    try:
        for _ in range(420):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            clients.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", target.port))
            sock.sendall(b"GET /status HTTP/1.0\r\n\r\n")
        probe_quickly(target)
    finally:
        for sock in clients:
            sock.close()
    settles_to(target, baseline)


@pytest.mark.timeout(40)
def test_http_metrics_flood(target: Target) -> None:
    """Four clients fetching /metrics back to back (600 scrapes): every scrape is
    answered, probes still answer at once, the service is untouched."""
    web = target.web_pid()
    baseline = fd_count(target.pid())
    answers: list[int] = []
    lock = threading.Lock()

    def scrape() -> None:
        for _ in range(150):
            code = get(target.port, "/metrics")[0]
            with lock:
                answers.append(code)

    threads = [threading.Thread(target=scrape) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        probe_quickly(target)
    finally:
        for thread in threads:
            thread.join(30)
    assert answers == [200] * 600
    assert target.web_pid() == web
    settles_to(target, baseline)


# -- the control socket ----------------------------------------------------------------


def unix(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)  # blocking: a full backlog waits (EAGAIN with a timeout set)
    sock.settimeout(10)
    return sock


@pytest.mark.timeout(40)
def test_control_200_half_sent_requests(target: Target) -> None:
    """200 clients each send half a request and stop: the oldest make room for the
    newest (64 kept), so an operator's status answers at once, not after the 5 s
    request timeout; every one of them is closed by that timeout at the latest."""
    baseline = fd_count(target.pid())
    began = time.monotonic()
    half = []
    try:
        for _ in range(200):
            sock = unix(target.control)
            half.append(sock)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b'{"cmd": "sta')
        probe_quickly(target)
        assert time.monotonic() - began < DEADLINE, "status waited for the request timeouts"
        left = DEADLINE + 4 - (time.monotonic() - began)
        assert all(closed_by_server(sock, left) for sock in half)
        assert time.monotonic() - began < DEADLINE + 4
        probe_quickly(target)
    finally:
        for sock in half:
            sock.close()
    settles_to(target, baseline)


@pytest.mark.timeout(40)
def test_control_50mb_request_line(target: Target) -> None:
    """A 50 MB request line is refused as too large once past the 64 KiB cap;
    pyinit does not buffer it, and serves on."""
    line = b'{"cmd": "status", "pad": "' + b"x" * (50 * 1024 * 1024)
    answer = flood_one(target.control, socket.AF_UNIX, line, len(line))
    reply = json.loads(answer)
    assert reply["ok"] is False and "too large" in reply["error"], reply
    probe_quickly(target)


@pytest.mark.timeout(40)
def test_5000_connect_close_cycles(target: Target) -> None:
    """5,000 control connections opened and closed at once (and 1,000 HTTP ones):
    no fd leaked, probes and status answer. (Over TCP a connect now and then
    waits 1 s for a SYN retransmit when the 64-deep accept queue is full, so
    5,000 there would take 10 s and test the kernel more than pyinit.)"""
    baseline = fd_count(target.pid())
    for _ in range(5000):
        unix(target.control).close()
    for _ in range(1000):
        socket.create_connection(("127.0.0.1", target.port), timeout=5).close()
    probe_quickly(target)
    settles_to(target, baseline)


# -- a path taken before pyinit starts -------------------------------------------------


def _regular_file(path: Path, victim: Path) -> None:
    path.write_text("not a socket\n")


def _link_to_a_root_file(path: Path, victim: Path) -> None:
    path.symlink_to(victim)


def _dangling_link(path: Path, victim: Path) -> None:
    path.symlink_to(victim.parent / "nowhere")


TAKEN = {"file": _regular_file, "symlink": _link_to_a_root_file, "dangling": _dangling_link}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", sorted(TAKEN))
def test_precreated_control_socket_path(cli: Runner, tmp_path: Path, kind: str) -> None:
    """Something that is not a socket already at control.sock (a file, a link to a
    root-owned file, a dangling link) is left alone: one line says pyinit runs
    without the control socket, the services run, and the target is untouched."""
    env = runtime_env(tmp_path)
    run = Path(env["PYINIT_RUNTIME_DIR"])
    run.chmod(0o755)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    path = run / "control.sock"
    TAKEN[kind](path, victim)
    before = os.lstat(path)
    config = write_config(tmp_path, f"services:\n  web:\n    command: {argv('sleep', '1000')}\n")
    proc = start(cli, config, env=env, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(r"web: started")
    proc.signal(signal.SIGTERM)
    code, _out, err = proc.finish()
    assert code == 0, err
    lines = [line for line in err.splitlines() if "control socket" in line]
    assert len(lines) == 1 and lines[0].startswith(
        f"pyinit: control socket: cannot listen on {path}: "
    ), err
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (
        before.st_ino,
        before.st_mode,
        before.st_mtime_ns,
    )
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
