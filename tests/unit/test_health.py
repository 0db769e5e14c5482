"""Unit tests of the health verdict: ``HealthTracker`` (Compose's start_period /
retries semantics) on a fake clock, the http status-line judge, the sd_notify
message parser and ``pyinit health``'s verdict on hand-made snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from pyinit.config import HealthCheck, Probe
from pyinit.health import HealthStatus, HealthTracker, _judge_status_line
from pyinit.notify import parse_message
from pyinit.snapshot import Snapshot
from pyinit.status import verdict
from tests.helpers.snapshots import svc

H, S, U = HealthStatus.HEALTHY, HealthStatus.STARTING, HealthStatus.UNHEALTHY
T0 = 1000.0  # the fake clock's start: when the service started


def tracker(
    retries: int = 3,
    start_period: float = 0.0,
    interval: float = 10.0,
    start_interval: float = 1.0,
) -> HealthTracker:
    check = HealthCheck(
        Probe("exec", ("true",)),
        interval=interval,
        timeout=1.0,
        retries=retries,
        start_period=start_period,
        start_interval=start_interval,
    )
    return HealthTracker(check, T0)


# -- HealthTracker ------------------------------------------------------------------


def test_starts_in_starting_with_no_failures() -> None:
    """A fresh tracker is ``starting`` (Compose's initial status) with nothing counted."""
    t = tracker()
    assert t.status is S and t.failures == 0 and not t.ever_passed


def test_failures_inside_start_period_do_not_count() -> None:
    """Inside start_period, failures before the first success are not counted: any
    number of them leave it ``starting`` with a zero count."""
    t = tracker(retries=2, start_period=5.0)
    for i in range(10):
        assert t.record(False, T0 + 0.4 * i, "refused") is None
    assert t.status is S and t.failures == 0
    assert t.last_detail == "refused"


def test_failures_count_once_start_period_is_over() -> None:
    """The first failure after start_period counts; ``retries`` of them make it unhealthy."""
    t = tracker(retries=2, start_period=5.0)
    t.record(False, T0 + 4.9)
    assert t.failures == 0
    assert t.record(False, T0 + 5.0) is None
    assert t.failures == 1 and t.status is S
    assert t.record(False, T0 + 6.0) is U
    assert t.failures == 2


def test_success_inside_start_period_ends_it() -> None:
    """A success inside start_period makes it healthy, and from then on failures
    count even though start_period has not elapsed."""
    t = tracker(retries=2, start_period=60.0)
    assert t.record(True, T0 + 1.0, "ok") is H
    assert not t.in_start_period(T0 + 2.0)
    assert t.record(False, T0 + 2.0) is None
    assert t.failures == 1 and t.status is H
    assert t.record(False, T0 + 3.0, "exit 1") is U
    assert t.status is U and t.last_detail == "exit 1"


@pytest.mark.parametrize("retries", [1, 2, 3, 5])
def test_exactly_retries_consecutive_failures(retries: int) -> None:
    """retries - 1 consecutive failures leave it healthy; the retries-th flips it."""
    t = tracker(retries=retries)
    assert t.record(True, T0) is H
    for i in range(1, retries):
        assert t.record(False, T0 + i) is None, f"failure {i} of {retries}"
        assert t.status is H and t.failures == i
    assert t.record(False, T0 + retries) is U
    assert t.failures == retries
    # further failures keep it unhealthy without reporting a change again
    assert t.record(False, T0 + retries + 1) is None
    assert t.status is U


def test_failures_must_be_consecutive() -> None:
    """A success in between resets the count: fail, fail, pass, fail, fail stays healthy
    with retries=3."""
    t = tracker(retries=3)
    results = [False, False, True, False, False]
    for i, ok in enumerate(results):
        t.record(ok, T0 + i)
    assert t.status is H and t.failures == 2


def test_without_start_period_failures_count_from_the_start() -> None:
    """start_period 0: failures count at once, so a service that never passes becomes
    unhealthy straight from ``starting``."""
    t = tracker(retries=2)
    assert t.record(False, T0) is None
    assert t.record(False, T0 + 1) is U


def test_recovery_after_unhealthy() -> None:
    """One success makes an unhealthy service healthy again and resets the count, so
    it takes ``retries`` new failures to be unhealthy again."""
    t = tracker(retries=2)
    t.record(True, T0)
    t.record(False, T0 + 1)
    t.record(False, T0 + 2)
    assert t.status is U
    assert t.record(True, T0 + 3, "back") is H
    assert t.failures == 0 and t.last_detail == "back"
    assert t.record(False, T0 + 4) is None
    assert t.status is H
    assert t.record(False, T0 + 5) is U


def test_repeated_success_reports_no_change() -> None:
    """Only changes are reported: healthy after healthy returns None."""
    t = tracker()
    assert t.record(True, T0) is H
    assert t.record(True, T0 + 1) is None


def test_next_delay_start_interval_then_interval() -> None:
    """Inside start_period (before the first success) probes run every start_interval;
    after start_period, or after the first success, every interval."""
    t = tracker(start_period=5.0, interval=30.0, start_interval=0.5)
    assert t.next_delay(T0) == 0.5
    assert t.next_delay(T0 + 4.99) == 0.5
    assert t.next_delay(T0 + 5.0) == 30.0
    t2 = tracker(start_period=5.0, interval=30.0, start_interval=0.5)
    t2.record(True, T0 + 1.0)
    assert t2.next_delay(T0 + 1.0) == 30.0


def test_next_delay_without_start_period_is_interval() -> None:
    t = tracker(start_period=0.0, interval=7.0, start_interval=0.5)
    assert t.next_delay(T0) == 7.0


# -- http status line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "ok", "detail"),
    [
        (b"HTTP/1.1 200 OK", True, "HTTP 200"),
        (b"HTTP/1.0 204 No Content", True, "HTTP 204"),
        (b"HTTP/1.1 301 Moved Permanently", True, "HTTP 301"),
        (b"HTTP/1.1 399 Whatever", True, "HTTP 399"),
        (b"HTTP/1.1 200", True, "HTTP 200"),  # the reason phrase is optional
        (b"HTTP/1.1 400 Bad Request", False, "HTTP 400"),
        (b"HTTP/1.1 404 Not Found", False, "HTTP 404"),
        (b"HTTP/1.1 500 Internal Server Error", False, "HTTP 500"),
        (b"HTTP/1.1 503 Service Unavailable", False, "HTTP 503"),
        (b"HTTP/1.1 199 Early", False, "HTTP 199"),
    ],
)
def test_status_line_default_2xx_3xx(line: bytes, ok: bool, detail: str) -> None:
    """Without expect_status, 2xx and 3xx pass, anything else fails; the detail names
    the code."""
    assert _judge_status_line(line, None) == (ok, detail)


