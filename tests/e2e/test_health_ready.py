"""Readiness end to end: each source (tcp, http, log line, fd, sd_notify) gates a
``service_ready`` dependant and the main command; a service not ready in time
fails its start.

Each test runs the installed CLI as PID 1 of a fresh PID namespace, with its own
PYINIT_RUNTIME_DIR. A gated service blocks until the test releases it (a fifo),
and writes a marker file right before it becomes ready; its dependant records at
start whether the marker existed, so a dependant started too early is caught
without any timing assumption.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.helpers.cli import Runner, helper
from tests.helpers.commands import argv, sdnotify, sh
from tests.helpers.deadlines import wait_line
from tests.helpers.net import free_port, send_datagram
from tests.helpers.supervisor import (
    make_fifo,
    read_status,
    service_status,
    start_pyinit,
    wait_status,
    write_config,
    write_fifo,
)


def client(marker: Path, name: str = "client") -> str:
    """A dependant: says whether ``marker`` existed when it started, then stays up."""
    return argv(*sh(
        f"if [ -e {marker} ]; then echo '{name} saw marker'; "
        f"else echo '{name} started early'; fi; exec sleep 1000"
    ))


def index_of(lines: list[str], pattern: str) -> int:
    regex = re.compile(pattern)
    for i, line in enumerate(lines):
        if regex.search(line):
            return i
    pytest.fail(f"{pattern!r} not in {lines!r}")


READY_YAML = {
    "tcp": "{{tcp: {port}, interval: 100ms}}",
    "http": "{{http: 'http://127.0.0.1:{port}/ready', expect_status: 200, interval: 100ms}}",
    "log_line": '{{log_line: "listening on \\\\d+"}}',
    "fd": "{{fd: 3}}",
}
READY_LOG = {
    "tcp": r"server: ready \(tcp 127\.0\.0\.1:{port} after",
    "http": r"server: ready \(http http://127\.0\.0\.1:{port}/ready after",
    "log_line": r"server: ready \(log line .*listening on .*d\+.* after",
    "fd": r"server: ready \(fd 3 after",
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["tcp", "http", "log_line", "fd"])
def test_readiness_gates_dependant(cli: Runner, tmp_path: Path, mode: str) -> None:
    """A ``condition: service_ready`` dependant starts only once the readiness source
    fired: tcp (the port accepts), http (GET /ready answers the expected 200, not the
    503 before), log_line (a matching line, not the similar line before it) or fd 3
    (a newline written to it). Until then the server is ``starting`` / not ready in
    the status file and the dependant pending; after, both run and are ready."""
    port = free_port()
    fifo = make_fifo(tmp_path, "go")
    marker = tmp_path / "marker"
    config = write_config(
        tmp_path,
        f"""
        services:
          server:
            command: {argv(*helper("gated.py", mode, fifo, marker, port))}
            ready: {READY_YAML[mode].format(port=port)}
          client:
            command: {client(marker)}
            depends_on: {{server: {{condition: service_ready}}}}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    proc.out.expect(r"server +\| server waiting")
    wait_status(tmp_path, "server", state="starting", ready=False)
    assert service_status(tmp_path, "client")["state"] == "pending"

    write_fifo(fifo, "go\n")
    proc.out.expect(READY_LOG[mode].format(port=port))
    proc.out.expect(r"client +\| client (saw marker|started early)")
    lines = proc.out.lines
    assert not any("client started early" in line for line in lines), lines
    assert index_of(lines, r"server: ready") < index_of(lines, r"client: started")
    wait_status(tmp_path, "server", state="running", ready=True)
    wait_status(tmp_path, "client", state="running", ready=True)

    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.lines


