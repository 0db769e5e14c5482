"""The text-mode fast path of the log router emits exactly what the per-line path does."""

from __future__ import annotations

import os
import random

import pytest

from pyinit import logs
from pyinit.loop import EventLoop


def _route(chunks: list[bytes], fast: bool) -> tuple[bytes, list[bytes]]:
    """Feed ``chunks`` as one service's stdout; return what reached pyinit's stdout
    and the recent lines kept for ``pyinit logs``."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.set_blocking(out_r, False)
    router = logs.LogRouter(EventLoop(), ["web"], "text", stdout_fd=out_w, stderr_fd=err_w)
    if not fast:
        router.watch("web", lambda line: None)  # a watcher forces the per-line path
    cap = logs._Capture(-1, "web", "stdout", 42, b"web | ")
    received = b""
    for chunk in chunks:
        router._emit_chunk(cap, chunk)
        while True:
            try:
                data = os.read(out_r, 1 << 20)
            except BlockingIOError:
                break
            received += data
    for fd in (out_r, out_w, err_r, err_w):
        os.close(fd)
    return received, list(router.recent.get("web", []))


@pytest.mark.parametrize("seed", range(20))
def test_fast_path_matches_the_per_line_path(seed: int) -> None:
    """For random chunkings of short, long (> MAX_LINE) and empty lines, the fast
    path's output and recent lines equal those of the exact per-line path."""
    rng = random.Random(seed)
    lines = [
        b"x" * rng.choice([0, 1, 80, 5000, logs.MAX_LINE - 1, logs.MAX_LINE, 40000])
        for _ in range(rng.randint(1, 40))
    ]
    data = b"\n".join(lines) + b"\n"
    cuts = sorted(rng.sample(range(1, len(data)), k=min(10, len(data) - 1)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert _route(chunks, fast=True) == _route(chunks, fast=False)


def test_no_long_line_detects_a_line_at_the_limit() -> None:
    """The block check refuses any chunk holding a line of MAX_LINE bytes or more."""
    short = (b"a" * 100 + b"\n") * 1000
    assert logs._no_long_line(short, len(short) - 1)
    long = short + b"b" * logs.MAX_LINE + b"\n"
    assert not logs._no_long_line(long, len(long) - 1)
