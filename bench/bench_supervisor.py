#!/usr/bin/env python3
"""Benchmark pyinit's supervisor mode against supervisord, side by side.

Both run as PID 1 of a fresh PID namespace (``unshare --pid --fork
--mount-proc``) on the same generated services: ``pyinit -c services.yaml``
and ``supervisord -n -c supervisord.conf`` configured as containers configure
it (nodaemon, program output to /dev/stdout with maxbytes=0). Every round runs
each measurement once per supervisor, the order alternating from round to
round, so a noisy neighbour hurts both alike. The result is a Markdown table of
medians; ``--json FILE`` keeps every sample.

Measurements (see bench/README_supervisor.md for the details):

1. start: launch -> all services running (each writes one byte to a shared fifo)
2. memory: RSS and private memory of the supervisor once they all run
3. idle: CPU time and voluntary context switches of the supervisor while idle
4. crash loop: CPU of the supervisor while one service exits at once, forever
5. shutdown: SIGTERM to the supervisor -> the namespace's ``unshare`` exited
6. log throughput: one service writing as fast as it can, through the
   supervisor to a pipe the benchmark reads; ``writer | cat`` as the baseline

Needs root (or another way to make PID namespaces) and supervisord. Standard
library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
SUPERVISORS = ("pyinit", "supervisord")
PYTHON = sys.executable
PYINIT = shutil.which("pyinit", path=os.path.dirname(PYTHON)) or "pyinit"
SUPERVISORD = shutil.which("supervisord") or "/usr/bin/supervisord"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEADLINE = 120.0  # no single wait in this benchmark may take longer
SETTLE = 2.0  # after all services are up; supervisord calls them RUNNING after startsecs=1
END_MARK = b"END-OF-LOG-BENCH"

# One service of the log-throughput run: N bytes of 100-byte lines, written in
# 1 MB blocks so that the writer is never the bottleneck, then a marker line.
WRITER = """\
import sys
n = int(sys.argv[1])
block = (b"x" * 99 + b"\\n") * 10000
out = sys.stdout.buffer
for _ in range(n // len(block)):
    out.write(block)
out.write(block[: n % len(block)])
out.write(b"END-OF-LOG-BENCH\\n")
out.flush()
"""


# -- configs -------------------------------------------------------------------
@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    restart: bool  # restart forever, whatever the exit status


def write_configs(directory: Path, services: list[Service]) -> dict[str, list[str]]:
    """Write services.yaml and supervisord.conf for ``services``; return each
    supervisor's command line."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["settings:", "  shutdown_timeout: 30s", "services:"]
    for svc in services:
        lines.append(f"  {svc.name}:")
        lines.append(f"    command: {json.dumps(svc.argv)}")
        if svc.restart:
            # "Always restart" as a user writes it; the start limit is lifted so that
            # pyinit, like supervisord with startsecs=0, never gives up and the
            # backoff alone limits the rate.
            lines.append("    restart: always")
            lines.append("    start_limit: {burst: 1000000, interval: 60s}")
    yaml_path = directory / "services.yaml"
    yaml_path.write_text("\n".join(lines) + "\n")

    conf = [
        "[supervisord]",
        "nodaemon=true",
        "user=root",
        "logfile=/dev/null",
        "logfile_maxbytes=0",
        f"pidfile={directory / 'supervisord.pid'}",
        f"childlogdir={directory}",
        "",
    ]
    for svc in services:
        conf += [
            f"[program:{svc.name}]",
            # supervisord splits with shlex; '%' starts an expansion in its ini file.
            "command=" + shlex.join(svc.argv).replace("%", "%%"),
            # startsecs=0: an exit at once is not a failed start, so autorestart
            # applies forever (with the default startsecs=1 it gives up after
            # startretries=3 quick exits and the program is FATAL).
            "startsecs=0",
            "autorestart=" + ("true" if svc.restart else "false"),
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "stderr_logfile=/dev/stderr",
            "stderr_logfile_maxbytes=0",
            "",
        ]
    conf_path = directory / "supervisord.conf"
    conf_path.write_text("\n".join(conf))
    return {
        "pyinit": [PYINIT, "-c", str(yaml_path)],
        "supervisord": [SUPERVISORD, "-n", "-c", str(conf_path)],
    }


# -- processes -------------------------------------------------------------------
@dataclass
class Launched:
    """``unshare`` and the supervisor it runs as PID 1 of the new namespace."""

    proc: subprocess.Popen[bytes]
    started: float  # time.monotonic() just before Popen
    pid: int = 0  # the supervisor, as seen from here

    def find_supervisor(self, deadline: float) -> int:
        # unshare --fork: the supervisor is unshare's only child, once it has exec'd.
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        while time.monotonic() < deadline:
            try:
                pids = children.read_text().split()
                if pids and Path(f"/proc/{pids[0]}/exe").resolve().name != "unshare":
                    self.pid = int(pids[0])
                    return self.pid
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"unshare exited early with status {self.proc.returncode}")
            time.sleep(0.001)
        raise TimeoutError("the supervisor did not start")

    def wait_exit(self, timeout: float) -> float:
        """Wait for unshare to exit; return when it did (monotonic)."""
        pidfd = os.pidfd_open(self.proc.pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout)
            when = time.monotonic()
        finally:
            os.close(pidfd)
        if not ready:
            raise TimeoutError(f"unshare (pid {self.proc.pid}) still running")
        self.proc.wait()
        return when

    def kill(self) -> None:
        """SIGKILL PID 1 of the namespace: the kernel kills everything in it."""
        if self.proc.poll() is None:
            for pid in (self.pid, self.proc.pid):
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.proc.wait()


