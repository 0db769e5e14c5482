#!/usr/bin/env python3
"""Benchmark the status snapshot: what a change of state and a status request cost PID 1.

In process, no pyinit running: a Supervisor is built from a config of N
longruns (nothing is started; every service is pending) and timed on

- snapshot: ``Supervisor.snapshot()`` (run after every settled change: the run
  clock of the termination report and the control socket's waiters read it);
- status file: ``Supervisor._write_status()`` once nothing changed (snapshot,
  its stable form and the comparison with the last one written: every pass of
  the loop after a change);
- status answer: the control socket's ``status`` answer line (snapshot, its
  JSON object, ``protocol.encode``).

Medians of ``--rounds`` rounds of ``--calls`` calls each, in microseconds of CPU
time per call (process time: the machine may be shared).
``--src DIR`` runs the pyinit source tree in DIR, to compare two versions
(``git archive BASE pyinit | tar -x -C DIR``). Standard library and PyYAML only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any


def per_call(fn: Callable[[], object], calls: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(calls):
            fn()
        times.append((time.process_time() - began) / calls * 1e6)
    return statistics.median(times)


def measure(count: int, calls: int, rounds: int) -> dict[str, float]:
    from pyinit.config import load_config_text
    from pyinit.supervisor import Supervisor

    text = "services:\n" + "".join(
        f"  s{i:04d}:\n    command: [sleep, '1000']\n" for i in range(count)
    )
    sup = Supervisor(load_config_text(text, "services.yaml"))
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as run:
        sup._runtime_dir = run

        def as_json() -> dict[str, Any]:
            snap: Any = sup.snapshot()
            return snap if isinstance(snap, dict) else snap.to_json()  # old: a dict

        def answer() -> bytes:
            body = {"ok": True, "status": as_json()}
            return json.dumps(body, separators=(",", ":"), default=str).encode() + b"\n"

        sup._write_status()  # the first one writes the file; the rest only compare
        return {
            "snapshot": per_call(sup.snapshot, calls, rounds),
            "status file": per_call(sup._write_status, calls, rounds),
            "status answer": per_call(answer, calls, rounds),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--src", help="a pyinit source tree to import instead")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    import pyinit

    print(f"# {pyinit.__file__}; medians of {args.rounds} x {args.calls} calls, us per call")
    print(f"{'services':>8}  {'snapshot':>10}  {'status file':>12}  {'status answer':>14}")
    for count in args.services:
        calls = max(5, args.calls * 10 // max(count, 10))
        got = measure(count, calls, args.rounds)
        print(
            f"{count:>8}  {got['snapshot']:>10.1f}  {got['status file']:>12.1f}"
            f"  {got['status answer']:>14.1f}"
        )


if __name__ == "__main__":
    main()
