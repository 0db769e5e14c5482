"""Supervisor mode end to end: scheduled jobs (``schedule:`` on a oneshot), with
pyinit as PID 1 of a fresh PID namespace. ``@every 1s`` drives the scheduler; the
cron arithmetic is unit-tested with a fixed clock (tests/unit/test_schedule.py)."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import promtext
from tests.helpers.cli import Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import wait_for_count, wait_until
from tests.helpers.net import free_port, get
from tests.helpers.procs import proc_status
from tests.helpers.supervisor import ok, start, status, write_config


def metrics(port: int) -> dict[str, promtext.Family]:
    code, _, body = get(port, "/metrics")
    assert code == 200
    return promtext.parse(body.decode())


@pytest.mark.timeout(40)
def test_every_runs_again_and_reports(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """An ``@every 1s`` job runs again and again while the container keeps running
    (a config of jobs does not end when a run completes); ``pyinit status`` shows
    its last result and next run; /metrics counts runs by result and has the last
    success time; a non-critical failing job leaves the container running."""
    runs = tmp_path / "runs"
    port = free_port()
    config = write_config(
        tmp_path,
        f"""
        services:
          tick:
            type: oneshot
            command: {argv(*sh(f"echo run >> {runs}"))}
            schedule: "@every 1s"
          broken:
            type: oneshot
            command: {argv(*sh("exit 3"))}
            schedule: "@every 1s"
        """,
    )
    proc = start(cli, config, "--http", f"127.0.0.1:{port}", env=env)
    assert proc.err is not None
    wait_for_count(runs, 3, timeout=15)
    proc.err.expect(r"^pyinit: broken: failed \(status 3\)")
    proc.err.expect(r"^pyinit: broken: failed \(status 3\)")

    services = status(env)
    job = services["tick"]["job"]
    assert job["schedule"] == "@every 1s"
    assert job["last_result"] == "success" and job["last_exit"] == 0
    assert abs(job["next_run"] - time.time()) <= 1.5  # within one interval (a loaded CI)
    assert services["broken"]["job"]["last_result"] == "failure"
    assert services["broken"]["job"]["last_exit"] == 3
    table = ok(env, "status")
    assert "JOB" in table and "NEXT RUN" in table
    assert any(line.split()[:3] == ["tick", "@every", "1s"] for line in table.splitlines())
    assert "failure (exit 3)" in table

    # A scheduled job, failing or not, does not make the container unready.
    assert get(port, "/readyz")[0] == 200
    families = metrics(port)
    runs_total = families["pyinit_job_runs_total"]
    assert runs_total.type == "counter"
    assert runs_total.value(service="tick", result="success") >= 2
    assert runs_total.value(service="broken", result="failure") >= 2
    assert runs_total.value(service="broken", result="success") == 0
    last_success = families["pyinit_job_last_success_timestamp_seconds"].by("service")
    assert set(last_success) == {"tick"}  # broken never succeeded: no sample
    assert abs(last_success["tick"] - time.time()) < 5

    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err


@pytest.mark.timeout(40)
def test_run_still_going_is_skipped(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """concurrency: forbid (the default): a run due while the previous one is still
    going is skipped and logged, and counted as skipped."""
    starts = tmp_path / "starts"
    port = free_port()
    config = write_config(
        tmp_path,
        f"""
        services:
          slow:
            type: oneshot
            command: {argv(*sh(f"echo start >> {starts}; sleep 2.5"))}
            schedule: "@every 1s"
        """,
    )
    proc = start(cli, config, "--http", f"127.0.0.1:{port}", env=env)
    assert proc.err is not None
    proc.err.expect(r"^pyinit: slow: started")
    proc.err.expect(r"^pyinit: slow: run skipped: the previous run is still going")
    proc.err.expect(r"^pyinit: slow: completed")
    assert metrics(port)["pyinit_job_runs_total"].value(service="slow", result="skipped") >= 1
    assert len(starts.read_text().splitlines()) == 1
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err


@pytest.mark.timeout(40)
def test_replace_stops_the_old_run(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """concurrency: replace: the run still going gets its stop signal and a new run
    starts once it has stopped."""
    log = tmp_path / "log"
    script = f"echo start $$ >> {log}; trap 'echo stop $$ >> {log}; exit 0' TERM; "
    script += "while :; do sleep 0.1; done"
    config = write_config(
        tmp_path,
        f"""
        services:
          sticky:
            type: oneshot
            command: {argv(*sh(script))}
            schedule: "@every 1s"
            concurrency: replace
        """,
    )
    proc = start(cli, config, env=env)
    assert proc.err is not None
    proc.err.expect(r"^pyinit: sticky: replacing the run still going \(concurrency: replace\)")
    lines = wait_for_count(log, 3)
    first, stop, second = (line.split() for line in lines[:3])
    assert first[0] == "start" and stop == ["stop", first[1]] and second[0] == "start"
    assert second[1] != first[1]
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err


@pytest.mark.timeout(30)
def test_critical_job_failure_ends_the_container(cli: Runner, tmp_path: Path) -> None:
    """A failing scheduled job ends the container only with critical: true, with
    its exit code; it completes successfully first without ending anything."""
    flag = tmp_path / "ran-once"
    config = write_config(
        tmp_path,
        f"""
        services:
          check:
            type: oneshot
            command: {argv(*sh(f"if [ -e {flag} ]; then exit 4; fi; touch {flag}"))}
            schedule: "@every 1s"
            critical: true
          web:
            command: {argv("sleep", "1000")}
        """,
    )
    done = cli.run(["-c", str(config)], timeout=20)
    assert done.code == 4, done.err
    assert "check: completed" in done.err
    assert "check is critical and ended (failed); stopping the container with status 4" in (
        done.err
    )


@pytest.mark.timeout(30)
def test_cron_next_run_uses_tz(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """A cron expression is read in the container's time zone (TZ): status shows
    the next 03:00 of Asia/Tokyo. With only a @daily-like job, pyinit sleeps: no
    wake-ups while idle."""
    config = write_config(
        tmp_path,
        f"""
        services:
          nightly:
            type: oneshot
            command: {argv("true")}
            schedule: "0 3 * * *"
          web:
            command: {argv(*sh("echo up; exec sleep 1000"))}
        """,
    )
    proc = start(cli, config, env={**env, "TZ": "Asia/Tokyo"})
    assert proc.err is not None
    proc.err.expect(r"^pyinit: web: started")
    next_run = status(env)["nightly"]["job"]["next_run"]
    os.environ["TZ"], old = "Asia/Tokyo", os.environ.get("TZ")
    time.tzset()
    try:
        local = datetime.fromtimestamp(next_run)
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert (local.hour, local.minute, local.second) == (3, 0, 0)
    assert 0 < next_run - time.time() <= 86400

    pid = proc.init_pid
    # The status file settles within a loop pass; then nothing is due for hours.
    wait_until(lambda: proc_status(pid)["State"].startswith("S"), "pyinit asleep")
    before = int(proc_status(pid)["voluntary_ctxt_switches"])
    time.sleep(1.0)  # the measurement window itself
    after = int(proc_status(pid)["voluntary_ctxt_switches"])
    assert after - before <= 1, f"pyinit woke up {after - before} times while idle"
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err


@pytest.mark.timeout(60)
def test_reload_and_operator_stop(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """A reload that changes the schedule takes effect at once; ``pyinit stop JOB``
    pauses the schedule (due times are skipped, saying why) until ``pyinit start
    JOB``, which runs it at once."""
    runs = tmp_path / "runs"
    text = """
        services:
          job:
            type: oneshot
            command: {command}
            schedule: "{schedule}"
          web:
            command: {web}
        """
    values = {"command": argv(*sh(f"echo run >> {runs}")), "web": argv("sleep", "1000")}
    config = write_config(tmp_path, text.format(schedule="@daily", **values))
    proc = start(cli, config, env=env)
    assert proc.err is not None
    proc.err.expect(r"^pyinit: web: started")
    assert not runs.exists()

    write_config(tmp_path, text.format(schedule="@every 1s", **values))
    ok(env, "reload")
    wait_for_count(runs, 1)
    assert status(env)["job"]["job"]["schedule"] == "@every 1s"

    ok(env, "stop", "job")
    proc.err.expect(r"^pyinit: job: run skipped: stopped by an operator \(pyinit start resumes\)")
    assert status(env)["job"]["job"]["paused"] is True
    assert "paused" in ok(env, "status")
    count = len(runs.read_text().splitlines())
    ok(env, "start", "job")
    wait_for_count(runs, count + 2)  # at once, then on schedule again
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err