@contextmanager
def launch(argv: list[str], stdout: int, stderr: int) -> Iterator[Launched]:
    started = time.monotonic()
    proc = subprocess.Popen(UNSHARE + argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    run = Launched(proc, started)
    try:
        run.find_supervisor(started + DEADLINE)
        yield run
    finally:
        run.kill()


@contextmanager
def fifo(path: Path) -> Iterator[int]:
    """A fifo whose read end (non-blocking) we hold; we hold a write end too, so a
    reader sees EAGAIN rather than end of file while no service has it open."""
    os.mkfifo(path)
    read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    write_fd = os.open(path, os.O_WRONLY)
    try:
        yield read_fd
    finally:
        os.close(read_fd)
        os.close(write_fd)
        path.unlink()


def count_bytes(read_fd: int, wanted: int, deadline: float) -> float:
    """Block until ``wanted`` bytes came through ``read_fd``; return when (monotonic)."""
    got = 0
    while got < wanted:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"only {got} of {wanted} services came up")
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if ready:
            try:
                got += len(os.read(read_fd, 4096))
            except BlockingIOError:
                pass
    return time.monotonic()


def drain(read_fd: int) -> int:
    total = 0
    while True:
        try:
            data = os.read(read_fd, 65536)
        except BlockingIOError:
            return total
        if not data:
            return total
        total += len(data)


# -- /proc -----------------------------------------------------------------------
@dataclass(frozen=True)
class Usage:
    cpu_ns: int  # schedstat's on-CPU time, else utime+stime from stat
    ticks: int  # utime + stime from /proc/<pid>/stat
    voluntary: int  # voluntary context switches: how often it went to sleep
    involuntary: int


def usage(pid: int) -> Usage:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            cpu_ns = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        cpu_ns = ticks * 10**9 // CLK_TCK
    switches = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in switches:
                switches[key] = int(value)
    return Usage(
        cpu_ns,
        ticks,
        switches["voluntary_ctxt_switches"],
        switches["nonvoluntary_ctxt_switches"],
    )


def memory_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1])
    return {
        "rss": values["Rss"],
        "pss": values["Pss"],
        "private": values["Private_Clean"] + values["Private_Dirty"],
    }


# -- the measurements --------------------------------------------------------------
def fleet_services(count: int, ready_fifo: Path) -> list[Service]:
    command = f"printf x > {shlex.quote(str(ready_fifo))}; exec sleep 100000"
    return [Service(f"svc{i:02d}", ["sh", "-c", command], True) for i in range(count)]


def measure_fleet(
    argv: list[str], read_fd: int, count: int, idle: float, logfile: int
) -> dict[str, float]:
    """Start, memory, idle CPU and shutdown of ``count`` sleeping services."""
    with launch(argv, logfile, logfile) as run:
        up = count_bytes(read_fd, count, run.started + DEADLINE)
        result: dict[str, float] = {"start_s": up - run.started}
        time.sleep(SETTLE)
        for key, kib in memory_kib(run.pid).items():
            result[f"{key}_mib"] = kib / 1024
        before = usage(run.pid)
        t0 = time.monotonic()
        time.sleep(idle)
        after = usage(run.pid)
        seconds = time.monotonic() - t0
        result["idle_cpu_pct"] = 100 * (after.cpu_ns - before.cpu_ns) / 1e9 / seconds
        result["idle_ticks"] = after.ticks - before.ticks
        result["idle_wakeups_per_s"] = (after.voluntary - before.voluntary) / seconds
        sent = time.monotonic()
        os.kill(run.pid, signal.SIGTERM)
        result["shutdown_s"] = run.wait_exit(DEADLINE) - sent
        result["exit_status"] = run.proc.returncode
        return result


