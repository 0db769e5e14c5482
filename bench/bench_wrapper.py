#!/usr/bin/env python3
"""Benchmark pyinit's wrapper mode against tini and dumb-init, side by side.

Each init runs as PID 1 of a fresh PID namespace
(``unshare --pid --fork --mount-proc INIT -- CMD``). Every round runs each
measurement once per init, in an order that rotates from round to round, so a
noisy neighbour hurts all three alike. The result is a Markdown table of
medians; ``--json FILE`` keeps every sample.

Needs root (or another way to make PID namespaces), ``tini`` and ``dumb-init``.
Standard library only. See bench/README.md for what each metric means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
INITS = ("pyinit", "tini", "dumb-init")
STARTUP_CMD = ["/bin/sh", "-c", "printf x"]
PROCESS_TIMEOUT = 60.0
FULL_DEFAULTS = {"rounds": 15, "idle_seconds": 5.0, "signals": 40, "orphans": 2000}
QUICK_DEFAULTS = {"rounds": 2, "idle_seconds": 1.0, "signals": 20, "orphans": 300}
# --only: start-up; memory, idle wake-ups and signal latency (one session each); reaping.
PARTS = ("startup", "sessions", "reap")

# CMD for the memory, idle and signal measurements. SIGUSR1 and SIGTERM are
# blocked and taken with sigwaitinfo, so the receipt time is read the moment the
# kernel hands the signal over, not at the next bytecode boundary.
RECEIVER = """\
import os, signal, time
wanted = {signal.SIGUSR1, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
os.write(1, b"ready\\n")
while signal.sigwaitinfo(wanted).si_signo == signal.SIGUSR1:
    os.write(1, b"%d\\n" % time.clock_gettime_ns(time.CLOCK_MONOTONIC))
"""

# CMD for the orphan measurement: double-fork N short-lived processes (each
# grandchild is re-parented to PID 1 when its parent exits), wait until PID 1
# has reaped them all, and report PID 1's CPU time spent meanwhile. The init is
# /proc/1 inside the namespace whichever init it is.
ORPHANS = """\
import json, os, sys, time

def init_cpu_ns():
    try:
        with open("/proc/1/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return init_ticks() * 10**9 // os.sysconf("SC_CLK_TCK")

def init_ticks():
    with open("/proc/1/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime

def others():
    me = str(os.getpid())
    return [p for p in os.listdir("/proc") if p.isdigit() and p not in ("1", me)]

count = int(sys.argv[1])
cpu0, ticks0 = init_cpu_ns(), init_ticks()
t0 = time.monotonic_ns()
for _ in range(count):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
while others():
    time.sleep(0.0005)
t1 = time.monotonic_ns()
cpu1, ticks1 = init_cpu_ns(), init_ticks()
print(json.dumps({"wall_ns": t1 - t0, "cpu_ns": cpu1 - cpu0, "cpu_ticks": ticks1 - ticks0}))
"""


class BenchError(Exception):
    """The benchmark cannot run or an init misbehaved; the message says which."""


@dataclass
class Config:
    rounds: int
    idle_seconds: float
    signals_per_round: int
    orphans: int
    python: str
    commands: dict[str, list[str]]  # init name -> argv prefix, ending in "--"
    parts: tuple[str, ...] = PARTS


@dataclass
class Results:
    startup_ms: dict[str, list[float]] = field(default_factory=dict)
    rss_mib: dict[str, list[float]] = field(default_factory=dict)
    private_mib: dict[str, list[float]] = field(default_factory=dict)
    idle_wakeups: dict[str, list[int]] = field(default_factory=dict)
    signal_latency_us: dict[str, list[float]] = field(default_factory=dict)
    orphan_cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    orphan_wall_ms: dict[str, list[float]] = field(default_factory=dict)

    def add(self, metric: dict[str, list[Any]], name: str, *values: Any) -> None:
        metric.setdefault(name, []).extend(values)


# -- processes ------------------------------------------------------------------


def launch(
    argv: Sequence[str], stdout: int | IO[bytes] = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """Start argv in its own session, so that a failed run can be killed as a whole."""
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=stdout, bufsize=0, start_new_session=True
    )


def finish(proc: subprocess.Popen[bytes], timeout: float = PROCESS_TIMEOUT) -> int:
    """Wait for proc; on timeout kill its session and report the hang."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_session(proc)
        raise BenchError(f"{proc.args!r} did not exit within {timeout:g}s") from None


def kill_session(proc: subprocess.Popen[bytes]) -> None:
    # Killing the namespace's PID 1 kills everything in the namespace.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def namespace_init(unshare_pid: int, deadline: float) -> int:
    """The host pid of PID 1 of the namespace: the child ``unshare --fork`` made."""
    path = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children")
    while time.monotonic() < deadline:
        children = path.read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.001)
    raise BenchError(f"unshare (pid {unshare_pid}) started no child")


def smaps_rollup_mib(pid: int) -> tuple[float, float]:
    """(Rss, Private_Clean + Private_Dirty) of pid, in MiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0])  # kB
    private = values["Private_Clean"] + values["Private_Dirty"]
    return values["Rss"] / 1024, private / 1024


def context_switches(pid: int) -> int:
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            total += int(line.split()[1])
    return total


def read_line(stream: IO[bytes], what: str) -> bytes:
    line = stream.readline()
    if not line:
        raise BenchError(f"{what}: CMD closed its output")
    return line


# -- measurements ---------------------------------------------------------------


def time_to_first_byte(argv: Sequence[str]) -> float:
    """Milliseconds from Popen to the first byte argv writes to stdout (same clock)."""
    start = time.monotonic_ns()
    proc = launch(argv)
    assert proc.stdout is not None
    try:
        byte = proc.stdout.read(1)
        arrived = time.monotonic_ns()
        proc.stdout.read()
    finally:
        code = finish(proc)
    if byte != b"x" or code != 0:
        raise BenchError(f"{argv!r}: wrote {byte!r}, exited {code}")
    return (arrived - start) / 1e6


def time_to_exit(argv: Sequence[str]) -> float:
    """Milliseconds from Popen to the exit of argv."""
    start = time.monotonic_ns()
    code = finish(launch(argv, stdout=subprocess.DEVNULL))
    took = (time.monotonic_ns() - start) / 1e6
    if code != 0:
        raise BenchError(f"{argv!r} exited {code}")
    return took


class Session:
    """One init as PID 1 running the signal receiver, alive for one round."""

    def __init__(self, name: str, prefix: list[str], python: str) -> None:
        self.name = name
        self.proc = launch([*UNSHARE, *prefix, python, "-c", RECEIVER])
        assert self.proc.stdout is not None
        self.out: IO[bytes] = self.proc.stdout
        if read_line(self.out, name) != b"ready\n":
            raise BenchError(f"{name}: the receiver did not start")
        # The receiver is running, so the init has installed its handlers by now.
        self.init_pid = namespace_init(self.proc.pid, time.monotonic() + 5)

    def ping(self) -> float:
        """Send SIGUSR1 to the init; microseconds until the receiver had it."""
        sent = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        os.kill(self.init_pid, signal.SIGUSR1)
        received = int(read_line(self.out, self.name))
        return (received - sent) / 1e3

    def stop(self) -> None:
        """SIGTERM through the init to the receiver, which then exits 0."""
        try:
            os.kill(self.init_pid, signal.SIGTERM)
            code = finish(self.proc, 10)
        finally:
            if self.proc.returncode is None:
                kill_session(self.proc)
        if code != 0:
            raise BenchError(f"{self.name}: exited {code} after SIGTERM")

    def kill(self) -> None:
        if self.proc.returncode is None:
            kill_session(self.proc)


def rotated(names: Sequence[str], round_no: int) -> list[str]:
    shift = round_no % len(names)
    return [*names[shift:], *names[:shift]]


def run_round(cfg: Config, round_no: int, res: Results) -> None:
    order = rotated(INITS, round_no)
    if "startup" in cfg.parts:
        measure_startup(cfg, round_no, order, res)
    if "sessions" in cfg.parts:
        measure_sessions(cfg, order, res)
    if "reap" in cfg.parts:
        measure_reaping(cfg, order, res)


def measure_startup(cfg: Config, round_no: int, order: list[str], res: Results) -> None:
    # 1. Start-up, with references measured the same way in the same rotation.
    startup_runs: dict[str, list[str]] = {
        name: [*UNSHARE, *cfg.commands[name], *STARTUP_CMD] for name in order
    }
    startup_runs["python -m pyinit"] = [*UNSHARE, cfg.python, "-m", "pyinit", "--", *STARTUP_CMD]
    exec_cmd = f"import os; os.execv({STARTUP_CMD[0]!r}, {STARTUP_CMD!r})"
    startup_runs["bare python"] = [*UNSHARE, cfg.python, "-c", exec_cmd]
    startup_runs["no init"] = [*UNSHARE, *STARTUP_CMD]
    for name in rotated(list(startup_runs), round_no):
        res.add(res.startup_ms, name, time_to_first_byte(startup_runs[name]))
    res.add(res.startup_ms, "python -c pass", time_to_exit([cfg.python, "-c", "pass"]))


def measure_sessions(cfg: Config, order: list[str], res: Results) -> None:
    # 2-5. Memory, idle wake-ups (all three idle at once) and signal latency.
    sessions: list[Session] = []
    try:
        for name in order:
            sessions.append(Session(name, cfg.commands[name], cfg.python))
        before = {}
        for s in sessions:
            rss, private = smaps_rollup_mib(s.init_pid)
            res.add(res.rss_mib, s.name, rss)
            res.add(res.private_mib, s.name, private)
            before[s.name] = context_switches(s.init_pid)
        time.sleep(cfg.idle_seconds)
        for s in sessions:
            res.add(res.idle_wakeups, s.name, context_switches(s.init_pid) - before[s.name])
        for s in sessions:
            latencies = [s.ping() for _ in range(cfg.signals_per_round)]
            res.add(res.signal_latency_us, s.name, *latencies)
        for s in sessions:
            s.stop()
    finally:
        for s in sessions:
            s.kill()


def measure_reaping(cfg: Config, order: list[str], res: Results) -> None:
    # 6. Reaping orphans.
    for name in order:
        argv = [*UNSHARE, *cfg.commands[name], cfg.python, "-c", ORPHANS, str(cfg.orphans)]
        proc = launch(argv)
        assert proc.stdout is not None
        output = proc.stdout.read()
        if finish(proc) != 0:
            raise BenchError(f"{name}: the orphan run failed")
        report = json.loads(output)
        res.add(res.orphan_cpu_ms, name, report["cpu_ns"] / 1e6)
        res.add(res.orphan_wall_ms, name, report["wall_ns"] / 1e6)


# -- report ---------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1000:
        return str(int(value))
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def verdict(ok: bool) -> str:
    return "✅" if ok else "❌"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def header(cfg: Config) -> str:
    py = subprocess.run(
        [cfg.python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tini = tool_version([cfg.commands["tini"][0], "--version"])
    dumb = tool_version([cfg.commands["dumb-init"][0], "--version"])
    return (
        f"_{datetime.date.today().isoformat()} · Linux {platform.release()} · "
        f"{cpu_model()} ({os.cpu_count()} CPUs) · Python {py} · {tini} · {dumb} · "
        f"{cfg.rounds} rounds, medians_"
    )


def table(cfg: Config, res: Results) -> str:
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(
        metric: str,
        values: dict[str, float],
        target: str = "",
        check: Callable[[dict[str, float]], bool] | None = None,
    ) -> None:
        cells = [fmt(values[name]) if name in values else "—" for name in INITS]
        ratio = ""
        if "pyinit" in values and values.get("tini"):
            ratio = f"{values['pyinit'] / values['tini']:.2f}×"
        if check is not None:
            target = f"{target} {verdict(check(values))}"
        rows.append((metric, *cells, ratio, target))  # type: ignore[arg-type]

    def med(metric: dict[str, list[float]]) -> dict[str, float]:
        return {name: median(values) for name, values in metric.items()}

    if res.startup_ms:
        startup_rows(res, row, med)
    if res.rss_mib:
        row("PID 1 resident memory, Rss (MiB)", med(res.rss_mib))
        row(
            "PID 1 private memory (MiB)",
            med(res.private_mib),
            "< 10 MiB",
            lambda v: v["pyinit"] < 10,
        )
    if res.orphan_cpu_ms:
        row(
            f"reap {cfg.orphans} orphans: PID 1 CPU (ms)",
            med(res.orphan_cpu_ms),
            "≤ 1.3× tini",
            lambda v: v["pyinit"] <= 1.3 * v["tini"],
        )
        row(f"reap {cfg.orphans} orphans: wall time (ms)", med(res.orphan_wall_ms))
    if res.signal_latency_us:
        session_rows(cfg, res, row)

    lines = [
        "| metric | pyinit | tini | dumb-init | pyinit/tini | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


Row = Callable[..., None]


def startup_rows(
    res: Results, row: Row, med: Callable[[dict[str, list[float]]], dict[str, float]]
) -> None:
    start = med(res.startup_ms)
    bare = start["bare python"]
    # Paired per round: a noisy round slows both runs, so its ratio stays fair.
    paired = zip(res.startup_ms["pyinit"], res.startup_ms["bare python"], strict=True)
    vs_bare = median([ours / theirs for ours, theirs in paired])
    row(
        "start-up: launch → CMD running (ms)",
        start,
        f"≤ 1.3× bare python: {vs_bare:.2f}× (paired)",
        lambda _: vs_bare <= 1.3,
    )
    vs_script = start["python -m pyinit"] / start["pyinit"]
    row(
        "start-up: `python3.11 -m pyinit` (ms)",
        {"pyinit": start["python -m pyinit"]},
        f"{vs_script:.2f}× the console script",
    )
    row("start-up: bare python exec'ing CMD (ms)", {"pyinit": bare}, "reference")
    row("start-up: no init, unshare CMD (ms)", {"pyinit": start["no init"]}, "reference")
    row("`python3.11 -c pass`, no namespace (ms)", {"pyinit": start["python -c pass"]}, "reference")


def session_rows(cfg: Config, res: Results, row: Row) -> None:
    latency = res.signal_latency_us
    row(
        f"signal latency, median of {len(latency['pyinit'])} (µs)",
        {name: median(values) for name, values in latency.items()},
        "≤ 1.2× tini",
        lambda v: v["pyinit"] <= 1.2 * v["tini"],
    )
    row(
        "signal latency, p99 (µs)",
        {name: p99(values) for name, values in latency.items()},
        "< 1000 µs",
        lambda v: v["pyinit"] < 1000,
    )
    wakeups = {name: float(median(values)) for name, values in res.idle_wakeups.items()}
    row(
        f"wake-ups while idle for {cfg.idle_seconds:g} s",
        wakeups,
        "0",
        lambda v: v["pyinit"] == 0,
    )


# -- command line ---------------------------------------------------------------


def find_pyinit(python: str) -> str:
    # Next to the interpreter first: a pyenv shim in PATH is a slow bash wrapper.
    sibling = Path(python).parent / "pyinit"
    if sibling.exists():
        return str(sibling)
    found = shutil.which("pyinit")
    if found is None:
        raise BenchError("pyinit is not installed (pip install -e .)")
    return found


def find_tool(name: str, given: str | None) -> str:
    found = given or shutil.which(name)
    if found is None:
        raise BenchError(f"{name} is not installed (apt-get install -y tini dumb-init)")
    return found


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds (default 15; --quick: 2)")
    parser.add_argument(
        "--idle-seconds", type=float, help="idle window per round (default 5; --quick: 1)"
    )
    parser.add_argument(
        "--signals",
        type=int,
        help="SIGUSR1 ping-pongs per init per round (default 40; --quick: 20)",
    )
    parser.add_argument("--orphans", type=int, help="orphans per run (default 2000; --quick: 300)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 short rounds")
    parser.add_argument(
        "--only",
        metavar="PARTS",
        default=",".join(PARTS),
        help=f"comma-separated parts to measure: {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument("--json", metavar="FILE", help="save every sample to FILE")
    parser.add_argument("--python", default=sys.executable, help="interpreter (this one)")
    parser.add_argument("--pyinit", help="pyinit console script (next to the interpreter)")
    parser.add_argument("--tini", help="tini binary (from PATH)")
    parser.add_argument("--dumb-init", help="dumb-init binary (from PATH)")
    args = parser.parse_args(argv)
    parts = tuple(p.strip() for p in args.only.split(",") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        parser.error(f"--only: choose among {', '.join(PARTS)}; got {args.only!r}")
    args.only = parts
    defaults = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def check_namespaces() -> None:
    try:
        done = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10)
    except OSError as exc:
        raise BenchError(f"cannot run unshare: {exc}") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()
        raise BenchError(f"cannot create a PID namespace (run as root?): {reason}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_namespaces()
        cfg = Config(
            rounds=args.rounds,
            idle_seconds=args.idle_seconds,
            signals_per_round=args.signals,
            orphans=args.orphans,
            python=args.python,
            commands={
                "pyinit": [args.pyinit or find_pyinit(args.python), "--"],
                "tini": [find_tool("tini", args.tini), "--"],
                "dumb-init": [find_tool("dumb-init", args.dumb_init), "--"],
            },
            parts=args.only,
        )
        res = Results()
        began = time.monotonic()
        for round_no in range(cfg.rounds):
            run_round(cfg, round_no, res)
            elapsed = time.monotonic() - began
            print(f"round {round_no + 1}/{cfg.rounds} done ({elapsed:.0f} s)", file=sys.stderr)
        print(header(cfg))
        print()
        print(table(cfg, res))
    except BenchError as exc:
        print(f"bench_wrapper: {exc}", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), **vars(res)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
