"""Shared helpers for pyinit's tests: run the real CLI (as PID 1 of a fresh PID
namespace, or directly), read its output line by line with deadlines, and find
processes on the host side.

Test modules import what they need with ``from tests.conftest import ...``;
the ``cli`` fixture hands out a ``Runner`` that kills whatever a test left.

Synchronisation rule: wait for an event (a line on a pipe, EOF, a process
exit) with a deadline. Polling /proc with a deadline is only for states that
have no event source (a process stopped, a process re-parented).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

HELPERS = Path(__file__).parent / "helpers"
PYTHON = sys.executable

_SCRIPT = Path(sys.executable).parent / "pyinit"
# The real console script; never the pyenv shim (a bash wrapper that loses argv[0]).
PYINIT: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "pyinit"]

DEFAULT_TIMEOUT = 10.0


def helper(name: str, *args: object) -> list[str]:
    """argv running ``tests/helpers/<name>`` with this interpreter."""
    return [PYTHON, str(HELPERS / name), *(str(a) for a in args)]


# -- PID namespaces --------------------------------------------------------------

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


# -- personalities -----------------------------------------------------------------


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


# -- reading with deadlines --------------------------------------------------------


class LineReader:
    """Line-oriented reads of a pipe with a deadline; keeps every line read."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        os.set_blocking(fd, False)
        self._buf = b""
        self.lines: list[str] = []
        self._pos = 0  # lines before this index were handed out by next_line()
        self.eof = False

    def _fill(self, deadline: float) -> bool:
        """Read what is available, waiting until the deadline; False on timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if not ready:
            return False
        self.read_available()
        return True

    def read_available(self) -> None:
        """One non-blocking read: split complete lines off, note EOF."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""  # a pty master reads EIO once every slave fd is closed
        if not data:
            self.eof = True
            if self._buf:
                self.lines.append(self._buf.decode(errors="replace"))
                self._buf = b""
            return
        self._buf += data
        *complete, self._buf = self._buf.split(b"\n")
        self.lines.extend(line.decode(errors="replace").rstrip("\r") for line in complete)

    def next_line(self, timeout: float = DEFAULT_TIMEOUT) -> str | None:
        """The next line not yet returned, or None at EOF. Fails on timeout."""
        deadline = time.monotonic() + timeout
        while self._pos >= len(self.lines):
            if self.eof:
                return None
            if not self._fill(deadline):
                pytest.fail(f"no line on {self.name} within {timeout}s; got {self.lines!r}")
        self._pos += 1
        return self.lines[self._pos - 1]

    def expect(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match[str]:
        """Consume lines until one matches ``pattern`` (re.search); fail at deadline/EOF."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            left = max(0.0, deadline - time.monotonic())
            if left == 0.0 and self._pos >= len(self.lines):
                pytest.fail(f"{pattern!r} not seen on {self.name} in {timeout}s: {self.lines!r}")
            line = self.next_line(left if left > 0 else 0.001)
            if line is None:
                pytest.fail(f"EOF on {self.name} before {pattern!r}; got {self.lines!r}")
            match = regex.search(line)
            if match:
                return match

    def expect_all(self, wanted: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> None:
        """Consume lines until every exact line in ``wanted`` was seen, in any order."""
        deadline = time.monotonic() + timeout
        missing = list(wanted)
        while missing:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{missing!r} not seen on {self.name} in {timeout}s: {self.lines!r}")
            line = self.next_line(left)
            if line is None:
                pytest.fail(f"EOF on {self.name} before {missing!r}; got {self.lines!r}")
            if line in missing:
                missing.remove(line)

    def read_to_eof(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Everything up to EOF (all lines ever read, joined). Fails at the deadline."""
        pump_to_eof([self], timeout)
        return self.text()

    def text(self) -> str:
        self._pos = len(self.lines)
        return "\n".join(self.lines)


def pump_to_eof(readers: Sequence[LineReader], timeout: float = DEFAULT_TIMEOUT) -> None:
    """Read all ``readers`` concurrently until EOF on each (no pipe can fill up and
    block the writer while we wait on another one)."""
    deadline = time.monotonic() + timeout
    while True:
        active = [r for r in readers if not r.eof]
        if not active:
            return
        remaining = deadline - time.monotonic()
        ready = select.select([r.fd for r in active], [], [], max(0.0, remaining))[0]
        if not ready and remaining <= 0:
            got = {r.name: r.lines[-20:] for r in readers}
            pytest.fail(f"pipes still open after {timeout}s; last lines: {got!r}")
        for reader in active:
            if reader.fd in ready:
                reader.read_available()


def expect_ready(
    reader: LineReader, roles: Sequence[str], timeout: float = DEFAULT_TIMEOUT
) -> dict[str, dict[str, int]]:
    """Wait for recorder.py's ``ready`` line of each role: {role: {pid, pgid, sid}}."""
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, int]] = {}
    regex = re.compile(READY)
    while set(found) != set(roles):
        line = reader.next_line(max(0.001, deadline - time.monotonic()))
        if line is None:
            pytest.fail(f"EOF before ready lines of {roles}; got {reader.lines!r}")
        match = regex.match(line)
        if match:
            found[match["role"]] = parse_ready(match)
    return found


# -- processes ---------------------------------------------------------------------


def host_children(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].decode().split()


def proc_state(pid: int) -> str | None:
    fields = proc_stat(pid)
    return fields[0] if fields else None


def proc_ppid(pid: int) -> int | None:
    fields = proc_stat(pid)
    return int(fields[1]) if fields else None


def proc_status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Poll ``predicate`` (only for states with no event source) until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def wait_for_file(path: Path, contains: str = "", timeout: float = DEFAULT_TIMEOUT) -> str:
    """Wait for ``path`` to exist and hold ``contains``; return its text."""

    def check() -> str | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        return text if contains in text and text else None

    result: str = wait_until(check, f"{path} containing {contains!r}", timeout)
    return result


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


@pytest.fixture
def cli() -> Iterator[Runner]:
    runner = Runner()
    try:
        yield runner
    finally:
        runner.cleanup()


def sh(script: str, *args: str) -> list[str]:
    """argv for ``sh -c SCRIPT sh ARGS...``."""
    return ["sh", "-c", script, "sh", *args]


def rt(offset: int) -> int:
    """SIGRTMIN+offset, or SIGRTMAX+offset for a negative offset."""
    return int(signal.SIGRTMIN) + offset if offset >= 0 else int(signal.SIGRTMAX) + offset


def sig_lines(role: str, signums: Sequence[int]) -> list[str]:
    """The lines recorder.py prints for ``signums`` in process ``role``."""
    return [f"{role} sig {s}" for s in signums]


def recorder(*signums: int, child: bool = False) -> list[str]:
    return helper("recorder.py", *(["--child"] if child else []), *signums)


def parse_ready(line_match: re.Match[str]) -> dict[str, int]:
    """pid/pgid/sid of a recorder ``ready`` line matched by READY."""
    return {k: int(v) for k, v in line_match.groupdict().items() if k != "role"}


READY = r"^ready (?P<role>\w+) pid=(?P<pid>\d+) pgid=(?P<pgid>\d+) sid=(?P<sid>\d+)$"


def ready_pattern(role: str) -> str:
    return READY.replace(r"(?P<role>\w+)", role)
