#!/usr/bin/env python3
"""What per-service CPU and memory cost PID 1: a ``/metrics`` scrape and a status
request with 100 services of 5 processes each.

pyinit runs as PID 1 of a fresh PID namespace (``unshare --pid --fork
--mount-proc``) with ``--http``; each service is ``sh`` with four ``sleep``
children. Measurements:

1. scrape: PID 1's CPU time (utime + stime from /proc, 10 ms ticks) per
   ``GET /metrics``, as the mean over a round of scrapes; the median of rounds.
2. status: the same for ``pyinit status --json`` requests over the socket.
3. idle: PID 1's voluntary context switches over a quiet period after the
   scrapes: sampling happens on requests only, so this stays 0.
4. sampler alone (in this process, no pyinit): one ``Sampler.sample`` over the
   same 500 processes, and the same attribution done with psutil, for comparison.

Needs root (or another way to make PID namespaces). Standard library, plus
psutil for the comparison in 4.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
PYTHON = sys.executable
PYINIT = shutil.which("pyinit", path=os.path.dirname(PYTHON)) or "pyinit"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEADLINE = 120.0
FIVE = "sleep 1000 & sleep 1000 & sleep 1000 & sleep 1000 & wait"


def cpu_seconds(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    fields = raw[raw.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def voluntary_switches(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise RuntimeError("no voluntary_ctxt_switches")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def wait_for(predicate: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def per_request(pid: int, rounds: int, per_round: int, request: object) -> list[float]:
    """PID 1 CPU milliseconds per request: the mean of each round."""
    means = []
    for _ in range(rounds):
        before = cpu_seconds(pid)
        for _ in range(per_round):
            request()  # type: ignore[operator]
        means.append((cpu_seconds(pid) - before) * 1000 / per_round)
    return means


def run_pyinit(args: argparse.Namespace, work: Path) -> dict[str, object]:
    lines = ["services:"]
    for i in range(args.services):
        lines += [f"  s{i:03d}:", f"    command: [sh, -c, {json.dumps(FIVE)}]"]
    config = work / "services.yaml"
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    env = {**os.environ, "PYINIT_RUNTIME_DIR": str(work / "run")}
    cmd = [*UNSHARE, PYINIT, "-c", str(config), "--http", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text(), "init")
    init = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    try:
        want = args.services * 5

        def counted() -> bool:
            try:
                body = http_get(port, "/metrics").decode()
            except OSError:
                return False
            total = sum(
                int(line.rsplit(" ", 1)[1])
                for line in body.splitlines()
                if line.startswith("pyinit_service_processes{")
            )
            return total == want

        wait_for(counted, f"{want} processes in /metrics")
        size = len(http_get(port, "/metrics"))
        scrape = per_request(init, args.rounds, args.per_round, lambda: http_get(port, "/metrics"))

        def status() -> None:
            subprocess.run(
                [PYINIT, "status", "--json"], env=env, stdout=subprocess.DEVNULL, check=True
            )

        stat = per_request(init, args.rounds, max(1, args.per_round // 4), status)
        before = voluntary_switches(init)
        time.sleep(args.idle)
        idle = voluntary_switches(init) - before
        return {
            "metrics_bytes": size,
            "scrape_ms": scrape,
            "status_ms": stat,
            "idle_switches": idle,
        }
    finally:
        os.kill(init, signal.SIGTERM)  # pyinit, not unshare, which would only die
        proc.wait(DEADLINE)


def run_sampler(args: argparse.Namespace) -> dict[str, list[float]]:
    """The sampler in this process over the same shape of processes."""
    from pyinit.resources import Sampler, attribute, read_proc

    kids = [
        subprocess.Popen(["sh", "-c", FIVE], start_new_session=True) for _ in range(args.services)
    ]
    try:
        roots = {f"s{i}": k.pid for i, k in enumerate(kids)}
        sampler = Sampler()
        wait_for(
            lambda: sum(u.processes for u in sampler.sample(roots).values()) == 5 * args.services,
            "the sessions' processes",
        )
        ours = []
        for _ in range(args.rounds * 5):
            t = time.process_time()
            sampler.sample(roots)
            ours.append((time.process_time() - t) * 1000)
        theirs = []
        import psutil

        for _ in range(args.rounds * 5):
            t = time.process_time()
            procs = []
            for p in psutil.process_iter(["ppid", "cpu_times", "memory_info"]):
                sid = read_proc(p.pid)  # psutil has no session id: /proc anyway
                if sid is not None and p.info["cpu_times"] is not None:
                    procs.append(sid)
            attribute(procs, roots)
            theirs.append((time.process_time() - t) * 1000)
        return {"sampler_ms": ours, "psutil_ms": theirs}
    finally:
        for k in kids:
            os.killpg(k.pid, 9)
            k.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the idle check")
    parser.add_argument("--json", type=Path, help="keep every sample in this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-resources-") as tmp:
        result: dict[str, object] = run_pyinit(args, Path(tmp))
    result.update(run_sampler(args))
    med = {k: statistics.median(v) for k, v in result.items() if isinstance(v, list)}
    n = args.services
    print(f"| {n} services x 5 processes | median |")
    print("|---|---|")
    print(
        f"| PID 1 CPU per /metrics scrape ({result['metrics_bytes']} bytes) "
        f"| {med['scrape_ms']:.1f} ms |"
    )
    print(f"| PID 1 CPU per status request | {med['status_ms']:.1f} ms |")
    print(f"| PID 1 wake-ups while idle, {args.idle:g} s after | {result['idle_switches']} |")
    print(f"| Sampler.sample alone ({5 * n} processes) | {med['sampler_ms']:.1f} ms |")
    print(f"| same attribution through psutil | {med['psutil_ms']:.1f} ms |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
