"""Real containers for tests/container: podman with runc, images built from the
current tree's wheel on the base image that tests/container/prepare.sh makes.

Nothing here skips: a missing runtime, base image or kernel feature is one
``pytest.fail`` line naming it (the suite is run on purpose, by `.ci/run`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.helpers.deadlines import LineReader, pump_to_eof, wait_line

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/pyinit-base"
PYTHON_IMAGE = "localhost/pyinit-python"  # python3 + pip on PATH, offline wheels
SUITE_IMAGE = "localhost/pyinit-suite"  # the above + pyinit from this tree's wheel
# Every runtime call names runc: crun fails on these hosts (hybrid cgroups).
PODMAN = ["podman", "--runtime", "runc"]
RUN = [*PODMAN, "run", "--network=none"]
BUILD_TIMEOUT = 240.0
CALL_TIMEOUT = 60.0


def podman(*args: str, timeout: float = CALL_TIMEOUT, check: bool = True,
           input: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """One podman command; with ``check``, a failure fails the test with its output."""
    try:
        done = subprocess.run(
            [*PODMAN, *args], capture_output=True, text=True, timeout=timeout,
            check=False, input=input,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"podman {' '.join(args)}: no answer in {timeout}s", pytrace=False)
    if check and done.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args)}: exit {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-2000:]}",
            pytrace=False,
        )
    return done


@functools.cache
def _runtime_problem() -> str:
    """Empty when podman, runc, the base image and a container start all work;
    otherwise one line naming what is missing."""
    if os.geteuid() != 0:
        return "the container suite runs podman as root; run it as root"
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (tests/container/prepare.sh installs it)"
    if subprocess.run(["podman", "image", "exists", BASE], check=False).returncode != 0:
        return f"no image {BASE} (tests/container/prepare.sh builds it)"
    try:
        probe = subprocess.run(
            [*RUN, "--rm", BASE, "true"], capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "podman run of the base image did not finish in 120s"
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"]
        return f"podman cannot start a container: {lines[-1]}"
    return ""


def require_runtime() -> None:
    problem = _runtime_problem()
    if problem:
        pytest.fail(f"container suite: {problem}", pytrace=False)


def build(context: Path, tag: str, containerfile: str, *args: str) -> None:
    """``podman build`` of ``containerfile`` (text) in ``context``."""
    (context / "Containerfile").write_text(textwrap.dedent(containerfile).lstrip())
    podman(
        "build", "--quiet", "--network=none", "--format", "docker", "-f",
        str(context / "Containerfile"), "-t", tag, *args, str(context),
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip


def wheels(directory: Path) -> Path:
    """This tree's wheel and its (test) dependencies' wheels, plus setuptools/wheel
    (so that `pip install .` of a source tree works offline in an image)."""
    directory.mkdir(parents=True, exist_ok=True)
    for argv in (
        [sys.executable, "-m", "pip", "wheel", "-q", f"{ROOT}[test]", "-w", str(directory)],
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
         "setuptools>=61", "wheel", "-d", str(directory)],
    ):  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(argv[2:5])}: {done.stderr.strip()[-1500:]}", pytrace=False)
    return directory


def build_images(work: Path) -> Path:
    """PYTHON_IMAGE (what python:3.11-slim offers a Dockerfile: `python3` and `pip`
    on PATH, here a venv, with pip pointed at the offline wheels since the
    containers have no network) and SUITE_IMAGE (pyinit installed from the wheel,
    services.example.yaml in /etc/pyinit). Returns the wheel directory."""
    require_runtime()
    context = work / "python"
    wheelhouse = wheels(context / "wheels")
    build(
        context, PYTHON_IMAGE,
        f"""
        FROM {BASE}
        COPY wheels /wheels
        RUN python3 -m venv /usr/local/py && ln -sf /usr/local/py/bin/pip /usr/local/bin/pip
        ENV PATH=/usr/local/py/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
            PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels PIP_DISABLE_PIP_VERSION_CHECK=1 \\
            PIP_NO_CACHE_DIR=1
        """,
    )  # fmt: skip
    context = work / "suite"
    context.mkdir()
    shutil.copy(ROOT / "services.example.yaml", context / "services.example.yaml")
    build(
        context, SUITE_IMAGE,
        f"""
        FROM {PYTHON_IMAGE}
        RUN pip install -q pyinit-supervisor
        COPY services.example.yaml /etc/pyinit/services.example.yaml
        """,
    )  # fmt: skip
    return wheelhouse


class Container:
    """A ``podman run`` in the foreground: its output is read from the pipe with
    deadlines, its exit status is podman's (the container's)."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.popen = popen
        assert popen.stdout is not None
        self.out = LineReader(popen.stdout.fileno(), f"{name} output")

    def seen(self, pattern: str, count: int = 1, timeout: float = CALL_TIMEOUT) -> str:
        """Wait until ``count`` output lines matched ``pattern`` (re.search), in any
        order with other lines: the container's stdout and stderr (pyinit's log) reach
        podman by two pipes, so lines of the two may come out of order. The last
        matching line."""
        deadline = time.monotonic() + timeout
        index = -1
        for _ in range(count):
            left = max(0.001, deadline - time.monotonic())
            index = wait_line(self.out, pattern, left, start=index + 1)
        return self.out.lines[index]

    def wait_running(self, timeout: float = CALL_TIMEOUT) -> None:
        """Until podman reports the container running (an event podman has no
        stream for that would not race the output pipe, so this polls)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = podman("inspect", "-f", "{{.State.Status}}", self.name, check=False)
            if state.stdout.strip() == "running":
                return
            if self.popen.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.popen.returncode}) before running")
            time.sleep(0.05)
        pytest.fail(f"{self.name} not running after {timeout}s")

    def exec(self, *argv: str, timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *argv, timeout=timeout, check=False)

    def stop(self, grace: int, timeout: float = CALL_TIMEOUT) -> float:
        """``podman stop -t GRACE``: seconds until it returned (the container is gone)."""
        start = time.monotonic()
        podman("stop", "-t", str(grace), self.name, timeout=timeout)
        return time.monotonic() - start

    def finish(self, timeout: float = CALL_TIMEOUT) -> tuple[int, str]:
        """Output to EOF and the exit status of ``podman run``."""
        pump_to_eof([self.out], timeout)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"podman run {self.name} still running after {timeout}s")
        return code, self.out.text()

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr


class Containers:
    """Starts containers for one test; at teardown prints each one's logs (pytest
    shows them when the test failed) and removes it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.started: list[Container] = []
        self.others: list[str] = []  # containers started some other way (tmux)

    def name(self) -> str:
        """A fresh container name, removed (logs printed) at teardown."""
        name = f"{self.prefix}-x{len(self.others)}"
        self.others.append(name)
        return name

    def run(self, *options_and_argv: str, image: str = SUITE_IMAGE,
            argv: Sequence[str] = ()) -> Container:  # fmt: skip
        """``podman run --name ... OPTIONS IMAGE ARGV`` in the foreground."""
        name = f"{self.prefix}-{len(self.started)}"
        popen = subprocess.Popen(
            [*RUN, "--name", name, *options_and_argv, image, *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        container = Container(name, popen)
        self.started.append(container)
        return container

    def cleanup(self) -> None:
        for name in self.others:
            print(f"----- podman logs {name} -----")
            done = podman("logs", name, check=False)
            print(done.stdout + done.stderr)
            podman("rm", "-f", "-t", "0", name, check=False)
        for container in self.started:
            print(f"----- podman logs {container.name} -----")
            print(container.logs())
            podman("rm", "-f", "-t", "0", container.name, check=False)
            if container.popen.poll() is None:
                container.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                container.popen.wait(10)
            if container.popen.stdout:
                container.popen.stdout.close()


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A scratch directory the containers may bind-mount (0755, not pytest's 0700)."""
    path = Path(tempfile.mkdtemp(prefix="pyinit-container-", dir="/var/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
