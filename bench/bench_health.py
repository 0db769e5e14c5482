#!/usr/bin/env python3
"""Benchmark pyinit's health checks and readiness probes (issue #4).

pyinit runs as PID 1 of a fresh PID namespace (``unshare --pid --fork
--mount-proc``); its host pid is the child of the ``unshare`` process, and its
CPU time and context switches are read from ``/proc/<host pid>``.

Measurements (details in bench/README.md):

1. probe CPU: 100 ``sleep`` services, each with a healthcheck every second,
   over ``--seconds``; pyinit's own utime+stime as % of one core.
   a. tcp: ``healthcheck: {tcp: PORT, interval: 1s}``, every service probing
      one shared port served by a separate listener service (one Python
      accept-and-close loop). The probes are pyinit's cost whatever the target.
   b. exec: ``healthcheck: {exec: [true], interval: 1s}`` (100 forks a second);
      the probes' own CPU (pyinit's cutime+cstime) is reported beside it.
2. readiness latency: a service ``db`` opens its port when the benchmark writes
   to a fifo (it records CLOCK_MONOTONIC right before ``listen()``), with
   ``ready: {tcp: PORT, interval: ...}``; ``web`` depends on it with
   ``condition: service_ready`` and records CLOCK_MONOTONIC first thing. The
   latency is web's time minus db's, over ``--rounds`` fresh pyinits, at
   interval 1s and 100ms. The trigger comes at a random phase of the polling.
3. idle wake-ups: pyinit's voluntary context switches per second with 100
   services probed every 30s (tcp), over a whole number of intervals; 100
   services with no healthcheck as the baseline.

Needs root (or another way to make PID namespaces). Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
PYTHON = sys.executable
PYINIT = shutil.which("pyinit", path=os.path.dirname(PYTHON)) or "pyinit"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICES = 100
DEADLINE = 60.0  # no single wait may take longer
IDLE_INTERVAL = 30.0  # healthcheck interval of the idle wake-up measurement
TCP_CPU_TARGET = 5.0  # % of one core
LATENCY_MARGIN = 0.050  # target: latency < interval + this

# Accepts and closes connections forever: the shared target of the tcp probes.
# Keeps the number of connections accepted so far in the file argv[2].
LISTENER = """\
import os, socket, sys
server = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=1024)
counter = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
accepted = 0
while True:
    conn, _ = server.accept()
    conn.close()
    accepted += 1
    os.pwrite(counter, b"%20d" % accepted, 0)
"""

# Binds at once (connections are refused: nothing listens yet), waits for the
# benchmark to write to the fifo, then records the time and listens.
DB = """\
import socket, sys, time
fifo, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", port))
with open(fifo, "rb") as trigger:
    trigger.read(1)
opened = time.monotonic()
sock.listen(16)
with open(out + ".tmp", "w") as f:
    f.write(repr(opened))
import os
os.rename(out + ".tmp", out)
while True:
    conn, _ = sock.accept()
    conn.close()
"""

# Records its start time first thing, then sleeps until stopped.
WEB = """\
import time
started = time.monotonic()
import os, sys
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(repr(started))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(1e6)
"""


# -- config generation -------------------------------------------------------------------
def yaml_str(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML); ``$`` doubled for
    pyinit's interpolation."""
    return json.dumps(text).replace("$", "$$")


def yaml_argv(argv: list[str]) -> str:
    return "[" + ", ".join(yaml_str(a) for a in argv) + "]"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe_config(
    kind: str, interval: str, port: int, counter: Path, services: int = SERVICES
) -> str:
    """``services`` sleeps with a healthcheck (``kind`` tcp, exec or none) and, for
    tcp, the listener they all probe (counting its connections in ``counter``)."""
    lines = ["services:"]
    if kind == "tcp":
        argv = [PYTHON, "-I", "-S", "-c", LISTENER, str(port), str(counter)]
        lines += ["  listener:", f"    command: {yaml_argv(argv)}"]
    for i in range(services):
        lines += [f"  s{i:03d}:", "    command: [sleep, infinity]"]
        if kind == "tcp":
            lines.append(f"    healthcheck: {{tcp: {port}, interval: {interval}}}")
        elif kind == "exec":
            lines.append(f"    healthcheck: {{exec: [true], interval: {interval}}}")
    return "\n".join(lines) + "\n"


def latency_config(fifo: Path, db_out: Path, web_out: Path, port: int, interval: str) -> str:
    db = [PYTHON, "-I", "-S", "-c", DB, str(fifo), str(db_out), str(port)]
    web = [PYTHON, "-I", "-S", "-c", WEB, str(web_out)]
    return "\n".join(
        [
            "services:",
            "  db:",
            f"    command: {yaml_argv(db)}",
            f"    ready: {{tcp: {port}, interval: {interval}}}",
            "  web:",
            f"    command: {yaml_argv(web)}",
            "    depends_on: {db: {condition: service_ready}}",
            "",
        ]
    )


