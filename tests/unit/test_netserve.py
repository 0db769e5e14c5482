"""The socket-serving base (pyinit/netserve.py) through the control server in a
real loop: who makes room when every connection slot is taken."""

from __future__ import annotations

import json
import socket

from tests.helpers.control import RecordingLoop, serving


def _connect(path: str, loop: RecordingLoop, request: bytes = b"") -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.setblocking(False)
    if request:
        sock.sendall(request)
    loop.step()
    loop.step()
    return sock


def _closed(sock: socket.socket) -> bool:
    """Closed by the server (an end of file, or a reset: it did not read the request)."""
    try:
        return sock.recv(1 << 16) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def _answer(sock: socket.socket, loop: RecordingLoop) -> dict[str, object]:
    data = b""
    for _ in range(20):
        loop.step()
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    answer: dict[str, object] = json.loads(data)
    return answer


def test_the_oldest_connection_without_a_request_makes_room() -> None:
    """Full of clients that sent nothing (or half a line): a newcomer closes the
    oldest of them and is served at once; the others keep their slots."""
    with serving() as (server, sup):
        server.max_connections = 3
        idle = [_connect(server.path, sup.loop, b'{"cmd": "sta') for _ in range(3)]
        newest = _connect(server.path, sup.loop, b'{"cmd": "health"}\n')
        assert _closed(idle[0])
        assert not _closed(idle[1]) and not _closed(idle[2])
        assert _answer(newest, sup.loop)["ok"] is True
        assert server.refused == 0
        for sock in [*idle, newest]:
            sock.close()


def test_a_connection_holding_a_promise_is_never_evicted() -> None:
    """Held ``wait`` requests are promises: with every slot holding one, the newcomer
    is refused (closed at once) and every wait still gets its answer."""
    with serving() as (server, sup):
        server.max_connections = 3
        sup.busy_names = {"web"}  # web is about to be restarted: a wait holds
        wait = b'{"cmd": "wait", "services": ["web"], "timeout": 60}\n'
        held = [_connect(server.path, sup.loop, wait) for _ in range(3)]
        refused = _connect(server.path, sup.loop, b'{"cmd": "status"}\n')
        assert _closed(refused) and server.refused == 1
        assert not any(_closed(sock) for sock in held)
        sup.busy_names = set()
        for hook in sup.change_hooks:
            hook()
        assert all(_answer(sock, sup.loop) == {"ok": True} for sock in held)
        for sock in [*held, refused]:
            sock.close()
