"""Supervisor mode end to end: the log router (prefixes, streams, JSON, back-pressure)."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.cli import PYTHON, Runner, run_raw
from tests.helpers.commands import argv, py, recorder, sh
from tests.helpers.deadlines import file_lines, wait_for_file, wait_until
from tests.helpers.procs import blocked_writing
from tests.helpers.supervisor import start, write_config

LINES = 16384  # 64 bytes each: 1 MiB
BIG = f"""
import sys
out = sys.stdout.buffer
out.write(b"".join(b"%08d " % i + b"x" * 54 + b"\\n" for i in range({LINES})))
"""


def _prefix(name: str, names: list[str]) -> bytes:
    width = max(len(n) for n in names)
    return f"{name:<{width}} | ".encode()


@pytest.mark.timeout(30)
def test_text_logs_arrive_whole(tmp_path: Path) -> None:
    """In text mode every line a service writes reaches pyinit's stdout or stderr
    (the same stream it was written to) prefixed ``name | ``: 1 MiB from a service
    that exits at once arrives whole and in order; a last line with no newline is
    flushed; a line longer than 16 KiB is split into pieces, not dropped; bytes
    that are not UTF-8 pass through unchanged."""
    names = ["big", "streams", "partial", "long", "slowlong", "bytes"]
    long_line = py("import sys; sys.stdout.write('L' * 20000 + '\\n')")
    # The same kind of line arriving over several reads, the newline last.
    slow_long = py(
        """
        import sys, time
        for part in ("A" * 7000, "B" * 7000, "C" * 7000, "\\n"):
            sys.stdout.write(part)
            sys.stdout.flush()
            time.sleep(0.05)
        """
    )
    raw_bytes = argv(*sh("printf 'bad \\377\\376 bytes\\n'"))
    config = write_config(
        tmp_path,
        f"""
        services:
          big:
            command: {py(BIG)}
          streams:
            command: {argv(*sh("echo to-stderr-1 >&2; echo to-stdout; echo to-stderr-2 >&2"))}
          partial:
            command: {argv(*sh("printf 'no newline at end'"))}
          long:
            command: {long_line}
          slowlong:
            command: {slow_long}
          bytes:
            command: {raw_bytes}
        """,
    )
    done = run_raw(config, timeout=20)
    assert done.code == 0, done.err
    out = done.out.split(b"\n")
    err = done.err.split(b"\n")
    assert out[-1] == b"", "stdout does not end with a newline"

    def lines_of(name: str, stream: list[bytes]) -> list[bytes]:
        prefix = _prefix(name, names)
        return [line[len(prefix) :] for line in stream if line.startswith(prefix)]

    big = lines_of("big", out)
    assert len(big) == LINES, f"{len(big)} of {LINES} lines arrived"
    assert big == [b"%08d " % i + b"x" * 54 for i in range(LINES)]
    assert lines_of("streams", out) == [b"to-stdout"]
    assert lines_of("streams", err) == [b"to-stderr-1", b"to-stderr-2"]
    assert lines_of("partial", out) == [b"no newline at end"]
    assert lines_of("long", out) == [b"L" * 16384, b"L" * (20000 - 16384)]
    whole = b"A" * 7000 + b"B" * 7000 + b"C" * 7000
    assert lines_of("slowlong", out) == [whole[:16384], whole[16384:]]
    assert lines_of("bytes", out) == [b"bad \xff\xfe bytes"]
    assert b"Traceback" not in done.err


@pytest.mark.timeout(20)
def test_json_log_lines(tmp_path: Path) -> None:
    """``--log-format json``: every line on stdout and stderr is a JSON object with
    exactly ts, service, stream, pid, line; ``pid`` is the writer's pid, ``stream``
    the stream it wrote to, and bytes that are not UTF-8 can be recovered from
    ``line`` (surrogate escapes)."""
    app = argv(*sh("echo pid $$; echo oops >&2; printf 'raw \\377\\n'"))
    config = write_config(
        tmp_path,
        f"""
        services:
          app:
            command: {app}
        """,
    )
    done = run_raw(config, "--log-format", "json")
    assert done.code == 0, done.err
    keys = {"ts", "service", "stream", "pid", "line"}
    records = []
    for raw in done.out.splitlines() + done.err.splitlines():
        record = json.loads(raw)
        assert set(record) == keys, record
        records.append(record)
    app = [r for r in records if r["service"] == "app"]
    by_line = {r["line"]: r for r in app}
    first = by_line[next(line for line in by_line if line.startswith("pid "))]
    assert first["stream"] == "stdout"
    assert first["pid"] == int(first["line"].split()[1])
    assert by_line["oops"]["stream"] == "stderr"
    raw_line = next(r["line"] for r in app if r["line"].startswith("raw "))
    assert raw_line.encode("utf-8", "surrogateescape") == b"raw \xff"
    assert all(r["stream"] == "pyinit" for r in records if r["service"] == "pyinit")
    assert any(r["service"] == "pyinit" for r in records), "pyinit's own lines missing"


@pytest.mark.timeout(20)
def test_logging_inherit_writes_straight_through(tmp_path: Path) -> None:
    """``logging: inherit``: the service writes to pyinit's own stdout/stderr,
    with no prefix; a captured service next to it still gets its prefix."""
    config = write_config(
        tmp_path,
        f"""
        services:
          direct:
            logging: inherit
            command: {argv(*sh("echo straight through; echo straight err >&2"))}
          routed:
            command: {argv(*sh("echo via pyinit"))}
        """,
    )
    done = run_raw(config)
    assert done.code == 0, done.err
    out = done.out.decode().splitlines()
    assert "straight through" in out
    assert "straight err" in done.err.decode().splitlines()
    assert "routed | via pyinit" in out
    assert not any(line.startswith("direct") for line in out)


@pytest.mark.timeout(30)
def test_service_of_another_user_can_reopen_dev_stdout(tmp_path: Path) -> None:
    """A service running as another ``user:`` that opens /dev/stdout and /dev/stderr
    by path (as nginx and many loggers do) can: its pipes belong to its user, and
    the lines arrive prefixed on the matching stream."""
    if os.geteuid() != 0:
        pytest.skip("switching user needs root")
    config = write_config(
        tmp_path,
        f"""
        services:
          nobody:
            user: "65534:65534"
            command: {argv(*sh("echo by path > /dev/stdout && echo err by path > /dev/stderr"))}
        """,
    )
    done = run_raw(config)
    assert done.code == 0, done.err
    assert "nobody | by path" in done.out.decode().splitlines()
    assert "nobody | err by path" in done.err.decode().splitlines()


FLOOD = """
import sys
out = sys.stdout.buffer
line = b"y" * 1023 + b"\\n"
while True:
    out.write(line)