def measure_crash_loop(
    argv: list[str], read_fd: int, seconds: float, logfile: int
) -> dict[str, float]:
    """CPU of the supervisor while one service exits at once and is restarted."""
    with launch(argv, logfile, logfile) as run:
        count_bytes(read_fd, 1, run.started + DEADLINE)  # the first start
        before = usage(run.pid)
        t0 = time.monotonic()
        starts = 0
        while time.monotonic() - t0 < seconds:
            time.sleep(min(0.5, seconds - (time.monotonic() - t0)))
            starts += drain(read_fd)  # the fifo holds 64 KiB: keep it from filling
        after = usage(run.pid)
        elapsed = time.monotonic() - t0
        return {
            "crash_cpu_pct": 100 * (after.cpu_ns - before.cpu_ns) / 1e9 / elapsed,
            "crash_restarts_per_s": starts / elapsed,
            "crash_wakeups_per_s": (after.voluntary - before.voluntary) / elapsed,
        }


@dataclass
class Throughput:
    payload: int  # bytes the service wrote (without the end marker)
    received: int = 0  # bytes that came out (prefixes included)
    first: float = 0.0  # monotonic, first chunk holding service output
    last: float = 0.0  # monotonic, the chunk holding the end marker
    cpu_ns: int = 0  # the supervisor's CPU time from first to last

    @property
    def mb_per_s(self) -> float:
        return self.payload / 1e6 / (self.last - self.first)


def read_log(read_fd: int, payload: int, deadline: float, pid: int = 0) -> Throughput:
    """Count what comes out of ``read_fd`` until the writer's end marker; with
    ``pid``, also how much CPU that process used meanwhile."""
    result = Throughput(payload)
    cpu_first = 0
    tail = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"log run: got {result.received} bytes")
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        data = os.read(read_fd, 1 << 20)
        now = time.monotonic()
        if not data:
            raise RuntimeError(f"log run: end of file after {result.received} bytes")
        result.received += len(data)
        if not result.first and b"xxxxxxxxxx" in data:
            result.first = now
            cpu_first = usage(pid).cpu_ns if pid else 0
        if END_MARK in tail + data[: len(END_MARK)] or END_MARK in data:
            result.last = now
            result.cpu_ns = usage(pid).cpu_ns - cpu_first if pid else 0
            return result
        tail = data[-len(END_MARK) :]


def measure_log(
    argv: list[str] | None, script: Path, payload: int, logfile: int
) -> dict[str, float]:
    """Throughput of ``payload`` bytes of lines through a supervisor (or ``cat``)."""
    read_fd, write_fd = os.pipe()
    try:
        if argv is None:
            writer = subprocess.Popen([PYTHON, str(script), str(payload)], stdout=subprocess.PIPE)
            assert writer.stdout is not None
            cat = subprocess.Popen(["cat"], stdin=writer.stdout, stdout=write_fd)
            writer.stdout.close()
            os.close(write_fd)
            try:
                got = read_log(read_fd, payload, time.monotonic() + DEADLINE)
            finally:
                for proc in (writer, cat):
                    proc.kill()
                    proc.wait()
        else:
            with launch(argv, write_fd, logfile) as run:
                os.close(write_fd)
                got = read_log(read_fd, payload, run.started + DEADLINE, run.pid)
                os.kill(run.pid, signal.SIGTERM)
                run.wait_exit(DEADLINE)
    finally:
        os.close(read_fd)
    result = {"log_mb_per_s": got.mb_per_s, "log_bytes_out": got.received}
    if got.cpu_ns:
        result["log_cpu_ms_per_mb"] = got.cpu_ns / 1e6 / (payload / 1e6)
    return result


# -- orchestration -----------------------------------------------------------------
@dataclass
class Samples:
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, who: str, result: dict[str, float]) -> None:
        for key, value in result.items():
            self.values.setdefault(who, {}).setdefault(key, []).append(value)

    def median(self, who: str, key: str) -> float:
        return statistics.median(self.values[who][key])


