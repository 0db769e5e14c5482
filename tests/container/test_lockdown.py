"""Locked down as OpenShift runs images: read-only root, tmpfs /tmp, an arbitrary
uid with gid 0 and no passwd entry, no capabilities."""

from __future__ import annotations

import pytest

from tests.helpers.podman import Containers

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]

LOCKED = ["--read-only", "--tmpfs", "/tmp", "--user", "1000870000:0", "--cap-drop", "ALL"]


def test_supervisor_example_locked_down(containers: Containers) -> None:
    run = containers.run(*LOCKED, argv=["pyinit", "-c", "/etc/pyinit/services.example.yaml"])
    run.seen(r"worker.*poll \d+: 200 'hello from pyinit'", timeout=60)
    ids = run.exec("sh", "-c", "id -u; id -g; touch /x 2>/dev/null || echo read-only")
    assert ids.stdout.split() == ["1000870000", "0", "read-only"], ids.stdout + ids.stderr
    status = run.exec("pyinit", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "worker" in status.stdout and "running" in status.stdout, status.stdout
    health = run.exec("pyinit", "health")
    assert health.returncode == 0, health.stdout + health.stderr
    run.stop(grace=30)
    code, out = run.finish()
    assert code == 0, out
    assert "Traceback" not in out
