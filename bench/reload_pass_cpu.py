#!/usr/bin/env python3
"""CPU time of the loop's longest pass while a reload's result comes back.

reload_pause.py measures wall-clock gaps, which on a busy machine are mostly the
scheduler's. This runs the same files in-process: a real ConfigLoad (forked
loader, real EventLoop) given the running config, times every loop callback with
``time.thread_time()`` and reports the longest, then the CPU time of the plan if
the loop still has to compute it. ``_apply_reload`` is not included (it needs a
Supervisor; see bench/README.md for its profile). ``--src DIR``: the pyinit
package in DIR (an older checkout, to compare). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CASES = ("one", "all", "many", "same", "many-same")
GATED = "    depends_on: {gate: {condition: service_completed_successfully}}"


def text(case: str, run: int, entries: int, services: int) -> str:
    """The reload_pause.py files, without the ticker."""
    changed = 0 if case in ("same", "many-same") else run
    lines = ["services:", "  gate:", "    type: oneshot", "    command: [sleep, '100000']"]
    if case.startswith("many"):
        for i in range(services):
            lines += [f"  s{i:05d}:", f"    command: [sleep, '100000', 'r{changed}']", GATED]
    else:
        big = changed if case == "all" else 0
        lines += ["  spare:", f"    command: [sleep, '100000', 'r{changed}']", GATED]
        lines += ["  big:", f"    command: [sleep, '100000', 'r{big}']", GATED, "    environment:"]
        lines += [f"      V{i:07d}: x{i}" for i in range(entries)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=CASES, default="one")
    parser.add_argument("--entries", type=int, default=170_000)
    parser.add_argument("--services", type=int, default=9_999)
    parser.add_argument("--src", help="run the pyinit package found in this directory")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    from pyinit import configload
    from pyinit.config import load_config
    from pyinit.loop import EventLoop
    from pyinit.reaper import ExitStatus
    from pyinit.reload import plan_reload

    path = Path(tempfile.mkdtemp()) / "services.yaml"
    path.write_text(text(args.case, 0, args.entries, args.services))
    base = load_config(str(path))
    path.write_text(text(args.case, 1, args.entries, args.services))
    loop = EventLoop()
    results: list[Any] = []
    owners: dict[int, Any] = {}
    longest = 0.0
    guarded = loop.guarded

    def timed(callback: Any) -> None:
        nonlocal longest
        start = time.thread_time()
        guarded(callback)
        longest = max(longest, time.thread_time() - start)

    def reap() -> None:  # stands in for pyinit's reaper
        for pid in list(owners):
            got, status = os.waitpid(pid, os.WNOHANG)
            if got:
                owners.pop(pid)(ExitStatus.from_wait_status(status))
        if results:
            loop.stop()
        else:
            loop.call_later(0.05, reap)

    loop.guarded = timed  # type: ignore[method-assign]
    has_base = "base" in configload.ConfigLoad.__init__.__code__.co_varnames
    load = configload.ConfigLoad(
        loop, str(path), owners.__setitem__, results.append, **({"base": base} if has_base else {})
    )
    load.start()
    loop.call_later(0.05, reap)
    loop.run()
    result = results[0]
    start = time.thread_time()
    if getattr(result, "plan", None) is None:
        plan_reload(base, result.config)
    plan = time.thread_time() - start
    print(
        json.dumps(
            {
                "case": args.case,
                "pyinit": args.src or "installed",
                "longest_pass_cpu_ms": round(longest * 1000, 1),
                "plan_in_loop_cpu_ms": round(plan * 1000, 1),
                "longest_total_ms": round((longest + plan) * 1000, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
