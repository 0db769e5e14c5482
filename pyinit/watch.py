"""Restart on file change: inotify watches on a service's paths, one debounced callback.

The inotify fd sits in the loop's selector like any pipe: no thread, no polling.
Directories are watched recursively, one inotify watch per directory, and a
directory created (or moved in) later gets its watches when its event arrives.
Changes are batched: the callback runs once the paths have been quiet for
DEBOUNCE seconds (a ``git checkout`` or an editor's save is one restart), and
at most MAX_BATCH seconds after the first change of a batch, so a file that
never stops changing still restarts the service now and then.

Ignore patterns follow .gitignore's shape, relative to the watched path: a
pattern without a slash matches a name at any depth (``*.pyc``), one with a
slash is anchored to the watched path (``build/out``), a trailing slash matches
directories only and everything under them (``.git/``), and ``**`` crosses
directories. An ignored directory is not watched at all, which saves watches.

inotify_simple is imported only when a config has ``develop.watch``.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from inotify_simple import INotify

DEBOUNCE = 0.3  # seconds of quiet that end a burst of changes
MAX_BATCH = 3.0  # seconds after a batch's first change when it is acted on anyway
# Editors' swap and backup files, and vim's write probe ("4913"): not changes.
EPHEMERAL = ("*.swp", "*.swx", "*~", ".#*", "#*#", "4913")
LIMIT_HINT = (
    "the inotify watch limit (fs.inotify.max_user_watches) is reached; changes under {path}"
    " are not seen; raise it on the host: sysctl fs.inotify.max_user_watches=524288"
)
INSTANCE_HINT = (
    "cannot start watching: the inotify instance limit (fs.inotify.max_user_instances)"
    " is reached; raise it on the host: sysctl fs.inotify.max_user_instances=1024"
)


@dataclass(frozen=True)
class WatchSpec:
    """One ``develop.watch`` entry: an absolute path and its ignore patterns."""

    path: str
    ignore: tuple[str, ...] = ()


class _TimerHandle(Protocol):
    def cancel(self) -> None: ...


class _Loop(Protocol):
    def add_reader(self, fd: int, callback: Callable[[], None]) -> None: ...
    def remove_reader(self, fd: int) -> None: ...
    def call_at(self, when: float, callback: Callable[[], None]) -> _TimerHandle: ...


def compile_ignore(patterns: Iterable[str]) -> Callable[[str, bool], bool]:
    """A predicate ``(relative_path, is_dir) -> ignored`` for gitignore-shaped
    patterns. A path is also ignored when one of its parent directories is."""
    rules: list[tuple[re.Pattern[str], bool]] = []
    for raw in patterns:
        pattern = raw.strip()
        if not pattern:
            continue
        dir_only = pattern.endswith("/")
        pattern = pattern.strip("/")
        anchored = "/" in pattern or raw.strip().startswith("/")
        body = _glob_regex(pattern)
        regex = body if anchored else f"(?:.*/)?{body}"
        rules.append((re.compile(regex + r"\Z", re.DOTALL), dir_only))

    def ignored(relative: str, is_dir: bool) -> bool:
        parts = relative.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            prefix_is_dir = is_dir or depth < len(parts)
            for regex, dir_only in rules:
                if (prefix_is_dir or not dir_only) and regex.match(prefix):
                    return True
        return False

    return ignored


def _glob_regex(pattern: str) -> str:
    """A glob as a regex: ``*`` and ``?`` stay within one path part, ``**`` crosses."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) > 0:
            inner = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[^" + inner[1:] + "]" if inner[:1] in "!^" else "[" + inner + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


@dataclass
class _Root:
    spec: WatchSpec
    ignored: Callable[[str, bool], bool]
    # A single file is watched through its directory: editors save by writing a new
    # file and renaming it over the old one, which would end a watch on the file.
    file_name: str | None = None


MAX_NAMED = 10000  # changed paths remembered per batch (the callback gets them sorted)


class Watcher:
    """Watches some paths; calls ``on_change(paths)`` once per burst of changes."""

    def __init__(
        self,
        loop: _Loop,
        specs: Iterable[WatchSpec],
        on_change: Callable[[list[str]], None],
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self.specs = tuple(specs)
        self._roots = [_Root(spec, compile_ignore(EPHEMERAL + spec.ignore)) for spec in self.specs]
        self._on_change = on_change
        self._warn = warn
        self._clock = clock
        self._inotify: INotify | None = None
        # watch descriptor -> (root, directory); the kernel gives one descriptor per
        # inode, so overlapping roots share it.
        self._dirs: dict[int, list[tuple[_Root, str]]] = {}
        self._timer: _TimerHandle | None = None
        self._first = 0.0  # the batch's first change
        self._last = 0.0  # its latest change
        self._changed: set[str] = set()
        self.limit_hit = False
        self.batches = 0  # delivered to on_change

    @property
    def watches(self) -> int:
        return len(self._dirs)

    def start(self) -> None:
        from inotify_simple import INotify

        try:
            self._inotify = INotify(nonblocking=True)
        except OSError as exc:
            hint = INSTANCE_HINT if exc.errno == errno.EMFILE else f"cannot watch files: {exc}"
            self._warn(hint)
            return
        for root in self._roots:
            path = root.spec.path
            if os.path.isdir(path):
                self._add_tree(root, path)
            elif os.path.exists(path):
                root.file_name = os.path.basename(path)
                self._add(root, os.path.dirname(path) or "/")
            else:
                self._warn(f"watch: {path} does not exist; it is not watched")
        self._loop.add_reader(self._inotify.fd, self._on_readable)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._inotify is not None:
            self._loop.remove_reader(self._inotify.fd)
            self._inotify.close()
            self._inotify = None
        self._dirs.clear()

    # -- watches ------------------------------------------------------------
    def _add(self, root: _Root, path: str) -> bool:
        """Watch one directory; False when the watch limit stops the tree walk."""
        from inotify_simple import flags

        assert self._inotify is not None
        mask = (
            flags.MODIFY | flags.ATTRIB | flags.CLOSE_WRITE | flags.CREATE | flags.DELETE
            | flags.MOVED_FROM | flags.MOVED_TO | flags.DELETE_SELF | flags.ONLYDIR
        )  # fmt: skip
        if path != root.spec.path:
            mask |= flags.DONT_FOLLOW  # below the root, a symlink is a file, not a tree
        try:
            wd = self._inotify.add_watch(path, mask)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                if not self.limit_hit:
                    self.limit_hit = True
                    self._warn(LIMIT_HINT.format(path=path))
                return False
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # gone meanwhile: fine
                self._warn(f"watch: cannot watch {path}: {exc.strerror}")
            return True
        entries = self._dirs.setdefault(wd, [])
        if (root, path) not in entries:
            entries.append((root, path))
        return True

    def _add_tree(self, root: _Root, top: str) -> None:
        base = root.spec.path
        for current, subdirs, _files in os.walk(top):  # does not follow symlinks
            if not self._add(root, current):
                return
            keep = []
            for name in subdirs:
                relative = os.path.relpath(os.path.join(current, name), base)
                if not root.ignored(relative, True):
                    keep.append(name)
            subdirs[:] = keep

    # -- events ---------------------------------------------------------------
    def _on_readable(self) -> None:
        from inotify_simple import flags

        if self._inotify is None:
            return
        try:
            events = self._inotify.read(timeout=0)
        except BlockingIOError:
            return
        changed = False
        for event in events:
            if event.mask & flags.Q_OVERFLOW:
                changed |= self._note("(more changes than the kernel queue holds)")
                continue
            if event.mask & flags.IGNORED:
                self._dirs.pop(event.wd, None)  # its directory is gone
                continue
            for root, where in self._dirs.get(event.wd, ()):
                changed |= self._event(root, where, event.name, event.mask)
        if changed:
            self._schedule()

    def _event(self, root: _Root, where: str, name: str, mask: int) -> bool:
        from inotify_simple import flags

        if root.file_name is not None:
            return name == root.file_name and self._note(root.spec.path)
        path = os.path.join(where, name) if name else where
        is_dir = bool(mask & flags.ISDIR) or not name
        relative = os.path.relpath(path, root.spec.path)
        if relative != "." and root.ignored(relative, is_dir):
            return False
        if is_dir and mask & (flags.CREATE | flags.MOVED_TO):
            # Files may land in it before its watch exists: the walk watches what is
            # there by now, and the directory's own event already counts as a change.
            self._add_tree(root, path)
        elif is_dir and not mask & (flags.DELETE | flags.MOVED_FROM | flags.DELETE_SELF):
            return False  # a directory's attributes or modification time: no change
        return self._note(path)

    def _note(self, path: str) -> bool:
        now = self._clock()
        if not self._changed:
            self._first = now
        self._last = now
        if len(self._changed) < MAX_NAMED:
            self._changed.add(path)
        return True

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = self._loop.call_at(self._due(), self._on_quiet)

    def _due(self) -> float:
        return min(self._last + DEBOUNCE, self._first + MAX_BATCH)

    def _on_quiet(self) -> None:
        """The one debounce timer: re-armed while changes keep coming."""
        self._timer = None
        due = self._due()
        if self._clock() < due:
            self._timer = self._loop.call_at(due, self._on_quiet)
            return
        paths, self._changed = sorted(self._changed), set()
        self.batches += 1
        self._on_change(paths)
