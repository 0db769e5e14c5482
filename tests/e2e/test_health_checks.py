"""Healthchecks end to end: liveness verdicts and what pyinit does with them.

An exec check that starts failing makes a longrun unhealthy after ``retries``
failures and restarts it (or, with restart: no, leaves it running and marked
unhealthy); a hung check is killed at its timeout; a missed sd_notify watchdog
fails the service; ``service_healthy`` waits for the first passing check;
``pyinit health`` follows all of it through the status file; and an idle pyinit
with a long interval does not wake up.

Each test runs the installed CLI as PID 1 of a fresh PID namespace with its own
PYINIT_RUNTIME_DIR, and waits on pyinit's output lines (stderr merged into stdout).
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.cli import PYTHON, Runner, helper
from tests.helpers.commands import argv, sdnotify, sh
from tests.helpers.deadlines import wait_for_count, wait_line
from tests.helpers.procs import descendants, proc_status
from tests.helpers.supervisor import (
    make_fifo,
    pyinit_health,
    service_status,
    start_pyinit,
    wait_status,
    write_config,
    write_fifo,
)

SLEEPER = argv(PYTHON, "-c", "import signal\nwhile True: signal.pause()")


def file_check(path: Path, retries: int = 2, extra: str = "") -> str:
    """A healthcheck that passes while ``path`` exists (says ``gone`` when it fails)."""
    test = argv("CMD-SHELL", f"test -e {path} || {{ echo gone; exit 1; }}")
    return f"{{test: {test}, interval: 100ms, timeout: 2s, retries: {retries}{extra}}}"


@pytest.mark.timeout(30)
def test_unhealthy_service_is_restarted(cli: Runner, tmp_path: Path) -> None:
    """restart: on-failure: once ``retries`` consecutive checks failed the service is
    reported ``unhealthy (N failures: ...); restarting``, stopped and started again
    under a new pid; when the check passes again it is healthy again."""
    ok = tmp_path / "ok"
    ok.touch()
    config = write_config(
        tmp_path,
        f"""
        services:
          web:
            command: {SLEEPER}
            restart: on-failure
            backoff: {{initial: 100ms, multiplier: 1, jitter: 0}}
            healthcheck: {file_check(ok)}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    first = proc.out.expect(r"web: started \(pid (\d+)\)")[1]
    proc.out.expect(r"web: healthy \(exit 0\)")
    wait_status(tmp_path, "web", state="running", ready=True, health="healthy")

    ok.unlink()
    proc.out.expect(r"web: unhealthy \(2 failures: exit 1: gone\); restarting")
    ok.touch()
    proc.out.expect(r"web: exited \(unhealthy \(2 failures: exit 1: gone\)\); restart 1 in")
    second = proc.out.expect(r"web: started \(pid (\d+)\)")[1]
    assert second != first
    proc.out.expect(r"web: healthy \(exit 0\)")
    entry = wait_status(tmp_path, "web", state="running", health="healthy")
    assert entry["restarts"] == 1

    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.lines


