"""The runtime's healthcheck running `pyinit health`: 0 while every service is
healthy, 1 once one fails its healthcheck."""

from __future__ import annotations

import time

import pytest

from tests.helpers.podman import Containers, podman, workdir

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]


def test_podman_healthcheck(containers: Containers) -> None:
    with workdir() as work:
        (work / "services.yaml").write_text(
            "services:\n"
            "  web:\n"
            "    command: [sleep, '3600']\n"
            "    restart: 'no'\n"
            "    healthcheck:\n"
            "      test: [CMD, sh, -c, 'test ! -e /tmp/sick']\n"
            "      interval: 200ms\n"
            "      retries: 1\n"
        )
        run = containers.run(
            "-v", f"{work}:/cfg:ro", "--health-cmd", "pyinit health",
            "--health-interval", "disable",
            argv=["pyinit", "-c", "/cfg/services.yaml"],
        )  # fmt: skip
        run.seen("web: healthy", timeout=60)
        healthy = podman("healthcheck", "run", run.name, check=False)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert run.exec("touch", "/tmp/sick").returncode == 0
        run.seen("web: unhealthy", timeout=30)
        # podman's verdict follows at its next run; no event to wait on but its answer.
        deadline = time.monotonic() + 30
        while (sick := podman("healthcheck", "run", run.name, check=False)).returncode == 0:
            assert time.monotonic() < deadline, "podman healthcheck run still says healthy"
            time.sleep(0.2)
        assert sick.returncode == 1, sick.stdout + sick.stderr
        run.stop(grace=20)
        code, out = run.finish()
    assert code == 0, out
