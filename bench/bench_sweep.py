#!/usr/bin/env python3
"""Service-count sweep: pyinit's supervisor mode beside supervisord at 10 to 1,000 services.

For each service count N (``--sweep 10,100,500,1000``) both supervisors run, as PID 1
of a fresh PID namespace, the same N long-running services (each writes one byte to
a fifo, then execs ``sleep``), configured as bench_supervisor.py configures them
(its configs, launcher and /proc readers are imported, not copied). Every round runs
each supervisor once per N, the order alternating from round to round, and measures:

1. start: launch -> all N running (N bytes read from the fifo)
2. shutdown: SIGTERM to the supervisor -> the namespace's ``unshare`` exited
3. memory: PID 1's private memory (Private_Clean + Private_Dirty) once all run
4. idle: PID 1's wake-ups (voluntary + involuntary context switches) per minute
   over an idle window with the N services running

The result is a Markdown table of medians with the ratio pyinit/supervisord and
the targets at 1,000 services; ``--json FILE`` keeps every sample. A supervisor that
has not exited ``--shutdown-cap`` seconds after SIGTERM is killed and its sample
recorded as that cap (the table marks it with ">"). ``--only pyinit`` leaves
supervisord out; ``--src DIR`` runs the pyinit package in DIR (``python -P -m
pyinit``) instead of the installed one, to compare with an older commit:

    mkdir /tmp/before && git archive 8fae683 pyinit | tar -x -C /tmp/before
    python3 bench/bench_sweep.py --only pyinit --src /tmp/before --sweep 1000

Needs root (or another way to make PID namespaces) and supervisord. Standard
library only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_supervisor import (
    DEADLINE,
    PYINIT,
    PYTHON,
    SETTLE,
    SUPERVISORD,
    SUPERVISORS,
    Samples,
    count_bytes,
    fifo,
    fleet_services,
    header,
    launch,
    memory_kib,
    usage,
    write_configs,
)

MIB = 1024  # memory_kib() gives KiB


def measure(
    argv: list[str], read_fd: int, count: int, idle: float, cap: float, logfile: int
) -> dict[str, float]:
    """One supervisor, ``count`` services: start, memory, idle wake-ups, shutdown."""
    with launch(argv, logfile, logfile) as run:
        up = count_bytes(read_fd, count, run.started + DEADLINE)
        result: dict[str, float] = {"start_s": up - run.started}
        # supervisord calls a program RUNNING after startsecs; pyinit logs "started"
        # after the exec: let both finish that bookkeeping before the memory read.
        time.sleep(SETTLE)
        mem = memory_kib(run.pid)
        result["private_mib"] = mem["private"] / MIB
        result["rss_mib"] = mem["rss"] / MIB
        before = usage(run.pid)
        t0 = time.monotonic()
        time.sleep(idle)
        after = usage(run.pid)
        seconds = time.monotonic() - t0
        switches = (after.voluntary - before.voluntary) + (after.involuntary - before.involuntary)
        result["idle_wakeups_per_min"] = switches * 60 / seconds
        result["idle_cpu_ms"] = (after.cpu_ns - before.cpu_ns) / 1e6
        sent = time.monotonic()
        os.kill(run.pid, signal.SIGTERM)
        try:
            result["shutdown_s"] = run.wait_exit(cap) - sent
            result["exit_status"] = run.proc.returncode
        except TimeoutError:
            result["shutdown_s"] = cap  # killed by launch() on the way out
            result["shutdown_capped"] = 1
        return result


def run_sweep(args: argparse.Namespace) -> dict[int, Samples]:
    base = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    logpath = base / "supervisors.log"
    logfile = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    ready = base / "ready.fifo"
    results: dict[int, Samples] = {n: Samples() for n in args.sweep}
    try:
        configs = {
            n: write_configs(base / f"fleet{n}", fleet_services(n, ready)) for n in args.sweep
        }
        if args.src:
            for argvs in configs.values():
                argvs["pyinit"] = pyinit_from(args.src) + argvs["pyinit"][1:]
        for rnd in range(args.rounds):
            order = args.only if rnd % 2 == 0 else args.only[::-1]
            for n in args.sweep:
                for who in order:
                    say(f"round {rnd + 1}/{args.rounds}: {who}: {n} services ...")
                    with fifo(ready) as read_fd:
                        got = measure(
                            configs[n][who],
                            read_fd,
                            n,
                            args.idle_seconds,
                            args.shutdown_cap,
                            logfile,
                        )
                    say("  " + ", ".join(f"{k} {v:.3f}" for k, v in got.items()))
                    results[n].add(who, got)
    except BaseException:
        say(f"supervisor output kept in {logpath}")
        raise
    finally:
        os.close(logfile)
    shutil.rmtree(base, ignore_errors=True)
    return results


def pyinit_from(src: str) -> list[str]:
    """``python -m pyinit`` with the package in ``src`` (an older commit, to compare).
    -P: the current directory (a checkout holding another pyinit) not on sys.path."""
    return ["env", f"PYTHONPATH={os.path.abspath(src)}", PYTHON, "-P", "-m", "pyinit"]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- report ------------------------------------------------------------------------
METRICS = [
    # key, label, format, target at 1,000 services (pyinit)
    ("start_s", "launch -> all running (ms)", "ms", "< 0.5x supervisord"),
    ("shutdown_s", "SIGTERM -> exit (ms)", "ms", "< 150 ms"),
    ("private_mib", "PID 1 private memory (MiB)", ".1f", "< 25 MiB"),
    ("idle_wakeups_per_min", "PID 1 idle wake-ups (/min)", ".1f", "0"),
]


def cell(samples: Samples, who: str, key: str, spec: str) -> tuple[float, str]:
    if who not in samples.values:  # left out with --only
        return math.nan, "-"
    value = samples.median(who, key)
    text = f"{value * 1000:.1f}" if spec == "ms" else format(value, spec)
    if key == "shutdown_s" and samples.values[who].get("shutdown_capped"):
        capped = len(samples.values[who]["shutdown_capped"])
        if capped * 2 > len(samples.values[who][key]):  # the median is a capped sample
            text = ">" + text
    return value, text


def report(results: dict[int, Samples], args: argparse.Namespace) -> str:
    out = [
        f"Service-count sweep: {header()}",
        f"pyinit: {args.src or PYINIT}; "
        f"{args.rounds} round(s), idle window {args.idle_seconds:g} s, "
        f"shutdown cap {args.shutdown_cap:g} s, load average before the run "
        f"{args.load_before}, after {load()}; medians.",
        "",
        "| services | metric | pyinit | supervisord | ratio pyinit/supervisord | target at 1,000 |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for n in args.sweep:
        for key, label, spec, target in METRICS:
            ours, ours_text = cell(results[n], "pyinit", key, spec)
            theirs, theirs_text = cell(results[n], "supervisord", key, spec)
            ratio = f"{ours / theirs:.2f}" if theirs and not math.isnan(theirs) else "-"
            out.append(
                f"| {n} | {label} | {ours_text} | {theirs_text} | {ratio} | "
                f"{target if n == 1000 else ''} |"
            )
    return "\n".join(out)


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sweep", default="10,100,500,1000", help="service counts, comma-separated"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--shutdown-cap",
        type=float,
        default=60.0,
        help="seconds after SIGTERM before a supervisor is killed and the sample capped",
    )
    parser.add_argument("--only", choices=SUPERVISORS, help="run just this one (no ratio then)")
    parser.add_argument(
        "--src", metavar="DIR", help="run the pyinit package in DIR (python -m pyinit)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 10 and 100")
    parser.add_argument("--json", metavar="FILE", help="write every sample to FILE")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.idle_seconds, args.sweep = 1, 2.0, "10,100"
    args.sweep = [int(n) for n in args.sweep.split(",")]
    args.only = (args.only,) if args.only else SUPERVISORS
    args.load_before = load()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "supervisord" in args.only and not shutil.which(SUPERVISORD):
        print(f"{SUPERVISORD} not found", file=sys.stderr)
        return 2
    results = run_sweep(args)
    print(report(results, args))
    if args.json:
        data: dict[str, Any] = {
            "header": header(),
            "args": vars(args),
            "samples": {n: s.values for n, s in results.items()},
            "medians": {
                n: {
                    who: {k: statistics.median(v) for k, v in s.values[who].items()}
                    for who in s.values
                }
                for n, s in results.items()
            },
        }
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
