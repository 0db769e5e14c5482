"""Orphan storms in a real container: every orphan is reaped (no zombie in `ps`)
and pyinit's memory does not grow from one storm to the next."""

from __future__ import annotations

import re
import time

import pytest

from tests.helpers.podman import Container, Containers, workdir

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]

# 1,000 grandchildren: each child forks one that lives 20 ms and exits at once,
# so the grandchild is re-parented to PID 1 (pyinit) before it exits.
STORM = (
    "import os, time\n"
    "for _ in range(1000):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        if os.fork() == 0:\n"
    "            time.sleep(0.02)\n"
    "        os._exit(0)\n"
    "    os.waitpid(pid, 0)\n"
    "print('storm: 1000 orphans made', flush=True)\n"
)


def zombies(run: Container) -> list[str]:
    ps = run.exec("ps", "-eo", "stat=,pid=,ppid=,comm=")
    assert ps.returncode == 0, ps.stderr
    return [line for line in ps.stdout.splitlines() if line.split()[0].startswith("Z")]


def no_zombies(run: Container, timeout: float = 30) -> None:
    """`ps` in the container until it shows no zombie (reaping is asynchronous to
    `podman exec`; no event to wait on from outside)."""
    deadline = time.monotonic() + timeout
    while (found := zombies(run)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not found, f"zombies after {timeout}s: {found}"


def rss_kib(run: Container) -> int:
    status = run.exec("cat", "/proc/1/status").stdout
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match.group(1))


def test_orphan_storm(containers: Containers) -> None:
    with workdir() as work:
        (work / "storm.py").write_text(STORM)
        (work / "services.yaml").write_text(
            "services:\n"
            "  storm:\n    type: oneshot\n    command: [python3, /cfg/storm.py]\n"
            "  steady:\n    command: [sleep, '3600']\n"
        )
        run = containers.run("-v", f"{work}:/cfg:ro", argv=["pyinit", "-c", "/cfg/services.yaml"])
        rss = []
        for n in range(3):
            run.seen("storm: 1000 orphans made", count=n + 1, timeout=120)
            run.seen(r"pyinit: storm: completed", count=n + 1, timeout=60)
            no_zombies(run)
            rss.append(rss_kib(run))
            if n < 2:
                again = run.exec("pyinit", "restart", "storm")
                assert again.returncode == 0, again.stdout + again.stderr
        print(f"pyinit RSS after each storm (KiB): {rss}")
        # The first storm may warm allocator pools; after it, flat (< 1 MiB growth).
        assert rss[2] - rss[1] < 1024, rss
        run.stop(grace=20)
        code, out = run.finish()
    assert code == 0, out
