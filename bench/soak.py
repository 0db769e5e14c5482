#!/usr/bin/env python3
"""Soak run: pyinit as PID 1 supervising a fleet of services under seeded chaos.

pyinit runs as PID 1 of a fresh PID namespace (``unshare --pid --fork
--mount-proc``) with a generated config of N services (``--services``, default
30): oneshots, longruns with ``restart: always`` / ``on-failure``, TCP servers
with tcp readiness and healthchecks, services with exec healthchecks that test a
file this script creates and deletes, readiness of every kind (log line, fd,
notify, exec, tcp), and dependencies with every condition. For ``--minutes``
(or ``--seconds``) a seeded RNG (``--seed``) drives the chaos:

- SIGKILL to a service's main process, or to another process of the namespace
  (a ``sleep`` of a shell service, a healthcheck probe), found from the host
  through /proc as descendants of the ``unshare`` process;
- ``pyinit restart NAME`` over the control socket;
- ``pyinit reload`` after rewriting one service's environment in the file;
- health flips: the file an exec healthcheck tests disappears for a while;
- log floods: ``pyinit signal USR1 NAME`` makes a Python service write a burst of
  ``name stream seq`` lines on stdout and stderr (shell services burst on their own).

Every few seconds (``--sample-interval``) and at the end it samples, and it checks:

1. zero zombies in the namespace at every sample (one still a zombie 0.5 s later);
2. pyinit's RSS (VmRSS) and fd count: start, after warm-up, end, max; growth from
   the warm-up point to the end under ``--max-rss-growth`` / ``--max-fd-growth``;
3. every log line delivered, in order: per (service, stream, pid) the sequence
   numbers go 0, 1, 2... with no gap; a killed process's tail may only be cut
   after its last complete line; a process that exited cleanly recorded how many
   lines it wrote, and all of them arrived;
4. every start accounted for: each service appends its pid to a file when it
   starts; those starts equal, per service, 1 + the automatic restarts ``pyinit
   status --json`` reports, plus the operator restarts this script issued (the
   ``done`` list of each ``pyinit restart``, dependants included), plus one start
   and the final restart count of each incarnation a reload replaced. ``/metrics``
   ``pyinit_service_restarts_total`` must agree with the status, and pyinit's own
   ``started (pid N)`` lines must name exactly the pids the services recorded;
5. a clean shutdown: SIGTERM at the end, exit status 0.

Prints a Markdown summary; exits 1 when a check fails. Standard library only;
needs root (or another way to make PID namespaces).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYTHON = sys.executable
PYINIT = shutil.which("pyinit", path=os.path.dirname(PYTHON)) or "pyinit"
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
KIB = 1024
ZOMBIE_RECHECK = 0.5  # a zombie still there this much later was reaped slowly...
ZOMBIE_LEAK = 5.0  # ... and one still there this much later is a leak
HEALTH_SETTLE = 2.0  # after a health file comes back: its service is left alone this long
LINE_RE = re.compile(r"^(\S+) (stdout|stderr) (\d+)(?: x+)?$")
# At its first start each service writes FILL_LINES lines padded with PAD x's, so
# that pyinit's per-service store of recent lines (for ``pyinit logs``; bounded by
# design) is full before the warm-up ends and memory growth after it means a leak.
PAD = 1000
FILL_LINES = 640
STARTED_RE = re.compile(r"^(\S+): started \(pid (\d+)\)$")

# The Python service. argv: NAME STATE_DIR MODE [PORT]; MODE is one of oneshot,
# plain, fd, notify, listen. A shell in front of it (START) appends its pid to
# STATE/pids/NAME and execs it with SIGTERM ignored until its handler is in place,
# so that a stop right after the spawn cannot end it unrecorded. It writes
# "NAME stream seq" lines (one per stream per tick, a burst on SIGUSR1) and, when
# it ends cleanly (SIGTERM, or a oneshot's exit), appends "pid out err" (how many
# lines it wrote on each stream) to STATE/ends/NAME. Signals are blocked around
# each write, and a SIGTERM handled inside one waits for its end, so that count
# is exact.
WORKER = r"""
import os, random, select, signal, socket, sys, time
name, state, mode = sys.argv[1], sys.argv[2], sys.argv[3]
burst_max = int(os.environ.get("SOAK_BURST", "2000"))
PAD, FILL_LINES = int(os.environ["SOAK_PAD"]), int(os.environ["SOAK_FILL"])
pid = os.getpid()
with open(f"{state}/pids/{name}") as f:  # the sh in front of us appended our pid
    first = f.read().split() == [str(pid)]
seq = {"stdout": 0, "stderr": 0}
fds = {"stdout": 1, "stderr": 2}
floods = 0
in_emit = False
stop = False
BLOCK = {signal.SIGTERM, signal.SIGUSR1}

def emit(stream, count):
    global in_emit
    in_emit = True  # a SIGTERM handled in here waits for the count to be right
    old = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCK)
    try:
        n = seq[stream]
        view = memoryview("".join(f"{name} {stream} {i}\n" for i in range(n, n + count)).encode())
        while view:
            view = view[os.write(fds[stream], view):]
        seq[stream] = n + count
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        in_emit = False
    if stop:
        finish()

