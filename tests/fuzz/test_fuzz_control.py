"""Fuzzing the control protocol: the request parser refuses with RequestError and
nothing else, and the real ControlServer in a real EventLoop answers or closes any
byte string within a few loop iterations, then still answers ``status``."""

from __future__ import annotations

import json
import math
import socket
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from pyinit.control import ControlServer
from pyinit.protocol import (
    COMMANDS,
    MAX_REQUEST,
    MAX_WAIT_TIMEOUT,
    Request,
    RequestError,
    parse_request,
)
from tests.helpers.control import RecordingLoop, serving

# -- the parser ------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(300, 420).map(lambda e: -(10**e) if e % 2 else 10**e)  # past float
    | st.floats()
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ARG_KEYS = ["cmd", "services", "service", "signal", "lines", "timeout", "count"]
arg_values = st.one_of(
    json_values,
    st.sampled_from([*COMMANDS, "TERM", "SIGRTMAX-1", "0", "99", "²", "web", "", -1, 0, 1e308]),
    st.lists(st.sampled_from(["web", "db", "", "web"]), max_size=4),
    st.integers(300, 420).map(lambda e: -(10**e) if e % 2 else 10**e),
    st.floats(),
)
requests = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(ARG_KEYS), arg_values).map(lambda d: d),
    st.fixed_dictionaries(
        {"cmd": st.sampled_from(COMMANDS)},
        optional={k: arg_values for k in ARG_KEYS if k != "cmd"},
    ),
)


def _check_parse(line: bytes) -> Request | None:
    try:
        request = parse_request(line)
    except RequestError as exc:
        assert str(exc)
        return None
    assert request.cmd in COMMANDS
    assert all(isinstance(n, str) and n for n in request.services)
    assert len(set(request.services)) == len(request.services)
    assert isinstance(request.lines, int) and request.lines >= 0
    assert math.isfinite(request.timeout) and 0 <= request.timeout <= MAX_WAIT_TIMEOUT
    assert isinstance(request.count, int) and not isinstance(request.count, bool)
    assert request.count >= 0
    if request.cmd == "scale":
        assert len(request.services) == 1
    return request


@given(st.binary(max_size=300))
def test_random_bytes_parse_or_refuse(line: bytes) -> None:
    _check_parse(line)


@given(requests, st.sampled_from([b"", b"\n", b"\r\n", b" "]))
def test_random_json_parses_or_refuses(value: Any, end: bytes) -> None:
    _check_parse(json.dumps(value).encode() + end)


def test_regressions() -> None:
    # Found by fuzzing: an integer timeout too large for a float raised OverflowError,
    # answered as an internal error.
    for timeout in (10**400, -(10**400)):
        line = json.dumps({"cmd": "wait", "services": ["a"], "timeout": timeout}).encode()
        try:
            request = parse_request(line)
        except RequestError:
            assert timeout < 0
        else:
            assert timeout > 0 and request.timeout == MAX_WAIT_TIMEOUT
    try:
        parse_request(b'{"cmd": "signal", "services": ["a"], "signal": "\\u00b2"}')
    except RequestError as exc:
        assert "int()" not in str(exc)


# -- the server, in its loop -------------------------------------------------------------


def _exchange(
    server: ControlServer, chunks: list[bytes], half_close: bool, iterations: int = 60
) -> tuple[bytes, bool]:
    """Send ``chunks`` (a loop step after each), then run the loop up to ``iterations``
    times; what came back, and whether the server closed the connection."""
    loop = server.loop
    assert isinstance(loop, RecordingLoop)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(server.path)
        client.setblocking(False)
        pending = list(chunks)
        data = b""
        received = b""
        sending = True
        for _ in range(iterations + len(chunks)):
            if sending and not data and pending:
                data = pending.pop(0)
            if sending and data:
                try:
                    sent = client.send(data, socket.MSG_NOSIGNAL)
                    data = data[sent:]
                except BlockingIOError:
                    pass
                except OSError:  # the server answered and closed already
                    sending = False
            if sending and not data and not pending and half_close:
                client.shutdown(socket.SHUT_WR)
                sending = False
            loop.step()
            try:
                got = client.recv(1 << 20)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                return received, True
            if not got:
                return received, True
            received += got
        return received, False
    finally:
        client.close()


def _check_answer(received: bytes) -> dict[str, Any] | None:
    """One answer line; for ``logs``, then its ``bytes`` of raw lines (web's last ones)."""
    if not received:
        return None
    head, _, body = received.partition(b"\n")
    answer = json.loads(head)
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), answer
    if "bytes" in answer:
        assert answer["ok"] and len(body) == answer["bytes"], (answer, body)
        assert b"one\ntwo \xff\n".endswith(body) and body.count(b"\n") == answer["lines"]
    else:
        assert not body and received.endswith(b"\n"), received[:200]
    if not answer["ok"]:  # says why: "error", or per service "errors" (start, stop...)
        assert answer.get("error") or answer.get("errors") or answer.get("messages"), answer
    return answer


def _status_still_answered(server: ControlServer) -> None:
    received, closed = _exchange(server, [b'{"cmd": "status"}\n'], half_close=False)
    answer = _check_answer(received)
    assert closed and answer is not None and answer["ok"], received
    assert answer["status"]["services"]["web"]["state"] == "running"
    assert not server.conns


payloads = st.one_of(
    st.binary(max_size=200),
    st.tuples(
        st.binary(max_size=20),
        st.sampled_from([0, 100, MAX_REQUEST - 2, MAX_REQUEST - 1, MAX_REQUEST, MAX_REQUEST + 5]),
        st.binary(max_size=20),
    ).map(lambda t: t[0] + b"x" * t[1] + t[2]),
    requests.map(lambda v: json.dumps(v).encode() + b"\n"),
)


@given(payloads, st.data(), st.booleans())
def test_server_answers_or_closes_any_bytes(
    payload: bytes, data: st.DataObject, half_close: bool
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=3)))
    chunks = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
    with serving() as (server, _sup):
        received, closed = _exchange(server, [c for c in chunks if c], half_close)
        answer = _check_answer(received)
        event("no answer" if answer is None else f"answer ok={answer['ok']}")
        finished = half_close or b"\n" in payload or len(payload) > MAX_REQUEST
        event("request complete" if finished else "request incomplete")
        if finished:
            assert closed, (payload[:100], received[:100])
        else:
            # Still waiting for the rest of the line, with the request timer armed:
            # when it fires, the connection goes.
            assert not closed and not received
            (conn,) = server.conns.values()
            assert conn.timer is not None and not conn.timer.cancelled
            conn.timer.callback()
            assert not server.conns
        _status_still_answered(server)