@pytest.mark.timeout(30)
def test_sd_notify_gates_dependant(cli: Runner, tmp_path: Path) -> None:
    """``ready: {notify: true}``: the service gets $NOTIFY_SOCKET (in the runtime dir)
    and is ready on its READY=1. A READY=1 datagram from a process outside the
    service's session (the test, outside the container; another service) is ignored;
    one from a short-lived child in its session counts.
    STATUS= texts show up in the status file (``status_text``), before and after
    ready. The dependant starts only after READY=1."""
    fifo = make_fifo(tmp_path, "commands")
    other_fifo = make_fifo(tmp_path, "other-commands")
    expected_socket = str(tmp_path / "rt" / "notify-notifier.sock")
    if len(expected_socket.encode()) >= 100:  # pyinit's fallback for long paths
        expected_socket = "@pyinit-notify-" + expected_socket.encode().hex()[-64:]
    config = write_config(
        tmp_path,
        f"""
        services:
          notifier:
            command: {sdnotify(fifo)}
            ready: {{notify: true}}
          other:
            command: {sdnotify(other_fifo)}
            environment: {{NOTIFY_SOCKET: "{expected_socket}"}}
          client:
            command: {argv(*sh("echo 'client started'; exec sleep 1000"))}
            depends_on: {{notifier: {{condition: service_ready}}}}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    wait_line(proc.out, rf"notifier +\| sdnotify: ready socket={re.escape(expected_socket)}$")
    wait_line(proc.out, rf"other +\| sdnotify: ready socket={re.escape(expected_socket)}$")

    # Not from the service's session: dropped. From outside the container, and from
    # another service (alive, so its session is known) writing to this socket.
    send_datagram(expected_socket, b"READY=1\nSTATUS=forged")
    write_fifo(other_fifo, "send READY=1\\nSTATUS=forged by other\n")
    wait_line(proc.out, r"other +\| sdnotify: sent READY=1")
    write_fifo(fifo, "send STATUS=warming up\n")
    proc.out.expect(r"sdnotify: sent STATUS=warming up")
    wait_status(tmp_path, "notifier", status_text="warming up")
    entry = service_status(tmp_path, "notifier")
    assert entry["ready"] is False and entry["state"] == "starting", entry
    assert service_status(tmp_path, "client")["state"] == "pending"
    assert not any("client started" in line for line in proc.out.lines)

    write_fifo(fifo, "child-send READY=1\n")
    proc.out.expect(r"notifier: ready \(notify READY=1 after")
    proc.out.expect(r"client +\| client started")
    wait_status(tmp_path, "notifier", state="running", ready=True)

    write_fifo(fifo, "send STATUS=serving 3 clients\n")
    proc.out.expect(r"sdnotify: sent STATUS=serving 3 clients")
    wait_status(tmp_path, "notifier", status_text="serving 3 clients")

    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.lines


@pytest.mark.timeout(30)
def test_ready_timeout_fails_the_start(cli: Runner, tmp_path: Path) -> None:
    """``ready: {tcp: PORT, timeout: 1s}`` on a service that never listens: after 1 s
    the start has failed (``not ready within 1s``). With restart: on-failure it is
    stopped and started again (a new pid); with restart: no it is failed, and its
    service_ready dependant fails naming it."""
    port1, port2 = free_port(), free_port()
    config = write_config(
        tmp_path,
        f"""
        services:
          retried:
            command: [sleep, "1000"]
            ready: {{tcp: {port1}, timeout: 1s, interval: 100ms}}
            restart: on-failure
            backoff: {{initial: 100ms, multiplier: 1, jitter: 0}}
          given_up:
            command: [sleep, "1000"]
            ready: {{tcp: {port2}, timeout: 1s, interval: 100ms}}
            restart: "no"
          client:
            command: [sleep, "1000"]
            depends_on: {{given_up: {{condition: service_ready}}}}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    first = proc.out.expect(r"retried: started \(pid (\d+)\)")[1]
    proc.out.expect(
        rf"retried: exited \(not ready within 1s \(tcp 127\.0\.0\.1:{port1}\)\); restart 1 in"
    )
    second = proc.out.expect(r"retried: started \(pid (\d+)\)")[1]
    assert second != first
    wait_line(proc.out, rf"given_up: failed \(not ready within 1s \(tcp 127\.0\.0\.1:{port2}\)\)")
    wait_line(proc.out, r"client: failed \(dependency given_up failed before it was ready")
    status = read_status(tmp_path)
    assert status is not None
    assert status["services"]["given_up"]["state"] == "failed"
    assert status["services"]["client"]["state"] == "failed"

    proc.signal(signal.SIGTERM)
    proc.finish()


@pytest.mark.timeout(30)
def test_main_command_waits_for_every_service_ready(cli: Runner, tmp_path: Path) -> None:
    """``pyinit -c FILE -- CMD``: the main command starts only when every longrun is
    ready (here: one gated on fd 3, one ready when started) and every oneshot
    completed; pyinit exits with the main command's status."""
    fifo = make_fifo(tmp_path, "go")
    marker = tmp_path / "marker"
    config = write_config(
        tmp_path,
        f"""
        services:
          slow:
            command: {argv(*helper("gated.py", "fd", fifo, marker, 0))}
            ready: {{fd: 3}}
          quick:
            command: [sleep, "1000"]
          setup:
            type: oneshot
            command: {argv(*sh("echo setup done"))}
        """,
    )
    main = f"if [ -e {marker} ]; then echo 'main saw marker'; fi; exit 7"
    proc = start_pyinit(cli, tmp_path, config, "--", "sh", "-c", main)
    assert proc.out is not None
    proc.out.expect(r"slow +\| server waiting")
    wait_status(tmp_path, "setup", state="completed")
    wait_status(tmp_path, "quick", state="running", ready=True)
    assert not any("main command" in line for line in proc.out.lines), proc.out.lines

    write_fifo(fifo, "go\n")
    ready = wait_line(proc.out, r"slow: ready \(fd 3 after")
    assert ready < wait_line(proc.out, r"main command sh started")
    wait_line(proc.out, r"^main saw marker$")  # its own stdout: no order with pyinit's
    code, _, _ = proc.finish()
    assert code == 7, proc.out.lines
