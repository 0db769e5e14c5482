#!/usr/bin/env python3
"""Benchmark log files: a service's lines through pyinit into a rotated file.

One writer process prints ``--megabytes`` of 100-byte lines as fast as it can
(1 MB blocks), then exits. Each round runs, in alternating order:

- ``cat``: ``writer | cat > FILE``, the baseline (no timestamps, no rotation);
- ``pyinit-file``: pyinit as PID 1 of a fresh PID namespace with the writer as a
  oneshot, ``logging: {driver: file, options: {path: FILE, max-size: 10m,
  max-file: 3, stdout: false}}``: timestamped lines, rotated every 10 MB;
- ``pyinit-file+stdout``: the same with the stdout copy on (pyinit's stdout is
  /dev/null), what a default file logging config costs.

Throughput is the payload over the time from the writer's first write (it
records CLOCK_MONOTONIC just before) to the end of the run (cat, or pyinit,
exited: pyinit drains the pipes and writes everything before it exits), so
pyinit's start-up is not counted. The reader's CPU (cat's, or pyinit's) per MB
is the run's children CPU time less the writer's own (it reports it): on a
shared machine this says more than the wall-clock rate. Every run's files are checked: all lines
arrived, each file holds whole lines only, none over max-size.

Needs root (or another way to make PID namespaces). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
PYTHON = sys.executable
PYINIT = shutil.which("pyinit", path=os.path.dirname(PYTHON)) or "pyinit"
DEADLINE = 300.0
MAX_SIZE = 10 * 1024 * 1024
LINE = 100

WRITER = """\
import os, sys, time
n = int(sys.argv[1])
block = (b"x" * 99 + b"\\n") * 10000
with open(sys.argv[2], "w") as mark:
    mark.write(repr(time.monotonic()))
out = sys.stdout.buffer
for _ in range(n // len(block)):
    out.write(block)
out.flush()
with open(sys.argv[2] + ".cpu", "w") as cpu:  # its own CPU, to tell it from the reader's
    times = os.times()
    cpu.write(repr(times.user + times.system))
"""


def config(path: Path, log: Path, writer: Path, payload: int, stdout: bool, mark: Path) -> None:
    options = {"path": str(log), "max-size": "10m", "max-file": 3, "stdout": stdout}
    service = {
        "type": "oneshot",
        "command": [PYTHON, str(writer), str(payload), str(mark)],
        "logging": {"driver": "file", "options": options},
    }
    path.write_text(json.dumps({"services": {"writer": service}}))  # JSON is YAML


def run_once(who: str, workdir: Path, writer: Path, payload: int) -> tuple[float, float]:
    """(MB/s, the reader's CPU ms per MB: cat's, or pyinit's with unshare's)."""
    for leftover in workdir.glob("out.log*"):
        leftover.unlink()
    log, mark = workdir / "out.log", workdir / "mark"
    mark.unlink(missing_ok=True)
    before = os.times()
    if who == "cat":
        with open(log, "wb") as sink:
            argv = [PYTHON, str(writer), str(payload), str(mark)]
            source = subprocess.Popen(argv, stdout=subprocess.PIPE)
            assert source.stdout is not None
            cat = subprocess.Popen(["cat"], stdin=source.stdout, stdout=sink)
            source.stdout.close()
            cat.wait(DEADLINE)
            source.wait(DEADLINE)
    else:
        cfg = workdir / "services.yaml"
        config(cfg, log, writer, payload, who.endswith("+stdout"), mark)
        argv = [*UNSHARE, PYINIT, "-c", str(cfg)] if os.geteuid() == 0 else [PYINIT, "-c", str(cfg)]
        proc = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=DEADLINE, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"{who}: pyinit exited {proc.returncode}: {proc.stderr.decode()}")
    end = time.monotonic()
    after = os.times()
    children = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    reader_cpu = children - float(Path(f"{mark}.cpu").read_text())
    seconds = end - float(mark.read_text())
    check(who, workdir, payload)
    return payload / seconds / 1e6, reader_cpu * 1000 / (payload / 1e6)


def check(who: str, workdir: Path, payload: int) -> None:
    """All lines arrived (the rotated-away ones counted by size), whole, in limits."""
    files = sorted(workdir.glob("out.log*"))
    lines = 0
    for path in files:
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            raise SystemExit(f"{who}: {path} ends mid-line")
        if who != "cat" and len(data) > MAX_SIZE:
            raise SystemExit(f"{who}: {path} is over max-size ({len(data)} bytes)")
        lines += data.count(b"\n")
    if who == "cat" and lines != payload // LINE:
        raise SystemExit(f"{who}: {lines} lines, expected {payload // LINE}")
    if who != "cat" and (len(files) != 3 or lines == 0):
        raise SystemExit(f"{who}: expected 3 rotated files, found {[p.name for p in files]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", help="where the log files go (default: a temporary dir)")
    args = parser.parse_args()
    payload = args.megabytes * 1_000_000
    whos = ["cat", "pyinit-file", "pyinit-file+stdout"]
    results: dict[str, list[float]] = {who: [] for who in whos}
    cpu: dict[str, list[float]] = {who: [] for who in whos}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = Path(tmp)
        writer = workdir / "writer.py"
        writer.write_text(WRITER)
        for rnd in range(args.rounds):
            order = whos if rnd % 2 == 0 else list(reversed(whos))
            for who in order:
                mb_s, ms_per_mb = run_once(who, workdir, writer, payload)
                results[who].append(mb_s)
                cpu[who].append(ms_per_mb)
                print(
                    f"round {rnd + 1}/{args.rounds}: {who}: {mb_s:.0f} MB/s,"
                    f" reader CPU {ms_per_mb:.2f} ms/MB",
                    file=sys.stderr,
                )
    cat = statistics.median(results["cat"])
    print(f"\n{args.megabytes} MB of 100-byte lines, {args.rounds} rounds, medians:\n")
    print("| run | MB/s | x cat | reader CPU (ms per MB) | MB/s per core of reader CPU |")
    print("|---|---:|---:|---:|---:|")
    for who in whos:
        median = statistics.median(results[who])
        ms = statistics.median(cpu[who])
        print(f"| {who} | {median:.0f} | {median / cat:.2f} | {ms:.2f} | {1000 / ms:.0f} |")


if __name__ == "__main__":
    main()