@pytest.mark.parametrize(
    ("line", "expect", "ok"),
    [
        (b"HTTP/1.1 200 OK", 200, True),
        (b"HTTP/1.1 204 No Content", 200, False),
        (b"HTTP/1.1 301 Moved", 200, False),
        (b"HTTP/1.1 503 Unavailable", 503, True),
        (b"HTTP/1.1 418 I'm a teapot", 418, True),
    ],
)
def test_status_line_expect_status_is_exact(line: bytes, expect: int, ok: bool) -> None:
    """With expect_status only that exact code passes (even a 5xx, even not a 2xx)."""
    assert _judge_status_line(line, expect)[0] is ok


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"garbage",
        b"SSH-2.0-OpenSSH_9.6",
        b"HTTP/1.1",
        b"HTTP/1.1 OK 200",
        b"http/1.1 200 OK",
        b"200 OK",
        b"\x00\xff\xfe",
    ],
)
def test_status_line_garbage_fails(line: bytes) -> None:
    """Anything that is not ``HTTP/x.y NNN ...`` fails with a readable reason."""
    assert _judge_status_line(line, None) == (False, "no HTTP status line in the response")
    assert _judge_status_line(line, 200)[0] is False


# -- sd_notify messages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (b"READY=1", {"READY": "1"}),
        (b"READY=1\n", {"READY": "1"}),
        (b"READY=1\nSTATUS=up and running", {"READY": "1", "STATUS": "up and running"}),
        (b"STATUS=a=b", {"STATUS": "a=b"}),  # only the first '=' splits
        (b"STATUS=", {"STATUS": ""}),
        (b"WATCHDOG=1", {"WATCHDOG": "1"}),
        (b"MAINPID=42\nSTOPPING=1", {"MAINPID": "42", "STOPPING": "1"}),
        (b"", {}),
        (b"\n\n", {}),
        (b"junk\nREADY=1\n=nokey\n", {"READY": "1"}),
        (b"STATUS=caf\xc3\xa9", {"STATUS": "caf\u00e9"}),
        (b"STATUS=\xff", {"STATUS": "\ufffd"}),
        (b"STATUS=one\nSTATUS=two", {"STATUS": "two"}),  # the last one wins
    ],
)
def test_parse_message(data: bytes, fields: dict[str, str]) -> None:
    """Newline-separated KEY=VALUE pairs; lines without a key or '=' are skipped;
    undecodable bytes are replaced, never an error."""
    assert parse_message(data) == fields


