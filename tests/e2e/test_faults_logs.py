"""``pyinit logs`` answers end to end (reliability issue, finding 7): bytes that are
not UTF-8 come back exactly, and clients that ask for logs and never read the
answer do not grow PID 1's memory, do not keep it grown once they leave, and do
not stop it serving anyone else.

pyinit runs as PID 1 of a fresh PID namespace; its memory is the VmRSS of its
host pid, read from /proc.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import PYINIT, PYTHON, Proc, Runner
from tests.helpers.commands import argv
from tests.helpers.deadlines import wait_line, wait_until
from tests.helpers.procs import assert_no_traceback, fd_count
from tests.helpers.supervisor import runtime_env, start_pyinit, status_json, write_config

# Lines a UTF-8 decoder would mangle, and lines that look like escapes of themselves.
ODD_LINES = [
    bytes(b for b in range(256) if b != 0x0A),
    b"\xff\xfe\xfd",
    b"",
    b"\\xff is not \xff",
    b"\\\\x00 \\u00ff \\udcff",
    b'{"ok": true, "lines": 3}',
    b"caf\xc3\xa9 ok, caf\xc3 cut, \xed\xa0\x80 surrogate, \xf4\x90\x80\x80 too big",
    b"\r",
    b"\x00\x00",
    b"end of noise",
]
NOISE = f"""
import os, sys
lines = {ODD_LINES!r}
sys.stdout.buffer.write(b"".join(line + b"\\n" for line in lines))
sys.stdout.buffer.flush()
os.execvp("sleep", ["sleep", "1000"])
"""

# 1000 lines of 255 bytes, mostly 0xff: the whole store of recent lines (256 KiB),
# about six times bigger as JSON with every 0xff escaped.
FILL = """
import os, sys
sys.stdout.buffer.write(b"".join(b"%03d" % i + b"\\xff" * 251 + b"\\n" for i in range(1000)))
sys.stdout.buffer.write(b"filled\\n")
sys.stdout.buffer.flush()
os.execvp("sleep", ["sleep", "1001"])
"""
SILENT_CLIENTS = 63  # plus the status client: MAX_CONNECTIONS
RSS_GROWTH_MAX = 30 * 1024  # kB; the old code grew by over 100 MB


def logs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*PYINIT, "logs", *args], env=env, capture_output=True, timeout=15, check=False
    )


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def stop(proc: Proc) -> str:
    proc.signal(15)
    code, out, _err = proc.finish()
    assert_no_traceback(out)
    assert code == 0, out[-2000:]
    return out


@pytest.mark.timeout(30)
def test_logs_round_trip_bytes(cli: Runner, tmp_path: Path) -> None:
    """``pyinit logs NAME`` writes the service's lines back byte for byte: every
    byte value but the newline, invalid UTF-8, text that looks like an escape."""
    command = argv(PYTHON, "-c", NOISE)
    config = write_config(tmp_path, f"services:\n  noisy:\n    command: {command}\n")
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    wait_line(proc.out, r"^noisy +\| end of noise$")
    env = runtime_env(tmp_path)
    expected = b"".join(line + b"\n" for line in ODD_LINES)
    for args in (["-n", "0"], [], ["-n", str(len(ODD_LINES))]):
        done = logs(env, "noisy", *args)
        assert (done.returncode, done.stderr) == (0, b""), done
        assert done.stdout == expected
    done = logs(env, "noisy", "-n", "3")
    assert done.returncode == 0 and done.stdout == b"\r\n\x00\x00\nend of noise\n"
    stop(proc)


@pytest.mark.timeout(45)
def test_unread_log_answers_bounded(cli: Runner, tmp_path: Path) -> None:
    """63 clients ask for the full store of a service's lines (256 KiB, mostly
    0xff) and never read: PID 1's RSS grows by less than 30 MB (the one-JSON-string
    answers grew it by over 100 MB), ``status`` still answers meanwhile, and once
    the clients leave their connections are gone and the memory is not kept."""
    command = argv(PYTHON, "-c", FILL)
    config = write_config(tmp_path, f"services:\n  fill:\n    command: {command}\n")
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    wait_line(proc.out, r"^fill +\| filled$")
    env = runtime_env(tmp_path)
    warm = logs(env, "fill", "-n", "0")  # the answer path has run once
    assert warm.returncode == 0 and warm.stdout.count(b"\n") == 1000, warm.stderr
    pid = proc.init_pid
    fds = fd_count(pid)
    before = rss_kb(pid)
    path = os.path.join(env["PYINIT_RUNTIME_DIR"], "control.sock")
    request = json.dumps({"cmd": "logs", "service": "fill", "lines": 0}).encode() + b"\n"
    silent: list[socket.socket] = []
    try:
        for _ in range(SILENT_CLIENTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            silent.append(sock)
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(request)
        for sock in silent:  # each answer has begun: its first bytes wait unread
            assert sock.recv(1, socket.MSG_PEEK) == b"{"
        held = rss_kb(pid)
        assert status_json(tmp_path)["services"]["fill"]["state"] == "running"
    finally:
        for sock in silent:
            sock.close()
    wait_until(lambda: fd_count(pid) <= fds, "the silent clients' connections closed")
    after = rss_kb(pid)
    growth = {"before": before, "held": held, "after": after}
    print(f"VmRSS of PID 1 (kB): {growth}")
    assert held - before < RSS_GROWTH_MAX, growth
    assert after - before < RSS_GROWTH_MAX, growth
    done = logs(env, "fill", "-n", "2")
    assert done.returncode == 0 and done.stdout == b"999" + b"\xff" * 251 + b"\nfilled\n"
    stop(proc)
