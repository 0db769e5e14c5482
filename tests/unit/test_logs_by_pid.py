"""The log router drains a reaped process's pipes through its index by pid: all of
that pid's pipes, in the order attached, none of another's, and a closed pipe is
out of the index."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pyinit import logs
from pyinit.loop import EventLoop


@pytest.fixture
def router() -> Iterator[tuple[logs.LogRouter, int]]:
    out_r, out_w = os.pipe()
    os.set_blocking(out_r, False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    yield logs.LogRouter(EventLoop(), ["a", "b"], "text", stdout_fd=out_w, stderr_fd=devnull), out_r
    for fd in (out_r, out_w, devnull):
        os.close(fd)


def _pipe(router: logs.LogRouter, service: str, pid: int, text: bytes, close: bool) -> int:
    r, w = os.pipe()
    router.attach(service, pid, "stdout", r)
    os.write(w, text)
    if close:
        os.close(w)
        return -1
    return w


def test_drain_pid_reads_that_pids_pipes_only(router: tuple[logs.LogRouter, int]) -> None:
    rt, out = router
    _pipe(rt, "a", 10, b"a1\n", close=True)
    keep = _pipe(rt, "b", 20, b"b1\n", close=False)
    _pipe(rt, "a", 10, b"a2\n", close=True)
    rt.drain_pid(10)
    assert os.read(out, 1000) == b"a | a1\na | a2\n"
    assert list(rt._by_pid) == [20]  # both of pid 10's pipes hit EOF and were closed
    rt.drain_pid(20)
    assert os.read(out, 1000) == b"b | b1\n"
    assert list(rt._by_pid) == [20]  # still open: its writer lives on
    os.close(keep)
    rt.drain_pid(20)
    assert rt._by_pid == {} and rt._captures == {}
