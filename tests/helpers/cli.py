"""Run the real CLI: as PID 1 of a fresh PID namespace (``unshare``) or directly,
as pyinit or under its ``tini``/``dumb-init`` names, or the real tini and
dumb-init for differential tests.

The ``cli`` fixture (tests/conftest.py) hands out a ``Runner`` that kills
whatever a test left.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers.deadlines import DEFAULT_TIMEOUT, LineReader, pump_to_eof, wait_until
from tests.helpers.procs import host_children

# The child scripts (recorder.py, orphans.py, ...) live next to this module.
HELPERS = Path(__file__).parent


PYTHON = sys.executable


_SCRIPT = Path(sys.executable).parent / "pyinit"


# The real console script; never the pyenv shim (a bash wrapper that loses argv[0]).
PYINIT: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "pyinit"]


def helper(name: str, *args: object) -> list[str]:
    """argv running ``tests/helpers/<name>`` with this interpreter."""
    return [PYTHON, str(HELPERS / name), *(str(a) for a in args)]


_UNSHARE_VARIANTS = (
    ["unshare", "--pid", "--fork", "--mount-proc"],
    ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"],
)


@functools.cache
def _detect_unshare() -> tuple[list[str] | None, str]:
    if shutil.which("unshare") is None:
        return None, "unshare(1) is not installed"
    errors = []
    for prefix in _UNSHARE_VARIANTS:
        try:
            done = subprocess.run(
                [*prefix, "true"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{' '.join(prefix)}: {exc}")
            continue
        if done.returncode == 0:
            return list(prefix), ""
        errors.append(f"{' '.join(prefix)}: exit {done.returncode}: {done.stderr.strip()}")
    return None, "; ".join(errors)


def unshare_prefix() -> list[str]:
    """The argv prefix that makes a fresh PID namespace, or skip (fail as root).

    CI runs as root, where a missing namespace is a broken environment, never a
    reason to skip the tests that matter most.
    """
    prefix, why = _detect_unshare()
    if prefix is None:
        if os.geteuid() == 0:
            pytest.fail(f"running as root but no PID namespace can be made: {why}", pytrace=False)
        pytest.skip(f"cannot create a PID namespace: {why}")
    return prefix


@functools.cache
def _personality_dir() -> Path:
    """A directory with ``tini`` and ``dumb-init`` entry points to pyinit.

    argv[0]'s basename selects the personality. With the console script we
    symlink to it; without one we write tiny scripts that call the same main().
    """
    import atexit
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="pyinit-personalities-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    for name in ("tini", "dumb-init"):
        link = base / name
        if _SCRIPT.exists():
            link.symlink_to(_SCRIPT)
        else:
            link.write_text(f"#!{PYTHON}\nfrom pyinit.cli import main\nmain()\n")
            link.chmod(0o755)
    return base


def entry_point(personality: str | None = None) -> list[str]:
    """argv prefix for pyinit itself (None) or for its ``tini``/``dumb-init`` face."""
    if personality is None:
        return list(PYINIT)
    return [str(_personality_dir() / personality)]


REAL_TINI = "/usr/bin/tini"


REAL_DUMB_INIT = "/usr/bin/dumb-init"


def real_tool(name: str) -> str:
    """Path of the real tini or dumb-init for differential tests (skip if absent)."""
    path = {"tini": REAL_TINI, "dumb-init": REAL_DUMB_INIT}[name]
    if not os.access(path, os.X_OK):
        if os.geteuid() == 0:
            pytest.fail(f"{path} is missing; CI installs it for differential tests")
        pytest.skip(f"{path} is not installed")
    return path


class Proc:
    """A started CLI with deadline-bound access to its pipes and exit status."""

    def __init__(self, popen: subprocess.Popen[bytes], namespaced: bool) -> None:
        self.popen = popen
        self.namespaced = namespaced
        self.started = time.monotonic()
        self.out = LineReader(popen.stdout.fileno(), "stdout") if popen.stdout else None
        self.err = LineReader(popen.stderr.fileno(), "stderr") if popen.stderr else None
        self._init_pid: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def init_pid(self) -> int:
        """Host pid of the init process: the child of ``unshare``, or the CLI itself."""
        if not self.namespaced:
            return self.popen.pid
        if self._init_pid is None:
            kids = wait_until(lambda: host_children(self.popen.pid), "unshare's child")
            self._init_pid = int(kids[0])
        return self._init_pid

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the init process (pyinit, tini, dumb-init)."""
        os.kill(self.init_pid, signum)

    def close_stdin(self) -> None:
        if self.popen.stdin:
            self.popen.stdin.close()

    def write(self, data: bytes) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(data)
        self.popen.stdin.flush()

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Exit code of the CLI; fails (with stderr so far) if it does not exit in time."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            err = self.err.lines if self.err else []
            pytest.fail(f"CLI still running after {timeout}s; stderr so far: {err!r}")

    def finish(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str, str]:
        """Close stdin, read both pipes to EOF, wait: (exit code, stdout, stderr)."""
        self.close_stdin()
        pump_to_eof([r for r in (self.out, self.err) if r is not None], timeout)
        out = self.out.text() if self.out else ""
        err = self.err.text() if self.err else ""
        return self.wait(timeout), out, err

    def lineage(self, depth: int) -> list[int]:
        """Host pids [cmd, its child, ...] following the first child down from the init."""
        chain: list[int] = []
        parent = self.init_pid
        for _ in range(depth):
            kids = wait_until(lambda p=parent: host_children(p), f"a child of pid {parent}")
            parent = int(kids[0])
            chain.append(parent)
        return chain

    def host_tree(self) -> list[int]:
        """Host pids of every descendant of the init process, in tree order."""
        try:
            return [p.pid for p in psutil.Process(self.init_pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def destroy(self) -> None:
        """Kill what is left of this run (SIGKILL reaches a namespace's init from here)."""
        victims: list[psutil.Process] = []
        roots = [self.popen.pid] if self.popen.poll() is None else []
        if self._init_pid is not None:
            roots.append(self._init_pid)  # it may have outlived unshare
        for root in roots:
            with contextlib.suppress(psutil.NoSuchProcess):
                parent = psutil.Process(root)
                victims += [parent, *parent.children(recursive=True)]
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


PIPE = subprocess.PIPE


DEVNULL = subprocess.DEVNULL


class Runner:
    """Starts CLI runs for one test and cleans up whatever they leave."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def start(
        self,
        args: Sequence[str],
        *,
        namespace: bool = True,
        personality: str | None = None,
        program: Sequence[str] | None = None,
        stdin: Any = PIPE,
        stdout: Any = PIPE,
        stderr: Any = PIPE,
        env: dict[str, str] | None = None,
        **popen_kwargs: Any,
    ) -> Proc:
        """Run ``<entry point> ARGS``, as PID 1 of a new PID namespace by default.

        ``program`` replaces the entry point (e.g. the real /usr/bin/tini).
        """
        argv = list(program) if program is not None else entry_point(personality)
        prefix = unshare_prefix() if namespace else []
        popen = subprocess.Popen(
            [*prefix, *argv, *args],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=env,
            **popen_kwargs,
        )
        proc = Proc(popen, namespaced=namespace)
        self.procs.append(proc)
        return proc

    def run(self, args: Sequence[str], timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> Done:
        """Start, close stdin, collect everything: for commands that just run and exit."""
        proc = self.start(args, **kwargs)
        code, out, err = proc.finish(timeout)
        return Done(code, out, err, time.monotonic() - proc.started)

    def cleanup(self) -> None:
        for proc in self.procs:
            proc.destroy()


class Done:
    def __init__(self, code: int, out: str, err: str, elapsed: float) -> None:
        self.code = code
        self.out = out
        self.err = err
        self.elapsed = elapsed

    def __repr__(self) -> str:
        return f"Done(code={self.code}, out={self.out!r}, err={self.err!r})"


@dataclass
class RawDone:
    code: int
    out: bytes
    err: bytes
    elapsed: float


def run_raw(
    config: Path, *args: str, timeout: float = DEFAULT_TIMEOUT, namespace: bool = True
) -> RawDone:
    """Run ``pyinit -c CONFIG ARGS`` to completion; stdout and stderr as bytes."""
    prefix = unshare_prefix() if namespace else []
    began = time.monotonic()
    try:
        done = subprocess.run(
            [*prefix, *PYINIT, "-c", str(config), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"pyinit still running after {timeout}s; stderr: {exc.stderr!r}")
    return RawDone(done.returncode, done.stdout, done.stderr, time.monotonic() - began)
