"""Pure parts of ``pyinit logs -f`` and of service targets: the follower's bounded
buffer and missed-lines marker, prefixes and timestamps, glob expansion."""

from __future__ import annotations

from pyinit.follow import Follower, Style, backlog, rfc3339
from pyinit.targets import expand


def test_follower_drops_newest_and_says_how_many() -> None:
    follower = Follower(["web"], Style.make(["web"], False), limit=10)
    chunks = follower.chunks()
    follower.push("web", b"12345")  # 6 bytes with its newline
    follower.push("web", b"a\nb\nc")  # 6 more: over the limit, 3 lines missed
    follower.push("other", b"not followed")
    assert next(chunks) == b"12345\n"
    assert next(chunks) == b"pyinit: missed 3 lines: this reader fell behind\n"
    assert next(chunks) == b""  # nothing more yet
    follower.push("web", b"x")
    assert next(chunks) == b"x\n"


def test_marker_comes_before_later_lines() -> None:
    follower = Follower(["web"], Style.make(["web"], False), limit=60)
    follower.push("web", b"x" * 59)
    follower.push("web", b"lost")
    chunks = follower.chunks()
    assert next(chunks) == b"x" * 59 + b"\n"
    follower.push("web", b"next")
    assert next(chunks) == b"pyinit: missed 1 line: this reader fell behind\nnext\n"


def test_style_prefixes_several_and_stamps() -> None:
    style = Style.make(["a", "bbb"], True)
    assert style.render("a", 0.25, b"x\ny") == (
        b"a   | 1970-01-01T00:00:00.250Z x\na   | 1970-01-01T00:00:00.250Z y\n"
    )
    assert Style.make(["a"], False).plain()
    assert rfc3339(86400.0) == "1970-01-02T00:00:00.000Z"


def test_backlog_merges_by_arrival() -> None:
    kept = {"a": [(1.0, b"a1"), (3.0, b"a3")], "b": [(2.0, b"b2\nb2'")]}
    count, data = backlog(["a", "b"], kept.__getitem__, Style.make(["a", "b"], False))
    assert count == 4
    assert data == b"a | a1\nb | b2\nb | b2'\na | a3\n"


def test_expand_globs_all_and_unknown() -> None:
    names = ["web", "worker_a", "worker_b"]
    assert expand(["worker*"], names) == (["worker_a", "worker_b"], [])
    assert expand(["all"], names) == (names, [])
    assert expand(["web", "w*"], names) == (names, [])
    assert expand(["nope"], names) == (["nope"], [])  # the command names it
    assert expand(["x_*"], names) == ([], ["no service matches 'x_*'"])
