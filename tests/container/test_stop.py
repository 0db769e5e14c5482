"""`podman stop` (SIGTERM, then the runtime's SIGKILL after -t seconds) against
pyinit as PID 1: the times measured here are printed in the run's summary."""

from __future__ import annotations

import pytest

from tests.helpers.podman import Containers, workdir

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]

APP = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (print('app: SIGTERM', flush=True), sys.exit(42)))\n"
    "print('app: ready', flush=True)\n"
    "while True: time.sleep(3600)\n"
)


def test_wrapper_app_handles_sigterm(containers: Containers, report_stop: list[str]) -> None:
    """The app's own exit code (42) is the container's, and stop is prompt."""
    run = containers.run(argv=["pyinit", "--", "python3", "-c", APP])
    run.seen("app: ready", timeout=60)
    took = run.stop(grace=30)
    status, out = run.finish()
    assert status == 42, out
    assert "app: SIGTERM" in out
    assert took < 10, f"podman stop took {took:.2f}s"
    report_stop.append(f"wrapper, app exits on SIGTERM: {took:.2f}s (exit {status})")


def test_supervisor_example(containers: Containers, report_stop: list[str]) -> None:
    """services.example.yaml: everything runs, then stop exits 0 well under the
    grace period (the worker stops on SIGINT, the web server on SIGTERM)."""
    run = containers.run(argv=["pyinit", "-c", "/etc/pyinit/services.example.yaml"])
    run.seen(r"worker.*poll \d+: 200 'hello from pyinit'", timeout=60)
    status = run.exec("pyinit", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "web" in status.stdout and "running" in status.stdout, status.stdout
    took = run.stop(grace=30)
    code, out = run.finish()
    assert code == 0, out
    assert took < 10, f"podman stop took {took:.2f}s of a 30s grace"
    assert "Traceback" not in out
    report_stop.append(f"supervisor, services.example.yaml: {took:.2f}s (exit {code})")


def test_service_ignoring_sigterm(containers: Containers, report_stop: list[str]) -> None:
    """A service that ignores SIGTERM is SIGKILLed at its stop_grace_period (2 s);
    the container exits then, long before podman's own SIGKILL at -t 20."""
    with workdir() as work:
        (work / "services.yaml").write_text(
            "services:\n"
            "  stubborn:\n"
            "    command: [sh, -c, 'trap \"\" TERM; echo stubborn: up; "
            "while :; do sleep 1; done']\n"
            "    stop_grace_period: 2s\n"
            "  polite:\n"
            "    command: [sleep, '3600']\n"
        )
        run = containers.run("-v", f"{work}:/cfg:ro", argv=["pyinit", "-c", "/cfg/services.yaml"])
        run.seen("stubborn: up", timeout=60)
        run.seen("polite: started", timeout=60)
        took = run.stop(grace=20)
        code, out = run.finish()
    assert 1.9 < took < 15, f"podman stop took {took:.2f}s ({out})"
    assert "stubborn: stopped in" in out and "SIGKILL" in out, out
    assert code == 137, out  # docs/semantics.md#exit-code: had to be SIGKILLed
    report_stop.append(f"supervisor, service ignoring SIGTERM (grace 2s): {took:.2f}s "
                       f"(exit {code})")  # fmt: skip
