"""Unit tests for the event loop's timer and stop semantics (a socketpair, no processes)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from pyinit.loop import EventLoop


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_idle_loop_has_no_timeout() -> None:
    """With no timer armed the loop would block without a timeout: zero idle wake-ups."""
    loop = EventLoop()
    assert loop._next_timeout() is None
    timer = loop.call_later(5, lambda: None)
    timeout = loop._next_timeout()
    assert timeout is not None and 4 < timeout <= 5
    timer.cancel()
    assert loop._next_timeout() is None


def test_timers_run_in_order_and_cancelled_ones_do_not() -> None:
    """Due timers fire in deadline order; a cancelled timer never fires."""
    loop = EventLoop()
    fired: list[str] = []
    loop.call_later(0.02, lambda: (fired.append("late"), loop.stop()))
    loop.call_later(0.0, lambda: fired.append("early"))
    loop.call_later(0.01, lambda: fired.append("cancelled")).cancel()
    loop.run()
    assert fired == ["early", "late"]


def test_no_timer_fires_after_stop(pair: tuple[socket.socket, socket.socket]) -> None:
    """Once a callback stopped the loop, a timer that is already due does not run.

    (Wrapper mode arms a SIGKILL timer; it must not fire after pyinit decided to exit.)
    """
    a, b = pair
    loop = EventLoop()
    fired: list[str] = []

    def on_readable() -> None:
        a.recv(16)
        fired.append("reader")
        loop.stop()

    loop.add_reader(a.fileno(), on_readable)
    loop.call_later(0.0, lambda: fired.append("timer"))
    b.send(b"x")
    loop.run()
    assert fired == ["reader"]


def test_callback_errors_do_not_stop_the_loop(capsys: pytest.CaptureFixture[str]) -> None:
    """PID 1 survives a bug in one callback: it is reported and the loop goes on."""
    loop = EventLoop()

    def broken() -> None:
        raise RuntimeError("boom")

    loop.call_later(0.0, broken)
    loop.call_later(0.0, loop.stop)
    loop.run()
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_a_far_timer_sleeps_at_most_a_day() -> None:
    """A timer decades away (a huge stop_grace_period meaning "forever") must not
    overflow epoll's millisecond timeout: the loop sleeps at most a day at a time."""
    loop = EventLoop()
    loop.call_later(1e12, lambda: None)
    timeout = loop._next_timeout()
    assert timeout is not None and timeout <= 86400.0


def test_a_failed_registration_is_forgotten() -> None:
    """A pipe closed while registered, its fd number reused by a socket: adding a
    writer fails (the selector has a stale key), and the loop forgets the fd, so
    the next add or remove starts afresh instead of failing on a KeyError."""
    loop = EventLoop()
    r, w = os.pipe()
    loop.add_reader(r, lambda: None)
    os.close(r)
    os.close(w)
    a, b = socket.socketpair()
    try:
        assert a.fileno() == r
        with pytest.raises(OSError):
            loop.add_writer(a.fileno(), lambda: None)
        loop.remove_reader(a.fileno())
        loop.remove_writer(a.fileno())
        got: list[str] = []
        loop.add_reader(a.fileno(), lambda: (got.append("read"), loop.stop()))
        b.send(b"x")
        loop.run()
        assert got == ["read"]
    finally:
        a.close()
        b.close()
