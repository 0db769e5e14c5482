#!/usr/bin/env python3
"""Benchmark PID 1's memory under ``pyinit logs`` clients that never read.

pyinit runs as PID 1 of a fresh PID namespace (``unshare --pid --fork
--mount-proc``) with one service that fills its store of recent lines (1000
lines of 255 bytes, mostly 0xff: 256 KiB that JSON would escape about six-fold)
and then sleeps. Each round, for each N in ``--clients``:

- before: VmRSS of PID 1 (its host pid, from /proc) after one full answer;
- held: N clients connect, ask for every kept line (``lines: 0``) and never
  read; VmRSS once each answer's first byte waits in its socket;
- after: the clients close; VmRSS once PID 1 holds no more connections;
- answer time: a reading client's full ``logs`` answer, connect to EOF.

Medians over ``--rounds`` fresh pyinits. ``--src DIR`` runs the pyinit source
tree in DIR (``python -m pyinit`` with PYTHONPATH=DIR), to compare two versions.
Needs root (or another way to make PID namespaces). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
DEADLINE = 30.0
FILL = """
import os, sys
sys.stdout.buffer.write(b"".join(b"%03d" % i + b"\\xff" * 251 + b"\\n" for i in range(1000)))
sys.stdout.buffer.write(b"filled\\n")
sys.stdout.buffer.flush()
os.execvp("sleep", ["sleep", "100000"])
"""
REQUEST = json.dumps({"cmd": "logs", "service": "fill", "lines": 0}).encode() + b"\n"


def wait_for(predicate: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def full_answer(path: str) -> tuple[float, int]:
    """Seconds from connect to EOF of one read-everything logs answer, and its size."""
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(DEADLINE)
        sock.connect(path)
        sock.sendall(REQUEST)
        size = 0
        while chunk := sock.recv(1 << 20):
            size += len(chunk)
    return time.monotonic() - start, size


def python_path(src: Path) -> str:
    """``src`` first, then this interpreter's site directories, for ``python -S``:
    without the site module, an editable install's import hook (which would win
    over PYTHONPATH) is never set up."""
    sites = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return os.pathsep.join([str(src), *sites])


def check_source(src: Path) -> None:
    where = subprocess.run(
        [sys.executable, "-S", "-P", "-c", "import pyinit; print(pyinit.__file__)"],
        env={**os.environ, "PYTHONPATH": python_path(src)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"pyinit comes from {where}, not from {src}")


def one_round(src: Path, clients: list[int]) -> dict[int, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-logs-") as tmp:
        config = Path(tmp) / "services.yaml"
        config.write_text(
            f"services:\n  fill:\n    command: {json.dumps([sys.executable, '-c', FILL])}\n"
        )
        env = {**os.environ, "PYINIT_RUNTIME_DIR": tmp, "PYTHONPATH": python_path(src)}
        path = os.path.join(tmp, "control.sock")
        out = Path(tmp) / "out"
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                [*UNSHARE, sys.executable, "-S", "-P", "-m", "pyinit", "-c", str(config)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        pid = 0
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            wait_for(lambda: children.read_text().split(), "pyinit to start")
            pid = int(children.read_text().split()[0])
            wait_for(lambda: b"filled" in out.read_bytes(), "the store to fill")
            results: dict[int, dict[str, float]] = {}
            for n in clients:
                full_answer(path)
                base_fds = fds(pid)
                before = rss_kb(pid)
                silent = []
                for _ in range(n):
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.settimeout(DEADLINE)
                    sock.connect(path)
                    sock.sendall(REQUEST)
                    silent.append(sock)
                for sock in silent:
                    sock.recv(1, socket.MSG_PEEK)
                held = rss_kb(pid)
                for sock in silent:
                    sock.close()
                wait_for(lambda base=base_fds: fds(pid) <= base, "the silent clients to go")
                after = rss_kb(pid)
                seconds, _size = full_answer(path)
                results[n] = {
                    "before": before / 1024,
                    "held": held / 1024,
                    "after": after / 1024,
                    "answer_ms": seconds * 1000,
                }
            return results
        finally:
            os.kill(pid or proc.pid, signal.SIGTERM)  # unshare itself forwards nothing
            proc.wait(DEADLINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", default="16,32,63", help="N per step (at most 63)")
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    clients = [int(n) for n in args.clients.split(",")]
    check_source(args.src)
    rounds = [one_round(args.src, clients) for _ in range(args.rounds)]
    print(f"pyinit from {args.src}; medians of {args.rounds} rounds; VmRSS of PID 1 in MiB")
    print("| silent clients | before | held | after | full answer (ms) |")
    print("|---:|---:|---:|---:|---:|")
    for n in clients:
        med = {k: statistics.median(r[n][k] for r in rounds) for k in rounds[0][n]}
        print(
            f"| {n} | {med['before']:.1f} | {med['held']:.1f} | {med['after']:.1f}"
            f" | {med['answer_ms']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
