"""Waiting with deadlines: for a line on a pipe (``LineReader``), for EOF on
several pipes at once, and, for states that have no event source (a file a
service writes, a process stopped or re-parented), polling with a deadline.

Synchronisation rule: wait for an event (a line on a pipe, EOF, a process
exit) with a deadline. Polling is only for states that have no event source.
"""

from __future__ import annotations

import errno
import os
import re
import select
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

# Every wait is for an event, so the deadline only bounds how long a failure takes
# to show. 30 s, not 10: under a load average of ~30 on two cores a single step (a
# Python start-up with PyYAML and psutil, a shutdown) was seen to take over 10 s.
DEFAULT_TIMEOUT = 30.0


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


def wait_line(
    reader: LineReader, pattern: str, timeout: float = DEFAULT_TIMEOUT, *, start: int = 0
) -> int:
    """Index of the first line at or after ``start`` that matches ``pattern``
    (re.search), reading more as it comes. Unlike ``expect`` it also finds lines
    already consumed, so indexes can be compared to check the order of events;
    ``start=len(reader.lines)`` asks for a line still to come."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    checked = start
    while True:
        for i in range(checked, len(reader.lines)):
            if regex.search(reader.lines[i]):
                return i
        checked = max(checked, len(reader.lines))
        if reader.eof:
            pytest.fail(f"EOF before {pattern!r}; got {reader.lines[start:]!r}")
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([reader.fd], [], [], remaining)[0]:
            pytest.fail(f"{pattern!r} not seen in {timeout}s; got {reader.lines[start:]!r}")
        reader.read_available()


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


def file_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_for_lines(
    path: Path, wanted: Sequence[str], timeout: float = DEFAULT_TIMEOUT
) -> list[str]:
    """Wait until every line in ``wanted`` is in ``path``; return all its lines.

    Services write these files; there is no event to wait on from outside the
    namespace, so this polls with a deadline.
    """

    def check() -> list[str] | None:
        lines = file_lines(path)
        return lines if all(w in lines for w in wanted) else None

    result: list[str] = wait_until(check, f"{list(wanted)} in {path}", timeout)
    return result


def wait_for_count(path: Path, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Wait until ``path`` holds at least ``count`` lines."""

    def check() -> list[str] | None:
        lines = file_lines(path)
        return lines if len(lines) >= count else None

    result: list[str] = wait_until(check, f"{count} lines in {path}", timeout)
    return result


def count_lines(path: Path, text: str) -> int:
    try:
        return path.read_text().splitlines().count(text)
    except FileNotFoundError:
        return 0