def record_end():
    with open(f"{state}/ends/{name}", "a") as f:
        f.write(f"{pid} {seq['stdout']} {seq['stderr']}\n")

def finish():
    record_end()
    os._exit(0)

def on_term(signum, frame):
    global stop
    if in_emit:
        stop = True
    else:
        finish()

def on_usr1(signum, frame):
    global floods
    floods += 1

signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGUSR1, on_usr1)
rng = random.Random(pid)
if first:  # FILL_LINES padded lines: pyinit's store of recent lines fills at once
    pad = " " + "x" * PAD
    for _ in range(FILL_LINES // 64):
        n = seq["stdout"]
        os.write(1, "".join(f"{name} stdout {i}{pad}\n" for i in range(n, n + 64)).encode())
        seq["stdout"] = n + 64
if mode == "oneshot":
    for _ in range(rng.randint(1, 20)):
        emit("stdout", rng.randint(1, 50))
        emit("stderr", rng.randint(1, 50))
    record_end()
    sys.exit(0)
listener = None
if mode == "listen":
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[4])))
    listener.listen(64)
    listener.setblocking(False)
emit("stdout", 1)
emit("stderr", 1)
if mode == "fd":
    os.write(3, b"\n")
    os.close(3)
elif mode == "notify":
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1", addr)
while True:
    while floods:
        floods -= 1
        left = rng.randint(100, burst_max)
        while left > 0:
            chunk = min(left, rng.randint(1, 300))
            emit(rng.choice(("stdout", "stderr")), chunk)
            left -= chunk
    emit("stdout", 1)
    emit("stderr", 1)
    wait = rng.uniform(0.2, 1.0)
    if listener is None:
        time.sleep(wait)
        continue
    end = time.monotonic() + wait
    while (left := end - time.monotonic()) > 0:
        if select.select([listener], [], [], left)[0]:
            try:
                listener.accept()[0].close()
            except OSError:
                pass
"""

START = 'trap "" TERM; echo $$ >> "$0"; exec "$@"'

# The shell service: a sleep child per tick (so the namespace has orphans to reap
# when the shell is killed; its "Killed" notice goes to /dev/null), a burst every
# 15th tick. No USR1 trap: a trap may run
# between an echo and its increment and repeat a number.
SH_WORKER = """\
[ -e {state}/pids/{name} ] && first=no || first=yes
echo $$ >> {state}/pids/{name}
trap 'exit 0' TERM
trap '' USR1
i=0; j=0; t=0
if [ $first = yes ]; then
  pad=$(printf "%0${{SOAK_PAD}}d" 0 | tr 0 x)
  while [ $i -lt $SOAK_FILL ]; do echo "{name} stdout $i $pad"; i=$((i+1)); done
fi
while :; do
  echo "{name} stdout $i"; i=$((i+1))
  echo "{name} stderr $j" >&2; j=$((j+1))
  t=$((t+1))
  if [ $((t % 15)) -eq 0 ]; then
    k=0
    while [ $k -lt 200 ]; do
      echo "{name} stdout $i"; i=$((i+1)); echo "{name} stderr $j" >&2; j=$((j+1)); k=$((k+1))
    done
  fi
  {{ sleep 0.5; }} 2>/dev/null
