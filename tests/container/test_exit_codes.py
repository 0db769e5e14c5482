"""Wrapper mode as the PID 1 of a real container: the exit status of `podman run`
is the command's, 128+N when signal N killed it, 127/126 when it cannot run."""

from __future__ import annotations

import pytest

from tests.helpers.podman import Containers

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["sh", "-c", "exit 7"], 7, ""),
        (["sh", "-c", "kill -KILL $$"], 137, ""),
        (["sh", "-c", "kill -TERM $$"], 143, ""),
        (["no-such-command"], 127, "no-such-command"),
        (["/etc/hostname"], 126, "/etc/hostname"),
    ],
    ids=["exit-7", "killed-by-KILL", "killed-by-TERM", "not-found", "not-executable"],
)
def test_exit_status(containers: Containers, argv: list[str], code: int, message: str) -> None:
    """pyinit is PID 1 (checked by the command itself for the plain exit)."""
    if code == 7:
        argv = ["sh", "-c", 'test "$(cat /proc/1/comm)" = pyinit || exit 99; exit 7']
    run = containers.run(argv=["pyinit", "--", *argv])
    status, out = run.finish()
    assert status == code, out
    assert message in out
    assert "Traceback" not in out
