"""Command lines for tests: ``sh -c`` scripts, argv lists rendered as a
services.yaml ``command:`` value, and the child scripts of tests/helpers
(the signal recorder and the sd_notify client) with what they print.
"""

from __future__ import annotations

import json
import re
import signal
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.helpers.cli import PYTHON, helper
from tests.helpers.deadlines import DEFAULT_TIMEOUT, LineReader


def sh(script: str, *args: str) -> list[str]:
    """argv for ``sh -c SCRIPT sh ARGS...``; in a services.yaml: ``argv(*sh(...))``."""
    return ["sh", "-c", script, "sh", *args]


def argv(*args: object) -> str:
    """A services.yaml ``command:`` value for an argv list: a JSON list (a valid
    YAML flow sequence, so no YAML quoting is involved), every ``$`` doubled
    because the config loader interpolates ``$VAR`` and rejects a bare ``$!``."""
    return json.dumps([str(a).replace("$", "$$") for a in args])


def py(code: str) -> str:
    """A ``command:`` value running Python ``code`` with this interpreter."""
    return argv(PYTHON, "-c", textwrap.dedent(code))


def sdnotify(*args: object) -> str:
    """A ``command:`` value running tests/helpers/sdnotify.py."""
    return argv(*helper("sdnotify.py", *args))


def rt(offset: int) -> int:
    """SIGRTMIN+offset, or SIGRTMAX+offset for a negative offset."""
    return int(signal.SIGRTMIN) + offset if offset >= 0 else int(signal.SIGRTMAX) + offset


def recorder(
    *signums: int,
    child: bool = False,
    exit_on: int | None = None,
    role: str | None = None,
    log: Path | None = None,
) -> list[str]:
    """argv of tests/helpers/recorder.py recording ``signums`` (see its docstring).

    As a service, give ``log`` (the lines go to that file; stdin is no pipe to
    close) and usually ``exit_on=SIGTERM`` so that it stops cleanly; put it in a
    services.yaml with ``argv(*recorder(...))``."""
    options: list[object] = []
    if child:
        options.append("--child")
    if exit_on is not None:
        options += ["--exit-on", int(exit_on)]
    if role is not None:
        options += ["--role", role]
    if log is not None:
        options += ["--log", log]
    return helper("recorder.py", *options, *(int(s) for s in signums))


def sig_lines(role: str, signums: Sequence[int]) -> list[str]:
    """The lines recorder.py prints for ``signums`` in process ``role``."""
    return [f"{role} sig {s}" for s in signums]


READY = r"^ready (?P<role>\w+) pid=(?P<pid>\d+) pgid=(?P<pgid>\d+) sid=(?P<sid>\d+)$"


def parse_ready(line_match: re.Match[str]) -> dict[str, int]:
    """pid/pgid/sid of a recorder ``ready`` line matched by READY."""
    return {k: int(v) for k, v in line_match.groupdict().items() if k != "role"}


def ready_pattern(role: str) -> str:
    return READY.replace(r"(?P<role>\w+)", role)


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
