#!/usr/bin/env python3
"""What a scaled service and a job every second cost PID 1: its CPU % of one core.

pyinit runs as PID 1 of a fresh PID namespace with one service at ``scale: 100``
(instances web.1 .. web.100, each ``sh -c 'printf x > FIFO; exec sleep ...'``) and
a scheduled oneshot, ``schedule: "@every 1s"``, that writes a byte to a second
fifo on every run. Once the 100 instances are up and a settle time has passed,
the benchmark reads PID 1's CPU time (``/proc/PID/schedstat``) over a window and
reports it as a percentage of one core, with the job runs it saw in the window
(about one a second). A fresh pyinit per round; the table gives medians.

``--expanded`` writes 100 separately named services (web.1 .. web.100) instead of
``scale: 100``, for a pyinit that has no ``scale`` key; it is otherwise the same run.

Needs root (or another way to make PID namespaces). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_supervisor import DEADLINE, PYINIT, SETTLE, Launched, drain, fifo, launch, usage

TARGET_PCT = 2.0


def write_config(directory: Path, args: argparse.Namespace, ready: Path, ticks: Path) -> Path:
    """services.yaml: the scaled service (or its instances spelled out) and the job."""
    web = ["sh", "-c", f"printf x > {shlex.quote(str(ready))}; exec sleep 100000"]
    job = ["sh", "-c", f"printf j > {shlex.quote(str(ticks))}"]
    lines = ["settings:", "  shutdown_timeout: 30s", "services:"]
    if args.expanded:
        for i in range(1, args.scale + 1):
            lines += [f"  web.{i}:", f"    command: {json.dumps(web)}"]
    else:
        lines += ["  web:", f"    command: {json.dumps(web)}", f"    scale: {args.scale}"]
    lines += [
        "  tick:",
        "    type: oneshot",
        f"    command: {json.dumps(job)}",
        f'    schedule: "@every {args.every}"',
    ]
    path = directory / "services.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_up(run: Launched, read_fd: int, wanted: int, log: Path) -> None:
    """Until ``wanted`` instances wrote their byte; pyinit exiting first (a config
    it refuses, such as ``scale:`` where it does not exist yet) ends the run."""
    got, deadline = 0, run.started + DEADLINE
    while got < wanted:
        if run.proc.poll() is not None:
            raise SystemExit(f"pyinit exited ({run.proc.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {got} of {wanted} instances came up")
        ready, _, _ = select.select([read_fd], [], [], 0.5)
        if ready:
            got += drain(read_fd)


def measure(
    config: Path, args: argparse.Namespace, ready: int, ticks: int, log: tuple[int, Path]
) -> dict[str, float]:
    with launch([PYINIT, "-c", str(config)], log[0], log[0]) as run:
        wait_up(run, ready, args.scale, log[1])
        time.sleep(SETTLE)
        drain(ticks)
        before = usage(run.pid)
        t0 = time.monotonic()
        runs = 0
        while (left := args.seconds - (time.monotonic() - t0)) > 0:
            time.sleep(min(1.0, left))
            runs += drain(ticks)  # one byte per job run; keep the fifo from filling
        after = usage(run.pid)
        elapsed = time.monotonic() - t0
        os.kill(run.pid, signal.SIGTERM)
        run.wait_exit(DEADLINE)
        return {
            "cpu_pct": 100 * (after.cpu_ns - before.cpu_ns) / 1e9 / elapsed,
            "job_runs_per_s": runs / elapsed,
            "wakeups_per_s": (
                after.voluntary + after.involuntary - before.voluntary - before.involuntary
            )
            / elapsed,
        }


def run_benchmark(args: argparse.Namespace) -> list[dict[str, float]]:
    base = Path(tempfile.mkdtemp(prefix="bench-job-cpu-"))
    logpath = base / "pyinit.log"
    log = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    samples: list[dict[str, float]] = []
    try:
        ready_path, ticks_path = base / "ready.fifo", base / "ticks.fifo"
        config = write_config(base, args, ready_path, ticks_path)
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
            with fifo(ready_path) as ready, fifo(ticks_path) as ticks:
                samples.append(measure(config, args, ready, ticks, (log, logpath)))
            print("  " + ", ".join(f"{k} {v:.3f}" for k, v in samples[-1].items()), file=sys.stderr)
    except BaseException:
        print(f"pyinit's output kept in {logpath}", file=sys.stderr)
        raise
    finally:
        os.close(log)
    shutil.rmtree(base, ignore_errors=True)
    return samples


def header() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    now = time.strftime("%Y-%m-%d %H:%M %Z")
    python = platform.python_version()
    return f"{now}, Linux {platform.release()}, {cpu} x{os.cpu_count()}, Python {python}"


def report(samples: list[dict[str, float]], args: argparse.Namespace) -> str:
    def med(key: str) -> float:
        return statistics.median(s[key] for s in samples)

    cpu = med("cpu_pct")
    shape = f"{args.scale} separately named services" if args.expanded else f"scale: {args.scale}"
    return "\n".join(
        [
            f"Job CPU benchmark: {header()}",
            f"{args.rounds} round(s), window {args.seconds:g} s, {shape} + a oneshot "
            f'"@every {args.every}"; load average {" ".join(f"{v:.1f}" for v in os.getloadavg())}; '
            "medians.",
            "",
            "| metric | pyinit | target |",
            "|---|---:|---|",
            f"| PID 1 CPU (% of one core) | {cpu:.2f} | < {TARGET_PCT:g} % "
            f"{'(met)' if cpu < TARGET_PCT else '(missed)'} |",
            f"| job runs seen (/s) | {med('job_runs_per_s'):.2f} | ~1 |",
            f"| PID 1 wake-ups (/s) | {med('wakeups_per_s'):.2f} | - |",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU window")
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--every", default="1s", help="the job's @every interval")
    parser.add_argument(
        "--expanded",
        action="store_true",
        help="write the instances as separately named services instead of scale:",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 5 s window")
    parser.add_argument("--json", metavar="FILE", help="write every sample to FILE")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 5.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    samples = run_benchmark(args)
    print(report(samples, args))
    if args.json:
        data: dict[str, Any] = {"header": header(), "args": vars(args), "samples": samples}
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 0 if statistics.median(s["cpu_pct"] for s in samples) < TARGET_PCT else 1


if __name__ == "__main__":
    sys.exit(main())