done
"""


# -- the fleet ----------------------------------------------------------------------


@dataclass
class Spec:
    name: str
    kind: str  # oneshot, tcp, hc (exec healthcheck, flipped), sh, py
    restart: str
    mode: str = "plain"  # the worker's MODE
    port: int = 0
    ready: Any = None
    depends_on: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plan_fleet(count: int, rng: random.Random) -> list[Spec]:
    n_oneshot = max(1, count // 10)
    n_tcp = max(1, count // 10)
    n_hc = max(1, count // 6)
    n_sh = max(1, count // 6)
    n_py = max(1, count - n_oneshot - n_tcp - n_hc - n_sh)
    kinds = ["tcp"] * n_tcp + ["hc"] * n_hc + ["sh"] * n_sh + ["py"] * n_py
    rng.shuffle(kinds)
    kinds = ["oneshot"] * n_oneshot + kinds
    ready_modes = ["plain", "log_line", "fd", "notify", "exec"]
    specs: list[Spec] = []
    for i, kind in enumerate(kinds):
        name = f"{kind}{i:02d}"
        restart = "on-failure" if kind == "oneshot" else rng.choice(["always", "on-failure"])
        spec = Spec(name, kind, restart)
        if kind == "oneshot":
            spec.mode = "oneshot"
        elif kind == "tcp":
            spec.mode, spec.port = "listen", free_port()
            spec.ready = {"tcp": spec.port, "interval": "200ms"}
        elif kind == "sh":
            spec.ready = {"log_line": f"^{name} stdout 0"} if rng.random() < 0.5 else None
        elif kind == "py":
            how = ready_modes[i % len(ready_modes)]
            if how in ("fd", "notify"):
                spec.mode = how
                spec.ready = "notify" if how == "notify" else {"fd": 3}
            elif how == "log_line":
                spec.ready = {"log_line": f"^{name} stdout 0"}
            elif how == "exec":
                spec.ready = {"exec": ["true"], "interval": "200ms"}
        # Dependencies on earlier services; nothing depends on the health-flipped
        # ones (a flip restarts them, and their dependants would wait on it).
        earlier = [s for s in specs if s.kind != "hc"]
        if kind != "oneshot" and earlier and rng.random() < 0.6:
            for dep in rng.sample(earlier, min(len(earlier), rng.randint(1, 2))):
                if dep.kind == "oneshot":
                    cond = "service_completed_successfully"
                elif dep.kind == "tcp":
                    cond = "service_healthy"
                else:
                    cond = rng.choice(["service_started", "service_ready"])
                spec.depends_on[dep.name] = cond
        specs.append(spec)
    return specs


def service_entry(spec: Spec, state: Path, generation: int) -> dict[str, Any]:
    if spec.kind == "sh":
        script = SH_WORKER.format(name=spec.name, state=state)
        command = ["sh", "-c", script]
    else:
        pidfile = str(state / "pids" / spec.name)
        worker = [PYTHON, "-S", str(state / "worker.py"), spec.name, str(state), spec.mode]
        command = ["sh", "-c", START, pidfile, *worker]
        if spec.port:
            command.append(str(spec.port))
    entry: dict[str, Any] = {
        # every $ doubled: the loader interpolates $VAR
        "command": [part.replace("$", "$$") for part in command],
        "restart": spec.restart,
        "environment": {
            "SOAK_GENERATION": str(generation),
            "SOAK_BURST": "2000",
            "SOAK_PAD": str(PAD),
            "SOAK_FILL": str(FILL_LINES),
        },
        "backoff": {"initial": "100ms", "multiplier": 2, "max": "1s", "reset_after": "5s"},
        "start_limit": {"burst": 100000, "interval": "60s"},
        "stop_grace_period": "5s",
    }
    if spec.kind == "oneshot":
        entry["type"] = "oneshot"
    if spec.ready is not None:
        entry["ready"] = spec.ready
    if spec.kind == "tcp":
        entry["healthcheck"] = {"tcp": spec.port, "interval": "1s", "timeout": "3s", "retries": 3}
    elif spec.kind == "hc":
        entry["healthcheck"] = {
            "exec": ["test", "-f", str(state / "health" / spec.name)],
            "interval": "500ms",
            "timeout": "3s",
            "retries": 2,
        }
    if spec.depends_on:
        entry["depends_on"] = {d: {"condition": c} for d, c in spec.depends_on.items()}
    return entry


def write_config(path: Path, specs: list[Spec], state: Path, generations: dict[str, int]) -> None:
    config = {
        "settings": {"shutdown_timeout": "30s", "log_format": "json"},
        "services": {s.name: service_entry(s, state, generations[s.name]) for s in specs},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=1) + "\n")  # JSON is YAML
    os.replace(tmp, path)


# -- processes seen from the host ---------------------------------------------------


def proc_table() -> dict[int, tuple[int, str]]:
    """host pid -> (ppid, state letter)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), fields[0])
    return table