def run_benchmark(args: argparse.Namespace) -> Samples:
    samples = Samples()
    base = Path(tempfile.mkdtemp(prefix="bench-sv-"))
    logpath = base / "supervisors.log"
    logfile = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    try:
        ready = base / "ready.fifo"
        fleet = write_configs(base / "fleet", fleet_services(args.services, ready))
        started = base / "started.fifo"
        crasher = f"printf x > {shlex.quote(str(started))}; exit 1"
        crash = write_configs(base / "crash", [Service("crasher", ["sh", "-c", crasher], True)])
        payload = args.log_mb * 1_000_000
        script = base / "writer.py"
        script.write_text(WRITER)
        writer = Service("writer", [PYTHON, str(script), str(payload)], False)
        # A second, quiet service keeps pyinit up after the writer ends (alone, it
        # would exit), so its CPU time can be read at the end.
        quiet = Service("quiet", ["sleep", "100000"], False)
        logs = write_configs(base / "log", [writer, quiet])
        for rnd in range(args.rounds):
            order = SUPERVISORS if rnd % 2 == 0 else SUPERVISORS[::-1]
            for who in order:
                say(f"round {rnd + 1}/{args.rounds}: {who}: {args.services} services ...")
                with fifo(ready) as read_fd:
                    samples.add(
                        who,
                        measure_fleet(
                            fleet[who], read_fd, args.services, args.idle_seconds, logfile
                        ),
                    )
            for who in order:
                say(f"round {rnd + 1}/{args.rounds}: {who}: crash loop ...")
                with fifo(started) as read_fd:
                    samples.add(
                        who, measure_crash_loop(crash[who], read_fd, args.crash_seconds, logfile)
                    )
            for who in (*order, "cat"):
                say(f"round {rnd + 1}/{args.rounds}: {who}: log throughput ...")
                argv = logs[who] if who != "cat" else None
                samples.add(who, measure_log(argv, script, payload, logfile))
    except BaseException:
        say(f"supervisor output kept in {logpath}")
        raise
    finally:
        os.close(logfile)
    shutil.rmtree(base, ignore_errors=True)
    return samples


# -- report ------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    label: str
    key: str
    fmt: str
    target: str


ROWS = [
    Row("start: launch -> 50 running (ms)", "start_s", "ms", "faster than supervisord"),
    Row("memory: RSS (MiB)", "rss_mib", ".1f", "smaller than supervisord"),
    Row("memory: private (MiB)", "private_mib", ".1f", "smaller than supervisord"),
    Row("idle: CPU (% of a core)", "idle_cpu_pct", ".4f", "~0"),
    Row("idle: wake-ups/s", "idle_wakeups_per_s", ".2f", "0"),
    Row("crash loop: CPU (% of a core)", "crash_cpu_pct", ".3f", "< 1%"),
    Row("crash loop: restarts/s", "crash_restarts_per_s", ".2f", "capped by backoff"),
    Row("shutdown: SIGTERM -> exit (ms)", "shutdown_s", "ms", "< 100 ms"),
    Row("logs: throughput (MB/s)", "log_mb_per_s", ".0f", ">= 100, >= cat/3, > supervisord"),
    Row("logs: supervisor CPU (ms per MB)", "log_cpu_ms_per_mb", ".2f", "-"),
]


def fmt(value: float, spec: str) -> str:
    return f"{value * 1000:.1f}" if spec == "ms" else format(value, spec)


def header() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    sv_python = subprocess.run(
        ["/usr/bin/python3", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    sv_version = subprocess.run(
        [SUPERVISORD, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"{now}, Linux {platform.release()}, {cpu} x{os.cpu_count()}, "
        f"pyinit on Python {platform.python_version()}, "
        f"supervisord {sv_version} on {sv_python} (/usr/bin/python3)"
    )


def report(samples: Samples, args: argparse.Namespace) -> str:
    out = [
        f"Supervisor benchmark: {header()}",
        f"{args.rounds} round(s), {args.services} services, idle {args.idle_seconds:g} s, "
        f"crash loop {args.crash_seconds:g} s, logs {args.log_mb} MB; medians.",
        "",
        "| metric | pyinit | supervisord | ratio pyinit/supervisord | target (pyinit) |",
        "|---|---|---|---|---|",
    ]
    for row in ROWS:
        ours = samples.median("pyinit", row.key)
        theirs = samples.median("supervisord", row.key)
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        out.append(
            f"| {row.label} | {fmt(ours, row.fmt)} | {fmt(theirs, row.fmt)} | "
            f"{ratio} | {row.target} |"
        )
    cat = samples.median("cat", "log_mb_per_s")
    ours = samples.median("pyinit", "log_mb_per_s")
    out.append(
        f"| logs: `writer \\| cat` baseline (MB/s) | {cat:.0f} (pyinit = "
        f"{ours / cat:.2f} x cat) | | | |"
    )
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--crash-seconds", type=float, default=20.0)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--log-mb", type=int, default=200, help="MB the log writer writes")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, short waits")
    parser.add_argument("--json", metavar="FILE", help="write every sample to FILE")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.idle_seconds, args.crash_seconds = 1, 3.0, 5.0
        args.log_mb = min(args.log_mb, 50)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which(SUPERVISORD):
        print(f"{SUPERVISORD} not found", file=sys.stderr)
        return 2
    samples = run_benchmark(args)
    text = report(samples, args)
    print(text)
    if args.json:
        data: dict[str, Any] = {"header": header(), "args": vars(args), "samples": samples.values}
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