# -- running pyinit ----------------------------------------------------------------------
@dataclass(frozen=True)
class ProcSample:
    """pyinit's counters at one moment."""

    at: float  # CLOCK_MONOTONIC
    cpu: float  # utime + stime, seconds
    children_cpu: float  # cutime + cstime (reaped children), seconds
    voluntary: int  # voluntary_ctxt_switches
    involuntary: int  # nonvoluntary_ctxt_switches


def sample(pid: int) -> ProcSample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    voluntary = involuntary = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            voluntary = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            involuntary = int(line.split()[1])
    return ProcSample(
        at=time.monotonic(),
        cpu=(utime + stime) / CLK_TCK,
        children_cpu=(cutime + cstime) / CLK_TCK,
        voluntary=voluntary,
        involuntary=involuntary,
    )


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


class Pyinit:
    """``unshare ... pyinit -c CONFIG``, its output in a log file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [*UNSHARE, PYINIT, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self._find_pyinit()

    def _find_pyinit(self) -> int:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            for pid in children_of(self.proc.pid):
                try:
                    comm = Path(f"/proc/{pid}/comm").read_text().strip()
                except FileNotFoundError:
                    continue
                if comm != "unshare":  # the forked child has exec'ed pyinit
                    return pid
            if self.proc.poll() is not None:
                raise RuntimeError(f"pyinit exited early:\n{self.tail()}")
            time.sleep(0.005)
        raise RuntimeError("pyinit did not start")

    def wait_children(self, count: int) -> None:
        """Until pyinit has at least ``count`` children (its services are spawned)."""
        deadline = time.monotonic() + DEADLINE
        while len(children_of(self.pid)) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"services did not start:\n{self.tail()}")
            time.sleep(0.02)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)  # PID 1 gone: the kernel kills the rest
                self.proc.wait(timeout=15)


@contextmanager
def running(config_text: str, workdir: Path, name: str) -> Iterator[Pyinit]:
    config = workdir / f"{name}.yaml"
    config.write_text(config_text)
    pyinit = Pyinit(config, workdir / f"{name}.log")
    try:
        yield pyinit
    finally:
        pyinit.stop()


# -- measurements --------------------------------------------------------------------
@dataclass
class CpuRun:
    kind: str  # tcp, exec or none
    interval: float
    seconds: float
    cpu_percent: float  # pyinit's utime+stime, % of one core
    children_cpu_percent: float  # reaped children (the exec probes themselves)
    voluntary_per_s: float
    involuntary_per_s: float
    probes_per_s: float  # tcp: connections accepted; exec: processes forked in the namespace


def measure_cpu(kind: str, interval: float, seconds: float, workdir: Path) -> CpuRun:
    """Start pyinit with 100 probed services, let the probes settle, then measure."""
    port = free_port()
    counter = workdir / f"accepted-{port}"
    text = probe_config(kind, f"{int(interval * 1000)}ms", port, counter)

    def probes(pid: int) -> int:
        if kind == "tcp":
            return int(counter.read_text() or 0) if counter.exists() else 0
        return last_pid(pid) if kind == "exec" else 0

    with running(text, workdir, f"cpu-{kind}") as pyinit:
        pyinit.wait_children(SERVICES + (1 if kind == "tcp" else 0))
        # The first probes come one interval after the start and log each service's
        # "ready" and "healthy": measure the steady state after them.
        time.sleep(interval + 2.0)
        probes_before, before = probes(pyinit.pid), sample(pyinit.pid)
        time.sleep(seconds)
        after, probes_after = sample(pyinit.pid), probes(pyinit.pid)
        if kind == "exec":
            probes_after -= 1  # the first last_pid() used one pid itself
        if pyinit.proc.poll() is not None:
            raise RuntimeError(f"pyinit exited during the measurement:\n{pyinit.tail()}")
    wall = after.at - before.at
    return CpuRun(
        kind=kind,
        interval=interval,
        seconds=wall,
        cpu_percent=100 * (after.cpu - before.cpu) / wall,
        children_cpu_percent=100 * (after.children_cpu - before.children_cpu) / wall,
        voluntary_per_s=(after.voluntary - before.voluntary) / wall,
        involuntary_per_s=(after.involuntary - before.involuntary) / wall,
        probes_per_s=(probes_after - probes_before) / wall,
    )


def last_pid(pid: int) -> int:
    """The last pid handed out in ``pid``'s PID namespace (costs one pid itself)."""
    argv = ["nsenter", "-t", str(pid), "-p", "-m", "cat", "/proc/sys/kernel/ns_last_pid"]
    return int(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def open_fifo_for_writing(path: Path, deadline: float) -> int:
    """Wait for the reader (db) to open the fifo, without blocking forever."""
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


def wait_file(path: Path, deadline: float) -> float:
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} never appeared")
        time.sleep(0.002)
    return float(path.read_text())


