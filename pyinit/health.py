"""Health and readiness probes (exec, tcp, http) and the healthcheck verdict.

``HealthTracker`` is pure: it turns probe results and the clock into Compose's
starting / healthy / unhealthy. The probe runners do I/O inside the loop: tcp and
http are non-blocking sockets watched by the selector, exec probes are children
of pyinit whose exit the one reaper routes back here. No threads, no blocking.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
from collections.abc import Callable
from enum import Enum
from urllib.parse import urlsplit

from pyinit.config.model import HealthCheck, Probe
from pyinit.loop import EventLoop, Timer
from pyinit.reaper import ExitStatus
from pyinit.spawn import SpawnError, SpawnSpec, spawn

OUTPUT_KEEP = 200  # bytes of an exec probe's output kept for the log line


class HealthStatus(Enum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class HealthTracker:
    """Compose semantics: failures inside ``start_period`` do not count until the
    first success; then ``retries`` consecutive failures make it unhealthy, and
    any success makes it healthy again."""

    def __init__(self, check: HealthCheck, started_at: float) -> None:
        self.check = check
        self.started_at = started_at
        self.status = HealthStatus.STARTING
        self.failures = 0  # consecutive, counted ones
        self.ever_passed = False
        self.last_detail = ""

    def in_start_period(self, now: float) -> bool:
        return not self.ever_passed and now < self.started_at + self.check.start_period

    def next_delay(self, now: float) -> float:
        """Time to the next probe: ``start_interval`` while starting, else ``interval``."""
        if self.in_start_period(now):
            return self.check.start_interval
        return self.check.interval

    def record(self, ok: bool, now: float, detail: str = "") -> HealthStatus | None:
        """Take one result; return the new status when it changed."""
        self.last_detail = detail
        before = self.status
        if ok:
            self.ever_passed = True
            self.failures = 0
            self.status = HealthStatus.HEALTHY
        elif not self.in_start_period(now):
            self.failures += 1
            if self.failures >= self.check.retries:
                self.status = HealthStatus.UNHEALTHY
        return self.status if self.status is not before else None


# -- probe runners ----------------------------------------------------------------

ProbeDone = Callable[[bool, str], None]
# Registers a child pid with the supervisor so the reaper routes its exit to us.
ChildRegistrar = Callable[[int, Callable[[ExitStatus], None]], None]


class ProbeRun:
    """One attempt of one probe; ``cancel()`` abandons it without a verdict."""

    def __init__(self, loop: EventLoop, timeout: float, on_done: ProbeDone) -> None:
        self.loop = loop
        self._on_done: ProbeDone | None = on_done
        self._timer: Timer | None = loop.call_later(timeout, self._timed_out)
        self.timeout = timeout

    @property
    def finished(self) -> bool:
        return self._on_done is None

    def _finish(self, ok: bool, detail: str) -> None:
        done, self._on_done = self._on_done, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cleanup()
        if done is not None:
            done(ok, detail)

    def cancel(self) -> None:
        self._on_done = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cleanup()

    def _timed_out(self) -> None:
        self._timer = None
        self._finish(False, f"timed out after {self.timeout:g}s")

    def _cleanup(self) -> None:
        pass


class SocketProbe(ProbeRun):
    """tcp: the connection is accepted. http: a GET answered 2xx/3xx (or as expected)."""

    def __init__(self, loop: EventLoop, probe: Probe, timeout: float, on_done: ProbeDone) -> None:
        super().__init__(loop, timeout, on_done)
        self.probe = probe
        self._sock: socket.socket | None = None
        self._response = b""
        host, port, self._request = _target(probe)
        try:
            family, address = _address(host, port)
            self._sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            err = self._sock.connect_ex(address)
        except OSError as exc:
            reason = f"cannot connect: {exc.strerror or exc}"
            loop.call_later(0, lambda: self._finish(False, reason))
            return
        if err not in (0, errno.EINPROGRESS):
            reason = os.strerror(err)
            loop.call_later(0, lambda: self._finish(False, f"connect: {reason}"))
            return
        loop.add_writer(self._sock.fileno(), self._on_connected)

    def _on_connected(self) -> None:
        assert self._sock is not None
        self.loop.remove_writer(self._sock.fileno())
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._finish(False, f"connect: {os.strerror(err)}")
            return
        if self.probe.kind == "tcp":
            self._finish(True, "connected")
            return
        try:
            self._sock.send(self._request)  # small: fits the fresh socket's buffer
        except OSError as exc:
            self._finish(False, f"send: {exc.strerror}")
            return
        self.loop.add_reader(self._sock.fileno(), self._on_response)

    def _on_response(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish(False, f"receive: {exc.strerror}")
            return
        self._response += data
        line_end = self._response.find(b"\r\n")
        if line_end < 0 and data and len(self._response) < 8192:
            return  # the status line is not complete yet
        if line_end < 0:
            # Bug fix: closed (or 8 KiB) without CRLF; [:-1] cut "HTTP/1.0 200" to "... 20".
            line_end = len(self._response)
        self._finish(*_judge_status_line(self._response[:line_end], self.probe.expect_status))

    def _cleanup(self) -> None:
        if self._sock is not None:
            fd = self._sock.fileno()
            if fd >= 0:
                self.loop.remove_writer(fd)
                self.loop.remove_reader(fd)
            self._sock.close()
            self._sock = None


class ExecProbe(ProbeRun):
    """The command exits 0. It runs in its own session, so a timeout kills it whole."""

    def __init__(
        self,
        loop: EventLoop,
        probe: Probe,
        timeout: float,
        on_done: ProbeDone,
        register: ChildRegistrar,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        super().__init__(loop, timeout, on_done)
        self._pid: int | None = None
        self._output = b""
        self._killed = False
        self._read_fd: int | None = None
        to_close: list[int] = []
        try:
            # Out of file descriptors (EMFILE) here is a failed try like any other,
            # not an exception that would stop the healthcheck's timer for good.
            self._read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
            to_close.append(write_fd)
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            to_close.append(devnull)
            spec = SpawnSpec(
                argv=probe.command, env=env, cwd=cwd, fds={0: devnull, 1: write_fd, 2: write_fd}
            )
            self._pid = spawn(spec)
        except SpawnError as exc:
            if exc.pid is not None:
                register(exc.pid, lambda status: None)
            reason = str(exc)
            loop.call_later(0, lambda: self._finish(False, reason))
        except OSError as exc:
            reason = f"cannot start: {exc.strerror or exc}"
            loop.call_later(0, lambda: self._finish(False, reason))
        finally:
            for fd in to_close:
                os.close(fd)
        if self._pid is not None and self._read_fd is not None:
            register(self._pid, self._on_exit)
            os.set_blocking(self._read_fd, False)
            loop.add_reader(self._read_fd, self._on_output)

    def _on_output(self) -> None:
        self._read_available()

    def _read_available(self) -> None:
        if self._read_fd is None:
            return
        while True:
            try:
                data = os.read(self._read_fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_pipe()
                return
            self._output = (self._output + data)[-OUTPUT_KEEP:]

    def _close_pipe(self) -> None:
        if self._read_fd is not None:
            self.loop.remove_reader(self._read_fd)
            os.close(self._read_fd)
            self._read_fd = None

    def _timed_out(self) -> None:
        # Kill it and give the verdict now; its exit is still reaped and ignored.
        self._timer = None
        if self._pid is not None:
            try:
                os.kill(-self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._finish(False, f"timed out after {self.timeout:g}s (killed)")

    def _on_exit(self, status: ExitStatus) -> None:
        self._pid = None
        self._read_available()
        if self.finished:
            return
        text = self._output.decode("utf-8", "replace").strip().replace("\n", " ")
        if status.success:
            self._finish(True, text or "exit 0")
        else:
            what = f"exit {status.code}" if status.code is not None else status.describe()
            self._finish(False, f"{what}: {text}" if text else what)

    def _cleanup(self) -> None:
        self._close_pipe()
        if self._pid is not None and self._on_done is None and not self._killed:
            # Cancelled while running (its service stopped): do not leave it behind.
            self._killed = True
            try:
                os.kill(-self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_probe(
    loop: EventLoop,
    probe: Probe,
    timeout: float,
    on_done: ProbeDone,
    register: ChildRegistrar,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> ProbeRun:
    if probe.kind == "exec":
        return ExecProbe(loop, probe, timeout, on_done, register, env, cwd)
    return SocketProbe(loop, probe, timeout, on_done)


def _target(probe: Probe) -> tuple[str, int, bytes]:
    if probe.kind == "tcp":
        return probe.host, probe.port, b""
    parts = urlsplit(probe.url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    netloc = parts.netloc.rpartition("@")[2]
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: pyinit-probe\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    )
    return host, port, request.encode()


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    """Resolve without ever blocking the loop on DNS: IP literals, ``localhost``,
    and names from /etc/hosts. Any other name is an error (the probe fails with a
    message saying so): a slow resolver would stall PID 1's reaping and signals."""
    if host in ("localhost", ""):
        return socket.AF_INET, ("127.0.0.1", port)
    literal = _numeric(host, port) or _numeric(_hosts_file().get(host.lower(), ""), port)
    if literal is None:
        raise OSError(
            0, f"cannot resolve {host!r} without DNS; use an IP address or a name in /etc/hosts"
        )
    return literal


def _numeric(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]] | None:
    if not host:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return None
    family, _, _, _, address = infos[0]
    return family, (str(address[0]), int(address[1]))


_HOSTS: dict[str, str] | None = None


def _hosts_file() -> dict[str, str]:
    """name -> address from /etc/hosts, read once (first address wins)."""
    global _HOSTS
    if _HOSTS is None:
        _HOSTS = {}
        try:
            with open("/etc/hosts", encoding="utf-8", errors="replace") as f:
                for line in f:
                    fields = line.split("#", 1)[0].split()
                    for name in fields[1:]:
                        _HOSTS.setdefault(name.lower(), fields[0])
        except OSError:
            pass
    return _HOSTS


def _judge_status_line(line: bytes, expect: int | None) -> tuple[bool, str]:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False, "no HTTP status line in the response"
    code = int(parts[1])
    ok = code == expect if expect is not None else 200 <= code < 400
    return ok, f"HTTP {code}"
