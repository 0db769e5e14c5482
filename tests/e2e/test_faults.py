"""Fault injection, end to end (issue #6): pyinit as PID 1 of a fresh PID namespace
while services are SIGKILLed at random moments, orphans storm in, probes hang,
processes escape, file descriptors run out and a handler raises.

Every test checks, besides its own contract: no zombie left in the namespace,
pyinit did not crash (no traceback, but for an injected one), no exit status was
lost (restart counts match what the services recorded themselves), a clear log
line, and the exit code the README documents. Random moments come from a fixed
seed, so a failing run can be replayed.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.cli import PYTHON, Runner, entry_point
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import count_lines, file_lines, wait_line, wait_until
from tests.helpers.procs import (
    assert_no_traceback,
    assert_no_zombies,
    fd_count,
    live,
    one_live,
    zombies,
)
from tests.helpers.supervisor import runtime_env, start_pyinit, status_json, write_config

SEED = 20240606
# Service keys, indented as in the configs below (write_config dedents the whole).
FAST_RESTART = """
            restart: always
            backoff: {initial: 100ms, multiplier: 1, jitter: 0}
            start_limit: {burst: 10000, interval: 60s}"""


@pytest.mark.timeout(40)
def test_sigkill_at_random_moments(cli: Runner, tmp_path: Path) -> None:
    """Services SIGKILLed from outside at random moments (fixed seed): while starting
    (a readiness probe that never passes), while their exec healthcheck probe runs,
    the probe itself, and while stopping on shutdown. Each kill of a service is one
    ``exited (killed by SIGKILL); restart N`` and one restart in the report, none
    lost; a killed probe is only a failed probe; no probe outlives its service; no
    zombie. The service SIGKILLed while stopping makes the requested shutdown exit
    137 (README: one that had to be SIGKILLed gives its code)."""
    rng = random.Random(SEED)
    starts = tmp_path / "starts"
    stubborn = tmp_path / "stubborn"
    config = write_config(
        tmp_path,
        f"""
        settings: {{shutdown_timeout: 10s}}
        services:
          booting:
            command: {argv(*sh(f"echo booting >> {starts}; exec sleep 1001"))}
            ready: {{exec: ["false"], interval: 100ms, timeout: 0}}{FAST_RESTART}
          probed:
            command: {argv(*sh(f"echo probed >> {starts}; exec sleep 1002"))}
            healthcheck:
              test: ["CMD", "sleep", "0.21"]
              interval: 30ms
              timeout: 5s
              retries: 1000{FAST_RESTART}
          stubborn:
            command: {
            argv(*sh(
                f"trap 'echo term >> {stubborn}; sleep 0.6; exit 0' TERM; "
                f"echo stubborn >> {starts}; sleep 1003 & wait"
            ))
        }
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    kills = {"booting": 0, "probed": 0}
    # Starting: booting is never ready; kill each fresh instance after a random delay.
    pid = 0
    for _ in range(4):
        pid = one_live(proc, "sleep 1001", other_than=pid)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        kills["booting"] += 1
    # During a health check: a probe is running, then the service (or the probe) dies.
    pid = one_live(proc, "sleep 1002")
    for round_ in range(6):
        probe = one_live(proc, "sleep 0.21")
        time.sleep(rng.uniform(0.0, 0.15))
        if round_ % 3 == 2:
            try:
                os.kill(probe, signal.SIGKILL)  # the probe: a failed check, nothing more
            except ProcessLookupError:
                pass
            continue
        os.kill(pid, signal.SIGKILL)
        kills["probed"] += 1
        pid = one_live(proc, "sleep 1002", other_than=pid)
    for name, n in kills.items():
        wait_line(proc.out, rf"^pyinit: {name}: exited \(killed by SIGKILL\); restart {n} in ")
    one_live(proc, "sleep 1001", other_than=0)
    assert len(live(proc, "sleep 0.21")) <= 1, "a probe outlived its run"
    assert_no_zombies(proc)
    # During shutdown: stubborn takes 0.6s to stop; SIGKILL it meanwhile.
    proc.signal(signal.SIGTERM)
    victim = one_live(proc, "trap")
    wait_until(lambda: count_lines(stubborn, "term"), "stubborn's TERM trap")
    time.sleep(rng.uniform(0.0, 0.4))
    os.kill(victim, signal.SIGKILL)
    code, out, _ = proc.finish(15)
    assert_no_traceback(out)
    assert "pyinit: stubborn: stopped in" in out and "(killed by SIGKILL)" in out, out
    for name, n in kills.items():
        assert f"pyinit: report: {name}: stopped (status 143), {n} restarts" in out, out
        assert count_lines(starts, name) == n + 1, (name, file_lines(starts))
    assert "pyinit: report: stubborn: stopped (status 137), 0 restarts" in out, out
    assert code == 137, out


