"""Unit tests for pyinit/httpd.py without a process: addresses, request parsing,
responses, the endpoints' verdicts and the Prometheus text they render."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyinit.httpd import (
    BadRequest,
    Endpoints,
    liveness,
    parse_address,
    parse_request,
    render_response,
)
from pyinit.metrics import escape_label, format_value, render_metrics
from pyinit.snapshot import ServiceState, Snapshot
from tests.helpers import promtext
from tests.helpers.snapshots import svc

NOW = 1_700_000_100.0


def snap(services: dict[str, dict[str, Any]], **over: Any) -> Snapshot:
    base: dict[str, Any] = {
        "pid": 1,
        "stopping": False,
        "started": 1_700_000_000.25,
        "orphans_reaped": 3,
        "signals_forwarded": 2,
        "services": services,
    }
    base.update(over)
    return Snapshot.from_json(base)


# -- addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":9000", ("", 9000)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::]:65535", ("::", 65535)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_parse_address_accepts_host_port(text: str, expected: tuple[str, int]) -> None:
    """[host]:port with an optional host; IPv6 hosts in brackets; port 1-65535."""
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9000", "did you mean ':9000'"),
        (":0", "from 1 to 65535"),
        (":65536", "from 1 to 65535"),
        (":http", "from 1 to 65535"),
        ("host:", "from 1 to 65535"),
        ("::1:9000", "brackets"),
        ("[::1]9000", "expected [host]:port"),
        ("[]:9000", "empty IPv6"),
        ("", "expected [host]:port"),
    ],
)
def test_parse_address_rejects_with_a_reason(text: str, message: str) -> None:
    """A bad address is a ValueError whose message says what is expected."""
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_address(text)


# -- requests and responses ----------------------------------------------------------------


def test_parse_request_takes_method_and_path_without_query() -> None:
    """Request line + headers -> (method, path); the query string is not part of the route."""
    head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: kube-probe/1.29\r\n\r\n"
    assert parse_request(head) == ("GET", "/metrics")
    assert parse_request(b"HEAD /healthz HTTP/1.0\n\n") == ("HEAD", "/healthz")


@pytest.mark.parametrize(
    "head",
    [
        b"GET /\r\n\r\n",  # HTTP/0.9
        b"GET  / HTTP/1.1\r\n\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/2\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\n\r\n",
    ],
)
def test_parse_request_rejects_malformed_heads(head: bytes) -> None:
    """Anything but 'METHOD /path HTTP/1.x' plus 'Name: value' lines is a 400."""
    with pytest.raises(BadRequest) as info:
        parse_request(head)
    assert info.value.status == 400


def test_render_response_is_http_1_0_with_length_and_close() -> None:
    """Every answer says its length and that the connection closes; HEAD has no body;
    405 names the allowed methods."""
    data = render_response(200, "text/plain", b"ok\n")
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.0 200 OK"
    assert "Content-Length: 3" in lines and "Connection: close" in lines
    assert body == b"ok\n"
    assert render_response(200, "text/plain", b"ok\n", head_only=True).endswith(b"\r\n\r\n")
    assert b"Allow: GET, HEAD\r\n" in render_response(405, "text/plain", b"")


# -- endpoints --------------------------------------------------------------------------


def endpoints(snapshot: Snapshot, critical: tuple[str, ...] = ()) -> Endpoints:
    return Endpoints(lambda: snapshot, lambda: critical, clock=lambda: NOW)


def test_healthz_fails_only_for_a_failed_critical_service() -> None:
    """/healthz: 200 'ok' while no critical service failed (a failed non-critical one,
    or one still starting, is not a reason to restart the container), else 503 why."""
    services = {
        "web": svc(state="starting", ready=False),
        "cron": svc(state="failed", reason="status 1", uptime=None),
    }
    assert endpoints(snap(services), ("web",))("GET", "/healthz") == (
        200,
        "text/plain; charset=utf-8",
        b"ok\n",
    )
    services["web"] = svc(state="failed", reason="start limit reached", uptime=None)
    status, _, body = endpoints(snap(services), ("web",))("GET", "/healthz")
    assert status == 503
    assert body == b"critical service web failed (start limit reached)\n"
    assert liveness(snap(services), ()) == []


def test_readyz_uses_the_status_verdict_one_problem_per_line() -> None:
    """/readyz: 200 when status.verdict is empty, else 503 with one problem per line."""
    ready = {"web": svc(), "migrate": svc(type="oneshot", state="completed", uptime=None)}
    assert endpoints(snap(ready))("GET", "/readyz")[0] == 200
    not_ready = {
        "web": svc(state="starting", ready=False),
        "api": svc(state="pending", uptime=None, pid=None, ready=False),
        "db": svc(health="unhealthy", health_detail="exit 1"),
    }
    status, _, body = endpoints(snap(not_ready))("GET", "/readyz")
    assert status == 503
    assert body.decode().splitlines() == ["web: starting", "api: pending", "db: unhealthy (exit 1)"]
    status, _, body = endpoints(snap(ready, stopping=True))("GET", "/readyz")
    assert (status, body) == (503, b"pyinit is shutting down\n")


def test_status_is_the_snapshot_as_json() -> None:
    """/status: the snapshot, as JSON, unchanged."""
    snapshot = snap({"web": svc()})
    status, content_type, body = endpoints(snapshot)("GET", "/status")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == snapshot.to_json()
    assert body == (json.dumps(snapshot.to_json(), indent=1, sort_keys=True) + "\n").encode()


def test_unknown_paths_404_and_other_methods_405() -> None:
    """Any other path is 404; a method other than GET (or HEAD) on a known path is 405."""
    ep = endpoints(snap({}))
    assert ep("GET", "/")[0] == 404
    assert ep("GET", "/healthz/")[0] == 404
    assert ep("POST", "/healthz")[0] == 405
    assert ep("DELETE", "/metrics")[0] == 405
    assert ep("HEAD", "/healthz")[0] == 200


# -- metrics ----------------------------------------------------------------------------


def test_metrics_parse_as_prometheus_text_with_help_and_type() -> None:
    """Every family has # HELP and # TYPE (counters for the *_total ones) and its
    samples parse as the 0.0.4 text format."""
    text = render_metrics(
        snap({"web": svc(), "job": svc(type="oneshot", state="completed", uptime=None)}), NOW
    )
    families = promtext.parse(text)
    expected = {
        "pyinit_service_up": "gauge",
        "pyinit_service_ready": "gauge",
        "pyinit_service_healthy": "gauge",
        "pyinit_service_restarts_total": "counter",
        "pyinit_service_last_exit_code": "gauge",
        "pyinit_service_start_time_seconds": "gauge",
        "pyinit_service_state": "gauge",
        "pyinit_orphans_reaped_total": "counter",
        "pyinit_signals_forwarded_total": "counter",
        "pyinit_start_time_seconds": "gauge",
    }
    assert {name: f.type for name, f in families.items()} == expected
    assert all(f.help for f in families.values())


def test_metrics_values_per_service() -> None:
    """up/ready/healthy are 1/0; restarts and last exit code as numbers; the start time
    is now - uptime; absent values (no exit yet, not running) are omitted, not 0."""
    services = {
        "web": svc(restarts=2, last_exit=1, uptime=100.0),
        "db": svc(state="starting", ready=False, health="starting", uptime=0.5),
        "api": svc(state="backoff", pid=None, ready=False, uptime=None, last_exit=143),
        "new": svc(state="pending", pid=None, ready=False, uptime=None),
    }
    fam = promtext.parse(render_metrics(snap(services), NOW))
    assert fam["pyinit_service_up"].by("service") == {"web": 1, "db": 1, "api": 0, "new": 0}
    assert fam["pyinit_service_ready"].by("service") == {"web": 1, "db": 0, "api": 0, "new": 0}
    assert fam["pyinit_service_healthy"].by("service") == {"web": 1, "db": 0, "api": 1, "new": 1}
    assert fam["pyinit_service_restarts_total"].value(service="web") == 2
    assert fam["pyinit_service_last_exit_code"].by("service") == {"web": 1, "api": 143}
    assert fam["pyinit_service_start_time_seconds"].by("service") == {
        "web": NOW - 100.0,
        "db": NOW - 0.5,
    }
    state = fam["pyinit_service_state"]
    assert len(state.samples) == 4 * len(ServiceState)
    assert state.value(service="api", state="backoff") == 1
    assert state.value(service="api", state="running") == 0
    assert sum(v for ls, v in state.samples if ls["service"] == "new") == 1
    assert fam["pyinit_orphans_reaped_total"].value() == 3
    assert fam["pyinit_signals_forwarded_total"].value() == 2
    assert fam["pyinit_start_time_seconds"].value() == 1_700_000_000.25


def test_metrics_escape_label_values() -> None:
    """Label values escape backslash, double quote and newline; the parser gets the
    original name back."""
    odd = 'a\\b"c\nd'
    assert escape_label(odd) == 'a\\\\b\\"c\\nd'
    fam = promtext.parse(render_metrics(snap({odd: svc()}), NOW))
    assert fam["pyinit_service_up"].by("service") == {odd: 1}


def test_metrics_with_no_services_still_parse() -> None:
    """An empty config gives families with headers and no service samples."""
    fam = promtext.parse(render_metrics(snap({}), NOW))
    assert fam["pyinit_service_up"].samples == []
    assert fam["pyinit_orphans_reaped_total"].value() == 3


def test_format_value() -> None:
    """Integers stay integers; floats round-trip; NaN and infinities in Prometheus spelling."""
    assert format_value(3) == "3"
    assert format_value(True) == "1"
    assert format_value(0.1) == "0.1"
    assert format_value(float("nan")) == "NaN"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("-inf")) == "-Inf"


def test_promtext_parser_rejects_what_a_scraper_would() -> None:
    """The test's own parser is strict: bad escapes, ungrouped samples, late TYPE."""
    bad = [
        'm{a="\\x"} 1\n',
        "m 1\nn 1\nm 2\n",
        "m 1\n# TYPE m gauge\n",
        "m one\n",
        "m 1",
    ]
    for text in bad:
        with pytest.raises(ValueError):
            promtext.parse(text)
