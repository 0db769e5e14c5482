"""Supervisor mode end to end: log files (``logging: {driver: file, options: ...}``)
with pyinit as PID 1 of a fresh PID namespace: timestamps, rotation, the stdout
copy, and failures (a real full tmpfs, an unopenable path) that never stop the
service or its stdout lines."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.helpers import promtext
from tests.helpers.cli import Runner, entry_point
from tests.helpers.commands import argv, py, sh
from tests.helpers.deadlines import wait_for_file
from tests.helpers.net import free_port, get
from tests.helpers.supervisor import make_fifo, ok, start, status, write_config, write_fifo

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "


def file_lines(path: Path) -> list[str]:
    data = path.read_text()
    assert data.endswith("\n"), f"{path} ends mid-line"
    return data.splitlines()


def metrics(port: int) -> dict[str, promtext.Family]:
    code, _, body = get(port, "/metrics")
    assert code == 200
    return promtext.parse(body.decode())


@pytest.mark.timeout(40)
def test_file_rotation_and_stdout_copy(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """Lines go to the file with an RFC 3339 millisecond timestamp and no prefix,
    and still to pyinit's stdout with the prefix; at max-size the file is rotated
    web.log -> web.log.1 -> web.log.2 (max-file 3 files in all), never mid-line;
    ``stdout: false`` keeps a service's lines off stdout; ``pyinit logs`` still
    answers from memory."""
    logs = tmp_path / "logs"
    chatty = py(
        """
        import sys, time
        for i in range(300):
            print(f"line {i:04d} " + "x" * 80)
        print("done", flush=True)
        time.sleep(1000)
        """
    )
    config = write_config(
        tmp_path,
        f"""
        services:
          web:
            command: {chatty}
            logging:
              driver: file
              options: {{path: {logs}/web.log, max-size: 4k, max-file: "3"}}
          quiet:
            command: {argv(*sh("echo secret 1; echo secret 2; exec sleep 1000"))}
            logging: {{driver: file, options: {{path: {logs}/quiet.log, stdout: false}}}}
        """,
    )
    proc = start(cli, config, env=env)
    assert proc.out is not None and proc.err is not None
    proc.out.expect(r"^web +\| done$")
    wait_for_file(logs / "quiet.log", "secret 2")

    assert sorted(p.name for p in logs.iterdir()) == [
        "quiet.log",
        "web.log",
        "web.log.1",
        "web.log.2",
    ]
    kept: list[str] = []
    for name in ("web.log.2", "web.log.1", "web.log"):
        assert (logs / name).stat().st_size <= 4096
        for line in file_lines(logs / name):
            match = re.match(STAMP, line)
            assert match, line
            kept.append(line[match.end() :])
    written = [f"line {i:04d} " + "x" * 80 for i in range(300)] + ["done"]
    assert kept[-1] == "done" and kept == written[-len(kept) :]
    assert [re.sub(STAMP, "", line) for line in file_lines(logs / "quiet.log")] == [
        "secret 1",
        "secret 2",
    ]
    assert "done" in ok(env, "logs", "web", "-n", "1")
    assert "secret 2" in ok(env, "logs", "quiet")

    proc.signal(signal.SIGTERM)
    code, out, err = proc.finish()
    assert code == 0, err
    assert "line 0000 " in out and "secret" not in out


@pytest.mark.timeout(40)
def test_full_disk_is_reported_and_counted(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """On a full file system (a 64 KiB tmpfs mounted in pyinit's own mount
    namespace) the failure is one clear error line and counted in /metrics
    (errors, dropped lines); the service keeps running and every line still
    reaches stdout; the file holds whole lines only."""
    full = tmp_path / "full"
    full.mkdir()
    gate = make_fifo(tmp_path, "gate")
    port = free_port()
    filler = py(
        f"""
        import sys
        for i in range(120):
            print(f"fill {{i:03d}} " + "x" * 1000)
        print("filled", flush=True)
        open({str(gate)!r}).read()
        print("after full", flush=True)
        import time; time.sleep(1000)
        """
    )
    config = write_config(
        tmp_path,
        f"""
        services:
          web:
            command: {filler}
            logging: {{driver: file, options: {{path: {full}/web.log}}}}
        """,
    )
    mount = f'mount -t tmpfs -o size=64k pyinit-test-full {full} && exec "$@"'
    program = ["sh", "-c", mount, "sh", *entry_point()]
    proc = cli.start(["-c", str(config), "--http", f"127.0.0.1:{port}"], program=program, env=env)
    assert proc.out is not None and proc.err is not None
    no_space = "cannot write: No space left on device;"
    proc.err.expect(rf"^pyinit: web: log file {full}/web.log: {no_space}")
    proc.out.expect(r"^web \| filled$")
    write_fifo(gate, "go\n")
    proc.out.expect(r"^web \| after full$")

    families = metrics(port)
    assert families["pyinit_log_file_errors_total"].value(service="web") >= 1
    dropped = families["pyinit_log_file_dropped_lines_total"].value(service="web")
    assert dropped >= 120 - 64  # ~60 of the 1 KB lines fit in 64 KiB
    assert status(env)["web"]["state"] == "running"
    # The namespace's view of the tmpfs, through its init's root.
    inside = Path(f"/proc/{proc.init_pid}/root") / str(full).lstrip("/") / "web.log"
    lines = file_lines(inside)
    assert 0 < len(lines) < 120
    # Whole lines only; a short line may still fit in the space the cut left.
    assert [x for x in lines if not re.match(STAMP + r"(fill \d{3} x{1000}|after full)$", x)] == []

    proc.signal(signal.SIGTERM)
    code, out, err = proc.finish()
    assert code == 0, err
    assert sum(f"web | fill {i:03d} " in out for i in range(120)) == 120
    assert err.count("No space left on device") == 1


@pytest.mark.timeout(30)
def test_unopenable_path_keeps_the_service(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """A path that cannot be opened (a regular file where a directory should be)
    is one error line at start; the service runs and its lines reach stdout."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    port = free_port()
    config = write_config(
        tmp_path,
        f"""
        services:
          web:
            command: {argv(*sh("echo hello; exec sleep 1000"))}
            logging: {{driver: file, options: {{path: {blocker}/web.log}}}}
        """,
    )
    proc = start(cli, config, "--http", f"127.0.0.1:{port}", env=env)
    assert proc.out is not None and proc.err is not None
    proc.err.expect(rf"^pyinit: web: log file {blocker}/web.log: cannot open: Not a directory;")
    proc.out.expect(r"^web \| hello$")
    assert metrics(port)["pyinit_log_file_errors_total"].value(service="web") >= 1
    assert status(env)["web"]["state"] == "running"
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err
