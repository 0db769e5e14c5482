"""`--pids-limit 64` and a service that forks until the kernel refuses: pyinit
stays up, says plainly that its own starts failed to fork, and stops cleanly."""

from __future__ import annotations

import pytest

from tests.helpers.podman import Containers, workdir

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]

FORKER = (
    "import os, time\n"
    "n = 0\n"
    "try:\n"
    "    while True:\n"
    "        if os.fork() == 0:\n"
    "            time.sleep(3600)\n"
    "            os._exit(0)\n"
    "        n += 1\n"
    "except OSError as exc:\n"
    "    print(f'forker: refused after {n} forks: {exc.strerror}', flush=True)\n"
    "time.sleep(3600)\n"
)


def test_fork_bomb_under_pids_limit(containers: Containers) -> None:
    with workdir() as work:
        (work / "forker.py").write_text(FORKER)
        (work / "services.yaml").write_text(
            "services:\n"
            "  forker:\n"
            "    command: [python3, /cfg/forker.py]\n"
            "    ready: {log_line: 'refused after'}\n"
            "  late:\n"
            "    command: [sleep, '3600']\n"
            "    depends_on: {forker: {condition: service_ready}}\n"
            "    restart: always\n"
            "    backoff: {initial: 100ms, max: 500ms}\n"
        )
        run = containers.run(
            "--pids-limit", "64", "-v", f"{work}:/cfg:ro",
            argv=["pyinit", "-c", "/cfg/services.yaml"],
        )  # fmt: skip
        run.seen(r"forker: refused after \d+ forks", timeout=60)
        # pyinit's own start of `late` cannot fork: said once per attempt, plainly.
        failed = r"late: exited \(cannot run 'sleep': Resource temporarily unavailable\); restart"
        run.seen(failed, count=3, timeout=30)  # still alive, still retrying
        took = run.stop(grace=20)
        code, out = run.finish()
    assert took < 15, f"podman stop took {took:.2f}s"
    assert "Traceback" not in out, out
    assert code == 0, out
