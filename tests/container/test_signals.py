"""`podman kill --signal`: HUP reloads the config, other signals reach the main
command."""

from __future__ import annotations

import pytest

from tests.helpers.podman import Containers, podman, workdir

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]

MAIN = (
    "import signal, time\n"
    "signal.signal(signal.SIGUSR1, lambda *_: print('main: got USR1', flush=True))\n"
    "print('main: ready', flush=True)\n"
    "while True: time.sleep(3600)\n"
)


def test_hup_reloads_changed_file(containers: Containers) -> None:
    with workdir() as work:
        config = work / "services.yaml"
        config.write_text("services:\n  first:\n    command: [sleep, '3600']\n")
        run = containers.run("-v", f"{work}:/cfg:ro", argv=["pyinit", "-c", "/cfg/services.yaml"])
        run.seen("first: started", timeout=60)
        config.write_text(
            "services:\n"
            "  first:\n    command: [sleep, '3600']\n"
            "  second:\n    command: [sh, -c, 'echo second: hello; exec sleep 3600']\n"
        )
        podman("kill", "--signal", "HUP", run.name)
        run.seen("second: hello", timeout=30)
        status = run.exec("pyinit", "status")
        assert "second" in status.stdout and "first" in status.stdout, status.stdout
        run.stop(grace=20)
        code, out = run.finish()
    assert code == 0, out


def test_usr1_reaches_main_command(containers: Containers) -> None:
    with workdir() as work:
        (work / "services.yaml").write_text("services:\n  helper:\n    command: [sleep, '3600']\n")
        run = containers.run(
            "-v", f"{work}:/cfg:ro",
            argv=["pyinit", "-c", "/cfg/services.yaml", "--", "python3", "-c", MAIN],
        )  # fmt: skip
        run.seen("main: ready", timeout=60)
        podman("kill", "--signal", "USR1", run.name)
        run.seen("main: got USR1", timeout=30)
        took = run.stop(grace=20)
        code, out = run.finish()
    assert code == 0, out  # stopped on request, died of the TERM sent: 0
    assert took < 10
