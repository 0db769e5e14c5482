#!/usr/bin/env python3
"""CPU time to apply a reload that changes every one of N services, in-process.

reload_pass_cpu.py stops where ``_apply_reload`` begins; this measures it and
what follows: a real Supervisor (real event loop, log router, monitors) over the
pretend processes of tests/helpers/fakesup.py, so nothing is spawned and the
figures are pyinit's own work: ``apply`` is ``_apply_reload`` (the table steps,
stops sent), ``settle`` the passes until every old instance is reaped, replaced
and its successor started. ``--src DIR``: the pyinit package in DIR (an older
checkout, to compare). Standard library (and the repository's tests/helpers).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def config_text(services: int, tag: str) -> str:
    lines = ["services:"]
    for i in range(services):
        lines += [f"  s{i:05d}:", f"    command: [sleep{i}, '{tag}']"]
    return "\n".join(lines) + "\n"


def one_run(services: int) -> tuple[float, float]:
    from pyinit.config import load_config_text
    from tests.helpers.fakesup import FakeSupervisor

    tmp = Path(tempfile.mkdtemp())
    fake = FakeSupervisor(tmp, config_text(services, "a")).start()
    new = load_config_text(config_text(services, "b"), str(tmp / "services.yaml"), {}, ids=(0, 0))
    t0 = time.thread_time()
    fake.sup.actions._apply_reload(new)
    t1 = time.thread_time()
    fake.settle()
    t2 = time.thread_time()
    replaced = sum(fake.sup.services[n].cfg is new.services[n] for n in new.services)
    assert replaced == services, f"{replaced} of {services} replaced"
    return t1 - t0, t2 - t1


def in_child(services: int, src: str | None) -> tuple[float, float]:
    """One run in a fresh process: the fake keeps each service's pipes open, and
    10,000 services of one run are 20,000 fds."""
    argv = [sys.executable, __file__, "--one", str(services)] + (["--src", src] if src else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=1800).stdout
    apply, settle = out.split()
    return float(apply), float(settle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, nargs="+", default=[1000, 2000, 10_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src", help="run the pyinit package found in this directory")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child's single run
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.src:
        sys.path.insert(0, args.src)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.one:
        print(*one_run(args.one))
        return 0
    import pyinit

    print(f"pyinit from {Path(pyinit.__file__).parent}")
    print("| services | apply (median) | settle: reaped, replaced, started (median) |")
    print("|---:|---:|---:|")
    for n in args.services:
        runs = [in_child(n, args.src) for _ in range(args.rounds)]
        apply = statistics.median(r[0] for r in runs) * 1000
        settle = statistics.median(r[1] for r in runs) * 1000
        print(f"| {n:,} | {apply:.0f} ms | {settle:.0f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
