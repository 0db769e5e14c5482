"""Supervisor mode end to end: the HTTP endpoints for orchestrators (``--http``,
``settings.http``) and the termination report, with pyinit as PID 1 of a fresh PID
namespace. ``unshare --pid`` keeps the network namespace, so the test reaches
pyinit's port on 127.0.0.1 with a real HTTP client (urllib)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import promtext
from tests.helpers.cli import Proc, Runner, run_raw
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import DEFAULT_TIMEOUT
from tests.helpers.net import get
from tests.helpers.supervisor import start, write_config

REPORT = r"^pyinit: report: {name}: {rest}$"


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_request(port: int, data: bytes) -> bytes:
    """Send ``data`` on a plain socket and read the answer to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEFAULT_TIMEOUT) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def listening(port: int) -> Iterator[None]:
    """Hold ``port`` on 127.0.0.1 so that pyinit cannot bind it."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        yield


def serving(proc: Proc, port: int) -> None:
    assert proc.err is not None
    proc.err.expect(rf"^pyinit: serving HTTP on 127\.0\.0\.1:{port} ")


@pytest.mark.timeout(40)
def test_endpoints_report_readiness_metrics_and_status(cli: Runner, tmp_path: Path) -> None:
    """With ``--http 127.0.0.1:PORT``: /healthz answers 200 ``ok``; /readyz answers 503
    naming each service that is not ready (``gate`` waits for the test, ``app`` is
    pending behind it) and 200 once both are; /metrics parses as Prometheus text with
    the service and pyinit families; /status is the snapshot as JSON; other paths are
    404 and other methods 405; malformed or oversized requests get 400/431. A client
    that connects and sends nothing does not delay anyone else and is dropped at the
    5 s deadline. On SIGTERM the termination report goes to stderr, one line per
    service, and as JSON to $PYINIT_TERMINATION_LOG."""
    fifo = tmp_path / "gate.fifo"
    os.mkfifo(fifo)
    termination_log = tmp_path / "termination-log"
    port = free_port()
    config = write_config(
        tmp_path,
        f"""
        services:
          gate:
            command: {argv(*sh(f"read go < {fifo}; echo up; exec sleep 1000"))}
            ready: {{log_line: "^up$$"}}
          app:
            command: {argv("sleep", "1000")}
            depends_on: {{gate: {{condition: service_ready}}}}
        """,
    )
    env = dict(os.environ, PYINIT_TERMINATION_LOG=str(termination_log))
    proc = start(cli, config, "--http", f"127.0.0.1:{port}", env=env)
    assert proc.err is not None
    serving(proc, port)

    # A silent client holds a connection open for the whole test.
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    idle_since = time.monotonic()

    began = time.monotonic()
    assert get(port, "/healthz") == (200, "text/plain; charset=utf-8", b"ok\n")
    assert time.monotonic() - began < 2.0, "a silent client delayed the next one"
    status, _, body = get(port, "/readyz")
    assert status == 503
    assert body.decode().splitlines() == ["gate: starting", "app: pending"]

    with open(fifo, "w") as gate:  # opening unblocks the service's read; then it is told
        gate.write("go\n")
    proc.err.expect(r"^pyinit: gate: ready")
    proc.err.expect(r"^pyinit: app: started")
    assert get(port, "/readyz") == (200, "text/plain; charset=utf-8", b"ok\n")

    status, content_type, body = get(port, "/metrics")
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    families = promtext.parse(body.decode())
    assert families["pyinit_service_up"].by("service") == {"gate": 1, "app": 1}
    assert families["pyinit_service_ready"].by("service") == {"gate": 1, "app": 1}
    assert families["pyinit_service_healthy"].by("service") == {"gate": 1, "app": 1}
    assert families["pyinit_service_restarts_total"].type == "counter"
    assert families["pyinit_service_state"].value(service="app", state="running") == 1
    assert families["pyinit_service_last_exit_code"].samples == []
    start_times = families["pyinit_service_start_time_seconds"].by("service")
    assert set(start_times) == {"gate", "app"}
    assert abs(start_times["app"] - time.time()) < 30
    assert families["pyinit_orphans_reaped_total"].value() == 0
    assert families["pyinit_signals_forwarded_total"].value() == 0
    assert abs(families["pyinit_start_time_seconds"].value() - time.time()) < 60

    status, content_type, body = get(port, "/status")
    assert (status, content_type) == (200, "application/json")
    snapshot = json.loads(body)
    assert snapshot["pid"] == 1
    assert {n: s["state"] for n, s in snapshot["services"].items()} == {
        "gate": "running",
        "app": "running",
    }

    assert get(port, "/nope")[0] == 404
    assert get(port, "/healthz", method="POST")[0] == 405
    assert get(port, "/healthz", method="HEAD") == (200, "text/plain; charset=utf-8", b"")
    assert raw_request(port, b"GET /healthz\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    huge = b"GET /healthz HTTP/1.1\r\nX-Padding: " + b"a" * 9000 + b"\r\n\r\n"
    assert raw_request(port, huge).startswith(b"HTTP/1.0 431 ")

    # The silent client: closed by pyinit at its 5 s deadline, with no answer.
    assert idle.recv(1) == b""
    held = time.monotonic() - idle_since
    idle.close()
    assert 4.0 <= held <= 8.0, f"silent connection closed after {held:.1f}s"
    assert get(port, "/healthz")[0] == 200

    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err
    lines = err.splitlines()
    ran = r"0 restarts, ran \d+\.\ds"
    for name in ("gate", "app"):
        pattern = REPORT.format(name=name, rest=rf"stopped \(status 143\), {ran}")
        assert any(re.match(pattern, line) for line in lines), err
    report = [line for line in lines if line.startswith("pyinit: report: ")]
    assert len(report) == 2
    assert lines[-2:] == report, "the report comes last"
    doc = json.loads(termination_log.read_text())
    assert doc["exit_code"] == 0
    assert [(s["name"], s["state"], s["last_exit"]) for s in doc["services"]] == [
        ("gate", "stopped", 143),
        ("app", "stopped", 143),
    ]
    assert all(isinstance(s["ran"], float) for s in doc["services"])


@pytest.mark.timeout(30)
def test_connection_flood_cannot_lock_out_a_probe(cli: Runner, tmp_path: Path) -> None:
    """70 silent connections (more than the 64 pyinit keeps) do not keep a probe out:
    the oldest are closed to make room, and /healthz still answers at once."""
    port = free_port()
    config = write_config(tmp_path, f"services:\n  web:\n    command: {argv('sleep', '1000')}\n")
    proc = start(cli, config, "--http", f"127.0.0.1:{port}")
    serving(proc, port)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=DEFAULT_TIMEOUT)
            for _ in range(70)]
    try:
        began = time.monotonic()
        assert get(port, "/healthz")[0] == 200
        assert time.monotonic() - began < 2.0
        assert idle[0].recv(1) == b"", "the oldest connection was not closed"
    finally:
        for s in idle:
            s.close()
    proc.signal(signal.SIGTERM)
    assert proc.finish()[0] == 0


@pytest.mark.timeout(30)
def test_settings_http_enables_the_flag_overrides_and_a_busy_port_exits_2(
    cli: Runner, tmp_path: Path
) -> None:
    """``settings.http`` turns the server on; ``--http`` overrides it; when the
    address cannot be bound pyinit says so in one line and exits 2 before starting
    any service (the user asked for the endpoint: running without it would leave
    probes failing for a reason nobody sees)."""
    busy, free = free_port(), free_port()
    marker = tmp_path / "started"
    config = write_config(
        tmp_path,
        f"""
        settings:
          http: "127.0.0.1:{busy}"
        services:
          web:
            command: {argv(*sh(f"touch {marker}; exec sleep 1000"))}
        """,
    )
    with listening(busy):
        done = run_raw(config)
        assert done.code == 2, done.err
        err = done.err.decode()
        assert re.search(
            rf"^pyinit: cannot serve HTTP on 127\.0\.0\.1:{busy}: .*in use.*; nothing started$",
            err,
            re.M,
        ), err
        assert not marker.exists()
        assert "report:" not in err

        proc = start(cli, config, "--http", f"127.0.0.1:{free}")
        serving(proc, free)
        assert get(free, "/healthz")[0] == 200
        proc.signal(signal.SIGTERM)
        code, _, err = proc.finish()
        assert code == 0, err

    proc = start(cli, config)  # the port is free now: settings.http alone serves it
    serving(proc, busy)
    assert get(busy, "/readyz")[0] in (200, 503)
    proc.signal(signal.SIGTERM)
    assert proc.finish()[0] == 0


@pytest.mark.timeout(20)
def test_bad_http_flag_is_a_usage_error(cli: Runner, tmp_path: Path) -> None:
    """``--http`` with a malformed address, or without -c, is a usage error (exit 2)."""
    config = write_config(tmp_path, f"services:\n  web:\n    command: {argv('true')}\n")
    done = cli.run(["-c", str(config), "--http", "9000"], namespace=False)
    assert done.code == 2
    assert "--http: expected [host]:port" in done.err and "did you mean ':9000'" in done.err
    done = cli.run(["--http", ":9000", "--", "true"], namespace=False)
    assert done.code == 2
    assert "--http applies to supervisor mode" in done.err


@pytest.mark.timeout(20)
def test_termination_report_names_the_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a critical service fails, the report line gives its state, status, restarts
    and run time, and the termination message (JSON) the exit code and the service."""
    termination_log = tmp_path / "termination-log"
    config = write_config(
        tmp_path,
        f"""
        services:
          bad:
            command: {argv(*sh("exit 3"))}
            restart: on-failure
            start_limit: {{burst: 2, interval: 1m}}
            backoff: {{initial: 100ms}}
            critical: true
          other:
            command: {argv("sleep", "1000")}
        """,
    )
    monkeypatch.setenv("PYINIT_TERMINATION_LOG", str(termination_log))
    done = run_raw(config)
    err = done.err.decode()
    assert done.code == 3, err
    assert re.search(
        r"^pyinit: report: bad: failed \(status 3; start limit.*\), 1 restart, ran \d+\.\ds$",
        err,
        re.M,
    ), err
    assert re.search(
        r"^pyinit: report: other: stopped \(status 143\), 0 restarts, ran", err, re.M
    ), err
    doc = json.loads(termination_log.read_text())
    assert doc["exit_code"] == 3
    first = doc["services"][0]
    assert (first["name"], first["state"], first["last_exit"]) == ("bad", "failed", 3)
    assert "start limit" in first["reason"]
