"""`podman run -it` through a real pty (a tmux pane): Ctrl-C reaches the shell's
foreground job and not pyinit, Ctrl-Z and `fg` work, the container exits with the
shell's code. The screen has no event to wait on: it is polled with deadlines."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.helpers.podman import RUN, SUITE_IMAGE, Containers, podman

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]


class Pane:
    def __init__(self, session: str) -> None:
        self.session = session

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True, timeout=10)

    def screen(self) -> str:
        done = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-t", self.session, "-S", "-500"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return done.stdout

    def wait(self, pattern: str, count: int = 1, timeout: float = 60) -> str:
        """Until ``pattern`` occurs ``count`` times on the screen; the screen."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if len(re.findall(pattern, text, re.M)) >= count:
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} x{count} not on screen after {timeout}s:\n{text}")
            time.sleep(0.05)


@pytest.fixture
def pane(containers: Containers) -> Iterator[tuple[Pane, str]]:
    name = containers.name()
    session = f"pyinit-{name}"
    argv = [*RUN, "-it", "--name", name, "-e", "PS1=box$ ", SUITE_IMAGE,
            "pyinit", "-v", "--", "bash", "--norc", "--noprofile", "-i"]  # fmt: skip
    shell = f"{shlex.join(argv)}; echo container-exit=$?; sleep 600"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "50", shell],
        check=True, timeout=30,
    )  # fmt: skip
    try:
        yield Pane(session), name
    finally:
        print(Pane(session).screen())
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, timeout=10)


FOREGROUND = r"[SR]\S*\+"  # running or sleeping, in the terminal's foreground group


def wait_process(name: str, comm: str, state: str = FOREGROUND) -> None:
    """Until `ps` in the container shows ``comm`` with a STAT matching ``state``. Keys
    typed before a job owns the terminal can be lost or read by the shell, so the
    test types only once `ps` shows the job in the foreground."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ps = podman("exec", name, "ps", "-eo", "stat=,comm=", check=False).stdout
        if any(f.split()[1:] == [comm] and re.match(state, f) for f in ps.splitlines()):
            return
        time.sleep(0.1)
    pytest.fail(f"no {comm} (STAT {state}) in the container: {ps}")


def test_interactive_shell(pane: tuple[Pane, str]) -> None:
    term, name = pane
    term.wait(r"^box\$ ")
    # Ctrl-C: the foreground `sleep` dies of SIGINT; bash and pyinit stay.
    term.keys("sleep 1000", "Enter")
    wait_process(name, "sleep")
    term.keys("C-c")
    term.wait(r"^box\$ ", count=2)
    term.keys("echo rc=$?", "Enter")
    term.wait(r"^rc=130$")
    # Ctrl-Z stops the foreground job, `fg` resumes it with the terminal.
    term.keys("cat", "Enter")
    wait_process(name, "cat")
    term.keys("C-z")
    term.wait(r"Stopped\s+cat")
    wait_process(name, "cat", state="T")
    term.keys("fg", "Enter")
    wait_process(name, "cat")
    term.keys("resumed-ok", "Enter")
    term.wait(r"^resumed-ok$", count=2)  # the terminal's echo, then cat's copy
    term.keys("C-d")
    term.wait(r"^box\$ ", count=5)
    term.keys("exit 7", "Enter")
    screen = term.wait(r"^container-exit=\d+")
    assert "container-exit=7" in screen, screen
    assert "SIGINT received" not in screen and "SIGTSTP received" not in screen, screen
