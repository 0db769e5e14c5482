#!/usr/bin/env python3
"""How long does a reload pause pyinit's loop?

pyinit runs as PID 1 of a fresh PID namespace (``unshare --pid --fork
--mount-proc``) with a ticker service that prints a line every ``--tick-ms``.
pyinit relays each line to its stdout, which this script reads, stamping each
line as it arrives. The services file is near the size caps and slow to parse.
Services other than the ticker are held back by a dependency on a oneshot
(``gate``) that never completes, so they never start. Before each reload the
script rewrites the file as ``--case`` says, then sends SIGHUP; ``--runs``
times. For each reload the pause is the longest gap between two ticker lines
from the SIGHUP until 0.5 s after the reload's outcome is logged. An idle window
of the same length after each reload gives the noise floor. Cases:

- ``one``: ``big`` (``--entries`` environment entries, ~3.8 MiB) and ``spare``;
  ``spare``'s command changes at each reload.
- ``all``: the same file; every service but the ticker and the gate changes
  (``big``'s whole environment has to come back to the loop).
- ``many``: ``--services`` small services (9,998: 10,000 with the ticker and the
  gate, the cap); all change.
- ``same``: the ``one`` file, reloaded unchanged; ``many-same``: the ``many``
  file, reloaded unchanged.

``--src DIR`` runs the pyinit found in DIR instead (``PYTHONPATH=DIR python -m
pyinit``): point it at a checkout of an older commit to compare, e.g.

    mkdir /tmp/before && git archive 0ca0fe2 pyinit | tar -x -C /tmp/before
    python3 bench/reload_pause.py --src /tmp/before --runs 2

Needs root (PID namespaces). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
PYTHON = sys.executable
TICKER = """
import sys, time
n = 0
while True:
    n += 1
    sys.stdout.write(f"tick {n}\\n")
    sys.stdout.flush()
    time.sleep(float(sys.argv[1]))
"""
DEADLINE = 300.0  # no single wait may take longer (a 4 MiB load can take a minute)


CASES = ("one", "all", "many", "same", "many-same")
GATED = "    depends_on: {gate: {condition: service_completed_successfully}}"


def write_config(path: Path, args: argparse.Namespace, run: int) -> int:
    """The services file for reload ``run`` (0: at boot); returns its size in bytes."""
    case = args.case
    changed = 0 if case in ("same", "many-same") else run  # what this reload changes
    lines = [
        "services:",
        "  ticker:",
        f"    command: {json.dumps([PYTHON, '-c', TICKER, str(args.tick_ms / 1000)])}",
        "  gate:",
        "    type: oneshot",
        "    command: [sleep, '100000']",
    ]
    if case in ("many", "many-same"):
        for i in range(args.services):
            lines += [f"  s{i:05d}:", f"    command: [sleep, '100000', 'r{changed}']", GATED]
    else:
        big = changed if case == "all" else 0
        lines += ["  spare:", f"    command: [sleep, '100000', 'r{changed}']", GATED]
        lines += ["  big:", f"    command: [sleep, '100000', 'r{big}']", GATED, "    environment:"]
        lines += [f"      V{i:07d}: x{i}" for i in range(args.entries)]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return len(text)


class Output:
    """pyinit's stdout, each line stamped with its arrival time."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""
        self.lines: list[tuple[float, str]] = []

    def pump(self, until: float) -> None:
        while (left := until - time.monotonic()) > 0:
            if not select.select([self.fd], [], [], left)[0]:
                return
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise SystemExit("pyinit exited: " + "\n".join(t for _, t in self.lines[-20:]))
            now = time.monotonic()
            self.buf += chunk
            *complete, self.buf = self.buf.split(b"\n")
            self.lines += [(now, raw.decode(errors="replace")) for raw in complete]

    def wait_for(self, text: str, start: int, timeout: float = DEADLINE) -> int:
        deadline = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.lines)):
                if text in self.lines[i][1]:
                    return i
            start = len(self.lines)
            if time.monotonic() > deadline:
                raise SystemExit(f"{text!r} not seen in {timeout}s")
            self.pump(min(deadline, time.monotonic() + 0.5))


def longest_gap(lines: list[tuple[float, str]], since: float, until: float) -> float:
    """Longest time without a ticker line within [since, until]."""
    stamps = [since] + [t for t, text in lines if "| tick " in text and since < t < until]
    stamps.append(until)
    return max(b - a for a, b in zip(stamps, stamps[1:], strict=False))


def run(args: argparse.Namespace) -> dict[str, object]:
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = args.src
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "services.yaml"
        size = write_config(config, args, 0)
        env["PYINIT_RUNTIME_DIR"] = tmp
        proc = subprocess.Popen(
            [*UNSHARE, PYTHON, "-m", "pyinit", "-c", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,  # not the checkout: ``-m`` would import the pyinit found there first
        )
        assert proc.stdout is not None
        out = Output(proc.stdout.fileno())
        init = 0
        try:
            began = time.monotonic()
            out.wait_for("| tick 5", 0)
            boot = time.monotonic() - began
            init = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
            pauses, idle, loads = [], [], []
            for n in range(1, args.runs + 1):
                write_config(config, args, n)
                start = len(out.lines)
                sent = time.monotonic()
                os.kill(init, signal.SIGHUP)
                done = out.wait_for("reload: ", out.wait_for("SIGHUP received", start) + 1)
                end = out.lines[done][0]
                out.pump(end + 0.5)  # what the reload does after it logs the outcome
                pauses.append(longest_gap(out.lines, sent, end + 0.5))
                loads.append(end - sent)
                quiet = time.monotonic()
                out.pump(quiet + (end - sent) + 0.5)
                idle.append(longest_gap(out.lines, quiet, time.monotonic()))
        finally:
            os.kill(init or proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "pyinit": args.src or "installed",
        "case": args.case,
        "config_bytes": size,
        "boot_s": boot,
        "reload_s": loads,
        "pause_s": pauses,
        "idle_gap_s": idle,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--entries", type=int, default=170_000, help="environment entries (170,000: 3.9 MiB)"
    )
    parser.add_argument("--services", type=int, default=9_998, help="small services (many cases)")
    parser.add_argument("--case", choices=CASES, default="one")
    parser.add_argument("--tick-ms", type=float, default=5.0)
    parser.add_argument("--src", help="run the pyinit package found in this directory")
    parser.add_argument("--json", help="write the samples to this file")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    ms = lambda xs: [round(x * 1000, 1) for x in xs]  # noqa: E731
    pauses, idle, loads = result["pause_s"], result["idle_gap_s"], result["reload_s"]
    assert isinstance(pauses, list) and isinstance(idle, list) and isinstance(loads, list)
    print(
        f"pyinit: {result['pyinit']}; case {args.case}; "
        f"config {result['config_bytes'] / 2**20:.2f} MiB; "
        f"boot {result['boot_s']:.1f}s; tick every {args.tick_ms:g} ms"
    )
    print(f"reload took (s):          {[round(x, 2) for x in loads]}")
    print(f"longest loop pause (ms):  {ms(pauses)}")
    print(f"idle longest gap (ms):    {ms(idle)}")
    print("| pause median | pause max | idle median | reload median |")
    print(
        f"| {statistics.median(pauses) * 1000:.0f} ms | {max(pauses) * 1000:.0f} ms | "
        f"{statistics.median(idle) * 1000:.0f} ms | {statistics.median(loads):.1f} s |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