STORM = """
b=0
while [ $b -lt 100 ]; do
  i=0
  while [ $i -lt 100 ]; do (true &); i=$((i+1)); done
  b=$((b+1))
done
echo storm done
exec sleep 1004
"""


@pytest.mark.timeout(60)
def test_orphan_storm_with_crash_loop(cli: Runner, tmp_path: Path) -> None:
    """A service double-forks ``true`` 10,000 times (100 batches of 100: each a
    subshell that backgrounds ``true`` and exits, leaving an orphan to PID 1) while
    another crash-loops under ``restart: always``. Afterwards: every orphan was
    reaped and counted (``orphans_reaped`` = 10000), no zombie, pyinit alive and
    answering, and not one exit of the crash loop lost in the SIGCHLD flood: the
    restart count pyinit reports equals the crashes the service recorded itself.
    SIGTERM then exits 0."""
    starts = tmp_path / "starts"
    crashes = tmp_path / "crashes"
    calm = tmp_path / "calm"
    config = write_config(
        tmp_path,
        f"""
        services:
          storm:
            command: {argv(*sh(STORM))}
          crash:
            command: {
            argv(*sh(
                f"echo start >> {starts}; [ -e {calm} ] && exec sleep 1005; "
                f"echo crash >> {crashes}; exit 3"
            ))
        }{FAST_RESTART}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    wait_line(proc.out, r"^storm +\| storm done$", timeout=45)
    assert count_lines(crashes, "crash") >= 3, "the crash loop did not overlap the storm"
    calm.touch()  # the next start of crash stays up
    wait_line(proc.out, r"^pyinit: crash: started", timeout=5)
    one_live(proc, "sleep 1005")
    snap = status_json(tmp_path)
    assert snap["orphans_reaped"] == 10000, snap
    crash = snap["services"]["crash"]
    recorded = count_lines(crashes, "crash")
    assert crash["state"] == "running", crash
    assert crash["restarts"] == recorded, (crash, recorded)
    assert count_lines(starts, "start") == recorded + 1
    assert crash["last_exit"] == 3, crash
    exited = [line for line in proc.out.lines if "crash: exited (status 3); restart" in line]
    assert len(exited) == recorded, exited[-3:]
    assert_no_zombies(proc)
    proc.signal(signal.SIGTERM)
    code, out, _ = proc.finish(15)
    assert_no_traceback(out)
    assert f"pyinit: report: crash: stopped (status 143), {recorded} restarts" in out, out[-2000:]
    assert code == 0, out[-2000:]


DAEMON = """
import os, signal, sys, time
log = sys.argv[1]
if os.fork():
    sys.exit(0)          # the service's own process: exits at once
os.setsid()
if os.fork():
    os._exit(0)          # the session leader goes too: the daemon is an orphan
def on_term(signum, frame):
    with open(log, "a") as f:
        f.write("daemon TERM\\n")
    os._exit(0)
signal.signal(signal.SIGTERM, on_term)
with open(log, "a") as f:
    f.write(f"daemon up {os.getpid()}\\n")
while True:
    signal.pause()
"""

ESCAPER = """
import os, signal, sys
log = sys.argv[1]
if os.fork() == 0:
    os.setsid()          # out of the service's process group and session
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(log, "a") as f:
        f.write(f"escaped up {os.getpid()}\\n")
    while True:
        signal.pause()
signal.pause()           # the service itself: dies of its stop signal
"""


@pytest.mark.timeout(20)
def test_daemon_and_escaped_process_swept(cli: Runner, tmp_path: Path) -> None:
    """A service that daemonizes (double fork, setsid, its parent exits 0) and one
    whose child calls setsid to leave the service's process group: neither is
    reached by stopping a service, so on shutdown the final sweep finds them. The
    daemon gets SIGTERM (it records it); the escaped one ignores SIGTERM and is
    SIGKILLed after the sweep's grace, with a log line for each step. No zombie;
    exit 0 (the services themselves stopped cleanly)."""
    log = tmp_path / "log"
    config = write_config(
        tmp_path,
        f"""
        settings: {{shutdown_timeout: 10s}}
        services:
          daemon:
            command: {argv(PYTHON, "-c", DAEMON, log)}
          escaper:
            command: {argv(PYTHON, "-c", ESCAPER, log)}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    wait_line(proc.out, r"^pyinit: daemon: exited \(status 0\)$")
    lines = wait_until(
        lambda: [x for x in file_lines(log) if " up " in x] if len(file_lines(log)) >= 2 else None,
        "daemon and escaped process up",
    )
    assert sorted(line.split()[0] for line in lines) == ["daemon", "escaped"], lines
    proc.signal(signal.SIGTERM)
    code, out, _ = proc.finish(15)
    assert_no_traceback(out)
    assert "pyinit: escaper: stopped in" in out, out
    assert "pyinit: 2 leftover process(es) sent SIGTERM; SIGKILL in 2.0s" in out, out
    assert "pyinit: sent SIGKILL to 1 process(es)" in out, out
    assert "daemon TERM" in file_lines(log), file_lines(log)
    assert code == 0, out


@pytest.mark.timeout(20)
def test_hanging_probe_leaves_nothing(cli: Runner, tmp_path: Path) -> None:
    """An exec healthcheck that hangs (``sleep 1000``, timeout 300ms) again and again:
    each try is killed at its timeout, so at most one probe process exists at any
    moment, none is left over, no zombie piles up and pyinit's file descriptors do
    not grow. The verdict is logged once: ``unhealthy (3 failures: timed out after
    0.3s (killed)); restart: no, left running``. SIGTERM exits 0."""
    config = write_config(
        tmp_path,
        """
        services:
          hang:
            command: ["sleep", "1006"]
            healthcheck:
              test: ["CMD", "sleep", "1000"]
              interval: 50ms
              timeout: 300ms
              retries: 3
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    seen: list[int] = []
    fds: list[int] = []
    while len(seen) < 8:
        probe = one_live(proc, "sleep 1000", other_than=seen[-1] if seen else 0)
        if not seen or probe != seen[-1]:
            seen.append(probe)
            # the least of a few looks: a probe starting holds a few fds for a moment
            fds.append(min(fd_count(proc.init_pid) for _ in range(5)))
        assert len(live(proc, "sleep 1000")) <= 1, "two probes alive at once"
    wait_line(
        proc.out,
        r"^pyinit: hang: unhealthy \(3 failures: timed out after 0\.3s \(killed\)\); "
        r"restart: no, left running$",
    )
    # A leak grows by at least one fd per probe: 6 or more over these 6 probes.
    assert max(fds[2:]) - min(fds[2:]) <= 2, f"pyinit's fds grew: {fds}"
    assert_no_zombies(proc)
    assert status_json(tmp_path)["services"]["hang"]["health"] == "unhealthy"
    proc.signal(signal.SIGTERM)
    code, out, _ = proc.finish()
    assert_no_traceback(out)
    assert out.count("unhealthy") == 1, out
    assert code == 0, out


@pytest.mark.timeout(30)
def test_injected_handler_fault(cli: Runner, tmp_path: Path) -> None:
    """Forwarding SIGWINCH raises: tests/helpers/inject_fault/sitecustomize.py, put on
    pyinit's PYTHONPATH, makes the real signal sender (the supervisor's seam) raise
    for SIGWINCH; pyinit has no test hook of its own. pyinit logs ``internal error
    (continuing)`` with the traceback and goes on: it answers ``pyinit status``, and
    a SIGCHLD read in the same batch as the faulty signal is still handled, so the
    exit of a service killed meanwhile is not lost: it is restarted. (pyinit is
    stopped while the signals arrive; on SIGCONT the kernel runs the pending
    handlers from the highest number down, so WINCH (28) is read before CHLD (17).)
    SIGTERM exits 0."""
    config = write_config(
        tmp_path,
        f"""
        services:
          victim:
            command: ["sleep", "1007"]{FAST_RESTART}
        """,
    )
    inject = Path(__file__).parents[1] / "helpers" / "inject_fault"
    env = {**runtime_env(tmp_path), "PYTHONPATH": str(inject)}
    proc = cli.start(["-c", str(config)], env=env, stderr=subprocess.STDOUT)
    assert proc.out is not None
    victim = one_live(proc, "sleep 1007")
    proc.signal(signal.SIGWINCH)
    wait_line(proc.out, r"^pyinit: internal error \(continuing\):$")
    wait_line(proc.out, r"^RuntimeError: injected fault$")
    assert status_json(tmp_path)["services"]["victim"]["state"] == "running"
    # SIGCHLD and SIGWINCH pending while pyinit is stopped arrive in one batch.
    proc.signal(signal.SIGSTOP)
    wait_until(lambda: open(f"/proc/{proc.init_pid}/stat").read().split()[2] == "T", "stop")
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim in [p for p, _, _ in zombies(proc)], "victim a zombie")
    proc.signal(signal.SIGWINCH)
    proc.signal(signal.SIGCONT)
    wait_line(proc.out, r"^pyinit: victim: exited \(killed by SIGKILL\); restart 1 in ", 3)
    one_live(proc, "sleep 1007", other_than=victim)
    snap = status_json(tmp_path)
    assert snap["services"]["victim"]["restarts"] == 1, snap
    assert_no_zombies(proc)
    proc.signal(signal.SIGTERM)
    code, out, _ = proc.finish()
    assert_no_traceback(out, injected=2)
    assert out.count("RuntimeError: injected fault") == 2, out
    assert code == 0, out


@pytest.mark.timeout(40)
def test_out_of_file_descriptors(cli: Runner, tmp_path: Path) -> None:
    """pyinit started with RLIMIT_NOFILE 24 and more services than that allows:
    those that cannot get their pipes fail to start with a clear line (``Too many
    open files``) and are retried by their restart policy; once the hogs exit, they
    run. Then the test takes pyinit's last fds with idle control-socket connections:
    a service killed meanwhile cannot be restarted (again a clear line, retried),
    the healthcheck fails its tries without dying, a failed accept is logged once
    instead of spinning; when the connections go, everything recovers: the service
    runs again, probes pass again, ``pyinit status`` answers. No crash, no zombie,
    SIGTERM exits 0."""
    probes = tmp_path / "probes"
    slow_restart = FAST_RESTART.replace("100ms", "1s")
    hogs = "".join(
        f"""
          hog{i}:
            command: {argv(*sh(f"echo hog {i}; sleep 1"))}"""
        for i in range(6)
    )
    lates = "".join(
        f"""
          late{i}:
            command: ["sleep", "100{i}"]{slow_restart}"""
        for i in range(4)
    )
    config = write_config(
        tmp_path,
        f"""
        services:{hogs}{lates}
          probed:
            command: ["sleep", "1010"]{FAST_RESTART}
            healthcheck:
              test: ["CMD", "sh", "-c", "echo p >> {probes}"]
              interval: 100ms
              timeout: 2s
              retries: 1000
        """,
    )
    proc = cli.start(
        ["-c", str(config)],
        program=["prlimit", "--nofile=24:24", *entry_point()],
        env=runtime_env(tmp_path),
        stderr=subprocess.STDOUT,
    )
    out = proc.out
    assert out is not None
    wait_line(out, r"^pyinit: late\d: exited \(cannot start: .*Too many open files\); restart 1 ")
    for i in range(4):
        one_live(proc, f"sleep 100{i}")
    one_live(proc, "sleep 1010")
    wait_until(lambda: count_lines(probes, "p"), "a probe passing")
    # Take every fd pyinit has left with connections that send nothing; more wait in
    # the backlog and take whatever pyinit frees, for as long as they are open.
    mark = len(out.lines)
    path = str(tmp_path / "rt" / "control.sock")
    conns = []
    for _ in range(40):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        conns.append(conn)
    wait_line(out, r"^pyinit: control socket: accept failed: .*Too many open files", start=mark)
    victim = one_live(proc, "sleep 1000")
    mark = len(out.lines)
    os.kill(victim, signal.SIGKILL)
    wait_line(out, r"^pyinit: late0: exited \(killed by SIGKILL\)", start=mark)
    wait_line(out, r"^pyinit: late0: exited \(cannot start: .*Too many open files", start=mark)
    before = count_lines(probes, "p")
    for conn in conns:
        conn.close()
    one_live(proc, "sleep 1000", other_than=victim)
    wait_until(lambda: count_lines(probes, "p") > before + 2, "probes passing again")
    snap = status_json(tmp_path)
    assert snap["services"]["probed"]["health"] == "healthy", snap
    for i in range(4):
        assert snap["services"][f"late{i}"]["state"] == "running", snap
    assert_no_zombies(proc)
    proc.signal(signal.SIGTERM)
    code, text, _ = proc.finish()
    assert_no_traceback(text)
    assert text.count("accept failed") == 1, text
    assert code == 0, text