"""


@pytest.mark.timeout(30)
def test_slow_stdout_reader_does_not_stall_signals(cli: Runner, tmp_path: Path) -> None:
    """When nobody reads pyinit's stdout, a flooding service is blocked in write(2)
    (back-pressure) while pyinit itself stays responsive: SIGTERM still stops the
    service and pyinit exits; what it wrote before is intact, line by line."""
    config = write_config(
        tmp_path,
        f"""
        services:
          flood:
            command: {argv(PYTHON, "-c", FLOOD, "flood-marker")}
        """,
    )
    proc = start(cli, config)
    assert proc.err is not None and proc.out is not None
    proc.err.expect(r"flood: started")

    def flooder() -> int | None:
        for pid in proc.host_tree():
            try:
                if b"flood-marker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
        return None

    pid = wait_until(flooder, "the flooding service")
    wait_until(lambda: blocked_writing(pid), "the flooder to block on its pipe")
    assert proc.popen.poll() is None, "pyinit died under back-pressure"
    proc.signal(signal.SIGTERM)
    proc.err.expect(r"flood: stopped in [\d.]+s \(killed by SIGTERM\)")
    # Exit without a reader: pyinit gives its output a bounded time, then goes.
    code = proc.wait(timeout=10)
    proc.err.read_to_eof()
    assert code == 0, proc.err.lines
    data = _drain(proc.out.fd)
    complete = data[: data.rfind(b"\n")].split(b"\n")
    assert len(complete) > 10, f"only {len(data)} bytes on stdout"  # a pipe buffer's worth
    assert all(line == b"flood | " + b"y" * 1023 for line in complete)


def _drain(fd: int) -> bytes:
    """Read ``fd`` to EOF (the writer is gone), with a deadline."""
    chunks = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    pytest.fail("stdout not at EOF after pyinit exited")


@pytest.mark.timeout(20)
def test_closed_stdout_does_not_signal_services(cli: Runner, tmp_path: Path) -> None:
    """When the reader of pyinit's stdout goes away, pyinit's writes fail (EPIPE)
    and its output is dropped; the SIGPIPE the kernel raises for them is not
    forwarded to the services, which keep running until pyinit is told to stop."""
    ticks = tmp_path / "ticks"
    log = tmp_path / "signals.log"
    config = write_config(
        tmp_path,
        f"""
        services:
          talker:
            command: {argv(*sh(f"while :; do echo hello; echo tick >> {ticks}; sleep 0.02; done"))}
          quiet:
            command: {
            argv(*recorder(signal.SIGPIPE, role="quiet", log=log, exit_on=signal.SIGTERM))
        }
        """,
    )
    proc = start(cli, config)
    assert proc.out is not None and proc.err is not None
    proc.out.expect("hello")
    wait_for_file(log, "ready quiet ")
    assert proc.popen.stdout is not None
    proc.popen.stdout.close()  # the only read end: pyinit's next write fails
    seen = len(file_lines(ticks))
    wait_until(lambda: len(file_lines(ticks)) >= seen + 10, "talker to write on")
    assert [line.split(" pid=")[0] for line in file_lines(log)] == ["ready quiet"], (
        "a service got SIGPIPE"
    )
    assert proc.popen.poll() is None, "pyinit died of its closed stdout"
    proc.signal(signal.SIGTERM)
    proc.err.read_to_eof()
    code = proc.wait()
    err = "\n".join(proc.err.lines)
    assert "SIGPIPE" not in err, err
    assert re.search(r"talker: stopped in [\d.]+s \(killed by SIGTERM\)", err), err
    assert code == 0, err