def measure_latency(interval: float, workdir: Path, rng: random.Random) -> float:
    """One fresh pyinit: db's port opens at a random phase of the polling; return
    web's start minus the port's opening, in seconds."""
    for leftover in workdir.glob("lat-*"):
        leftover.unlink()
    fifo, db_out, web_out = workdir / "lat-fifo", workdir / "lat-db", workdir / "lat-web"
    os.mkfifo(fifo)
    port = free_port()
    text = latency_config(fifo, db_out, web_out, port, f"{int(interval * 1000)}ms")
    with running(text, workdir, "lat-pyinit") as pyinit:
        deadline = time.monotonic() + DEADLINE
        fd = open_fifo_for_writing(fifo, deadline)
        try:
            time.sleep(rng.uniform(0.0, interval))
            os.write(fd, b"x")
        finally:
            os.close(fd)
        opened = wait_file(db_out, deadline)
        try:
            started = wait_file(web_out, deadline)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{pyinit.tail()}") from None
    return started - opened


def measure_web_startup(workdir: Path, rounds: int) -> float:
    """Median time from a direct spawn of web's command to its recorded start: the
    part of the latency that is Python's start-up, not pyinit's."""
    samples = []
    out = workdir / "lat-web-direct"
    for _ in range(rounds):
        out.unlink(missing_ok=True)
        begin = time.monotonic()
        proc = subprocess.Popen([PYTHON, "-I", "-S", "-c", WEB, str(out)])
        started = wait_file(out, time.monotonic() + DEADLINE)
        samples.append(started - begin)
        proc.kill()
        proc.wait()
    return statistics.median(samples)


# -- report --------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def header() -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"{now}; kernel {platform.release()}; {cpu_model()} x{os.cpu_count()}; "
        f"Python {platform.python_version()}; pyinit {PYINIT}"
    )


@dataclass
class Row:
    metric: str
    value: str
    target: str = "-"
    met: bool | None = None

    def cells(self) -> list[str]:
        met = "-" if self.met is None else ("yes" if self.met else "**no**")
        return [self.metric, self.value, self.target, met]


@dataclass
class Results:
    args: dict[str, Any]
    header: str
    cpu: list[CpuRun] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=dict)  # interval -> seconds
    web_startup: float = 0.0
    rows: list[Row] = field(default_factory=list)


