"""The control protocol as pure functions: request parsing and validation, the
``wait`` verdict, and the client's command lines and status table."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from pyinit.answers import wait_verdict
from pyinit.client import parse_client_args
from pyinit.errors import UsageError
from pyinit.protocol import COMMANDS, MAX_REQUEST, RequestError, addressable, parse_request
from pyinit.snapshot import Snapshot
from pyinit.statustable import format_status, format_uptime


def req(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def test_every_command_has_a_parser() -> None:
    for cmd in COMMANDS:
        body = {"services": ["a"], "service": "a", "signal": "HUP", "count": 2}
        assert parse_request(req({"cmd": cmd, **body})).cmd == cmd


def test_plain_commands_parse() -> None:
    """status, reload and health take no arguments (extra keys are ignored)."""
    for cmd in ("status", "reload", "health"):
        assert parse_request(req({"cmd": cmd, "extra": 1})).cmd == cmd


def test_service_commands_need_names() -> None:
    """start/stop/restart carry a non-empty list of names; duplicates count once."""
    parsed = parse_request(req({"cmd": "restart", "services": ["web", "db", "web"]}))
    assert (parsed.cmd, parsed.services) == ("restart", ["web", "db"])
    for bad in (None, [], "web", [1], [""]):
        with pytest.raises(RequestError, match="services"):
            parse_request(req({"cmd": "stop", "services": bad}))


def test_signal_parses_names_and_numbers() -> None:
    """``signal`` accepts HUP, SIGHUP or a number; an unknown signal is an error."""
    assert parse_request(req({"cmd": "signal", "signal": "HUP", "services": ["a"]})).signal == (
        signal.SIGHUP
    )
    assert parse_request(req({"cmd": "signal", "signal": 10, "services": ["a"]})).signal == 10
    with pytest.raises(RequestError, match="unknown signal"):
        parse_request(req({"cmd": "signal", "signal": "NOPE", "services": ["a"]}))
    with pytest.raises(RequestError, match="signal"):
        parse_request(req({"cmd": "signal", "signal": True, "services": ["a"]}))


def test_logs_and_wait_arguments() -> None:
    """``logs`` needs a service and a line count >= 0 (default 100); ``wait`` a
    timeout >= 0 that is a finite number (default 60s)."""
    parsed = parse_request(req({"cmd": "logs", "service": "web"}))
    assert (parsed.services, parsed.lines) == (["web"], 100)
    assert parse_request(req({"cmd": "logs", "service": "web", "lines": 0})).lines == 0
    for bad in ({"service": 3}, {"service": "w", "lines": -1}, {"service": "w", "lines": "5"}):
        with pytest.raises(RequestError):
            parse_request(req({"cmd": "logs", **bad}))
    assert parse_request(req({"cmd": "wait", "services": ["a"], "timeout": 2.5})).timeout == 2.5
    assert parse_request(req({"cmd": "wait", "services": ["a"]})).timeout == 60.0
    for timeout in (-1, "5s", True, None):
        with pytest.raises(RequestError, match="timeout"):
            parse_request(req({"cmd": "wait", "services": ["a"], "timeout": timeout}))
    with pytest.raises(RequestError, match="timeout"):
        parse_request(b'{"cmd": "wait", "services": ["a"], "timeout": NaN}\n')


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"garbage\n", "invalid JSON"),
        (b"\xff\xfe\n", "invalid JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b'{"cmd": 5}\n', '"cmd"'),
        (b'{"cmd": "explode"}\n', "unknown cmd 'explode'"),
        (b"{}\n", '"cmd"'),
    ],
)
def test_bad_requests_are_refused(line: bytes, message: str) -> None:
    """Invalid JSON, not an object, a missing or unknown cmd: one clear error."""
    with pytest.raises(RequestError, match=message):
        parse_request(line)


def test_oversized_request() -> None:
    """A request over 64 KiB is refused before it is parsed."""
    with pytest.raises(RequestError, match="too large"):
        parse_request(b'{"cmd": "status", "pad": "' + b"x" * MAX_REQUEST + b'"}\n')


def snap(**services: dict[str, Any]) -> Snapshot:
    full = {
        n: {"type": "longrun", "state": "running", "ready": True, "reason": "", **s}
        for n, s in services.items()
    }
    return Snapshot.from_json({"stopping": False, "services": full})


def test_wait_verdict() -> None:
    """Ready: a longrun starting/running and ready, a oneshot completed. Failed for
    good: failed, stopped, exited, or unknown (answered at once). Busy services (an
    operator stop/restart or reload in progress) are not ready whatever they show."""
    s = snap(
        web={},
        slow={"state": "starting", "ready": False},
        setup={"type": "oneshot", "state": "completed"},
        mig={"type": "oneshot", "state": "running", "ready": True},
        bad={"state": "failed", "reason": "start limit reached"},
        gone={"state": "stopped", "ready": False},
        old={"state": "stopping", "ready": True},
    )
    assert wait_verdict(s, ["web", "setup"], set()) == ([], [])
    assert wait_verdict(s, ["web", "slow", "mig", "old"], set()) == (["slow", "mig", "old"], [])
    assert wait_verdict(s, ["web"], {"web"}) == (["web"], [])
    waiting, failed = wait_verdict(s, ["slow", "bad", "gone", "nope"], set())
    assert waiting == ["slow"]
    assert failed == [
        "bad: failed (start limit reached)",
        "gone: stopped",
        "no service named 'nope'",
    ]
    stopping = dataclasses.replace(s, stopping=True)
    assert wait_verdict(stopping, ["slow"], set())[1] == ["pyinit is shutting down"]


def test_long_socket_paths_are_addressable(tmp_path: Any) -> None:
    """A socket path longer than sun_path is reached through /proc/self/fd of its
    directory; a short one is used as is."""
    assert addressable("/run/pyinit/control.sock") == ("/run/pyinit/control.sock", None)
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    address, fd = addressable(str(deep / "control.sock"))
    assert fd is not None and address == f"/proc/self/fd/{fd}/control.sock"
    os.close(fd)


# -- the client's command lines ---------------------------------------------------


def test_client_command_lines() -> None:
    """Each client command becomes its request; options may follow the names."""
    assert parse_client_args("status", ["--json"]).json_output
    assert parse_client_args("restart", ["web", "db"]).request == {
        "cmd": "restart",
        "services": ["web", "db"],
    }
    assert parse_client_args("signal", ["HUP", "web"]).request == {
        "cmd": "signal",
        "signal": "HUP",
        "services": ["web"],
    }
    assert parse_client_args("logs", ["web", "-n", "5"]).request["lines"] == 5
    assert parse_client_args("logs", ["-n5", "web"]).request["lines"] == 5
    wait = parse_client_args("wait", ["--ready", "web", "db", "--timeout", "1m30s"])
    assert wait.request == {"cmd": "wait", "services": ["web", "db"], "timeout": 90.0}
    assert wait.timeout > 90.0  # the socket outlives the server's own deadline


@pytest.mark.parametrize(
    ("cmd", "args", "message"),
    [
        ("start", [], "at least one"),
        ("signal", ["web"], "SIG NAME"),
        ("signal", ["BOGUS", "web"], "unknown signal"),
        ("wait", ["web"], "--ready"),
        ("wait", ["--ready", "web", "--timeout", "soon"], "timeout"),
        ("logs", ["a", "-n", "x"], "number"),
        ("status", ["web"], "unexpected argument"),
        ("status", ["--frob"], "unknown option"),
        ("reload", ["--json"], "does not apply"),
    ],
)
def test_client_usage_errors(cmd: str, args: list[str], message: str) -> None:
    """A bad client command line is a UsageError (exit 2), never a request."""
    with pytest.raises(UsageError, match=message):
        parse_client_args(cmd, args)


def test_status_table() -> None:
    """``pyinit status`` prints NAME STATE PID UPTIME RESTARTS READY HEALTH CPU% MEM
    LAST EXIT, one aligned row per service, ``-`` for what does not apply (or what an
    older pyinit does not send)."""
    table = format_status(
        Snapshot.from_json({
            "services": {
                "web": {"state": "running", "pid": 12, "uptime": 75.2, "restarts": 2,
                        "ready": True, "health": "healthy", "last_exit": 1,
                        "cpu_seconds": 3.5, "cpu_percent": 12.25, "processes": 3,
                        "memory_rss_bytes": 52 * 1024 * 1024 + 400 * 1024},
                "setup": {"state": "completed", "pid": None, "uptime": None, "restarts": 0,
                          "ready": True, "health": None, "last_exit": 0},
            }
        })
    )  # fmt: skip
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "HEALTH",
                                "CPU%", "MEM", "LAST", "EXIT"]  # fmt: skip
    assert lines[1].split() == [
        "web", "running", "12", "1m15s", "2", "yes", "healthy", "12.2", "52.4M", "1"
    ]  # fmt: skip
    assert lines[2].split() == ["setup", "completed", "-", "-", "0", "yes", "-", "-", "-", "0"]
    assert lines[1].index("running") == lines[0].index("STATE")


def test_uptime_format() -> None:
    assert [format_uptime(s) for s in (None, 0.4, 59, 61, 3725, 90000)] == [
        "-", "0s", "59s", "1m1s", "1h2m", "1d1h",
    ]  # fmt: skip


def test_client_imports_no_yaml_or_psutil() -> None:
    """The client commands load neither PyYAML nor psutil (start-up cost in probes),
    nor the server's modules: the protocol is all they share."""
    heavy = ("yaml", "psutil", "pyinit.control", "pyinit.netserve", "pyinit.supervisor")
    code = (
        "import sys; import pyinit.cli, pyinit.client, pyinit.status;"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
