"""``pyinit top`` as a person sees it: run in a tmux pane (TERM=xterm, 80x24)
against a pyinit running as PID 1, driven with send-keys, read with capture-pane.
And the ways it refuses: no terminal, no pyinit, no Textual, an older pyinit."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import PYINIT, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.supervisor import boot, ctl, status
from tests.helpers.tmux import Pane

SERVICES = f"""
services:
  web:
    command: {argv(*sh("echo web says hello; echo web line two; exec sleep 1000"))}
  worker:
    command: {argv(*sh("echo worker started; exec sleep 1001"))}
    restart: always
    backoff: {{initial: 100ms}}
"""


@contextlib.contextmanager
def top(env: dict[str, str], **extra: str) -> Iterator[Pane]:
    runtime = {"PYINIT_RUNTIME_DIR": env["PYINIT_RUNTIME_DIR"], "TERM": "xterm", **extra}
    socket_path = Path(env["PYINIT_RUNTIME_DIR"]).parent / "tmux.sock"
    pane = Pane.start(socket_path, [*PYINIT, "top"], runtime)
    try:
        yield pane
    finally:
        pane.close()


def row(name: str, *cells: str) -> str:
    """A table row as captured: the name, then the given cells, blank-separated."""
    return r"^\s*" + r"\s+".join([name, *cells]) + r"(\s|$)"


@pytest.mark.timeout(60)
def test_top_end_to_end(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """The table shows each service; selecting a row follows its log; `r`
    restarts it (last exit 143, its start lines again), a SIGKILL sent with `k`
    brings an automatic restart (RESTARTS 1); it redraws when the terminal grows;
    `x` asks before stopping; `q` quits."""
    boot(cli, tmp_path, env, SERVICES, "web", "worker")
    with top(env) as pane:
        pane.wait_for(row("web", "running", "yes", "-", "0"))
        pane.wait_for(row("worker", "running", "yes", "-", "0"))
        screen = pane.wait_for(r"^web line two")
        assert "web says hello" in screen and "log: web" in screen

        # a bigger terminal: it redraws to the new width
        pane.tmux("resize-window", "-t", "0", "-x", "100", "-y", "30")
        pane.wait_for(r"^\u2500log: web\u2500{90}")

        pane.keys("Down")
        screen = pane.wait_for(r"^worker started")
        assert "log: worker" in screen and "web line two" not in screen

        pane.keys("r")
        pane.wait_for(r"restart: worker")
        # the new run: last exit 143 (SIGTERM), and its first line a second time
        pane.wait_for(row("worker", "running", "yes", "-", "0", r"\S+", r"\S+", r"\S+", "143"))
        pane.wait_for(r"^worker started\n(.*\n)?worker started")
        assert status(env)["worker"]["restarts"] == 0  # an operator's restart is not counted

        pane.keys("k")
        pane.wait_for(r"Signal to send to worker")
        pane.keys("K", "I", "L", "L", "Enter")
        pane.wait_for(row("worker", "running", "yes", "-", "1"))  # restarted on its own
        assert status(env)["worker"]["restarts"] == 1

        pane.keys("x")
        pane.wait_for(r"Stop worker \(and what depends on it\)\? \[y/n\]")
        pane.keys("n")
        pane.keys("q")
        pane.wait_for(r"^EXIT=0")
    assert status(env)["worker"]["state"] == "running"  # `n` kept it


def test_without_a_terminal_it_points_at_status(tmp_path: Path, env: dict[str, str]) -> None:
    done = ctl(env, "top")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "pyinit status" in done.stderr


def test_no_pyinit_names_the_socket(tmp_path: Path, env: dict[str, str]) -> None:
    with top(env) as pane:
        screen = pane.wait_for(r"^EXIT=1")
    sock = str(tmp_path / "run" / "control.sock")
    text = screen.replace("\n", "")  # the line wraps at 80 columns
    assert f"pyinit top: cannot reach pyinit at {sock}" in text
    assert "Traceback" not in screen


def test_missing_textual_says_how_to_install(tmp_path: Path, env: dict[str, str]) -> None:
    shim = tmp_path / "shim" / "textual"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'textual'\", name='textual')\n"
    )
    with top(env, PYTHONPATH=str(shim.parent)) as pane:
        screen = pane.wait_for(r"^EXIT=1")
    assert "pyinit top needs Textual: pip install textual" in screen
    assert "Traceback" not in screen


def test_an_older_pyinit_without_the_request(tmp_path: Path, env: dict[str, str]) -> None:
    """A pyinit that does not know a request says so; top says which, no traceback."""
    run = tmp_path / "run"
    run.mkdir()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(run / "control.sock"))
    server.listen()

    def answer() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                request = json.loads(conn.makefile("rb").readline())
                error = f"unknown cmd {request['cmd']!r}; expected one of start, stop"
                conn.sendall(json.dumps({"ok": False, "error": error}).encode() + b"\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with top(env) as pane:
            screen = pane.wait_for(r"^EXIT=1")
    finally:
        server.close()
    text = screen.replace("\n", "")
    assert "does not know the request 'status' (another version of pyinit?)" in text
    assert "Traceback" not in screen