def spread(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{med:{fmt}} (min {min(values):{fmt}}, max {max(values):{fmt}}, n={len(values)})"


def keeps_up(runs: list[CpuRun]) -> bool:
    """Did the probes run at (about) one per service per second?"""
    return statistics.median(r.probes_per_s for r in runs) >= 0.95 * SERVICES


def cpu_rows(runs: list[CpuRun], seconds: float) -> list[Row]:
    def of(kind: str, interval: float) -> list[CpuRun]:
        return [r for r in runs if r.kind == kind and r.interval == interval]

    rows = []
    tcp = of("tcp", 1.0)
    if tcp:
        cpu = [r.cpu_percent for r in tcp]
        rows.append(
            Row(
                f"tcp probes: pyinit CPU, {SERVICES} services @1s, {seconds:g}s",
                spread(cpu, ".2f") + " % of a core",
                f"< {TCP_CPU_TARGET:g} %",
                statistics.median(cpu) < TCP_CPU_TARGET,
            )
        )
        rows.append(
            Row(
                "tcp probes: probes run (listener's accepts), pyinit voluntary ctxt switches",
                spread([r.probes_per_s for r in tcp], ".1f")
                + " /s; "
                + spread([r.voluntary_per_s for r in tcp], ".1f")
                + " /s",
                f">= {0.95 * SERVICES:g} /s probes",
                keeps_up(tcp),
            )
        )
    exe = of("exec", 1.0)
    if exe:
        rows.append(
            Row(
                f"exec probes: pyinit CPU, {SERVICES} services @1s, {seconds:g}s",
                spread([r.cpu_percent for r in exe], ".2f") + " % of a core",
                "report",
            )
        )
        rows.append(
            Row(
                "exec probes: probes run (forks in the namespace), pyinit voluntary ctxt switches",
                spread([r.probes_per_s for r in exe], ".1f")
                + " /s; "
                + spread([r.voluntary_per_s for r in exe], ".1f")
                + " /s",
                f">= {0.95 * SERVICES:g} /s probes",
                keeps_up(exe),
            )
        )
        rows.append(
            Row(
                "exec probes: the probes' own CPU (`true`, pyinit's cutime+cstime)",
                spread([r.children_cpu_percent for r in exe], ".2f") + " % of a core",
            )
        )
    idle = of("tcp", IDLE_INTERVAL)
    if idle:
        expected = SERVICES / IDLE_INTERVAL
        wake = [r.voluntary_per_s for r in idle]
        rows.append(
            Row(
                f"idle wake-ups: {SERVICES} services, tcp healthcheck @{IDLE_INTERVAL:g}s",
                spread(wake, ".2f")
                + " /s (voluntary ctxt switches), for "
                + spread([r.probes_per_s for r in idle], ".2f")
                + " probes/s",
                f"<= {expected:.2f} /s (+10 %)",
                statistics.median(wake) <= expected * 1.1,
            )
        )
        rows.append(
            Row(
                "idle: pyinit CPU, same run",
                spread([r.cpu_percent for r in idle], ".3f") + " % of a core",
            )
        )
    base = of("none", 0.0)
    if base:
        rows.append(
            Row(
                f"baseline: {SERVICES} services, no healthcheck",
                spread([r.voluntary_per_s for r in base], ".2f")
                + " wake-ups/s, "
                + spread([r.cpu_percent for r in base], ".3f")
                + " % CPU",
            )
        )
    return rows


def latency_rows(latency: dict[str, list[float]], web_startup: float) -> list[Row]:
    rows = []
    for label, values in latency.items():
        interval = float(label)
        ms = [v * 1000 for v in values]
        limit = (interval + LATENCY_MARGIN) * 1000
        p90 = percentile(ms, 90)
        rows.append(
            Row(
                f"port open -> dependant start, ready tcp @{interval * 1000:g}ms",
                f"median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, "
                f"max {max(ms):.0f} ms (n={len(ms)})",
                f"p90 < {limit:.0f} ms",
                p90 < limit,
            )
        )
    if latency:
        rows.append(
            Row(
                "  of which web's own Python start-up (spawned directly)",
                f"{web_startup * 1000:.1f} ms (median)",
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| metric | value | target | met? |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU window (default 30)")
    parser.add_argument(
        "--rounds", type=int, default=20, help="latency repetitions per interval (default 20)"
    )
    parser.add_argument(
        "--cpu-rounds", type=int, default=3, help="fresh pyinits per CPU measurement (default 3)"
    )
    parser.add_argument("--quick", action="store_true", help="5 s windows, 5 rounds, 1 CPU round")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every sample here")
    parser.add_argument("--skip", action="append", default=[], choices=["cpu", "latency", "idle"])
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.cpu_rounds = 5.0, 5, 1
    return args


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("unshare") is None:
        sys.exit("bench_health: needs unshare (util-linux)")
    results = Results(args={k: str(v) for k, v in vars(args).items()}, header=header())
    rng = random.Random()
    with tempfile.TemporaryDirectory(prefix="bench-health-") as tmp:
        workdir = Path(tmp)
        if "cpu" not in args.skip:
            for n in range(args.cpu_rounds):
                kinds = ["tcp", "exec"] if n % 2 == 0 else ["exec", "tcp"]
                for kind in kinds:
                    progress(f"cpu {kind} round {n + 1}/{args.cpu_rounds} ({args.seconds:g}s)")
                    results.cpu.append(measure_cpu(kind, 1.0, args.seconds, workdir))
        if "idle" not in args.skip:
            # A whole number of intervals: every service is probed the same number of times.
            window = IDLE_INTERVAL * max(1, round(args.seconds / IDLE_INTERVAL))
            progress(f"idle: healthcheck @{IDLE_INTERVAL:g}s ({window:g}s)")
            results.cpu.append(measure_cpu("tcp", IDLE_INTERVAL, window, workdir))
            progress(f"idle: no healthcheck ({args.seconds:g}s)")
            results.cpu.append(measure_cpu("none", 0.0, args.seconds, workdir))
        if "latency" not in args.skip:
            for interval in (1.0, 0.1):
                values = results.latency.setdefault(str(interval), [])
                for n in range(args.rounds):
                    progress(f"latency @{interval:g}s round {n + 1}/{args.rounds}")
                    values.append(measure_latency(interval, workdir, rng))
            results.web_startup = measure_web_startup(workdir, max(5, args.rounds))
    results.rows = cpu_rows(results.cpu, args.seconds) + latency_rows(
        results.latency, results.web_startup
    )
    print(f"pyinit health benchmark: {results.header}\n")
    print(table(results.rows))
    if args.json:
        args.json.write_text(json.dumps(asdict(results), indent=2) + "\n")
    return 0 if all(row.met is not False for row in results.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