# -- pyinit health's verdict --------------------------------------------------------




def snap(stopping: bool = False, **services: dict[str, Any]) -> Snapshot:
    return Snapshot.from_json({"pid": 1, "stopping": stopping, "services": services})


def test_verdict_healthy_container() -> None:
    """Running + ready longruns (healthy or without a healthcheck) and completed
    oneshots: no problem at all."""
    s = snap(
        web=svc(health="healthy", health_detail="HTTP 200"),
        cache=svc(),
        migrate=svc(type="oneshot", state="completed", pid=None, ready=True),
    )
    assert verdict(s) == []


def test_verdict_empty() -> None:
    """No services: nothing is wrong (pyinit with only a main command)."""
    assert verdict(snap()) == []
    assert verdict(Snapshot()) == []


def test_verdict_not_ready() -> None:
    assert verdict(snap(web=svc(state="starting", ready=False))) == ["web: starting"]
    assert verdict(snap(web=svc(ready=False))) == ["web: not ready"]


def test_verdict_unhealthy_and_starting_health() -> None:
    """A ready service whose healthcheck says unhealthy (or still starting) is a problem,
    with the last probe's detail."""
    s = snap(web=svc(health="unhealthy", health_detail="exit 1: down"))
    assert verdict(s) == ["web: unhealthy (exit 1: down)"]
    assert verdict(snap(web=svc(health="starting"))) == ["web: starting"]


def test_verdict_failed_backoff_stopped() -> None:
    """Any longrun state but running is a problem; a failure's reason is shown."""
    s = snap(
        a=svc(state="failed", pid=None, ready=False, reason="exit 3"),
        b=svc(state="backoff", pid=None, ready=False),
        c=svc(state="stopped", pid=None, ready=False),
    )
    assert verdict(s) == ["a: failed (exit 3)", "b: backoff", "c: stopped"]


def test_verdict_oneshots() -> None:
    """A oneshot still running or starting is fine (it is doing its job); failed or
    stopped is not."""
    assert verdict(snap(m=svc(type="oneshot", state="running", ready=False))) == []
    assert verdict(snap(m=svc(type="oneshot", state="starting", ready=False))) == []
    assert verdict(snap(m=svc(type="oneshot", state="failed", reason="exit 1"))) == ["m: failed"]


def test_verdict_shutting_down() -> None:
    """A pyinit that is shutting down is never healthy, whatever its services say."""
    assert verdict(snap(stopping=True, web=svc())) == ["pyinit is shutting down"]


# -- socket probes in the loop --------------------------------------------------------