def descendants(root: int, table: dict[int, tuple[int, str]]) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    found: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def ns_pid(host_pid: int) -> int | None:
    try:
        with open(f"/proc/{host_pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def process_age(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except OSError:
        return 0.0
    start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- talking to pyinit --------------------------------------------------------------


def control(path: str, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """One request over the control socket, speaking its protocol directly."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


def http_get(port: int, path: str, timeout: float = 10.0) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: soak\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {path}: {head[:80]!r}")
    return body.decode()


def metric_restarts(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r'^pyinit_service_restarts_total\{service="([^"]+)"\} (\S+)$', line)
        if m:
            found[m.group(1)] = int(float(m.group(2)))
    return found


# -- the run ------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    zombies: int  # still zombies ZOMBIE_RECHECK later
    transient: int  # zombies seen once, gone at the re-check
    processes: int
    metrics_agree: bool


@dataclass
class Ledger:
    operator_starts: Counter[str] = field(default_factory=Counter)
    # per service: the final restart count of each incarnation a reload replaced
    replaced: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    actions: Counter[str] = field(default_factory=Counter)
    anomalies: list[str] = field(default_factory=list)
    closure_differs: int = 0  # restart answers naming more or fewer dependants than expected


@dataclass
class Check:
    name: str
    ok: bool
    figures: str


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.dir = workdir
        self.state = workdir / "state"
        for sub in ("pids", "ends", "health", "run"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        (self.state / "worker.py").write_text(WORKER)
        self.config = workdir / "services.yaml"
        self.specs = plan_fleet(args.services, self.rng)
        self.by_name = {s.name: s for s in self.specs}
        self.generations = {s.name: 0 for s in self.specs}
        self.dependants: dict[str, list[str]] = defaultdict(list)
        for s in self.specs:
            for dep in s.depends_on:
                self.dependants[dep].append(s.name)
        self.http_port = free_port()
        self.socket_path = str(self.state / "run" / "control.sock")
        self.env = dict(os.environ)
        self.env.update(
            PYINIT_RUNTIME_DIR=str(self.state / "run"),
            PYINIT_SOCKET=self.socket_path,
            PYINIT_TERMINATION_LOG="",
        )
        self.ledger = Ledger()
        self.samples: list[Sample] = []
        self.flipped: dict[str, float] = {}  # service -> when its health file comes back
        self.restored: dict[str, float] = {}  # service -> when its health file came back
        self.killed: dict[str, float] = {}  # service -> when this script last SIGKILLed it
        self.zombie_details: list[str] = []
        self.slow_reaps = 0  # zombies still there ZOMBIE_RECHECK after a sample
        self.checks: list[Check] = []
        self.unshare: subprocess.Popen[bytes] | None = None
        self.pyinit_pid = 0

    # -- plumbing ------------------------------------------------------------------
    def log(self, message: str) -> None:
        if not self.args.quiet:
            print(f"soak: {message}", file=sys.stderr, flush=True)

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYINIT, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def status(self) -> dict[str, Any]:
        answer = control(self.socket_path, {"cmd": "status"})
        services: dict[str, Any] = answer["status"]["services"]
        return services

    def pid_files(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for spec in self.specs:
            path = self.state / "pids" / spec.name
            text = path.read_text() if path.exists() else ""
            found[spec.name] = [int(x) for x in text.split()]
        return found

    def namespace(self) -> tuple[dict[int, tuple[int, str]], list[int]]:
        assert self.unshare is not None
        table = proc_table()
        return table, descendants(self.unshare.pid, table)

    # -- start ---------------------------------------------------------------------
    def start(self) -> None:
        for spec in self.specs:
            if spec.kind == "hc":
                (self.state / "health" / spec.name).touch()
        write_config(self.config, self.specs, self.state, self.generations)
        check = self.cli("check", str(self.config))
        if check.returncode != 0:
            raise RuntimeError(f"generated config is invalid:\n{check.stdout}{check.stderr}")
        self.out = open(self.dir / "pyinit.stdout", "wb")  # noqa: SIM115
        self.err = open(self.dir / "pyinit.stderr", "wb")  # noqa: SIM115
        argv = [*UNSHARE, PYINIT, "-c", str(self.config), "--http", f"127.0.0.1:{self.http_port}"]
        self.unshare = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err, env=self.env
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.unshare.poll() is not None:
                raise RuntimeError(f"pyinit exited at start: {self.unshare.returncode}")
            _, pids = self.namespace()
            firsts = [p for p in pids if ns_pid(p) == 1]
            if firsts and os.path.exists(self.socket_path):
                self.pyinit_pid = firsts[0]
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("pyinit did not come up within 30s")
        if not self.settle(60.0):
            raise RuntimeError(f"the fleet did not start within 60s: {self.not_settled()}")

    def not_settled(self) -> list[str]:
        problems = []
        for name, svc in self.status().items():
            spec = self.by_name[name]
            if spec.kind == "oneshot":
                if svc["state"] != "completed":
                    problems.append(f"{name}: {svc['state']}")
            elif svc["state"] != "running" or not svc["ready"] or svc["health"] == "starting":
                problems.append(f"{name}: {svc['state']} ready={svc['ready']} {svc['health']}")
            elif svc["health"] not in (None, "healthy"):
                problems.append(f"{name}: {svc['health']}")
        return problems

    def settle(self, timeout: float, hold: float = 1.0) -> bool:
        """Until every longrun runs ready and healthy and every oneshot completed,
        with no pid changing for ``hold`` seconds."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.restore_health(time.monotonic())
            pids = {n: s["pid"] for n, s in self.status().items()}
            if self.not_settled() or pids != last:
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= hold:
                return True
            last = pids
            time.sleep(0.1)
        return False

    # -- sampling ------------------------------------------------------------------
    def sample(self, t0: float) -> Sample:
        table, pids = self.namespace()
        zombies = {p for p in pids if table[p][1] == "Z"}
        seen = time.monotonic()
        lingering = set(zombies)
        slow = 0
        while lingering and time.monotonic() - seen < ZOMBIE_LEAK:
            time.sleep(ZOMBIE_RECHECK)
            table2 = proc_table()
            lingering = {p for p in lingering if p in table2 and table2[p][1] == "Z"}
            if lingering and slow == 0:
                slow = len(lingering)
        self.slow_reaps += slow
        persistent = len(lingering)
        for p in lingering:
            try:
                comm = Path(f"/proc/{p}/comm").read_text().strip()
            except OSError:
                comm = "?"
            self.zombie_details.append(
                f"t={seen - t0:.1f}s host pid {p} ({comm}) ns pid {ns_pid(p)}"
            )
        agree = False
        for _ in range(5):  # a restart may land between the two reads: read again
            status = self.status()
            metrics = metric_restarts(http_get(self.http_port, "/metrics"))
            if metrics == {n: s["restarts"] for n, s in status.items()}:
                agree = True
                break
            time.sleep(0.05)
        s = Sample(
            t=time.monotonic() - t0,
            rss_kib=vm_rss_kib(self.pyinit_pid),
            fds=fd_count(self.pyinit_pid),
            zombies=persistent,
            transient=len(zombies) - persistent,
            processes=len(pids),
            metrics_agree=agree,
        )
        self.samples.append(s)
        return s

    # -- chaos ---------------------------------------------------------------------
    def restore_health(self, now: float) -> None:
        for name, when in list(self.flipped.items()):
            if when <= now:
                (self.state / "health" / name).touch()
                del self.flipped[name]
                self.restored[name] = now

    def calm(self, name: str, svc: dict[str, Any], now: float) -> bool:
        """No automatic restart can be on its way: alive and not stopping, healthy
        or still deciding with its health file in place for a while."""
        if svc["state"] not in ("running", "starting") or svc["health"] == "unhealthy":
            return False
        if name in self.flipped or now - self.killed.get(name, -1e9) < HEALTH_SETTLE:
            return False
        return now - self.restored.get(name, -1e9) >= HEALTH_SETTLE

    def restart_closure(self, name: str, status: dict[str, Any]) -> list[str] | None:
        """What ``pyinit restart name`` will restart, when every one of them is calm
        (so no automatic restart can mix with the operator's); else None."""
        now = time.monotonic()
        spec = self.by_name[name]
        svc = status[name]
        if spec.kind == "oneshot":
            if svc["state"] != "completed":
                return None
        elif not self.calm(name, svc, now):
            return None
        found = [name]
        todo = list(self.dependants[name])
        while todo:
            dep = todo.pop()
            if dep in found:
                continue
            state = status[dep]["state"]
            if state in ("starting", "running", "stopping"):
                if not self.calm(dep, status[dep], now):
                    return None
                found.append(dep)
                todo.extend(self.dependants[dep])
        return found

    def chaos_step(self) -> None:
        now = time.monotonic()
        self.restore_health(now)
        status = self.status()
        action = self.rng.choices(
            ["kill", "kill_other", "restart", "reload", "flip", "flood"],
            weights=[30, 8, 14, 6, 12, 30],
        )[0]
        names = sorted(status)
        if action == "kill":
            alive = [n for n in names if status[n]["pid"] is not None]
            if alive:
                self.kill_service(self.rng.choice(alive), status)
        elif action == "kill_other":
            self.kill_other(status)
        elif action == "restart":
            self.operator_restart(self.rng.choice(names), status)
        elif action == "reload":
            self.reload(self.rng.choice(names), status)
        elif action == "flip":
            hcs = [n for n in names if self.by_name[n].kind == "hc" and n not in self.flipped]
            if hcs:
                name = self.rng.choice(hcs)
                (self.state / "health" / name).unlink(missing_ok=True)
                self.flipped[name] = now + self.rng.uniform(1.5, 4.0)
                self.ledger.actions["health flips"] += 1
        elif action == "flood":
            targets = [
                n
                for n in names
                if self.by_name[n].kind in ("py", "tcp", "hc") and status[n]["state"] == "running"
            ]
            if targets:
                name = self.rng.choice(targets)
                done = self.cli("signal", "USR1", name)
                if done.returncode == 0:
                    self.ledger.actions["log floods"] += 1

    def host_pids_by_ns(self) -> dict[int, int]:
        _, pids = self.namespace()
        mapping: dict[int, int] = {}
        for p in pids:
            n = ns_pid(p)
            if n is not None:
                mapping[n] = p
        return mapping

    def kill_service(self, name: str, status: dict[str, Any]) -> None:
        host = self.host_pids_by_ns().get(status[name]["pid"])
        if host is None or process_age(host) < 0.5:
            return  # a process that young may not have recorded its start yet
        try:
            os.kill(host, signal.SIGKILL)
            self.killed[name] = time.monotonic()
            self.ledger.actions["SIGKILL service"] += 1
        except ProcessLookupError:
            pass

    def kill_other(self, status: dict[str, Any]) -> None:
        mains = {s["pid"] for s in status.values() if s["pid"] is not None}
        candidates = [
            host for n, host in self.host_pids_by_ns().items() if n != 1 and n not in mains
        ]
        if candidates:
            try:
                os.kill(self.rng.choice(sorted(candidates)), signal.SIGKILL)
                self.ledger.actions["SIGKILL other"] += 1
            except ProcessLookupError:
                pass

    def operator_restart(self, name: str, status: dict[str, Any]) -> None:
        expected = self.restart_closure(name, status)
        if expected is None:
            return
        done = self.cli("restart", "--no-wait", name)  # chaos: fire, do not wait
        self.ledger.actions["pyinit restart"] += 1
        if done.returncode != 0:
            self.ledger.anomalies.append(f"pyinit restart {name}: exit {done.returncode}")
            return
        # "restarting: a, b": what pyinit restarts, dependants included.
        m = re.match(r"restarting: (.*)$", done.stdout.strip())
        restarted = sorted(m.group(1).split(", ")) if m else []
        self.ledger.operator_starts.update(restarted)
        if restarted != sorted(expected):  # a dependant came back meanwhile: pyinit's list counts
            self.ledger.closure_differs += 1

    def reload(self, name: str, status: dict[str, Any]) -> None:
        spec = self.by_name[name]
        svc = status[name]
        if spec.kind == "oneshot" or not self.calm(name, svc, time.monotonic()):
            return
        before = svc["restarts"]
        self.generations[name] += 1
        write_config(self.config, self.specs, self.state, self.generations)
        done = self.cli("reload")
        self.ledger.actions["pyinit reload"] += 1
        if done.returncode != 0 or f"changed {name}" not in done.stdout + done.stderr:
            self.ledger.anomalies.append(
                f"pyinit reload ({name}): exit {done.returncode}: {done.stdout}{done.stderr}"
            )
            return
        self.ledger.replaced[name].append(before)

    # -- the whole run -------------------------------------------------------------
    def run(self) -> bool:
        duration = self.args.seconds if self.args.seconds else self.args.minutes * 60.0
        warmup = min(60.0, duration * 0.2)
        self.log(f"{len(self.specs)} services, {duration:.0f}s of chaos, seed {self.args.seed}")
        t_launch = time.monotonic()
        self.start()
        t0 = time.monotonic()
        self.log(f"fleet up in {t0 - t_launch:.1f}s; pyinit host pid {self.pyinit_pid}")
        self.sample(t0)
        next_sample = t0 + self.args.sample_interval
        end = t0 + duration
        while (now := time.monotonic()) < end:
            if now >= next_sample:
                s = self.sample(t0)
                next_sample = now + self.args.sample_interval
                self.log(
                    f"t={s.t:5.0f}s rss={s.rss_kib} KiB fds={s.fds} procs={s.processes} "
                    f"zombies={s.zombies}"
                )
            self.chaos_step()
            time.sleep(self.rng.uniform(0.05, 0.4))
        # Quiesce: health files back, every service up, then the final accounting.
        for name in list(self.flipped):
            self.flipped[name] = 0.0
        self.restore_health(time.monotonic())
        t_settle = time.monotonic()
        settled = self.settle(60.0, hold=1.5)
        self.checks.append(
            Check(
                "settled after chaos",
                settled,
                f"every longrun running, ready and healthy, every oneshot completed, "
                f"in {time.monotonic() - t_settle:.1f}s"
                + ("" if settled else f"; still not after 60s: {self.not_settled()}"),
            )
        )
        final = self.sample(t0)
        while True:  # the services' own count, status and metrics at one settled moment
            pids_before = self.pid_files()
            status = json.loads(self.cli("status", "--json").stdout)["services"]
            metrics = metric_restarts(http_get(self.http_port, "/metrics"))
            pids_after = self.pid_files()
            if pids_before == pids_after:
                break
        self.reconcile(pids_after, status, metrics)
        # The clean shutdown.
        assert self.unshare is not None
        t_stop = time.monotonic()
        os.kill(self.pyinit_pid, signal.SIGTERM)
        try:
            code = self.unshare.wait(timeout=45)
        except subprocess.TimeoutExpired:
            self.unshare.kill()
            code = -1
        took = time.monotonic() - t_stop
        self.out.close()
        self.err.close()
        later = self.pid_files()
        self.checks.append(
            Check(
                "shutdown",
                code == 0 and later == pids_after,
                f"SIGTERM -> exit {code} in {took:.1f}s"
                + ("" if later == pids_after else "; services started after the final count!"),
            )
        )
        self.check_zombies()
        self.check_growth(warmup, final)
        self.check_logs(later)
        return all(c.ok for c in self.checks)

    # -- checks --------------------------------------------------------------------
    def check_zombies(self) -> None:
        total = sum(s.zombies for s in self.samples)
        transient = sum(s.transient for s in self.samples)
        figures = f"{total} left {ZOMBIE_LEAK:g} s after a sample, in {len(self.samples)} samples"
        if transient:
            figures += (
                f" ({transient} seen at a sample and reaped within {ZOMBIE_LEAK:g} s, "
                f"{self.slow_reaps} of them after more than {ZOMBIE_RECHECK:g} s)"
            )
        if self.zombie_details:
            figures += "; " + "; ".join(self.zombie_details[:5])
        self.checks.append(Check("zombies", total == 0, figures))

    def check_growth(self, warmup: float, final: Sample) -> None:
        first = self.samples[0]
        warm = next((s for s in self.samples if s.t >= warmup), final)
        rss_growth = final.rss_kib - warm.rss_kib
        fd_growth = final.fds - warm.fds
        max_rss = max(s.rss_kib for s in self.samples)
        max_fds = max(s.fds for s in self.samples)
        mib = 1024.0
        self.checks.append(
            Check(
                "pyinit RSS",
                rss_growth < self.args.max_rss_growth * KIB,
                f"start {first.rss_kib / mib:.1f} MiB, after warm-up ({warm.t:.0f}s) "
                f"{warm.rss_kib / mib:.1f}, end {final.rss_kib / mib:.1f}, "
                f"max {max_rss / mib:.1f}; growth {rss_growth / mib:+.2f} MiB "
                f"(bound {self.args.max_rss_growth} MiB)",
            )
        )
        self.checks.append(
            Check(
                "pyinit fds",
                fd_growth < self.args.max_fd_growth,
                f"start {first.fds}, after warm-up {warm.fds}, end {final.fds}, max {max_fds}; "
                f"growth {fd_growth:+d} (bound {self.args.max_fd_growth})",
            )
        )
        disagree = sum(not s.metrics_agree for s in self.samples)
        self.checks.append(
            Check(
                "metrics = status",
                disagree == 0,
                f"pyinit_service_restarts_total equal to status restarts in "
                f"{len(self.samples) - disagree}/{len(self.samples)} samples",
            )
        )

    def reconcile(
        self, pids: dict[str, list[int]], status: dict[str, Any], metrics: dict[str, int]
    ) -> None:
        rows = []
        mismatched = []
        auto = operator = replaced = 0
        for spec in self.specs:
            name = spec.name
            svc = status[name]
            pending = 1 if svc["state"] == "backoff" else 0  # counted, not yet started
            previous = self.ledger.replaced.get(name, [])
            expected = (
                1
                + svc["restarts"]
                - pending
                + self.ledger.operator_starts[name]
                + sum(1 + r for r in previous)
            )
            recorded = len(pids[name])
            auto += svc["restarts"] - pending + sum(previous)
            operator += self.ledger.operator_starts[name]
            replaced += len(previous)
            ok = recorded == expected and metrics.get(name) == svc["restarts"]
            rows.append((name, recorded, expected, svc, previous, metrics.get(name)))
            if not ok:
                mismatched.append(name)
        total = sum(len(p) for p in pids.values())
        figures = (
            f"{total} starts recorded by the services = {len(self.specs)} first starts + "
            f"{auto} automatic restarts (status) + {operator} operator restarts + "
            f"{replaced} reload replacements; /metrics agrees with status for "
            f"{len(self.specs) - len(mismatched)}/{len(self.specs)} services"
        )
        if self.ledger.closure_differs:
            figures += (
                f" ({self.ledger.closure_differs} restart answers named a dependant that was "
                "between runs at the script's last look; pyinit's list is what is counted)"
            )
        if self.ledger.anomalies:
            figures += f"; notes: {self.ledger.anomalies[:5]}"
        if mismatched:
            figures += f"; MISMATCH: {', '.join(mismatched)}"
            for name, recorded, expected, svc, previous, metric in rows:
                if name in mismatched:
                    self.log(
                        f"{name}: recorded {recorded} expected {expected} "
                        f"(state {svc['state']}, restarts {svc['restarts']}, metric {metric}, "
                        f"operator {self.ledger.operator_starts[name]}, replaced {previous})"
                    )
        ok = not mismatched and not self.ledger.anomalies
        self.checks.append(Check("restarts reconciled", ok, figures))

    def check_logs(self, pids: dict[str, list[int]]) -> None:
        allowed = {name: Counter(p) for name, p in pids.items()}
        nxt: dict[tuple[str, str, int], int] = {}
        lifetimes: Counter[tuple[str, str, int]] = Counter()
        cut: set[tuple[str, str, int]] = set()
        errors: list[str] = []
        lines = Counter[str]()
        started: dict[str, Counter[int]] = defaultdict(Counter)
        for path in (self.dir / "pyinit.stdout", self.dir / "pyinit.stderr"):
            with open(path, "rb") as f:
                for number, raw in enumerate(f, 1):
                    try:
                        rec = json.loads(raw)
                    except ValueError:
                        errors.append(f"{path.name}:{number}: not JSON: {raw[:80]!r}")
                        continue
                    svc, stream, pid, text = rec["service"], rec["stream"], rec["pid"], rec["line"]
                    if stream == "pyinit":
                        m = STARTED_RE.match(text)
                        if m:
                            started[m.group(1)][int(m.group(2))] += 1
                        continue
                    if stream != path.name.split(".")[1]:
                        errors.append(f"{path.name}:{number}: {stream} line on the wrong stream")
                    key = (svc, stream, pid)
                    lines[stream] += 1
                    m = LINE_RE.match(text)
                    whole = m is not None and m.group(1) == svc and m.group(2) == stream
                    seq = int(m.group(3)) if m is not None and whole else -1
                    if key in cut and seq != 0:
                        errors.append(f"{path.name}:{number}: {key}: line after a cut tail")
                        continue
                    if key not in nxt or seq == 0:
                        if seq != 0:
                            errors.append(f"{path.name}:{number}: {key}: first line is {text!r}")
                            continue
                        lifetimes[key] += 1
                        if lifetimes[key] > allowed.get(svc, Counter())[pid]:
                            errors.append(
                                f"{path.name}:{number}: {key}: lifetime {lifetimes[key]} of a "
                                f"pid recorded {allowed.get(svc, Counter())[pid]} time(s)"
                            )
                        cut.discard(key)
                        nxt[key] = 1
                        continue
                    if seq == nxt[key]:
                        nxt[key] += 1
                    elif text and (
                        f"{svc} {stream} {nxt[key]}".startswith(text)
                        or f"{svc} {stream} {nxt[key]} {'x' * PAD}".startswith(text)
                    ):
                        cut.add(key)  # the partial last line of a killed process
                    else:
                        errors.append(
                            f"{path.name}:{number}: {key}: expected seq {nxt[key]}, got {text!r}"
                        )
                        nxt[key] = seq + 1 if seq >= 0 else nxt[key]
        # Clean exits recorded how many lines they wrote: all must have arrived.
        clean = 0
        for spec in self.specs:
            path = self.state / "ends" / spec.name
            if not path.exists():
                continue
            for row in path.read_text().split("\n"):
                if not row:
                    continue
                pid, n_out, n_err = (int(x) for x in row.split())
                if allowed[spec.name][pid] != 1:
                    continue  # a reused pid: which lifetime is which is ambiguous
                clean += 1
                for stream, n in (("stdout", n_out), ("stderr", n_err)):
                    key = (spec.name, stream, pid)
                    got = nxt.get(key, 0)
                    if got != n or key in cut:
                        errors.append(f"{key}: exited cleanly after {n} lines; {got} arrived")
        total = sum(lines.values())
        self.checks.append(
            Check(
                "log lines in order",
                not errors,
                f"{total} lines ({lines['stdout']} stdout, {lines['stderr']} stderr) from "
                f"{len(lifetimes)} (service, stream, pid) lifetimes; {clean} clean exits "
                f"delivered complete; {len(cut)} killed tails cut mid-line; "
                f"{len(errors)} errors" + (f": {errors[:5]}" if errors else ""),
            )
        )
        ledger_ok = all(started.get(n, Counter()) == c for n, c in allowed.items())
        wrong = [n for n, c in allowed.items() if started.get(n, Counter()) != c]
        self.checks.append(
            Check(
                "pid ledger",
                ledger_ok,
                f"pyinit's 'started (pid N)' lines name exactly the pids the services "
                f"recorded ({sum(sum(c.values()) for c in started.values())} starts)"
                + (f"; differ for {wrong}" if wrong else ""),
            )
        )

    def cleanup(self) -> None:
        if self.unshare is not None and self.unshare.poll() is None:
            if self.pyinit_pid:
                try:
                    os.kill(self.pyinit_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.unshare.kill()
            self.unshare.wait(timeout=10)

    def report(self, duration: float, argv: list[str]) -> str:
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        chaos = ", ".join(f"{n} {what}" for what, n in sorted(self.ledger.actions.items()))
        kinds = Counter(s.kind for s in self.specs)
        fleet = ", ".join(f"{kinds[k]} {k}" for k in ("oneshot", "tcp", "hc", "sh", "py"))
        out = [
            f"Soak run {when}: `python3 bench/soak.py {' '.join(argv)}`",
            "",
            f"{len(self.specs)} services ({fleet}), {duration:.0f} s of chaos, "
            f"seed {self.args.seed}, samples every {self.args.sample_interval:g} s.",
            "",
            f"Chaos: {chaos}.",
            "",
            "| check | result | figures |",
            "|---|---|---|",
        ]
        order = [
            "zombies",
            "pyinit RSS",
            "pyinit fds",
            "log lines in order",
            "pid ledger",
            "restarts reconciled",
            "metrics = status",
            "settled after chaos",
            "shutdown",
        ]
        for c in sorted(self.checks, key=lambda c: order.index(c.name)):
            out.append(f"| {c.name} | {'pass' if c.ok else '**FAIL**'} | {c.figures} |")
        return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--minutes", type=float, default=10.0, help="chaos duration (default 10)")
    p.add_argument("--seconds", type=float, default=0.0, help="chaos duration, overrides")
    p.add_argument("--services", type=int, default=30, help="fleet size (default 30)")
    p.add_argument("--seed", type=int, default=1, help="seed of the chaos RNG (default 1)")
    p.add_argument("--sample-interval", type=float, default=3.0, help="seconds (default 3)")
    p.add_argument("--max-rss-growth", type=float, default=5.0, help="MiB (default 5)")
    p.add_argument("--max-fd-growth", type=int, default=10, help="(default 10)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.services < 5:
        print("soak: --services must be at least 5", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="pyinit-soak-"))
    soak = Soak(args, workdir)
    began = time.monotonic()

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # so that pyinit's namespace goes too
    try:
        ok = soak.run()
    except KeyboardInterrupt:
        print(f"soak: interrupted; work directory {workdir}", file=sys.stderr)
        return 130
    finally:
        soak.cleanup()
    duration = args.seconds if args.seconds else args.minutes * 60.0
    print(soak.report(duration, sys.argv[1:] if argv is None else argv))
    print(f"\n(wall time {time.monotonic() - began:.1f} s; work directory {workdir})")
    if not args.keep and ok:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
