"""``logs`` answers: the store's tail as views, the raw body in chunks, and the
server's budget of unsent answer bytes (a real ControlServer in a real loop)."""

from __future__ import annotations

import json
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyinit import control
from pyinit.answers import answer_chunks
from pyinit.logstore import RECENT_LINES, RecentLines
from tests.helpers.control import RecordingLoop, serving

blocks = st.lists(st.binary(max_size=40), min_size=1, max_size=12)


def _store(parts: list[bytes]) -> RecentLines:
    store = RecentLines()
    for part in parts:
        store.add(part)
    return store


@given(blocks, st.integers(0, 30))
def test_tail_is_the_last_lines(parts: list[bytes], count: int) -> None:
    """The views hold exactly the last ``count`` lines (0: all) of what was added."""
    lines = b"\n".join(parts).split(b"\n")
    wanted = lines[-count:] if count else lines
    found, views = _store(parts).tail(count)
    assert found == len(wanted)
    assert b"".join(bytes(v) + b"\n" for v in views) == b"".join(w + b"\n" for w in wanted)


def test_tail_caps_at_recent_lines() -> None:
    store = _store([b"\n".join(b"%d" % i for i in range(RECENT_LINES + 500))])
    for count in (0, RECENT_LINES, RECENT_LINES + 1):
        found, views = store.tail(count)
        assert found == RECENT_LINES and bytes(views[0]).startswith(b"500\n501\n")
    assert len(store) == RECENT_LINES and list(store)[-1] == b"%d" % (RECENT_LINES + 499)


@given(st.lists(st.binary(max_size=50), max_size=10), st.integers(1, 64))
def test_chunks_round_trip(parts: list[bytes], size: int) -> None:
    """Every byte comes back (the newline and backslash included), each view ended
    by a newline; full-size chunks but the last, none empty."""
    chunks = list(answer_chunks([memoryview(p) for p in parts], size))
    assert b"".join(chunks) == b"".join(p + b"\n" for p in parts)
    assert all(len(c) == size for c in chunks[:-1]) and all(chunks)


def _silent_client(path: str, loop: RecordingLoop, service: str) -> socket.socket:
    """A client that asks for ``service``'s logs and does not read the answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(json.dumps({"cmd": "logs", "service": service, "lines": 0}).encode() + b"\n")
    for _ in range(3):
        loop.step()
    return sock


def _read_all(sock: socket.socket, loop: RecordingLoop) -> bytes:
    sock.setblocking(False)
    data = b""
    while True:
        loop.step()
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            continue
        if not chunk:
            return data
        data += chunk


def test_budget_refuses_logs_while_answers_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the budget a logs request is answered "busy"; status still answers; a
    client gone frees its share, and the next logs answer is whole."""
    monkeypatch.setattr(control, "ANSWER_BUDGET", 3 * 1024 * 1024)
    big = b"\xff" * 2 * 1024 * 1024  # one block: the store keeps its last block whole
    with serving() as (server, sup):
        sup.recent["big"] = _store([big])
        first = _silent_client(server.path, sup.loop, "big")
        assert len(server.conns) == 1 and server.held > 1024 * 1024
        second = _silent_client(server.path, sup.loop, "big")
        head, _, rest = _read_all(second, sup.loop).partition(b"\n")
        second.close()
        answer = json.loads(head)
        assert not answer["ok"] and answer["error"].startswith("busy:"), answer
        assert rest == b""
        status = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        status.connect(server.path)
        status.sendall(b'{"cmd": "status"}\n')
        assert json.loads(_read_all(status, sup.loop))["ok"]
        status.close()
        first.close()
        for _ in range(3):
            sup.loop.step()
        assert not server.conns and server.held == 0
        third = _silent_client(server.path, sup.loop, "big")
        head, _, rest = _read_all(third, sup.loop).partition(b"\n")
        third.close()
        assert json.loads(head) == {"ok": True, "lines": 1, "bytes": len(big) + 1}
        assert rest == big + b"\n" and server.held == 0
