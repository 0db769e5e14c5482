"""Unit tests for file watching (pyinit.watch): ignore patterns (pure), and the
inotify Watcher on a temporary tree driven by the real event loop (no processes)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyinit import watch
from pyinit.loop import EventLoop
from pyinit.watch import Watcher, WatchSpec, compile_ignore

GIVE_UP = 10.0  # seconds: a test that waits longer than this has failed


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "ignored"),
    [
        (["*.pyc"], "a.pyc", False, True),
        (["*.pyc"], "pkg/sub/a.pyc", False, True),
        (["*.pyc"], "a.py", False, False),
        ([".git/"], ".git", True, True),
        ([".git/"], ".git/objects/ab", False, True),
        ([".git/"], ".git", False, False),  # a file named .git (a worktree link) is not a dir
        (["build/out"], "build/out/x", False, True),
        (["build/out"], "src/build/out", False, False),  # a slash anchors to the root
        (["/node_modules"], "node_modules", True, True),
        (["/node_modules"], "a/node_modules", True, False),
        (["docs/**/*.md"], "docs/a/b/c.md", False, True),
        (["docs/**/*.md"], "docs/c.md", False, True),
        (["tmp?"], "tmp1", False, True),
        (["[ab].txt"], "b.txt", False, True),
        (["[!ab].txt"], "b.txt", False, False),
        ([""], "x", False, False),
    ],
)
def test_ignore_patterns(patterns: list[str], path: str, is_dir: bool, ignored: bool) -> None:
    """Patterns are relative to the watched path, gitignore-shaped."""
    assert compile_ignore(patterns)(path, is_dir) is ignored


class Harness:
    """A Watcher on ``tmp_path`` run by a real EventLoop until a batch arrives."""

    def __init__(self, specs: list[WatchSpec]) -> None:
        self.loop = EventLoop()
        self.batches: list[list[str]] = []
        self.warnings: list[str] = []
        self.watcher = Watcher(self.loop, specs, self._changed, self.warnings.append)

    def _changed(self, paths: list[str]) -> None:
        self.batches.append(paths)
        self.loop.stop()

    def next_batch(self, action: Callable[[], None]) -> list[str]:
        """Do ``action`` from inside the loop, then run until one batch arrives."""
        before = len(self.batches)
        self.loop.call_later(0, action)
        give_up = self.loop.call_later(GIVE_UP, self.loop.stop)
        self.loop.run()
        give_up.cancel()
        assert len(self.batches) == before + 1, "no change was reported"
        return self.batches[-1]

    def close(self) -> None:
        self.watcher.close()
        self.loop.close()


@pytest.fixture
def harness(tmp_path: Path) -> Any:
    made: list[Harness] = []

    def make(*specs: WatchSpec) -> Harness:
        h = Harness(list(specs) or [WatchSpec(str(tmp_path), (".git/", "*.pyc"))])
        h.watcher.start()
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def test_nested_change_is_seen(tmp_path: Path, harness: Any) -> None:
    """A change deep inside a watched directory is reported with its path."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    h = harness()
    assert h.watcher.watches == 3
    target = tmp_path / "a" / "b" / "app.py"
    assert h.next_batch(lambda: target.write_text("x")) == [str(target)]


def test_burst_is_one_batch(tmp_path: Path, harness: Any) -> None:
    """Many files changed at once (a checkout) are one batch, delivered after the
    paths went quiet for the debounce period."""
    h = harness()

    def burst() -> None:
        for i in range(200):
            (tmp_path / f"f{i}.py").write_text("x")

    paths = h.next_batch(burst)
    assert len(paths) == 200
    # The loop stopped at the batch: nothing else is queued for a second one.
    assert h.watcher._timer is None and h.watcher._changed == set()


def test_debounce_waits_for_quiet(
    tmp_path: Path, harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes spread over more than the debounce period, each within it of the
    last, are still one batch. (A longer period than the real 300 ms, so that a
    loaded machine's scheduling delays stay well inside it.)"""
    monkeypatch.setattr(watch, "DEBOUNCE", 1.0)
    h = harness()
    step = watch.DEBOUNCE / 4

    def write(i: int) -> None:
        (tmp_path / f"f{i}").write_text("x")
        if i < 5:
            h.loop.call_later(step, lambda: write(i + 1))

    paths = h.next_batch(lambda: write(0))
    assert len(paths) == 6  # 6 writes over 5 * DEBOUNCE/4 > DEBOUNCE: one batch


def test_ignored_paths_are_not_changes(tmp_path: Path, harness: Any) -> None:
    """Ignored files and ignored directories' contents do not count; the batch that
    a real change makes names only that change."""
    (tmp_path / ".git").mkdir()
    h = harness()
    assert h.watcher.watches == 1  # .git/ is not even watched

    def changes() -> None:
        (tmp_path / "x.pyc").write_text("x")
        (tmp_path / ".git" / "HEAD").write_text("x")
        (tmp_path / ".app.py.swp").write_text("x")  # an editor's swap file
        (tmp_path / "real.py").write_text("x")

    assert h.next_batch(changes) == [str(tmp_path / "real.py")]


def test_new_subdirectory_is_watched(tmp_path: Path, harness: Any) -> None:
    """A directory created after the start gets its watch (and its subdirectories
    too), so a later change inside it is seen."""
    h = harness()
    nested = tmp_path / "new" / "deeper"
    h.next_batch(lambda: nested.mkdir(parents=True))
    assert h.watcher.watches == 3
    target = nested / "mod.py"
    assert h.next_batch(lambda: target.write_text("x")) == [str(target)]


def test_single_file_survives_atomic_replace(tmp_path: Path, harness: Any) -> None:
    """Watching one file sees saves that replace it by rename, again and again."""
    config = tmp_path / "app.toml"
    config.write_text("a")
    (tmp_path / "other").write_text("a")
    h = harness(WatchSpec(str(config)))

    def replace() -> None:
        (tmp_path / "other").write_text("b")  # a neighbour: not this watch's business
        (tmp_path / "tmp").write_text("b")
        os.rename(tmp_path / "tmp", config)

    assert h.next_batch(replace) == [str(config)]
    assert h.next_batch(replace) == [str(config)]


def test_missing_path_is_a_warning(tmp_path: Path, harness: Any) -> None:
    h = harness(WatchSpec(str(tmp_path / "nope")))
    assert h.warnings == [f"watch: {tmp_path / 'nope'} does not exist; it is not watched"]


def test_watch_limit_is_one_warning(
    tmp_path: Path, harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the kernel refuses more watches (ENOSPC), one warning names
    fs.inotify.max_user_watches, and the watches already made keep working."""
    import inotify_simple

    real = inotify_simple.INotify.add_watch
    allowed = [2]

    def limited(self: Any, path: str, mask: int) -> int:
        if allowed[0] == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        allowed[0] -= 1
        return int(real(self, path, mask))

    monkeypatch.setattr(inotify_simple.INotify, "add_watch", limited)
    for name in "abcd":
        (tmp_path / name).mkdir()
    h = harness()
    assert h.watcher.watches == 2
    assert len(h.warnings) == 1 and "fs.inotify.max_user_watches" in h.warnings[0]
    h.next_batch(lambda: (tmp_path / "e").mkdir())  # a new dir: no watch, no new warning
    assert len(h.warnings) == 1
    assert h.next_batch(lambda: (tmp_path / "top.py").write_text("x")) == [str(tmp_path / "top.py")]
