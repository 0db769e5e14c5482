"""A terminal a person would look at: a detached tmux session of a given size,
keys sent with ``send-keys`` and the screen read with ``capture-pane``.

A screen has no event to wait on, so ``wait_for`` polls the captured text (every
50 ms, with a deadline).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.helpers.deadlines import DEFAULT_TIMEOUT


class Pane:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    @classmethod
    def start(
        cls,
        socket: Path,
        argv: Sequence[str],
        env: Mapping[str, str],
        width: int = 80,
        height: int = 24,
    ) -> Pane:
        """Run ``argv`` in a new session of a tmux server of its own, listening on
        ``socket``; when it ends the pane says ``EXIT=<code>`` and stays, so a test
        can read how it ended."""
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed (apt-get install tmux; .ci/run does)")
        pane = cls(str(socket))
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"env {exports} {shlex.join(argv)}; echo EXIT=$?; exec sleep 600"
        pane.tmux(
            "-f", "/dev/null", "new-session", "-d", "-x", str(width), "-y", str(height),
            command,
        )  # fmt: skip
        return pane

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip()}")
        return done.stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "0", *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "0")

    def wait_for(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The screen, once a line of it matches ``pattern`` (re.search, per line)."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if regex.search(text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} not on screen within {timeout}s; screen:\n{text}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10, check=False
        )
