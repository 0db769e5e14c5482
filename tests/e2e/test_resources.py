"""Per-service CPU and memory, end to end: a service that allocates a known 50 MB
and burns 2 s of CPU, as ``pyinit status --json``, the ``pyinit status`` table,
``/metrics`` and ``pyinit top`` show it, each compared with ``ps`` for the same
processes (the service's session, seen from the host)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.cli import PYINIT, PYTHON, Proc, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.net import free_port, get
from tests.helpers.promtext import parse
from tests.helpers.supervisor import ok, start, status, write_config
from tests.helpers.tmux import Pane

MB = 1024 * 1024
HOG = """
import time
block = b"x" * (50 * 1024 * 1024)  # every page written: resident
start = time.process_time()
while time.process_time() - start < 2.0:
    pass
print("allocated", flush=True)
time.sleep(1000)
"""


def host_pid(proc: Proc, ns_pid: int) -> int:
    """The host pid of the process that is ``ns_pid`` in pyinit's namespace."""
    for pid in proc.host_tree():
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        nspid = next(line for line in text.splitlines() if line.startswith("NSpid:"))
        if int(nspid.split()[-1]) == ns_pid:
            return pid
    raise AssertionError(f"no host process for namespace pid {ns_pid}")


def ps_session(sid: int) -> tuple[int, float, int]:
    """(RSS bytes, CPU seconds, processes) of a session, as ps shows them."""
    done = subprocess.run(
        ["ps", "-o", "rss=,times=", "-s", str(sid)],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()]
    return sum(int(r[0]) for r in rows) * 1024, float(sum(int(r[1]) for r in rows)), len(rows)


def mem_cell(text: str) -> float:
    """``62.3M`` (the MEM column) in bytes."""
    units = {"B": 1, "K": 1024, "M": MB, "G": 1024 * MB}
    return float(text[:-1]) * units[text[-1]]


def close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= 0.1 * theirs


@pytest.mark.timeout(90)
def test_cpu_and_memory_match_ps(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        f"""
        settings:
          http: "127.0.0.1:{port}"
        services:
          hog:
            command: {argv(*sh('"$1" -c "$2" & sleep 1000 & wait', PYTHON, HOG))}
        """,
    )
    proc = start(cli, config, env=env, stdin=subprocess.DEVNULL)
    assert proc.out is not None
    proc.out.expect(r"allocated", timeout=60)
    svc = status(env)["hog"]
    sid = host_pid(proc, svc["pid"])
    rss, cpu, count = ps_session(sid)
    assert count == 3  # sh, python, sleep
    assert rss > 50 * MB

    # status --json
    assert svc["processes"] == 3
    assert close(svc["memory_rss_bytes"], rss), (svc, rss)
    assert cpu >= 2 and close(svc["cpu_seconds"], cpu), (svc, cpu)
    assert svc["cpu_percent"] is not None

    # the table
    lines = ok(env, "status").splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    row = dict(zip(header, lines[1].split(), strict=True))
    assert close(mem_cell(row["MEM"]), rss), (row, rss)
    float(row["CPU%"])

    # /metrics, with pyinit's own process metrics
    code, _type, body = get(port, "/metrics")
    assert code == 200
    metrics = parse(body.decode())
    assert metrics["pyinit_service_processes"].value(service="hog") == 3
    assert close(metrics["pyinit_service_memory_rss_bytes"].value(service="hog"), rss)
    assert close(metrics["pyinit_service_cpu_seconds_total"].value(service="hog"), cpu)
    assert metrics["pyinit_service_cpu_seconds_total"].type == "counter"
    init_rss, _init_cpu, _ = ps_pid(proc.init_pid)
    assert close(metrics["process_resident_memory_bytes"].value(), init_rss)
    assert metrics["process_open_fds"].value() >= 3
    assert abs(metrics["process_start_time_seconds"].value() - time.time()) < 120
    assert metrics["process_cpu_seconds_total"].value() >= 0

    # top
    runtime = {"PYINIT_RUNTIME_DIR": env["PYINIT_RUNTIME_DIR"], "TERM": "xterm"}
    pane = Pane.start(tmp_path / "tmux.sock", [*PYINIT, "top"], runtime)
    try:
        screen = pane.wait_for(r"^\s*hog\s+running\s+yes\s+-\s+0\s+\S+\s+[\d.]+\s+[\d.]+M")
    finally:
        pane.close()
    cells = next(line.split() for line in screen.splitlines() if line.strip().startswith("hog"))
    assert close(mem_cell(cells[7]), rss), (cells, rss)


def ps_pid(pid: int) -> tuple[int, float, int]:
    done = subprocess.run(
        ["ps", "-o", "rss=,times=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    rss, cpu = done.stdout.split()
    return int(rss) * 1024, float(cpu), 1