@pytest.mark.timeout(30)
def test_pyinit_health_follows_the_services(cli: Runner, tmp_path: Path) -> None:
    """``pyinit health`` (same PYINIT_RUNTIME_DIR) exits 1 while a service is not ready,
    0 once every service is ready and healthy, 1 again when a healthcheck fails (with
    restart: no the service is left running, marked unhealthy, same pid), 0 after it
    recovers, and 1 once pyinit has exited."""
    fifo = make_fifo(tmp_path, "go")
    ok = tmp_path / "ok"
    ok.touch()
    config = write_config(
        tmp_path,
        f"""
        services:
          gated:
            command: {argv(*helper("gated.py", "fd", fifo, tmp_path / "marker", 0))}
            ready: {{fd: 3}}
          checked:
            command: {SLEEPER}
            restart: "no"
            healthcheck: {file_check(ok)}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    proc.out.expect(r"gated +\| server waiting")
    pid = wait_status(tmp_path, "checked", health="healthy")["pid"]
    code, out = pyinit_health(tmp_path)
    assert code == 1 and "unhealthy: gated: starting" in out, out

    write_fifo(fifo, "go\n")
    wait_status(tmp_path, "gated", state="running", ready=True)
    code, out = pyinit_health(tmp_path)
    assert code == 0 and out.strip() == "healthy: 2 services", out

    ok.unlink()
    proc.out.expect(r"checked: unhealthy \(2 failures: exit 1: gone\); restart: no, left running")
    entry = wait_status(tmp_path, "checked", health="unhealthy")
    assert entry["state"] == "running" and entry["pid"] is not None
    code, out = pyinit_health(tmp_path)
    assert code == 1 and "unhealthy: checked: unhealthy (exit 1: gone)" in out, out

    ok.touch()
    proc.out.expect(r"checked: healthy \(exit 0\)")
    wait_status(tmp_path, "checked", health="healthy")
    code, out = pyinit_health(tmp_path)
    assert code == 0, out
    assert service_status(tmp_path, "checked")["pid"] == pid  # never restarted
    assert sum("checked: started" in line for line in proc.out.lines) == 1

    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.lines
    code, out = pyinit_health(tmp_path)
    assert code == 1 and out.startswith("unhealthy: "), out


@pytest.mark.timeout(30)
def test_hung_check_is_killed_at_its_timeout(cli: Runner, tmp_path: Path) -> None:
    """A check that hangs (``sleep 100`` under sh) is killed, whole process group, at
    its ``timeout`` and counts as a failure (``timed out after 0.3s (killed)``); no
    killed check is left in the namespace (every process there descends from pyinit,
    so the host sees them all): at most the one check in flight remains."""
    config = write_config(
        tmp_path,
        f"""
        services:
          web:
            command: {SLEEPER}
            restart: "no"
            healthcheck:
              test: ["CMD-SHELL", "sleep 100; true"]
              interval: 100ms
              timeout: 300ms
              retries: 2
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    began = time.monotonic()
    proc.out.expect(
        re.escape("web: unhealthy (2 failures: timed out after 0.3s (killed)); restart: no")
    )
    # two checks of 0.3 s each, 0.1 s apart (the first one 0.1 s after the start)
    assert time.monotonic() - began >= 0.8
    sleeps = [cmd for _, cmd in descendants(proc.init_pid) if cmd == "sleep 100"]
    shells = [cmd for _, cmd in descendants(proc.init_pid) if "sleep 100; true" in cmd]
    assert len(sleeps) <= 1 and len(shells) <= 1, descendants(proc.init_pid)
    assert service_status(tmp_path, "web")["health_detail"] == "timed out after 0.3s (killed)"

    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.lines
    assert not [p for p, cmd in descendants(proc.init_pid) if "sleep 100" in cmd]


@pytest.mark.timeout(30)
def test_watchdog_miss_restarts_or_fails(cli: Runner, tmp_path: Path) -> None:
    """``ready: {notify: true, watchdog: 500ms}``: the service gets WATCHDOG_USEC; while
    it sends WATCHDOG=1 (every 125 ms) nothing happens; 500 ms after the last one it is
    stopped as failing, naming the watchdog: restarted with restart: on-failure (new
    pid), failed with restart: no."""
    config = write_config(
        tmp_path,
        f"""
        services:
          retried:
            command: {sdnotify("--watchdog", 3)}
            ready: {{notify: true, watchdog: 500ms}}
            restart: on-failure
            backoff: {{initial: 100ms, multiplier: 1, jitter: 0}}
          given_up:
            command: {sdnotify("--watchdog", 3)}
            ready: {{notify: true, watchdog: 500ms}}
            restart: "no"
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    reader = proc.out
    first = reader.expect(r"retried: started \(pid (\d+)\)")[1]
    reader.expect(r"retried: exited \(watchdog: no WATCHDOG=1 within 0\.5s\); restart 1 in")
    second = reader.expect(r"retried: started \(pid (\d+)\)")[1]
    assert second != first

    def at(pattern: str) -> int:
        return wait_line(reader, pattern)

    for name in ("retried", "given_up"):
        ready = at(rf"{name}: ready \(notify READY=1")
        assert ready < at(rf"{name} +\| sdnotify: sent WATCHDOG=1 \(3\)")
    assert at(r"retried +\| sdnotify: watchdog stopped") < at(r"retried: exited \(watchdog")
    failed = at(r"given_up: failed \(watchdog: no WATCHDOG=1 within 0\.5s\)$")
    assert at(r"given_up +\| sdnotify: watchdog stopped") < failed
    wait_status(tmp_path, "given_up", state="failed")

    proc.signal(signal.SIGTERM)
    proc.finish()


@pytest.mark.timeout(30)
def test_service_healthy_waits_for_first_passing_check(cli: Runner, tmp_path: Path) -> None:
    """``condition: service_healthy``: the dependant starts only after the first check
    that passes. Failures inside start_period do not count (retries: 1, yet the
    service stays ``starting``, not unhealthy); the first pass also makes a service
    without ``ready:`` ready."""
    probes = tmp_path / "probes"
    ok = tmp_path / "ok"
    test = argv("CMD-SHELL", f"echo probe >> {probes}; test -e {ok}")
    config = write_config(
        tmp_path,
        f"""
        services:
          db:
            command: {SLEEPER}
            healthcheck:
              test: {test}
              interval: 30s
              start_period: 20s
              start_interval: 100ms
              retries: 1
          app:
            command: {argv(*sh(f"if [ -e {ok} ]; then echo 'app saw ok'; fi; exec sleep 1000"))}
            depends_on: {{db: {{condition: service_healthy}}}}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    wait_for_count(probes, 3)
    entry = service_status(tmp_path, "db")
    assert entry["health"] == "starting" and entry["ready"] is False, entry
    assert service_status(tmp_path, "app")["state"] == "pending"

    ok.touch()
    proc.out.expect(r"db: ready \(healthcheck exec /bin/sh -c .* after")
    proc.out.expect(r"db: healthy")
    proc.out.expect(r"app +\| app saw ok")
    wait_status(tmp_path, "db", state="running", ready=True, health="healthy")

    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.lines


def voluntary_switches(pid: int) -> int:
    return int(proc_status(pid)["voluntary_ctxt_switches"])


@pytest.mark.timeout(30)
def test_idle_pyinit_does_not_poll(cli: Runner, tmp_path: Path) -> None:
    """With a 30 s healthcheck interval and nothing else happening, pyinit sleeps:
    its voluntary context switches stay flat for a second (no polling timer)."""
    config = write_config(
        tmp_path,
        f"""
        services:
          web:
            command: {argv(*sh("echo up; exec sleep 1000"))}
            healthcheck: {{test: [CMD, "true"], interval: 30s}}
            ready: {{log_line: up}}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    proc.out.expect(r"web: ready \(log line")
    wait_status(tmp_path, "web", state="running", ready=True)
    pid = proc.init_pid
    before = voluntary_switches(pid)
    time.sleep(1.0)  # the measurement window itself
    after = voluntary_switches(pid)
    assert after - before <= 1, f"pyinit woke up {after - before} times while idle"
    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.lines


@pytest.mark.timeout(30)
def test_probes_run_in_the_services_environment(cli: Runner, tmp_path: Path) -> None:
    """Exec probes (a ready probe and a healthcheck) see the service's own
    environment; a service without probes keeps no copy of it (memory), which
    must not take it from those that have them."""
    check = argv("CMD-SHELL", 'test "$MARK" = two || { echo "MARK=$MARK"; exit 1; }')
    ready = argv("sh", "-c", 'test "$MARK" = two')
    config = write_config(
        tmp_path,
        f"""
        services:
          plain:
            command: {SLEEPER}
            environment: {{MARK: one}}
          web:
            command: {SLEEPER}
            environment: {{MARK: two}}
            ready: {{exec: {ready}, interval: 100ms}}
            healthcheck: {{test: {check}, interval: 100ms, timeout: 2s, retries: 1}}
        """,
    )
    proc = start_pyinit(cli, tmp_path, config)
    assert proc.out is not None
    proc.out.expect(r"web: ready \(exec sh -c ")
    proc.out.expect(r"web: healthy \(exit 0\)")
    wait_status(tmp_path, "web", state="running", ready=True, health="healthy")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