def run_probe(probe: Probe, answer: bytes | None, timeout: float = 2.0) -> tuple[bool, str]:
    """Run one tcp/http probe in a real EventLoop against a one-shot server on
    127.0.0.1 that sends ``answer`` and closes (None: nothing listens on the port)."""
    import socket

    from pyinit.health import start_probe
    from pyinit.loop import EventLoop

    loop = EventLoop()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    if answer is None:
        server.close()
    else:
        server.listen()
        server.setblocking(False)

        def accept() -> None:
            conn, _ = server.accept()
            loop.remove_reader(server.fileno())
            if probe.kind == "tcp":
                conn.close()
                return

            def reply() -> None:  # once the request came: answer and close
                loop.remove_reader(conn.fileno())
                conn.recv(4096)
                conn.sendall(answer)
                conn.close()

            loop.add_reader(conn.fileno(), reply)

        loop.add_reader(server.fileno(), accept)
    if probe.kind == "tcp":
        probe = Probe("tcp", port=port)
    else:
        probe = Probe(
            "http", url=f"http://127.0.0.1:{port}/ready", expect_status=probe.expect_status
        )
    result: list[tuple[bool, str]] = []

    def done(ok: bool, detail: str) -> None:
        result.append((ok, detail))
        loop.stop()

    start_probe(loop, probe, timeout, done, lambda pid, cb: None)
    guard = loop.call_later(5.0, loop.stop)
    loop.run()
    guard.cancel()
    if answer is not None:
        server.close()
    assert result, "the probe never reported"
    return result[0]


HTTP = Probe("http", url="http://x/")


@pytest.mark.parametrize(
    ("probe", "answer", "ok", "detail"),
    [
        (Probe("tcp"), b"", True, "connected"),
        (Probe("tcp"), None, False, "connect: Connection refused"),
        (HTTP, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True, "HTTP 200"),
        (HTTP, b"HTTP/1.1 503 Service Unavailable\r\n\r\n", False, "HTTP 503"),
        (HTTP, b"HTTP/1.0 302 Found\nLocation: /\n\n", True, "HTTP 302"),  # bare LF
        (HTTP, b"HTTP/1.0 200", True, "HTTP 200"),  # closed without any line end
        (HTTP, b"", False, "no HTTP status line in the response"),
        (HTTP, b"hello\r\n", False, "no HTTP status line in the response"),
        (
            Probe("http", url="http://x/", expect_status=204),
            b"HTTP/1.1 200 OK\r\n\r\n",
            False,
            "HTTP 200",
        ),
        (HTTP, None, False, "connect: Connection refused"),
    ],
)
def test_socket_probe(probe: Probe, answer: bytes | None, ok: bool, detail: str) -> None:
    """tcp passes when the connection is accepted; http judges the status line of the
    answer, however it ends (CRLF, bare LF, or the connection closing)."""
    assert run_probe(probe, answer) == (ok, detail)


def test_socket_probe_times_out() -> None:
    """A server that accepts and never answers: the http probe fails at its timeout."""
    import socket

    from pyinit.health import start_probe
    from pyinit.loop import EventLoop

    loop = EventLoop()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result: list[tuple[bool, str]] = []

        def done(ok: bool, detail: str) -> None:
            result.append((ok, detail))
            loop.stop()

        probe = Probe("http", url=f"http://127.0.0.1:{port}/")
        start_probe(loop, probe, 0.2, done, lambda pid, cb: None)
        guard = loop.call_later(5.0, loop.stop)
        loop.run()
        guard.cancel()
    assert result == [(False, "timed out after 0.2s")]


def test_probe_host_never_goes_to_dns() -> None:
    """A probe host that is neither an IP, localhost nor in /etc/hosts fails at once
    with a message, instead of blocking PID 1 on a resolver."""
    from pyinit.health import _address

    assert _address("127.0.0.1", 80)[1] == ("127.0.0.1", 80)
    assert _address("localhost", 81)[1] == ("127.0.0.1", 81)
    with pytest.raises(OSError, match="without DNS"):
        _address("no-such-host.invalid", 80)


def test_http_probe_description_hides_credentials() -> None:
    """user:password@ in a probe URL never reaches a log line, reason or /status."""
    from pyinit.config import Probe

    text = Probe(kind="http", url="http://admin:s3cret@127.0.0.1:8/ready?x=1").describe()
    assert "s3cret" not in text and text == "http http://127.0.0.1:8/ready?x=1"
