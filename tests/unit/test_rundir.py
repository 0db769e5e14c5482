"""The runtime directory check and the files and sockets pyinit creates in it: a
link planted under any name pyinit uses is never followed, and a socket has its
final mode from the moment it exists."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyinit.notify import NotifySocket
from pyinit.rundir import bind_socket, choose, unsafe
from pyinit.snapshot import Snapshot
from pyinit.status import health_main, write_snapshot

PRECIOUS = "root's file\n"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A file outside the runtime directory that a planted link points at."""
    path = tmp_path / "precious"
    path.write_text(PRECIOUS)
    path.chmod(0o644)
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir(mode=0o755)
    return path


def untouched(target: Path) -> bool:
    return target.read_text() == PRECIOUS and stat.S_IMODE(target.stat().st_mode) == 0o644


# -- the status file -------------------------------------------------------------


def test_status_file_never_written_through_a_planted_link(run: Path, target: Path) -> None:
    """Links at the old predictable temp name and at status.json itself: the target
    keeps its content and mode; status.json ends up a regular file with the snapshot."""
    for name in (f"status.json.{os.getpid()}.tmp", "status.json.1.tmp", "status.json"):
        (run / name).symlink_to(target)
    write_snapshot(str(run), Snapshot(orphans_reaped=1))
    write_snapshot(str(run), Snapshot(orphans_reaped=2))
    assert untouched(target)
    info = os.lstat(run / "status.json")
    assert stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()
    assert json.loads((run / "status.json").read_text())["orphans_reaped"] == 2
    left = {p.name for p in run.iterdir()} - {"status.json"}
    assert left == {f"status.json.{os.getpid()}.tmp", "status.json.1.tmp"}  # only the links


def test_status_file_temp_removed_when_the_rename_fails(run: Path) -> None:
    (run / "status.json").mkdir()  # rename over a directory fails
    with pytest.raises(OSError):
        write_snapshot(str(run), Snapshot())
    assert [p.name for p in run.iterdir()] == ["status.json"]


def test_status_file_refuses_a_linked_directory(tmp_path: Path, run: Path) -> None:
    """The directory itself swapped for a link after it was checked: not followed."""
    link = tmp_path / "link"
    link.symlink_to(run)
    with pytest.raises(OSError):
        write_snapshot(str(link), Snapshot())
    assert list(run.iterdir()) == []


# -- sockets ---------------------------------------------------------------------

Swap = Callable[[str], None]


class _Loop:
    def add_reader(self, fd: int, callback: Any) -> None:
        pass

    def remove_reader(self, fd: int) -> None:
        pass


def hooked_socket(after_bind: Swap) -> type[socket.socket]:
    """A socket class whose bind() runs ``after_bind(path)`` right after binding."""

    class Hooked(socket.socket):
        def bind(self, address: Any) -> None:
            super().bind(address)
            after_bind(str(address))

    return Hooked


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def bind_control(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        bind_socket(sock, str(path))
    finally:
        sock.close()


def bind_notify(path: Path) -> None:
    NotifySocket(_Loop(), str(path), lambda pid, fields: None).close()  # type: ignore[arg-type]


BINDERS = {"control": (bind_control, 0o600), "notify": (bind_notify, 0o666)}


@pytest.mark.parametrize("kind", sorted(BINDERS))
def test_socket_has_its_mode_from_the_first_moment(
    kind: str, run: Path, monkeypatch: pytest.MonkeyPatch, umask_zero: None
) -> None:
    """The control socket is 0600 (the notify socket 0666, for services of other
    users) as soon as bind() returns, even under umask 0: no window before a chmod."""
    bind, mode = BINDERS[kind]
    seen: list[int] = []
    monkeypatch.setattr(socket, "socket", hooked_socket(lambda p: seen.append(os.lstat(p).st_mode)))
    bind(run / "x.sock")
    assert len(seen) == 1 and stat.S_ISSOCK(seen[0])
    assert f"{stat.S_IMODE(seen[0]):04o}" == f"{mode:04o}"


@pytest.mark.parametrize("kind", sorted(BINDERS))
def test_socket_path_swapped_for_a_link_after_bind(
    kind: str, run: Path, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user of a shared directory replaces the fresh socket with a link to a
    root-owned file between bind and whatever follows: the file's mode is untouched
    (a chmod by path would have made it 0600, or world-writable for notify) and the
    bind is reported as failed."""
    bind, _mode = BINDERS[kind]

    def swap(path: str) -> None:
        os.rename(path, path + ".moved")
        os.symlink(target, path)

    monkeypatch.setattr(socket, "socket", hooked_socket(swap))
    error: OSError | None = None
    try:
        bind(run / "x.sock")
    except OSError as exc:
        error = exc
    assert untouched(target)
    assert error is not None and "replaced" in str(error)


# -- the directory check ---------------------------------------------------------


def fake_stat(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("mode", "uid", "why"),
    [
        (stat.S_IFDIR | 0o755, 1000, None),
        (stat.S_IFDIR | 0o700, 0, None),  # root's: root can do anything anyway
        (stat.S_IFDIR | 0o1777, 0, None),  # sticky: only a file's owner removes it
        (stat.S_IFDIR | 0o777, 1000, "writable by other users (mode 0777) and not sticky"),
        (stat.S_IFDIR | 0o775, 1000, "writable by other users (mode 0775) and not sticky"),
        (stat.S_IFDIR | 0o755, 65534, "owned by uid 65534, not by pyinit's uid 1000 or root"),
        (stat.S_IFLNK | 0o777, 1000, "it is a symbolic link"),
        (stat.S_IFREG | 0o644, 1000, "it is not a directory"),
    ],
)
def test_unsafe_directories(mode: int, uid: int, why: str | None) -> None:
    assert unsafe(fake_stat(mode, uid), euid=1000) == why


def test_unsafe_names_root_plainly() -> None:
    info = fake_stat(stat.S_IFDIR | 0o755, 65534)
    assert unsafe(info, euid=0) == "owned by uid 65534, not by root"


def test_choose_falls_back_past_a_refused_directory(tmp_path: Path) -> None:
    """An unsafe candidate is reported once through the callback and skipped; a
    missing one is created (0755); the error names every candidate tried."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    fresh = tmp_path / "fresh"
    said: list[str] = []
    assert choose([str(shared), str(fresh)], said.append) == str(fresh)
    assert said == [
        f"runtime directory {shared} refused: writable by other users (mode 0777) and not sticky"
    ]
    assert stat.S_IMODE(fresh.stat().st_mode) & 0o022 == 0

    link = tmp_path / "link"
    link.symlink_to(fresh)
    (tmp_path / "file").write_text("")  # no directory can be made below a file
    with pytest.raises(OSError) as raised:
        choose([str(link), str(tmp_path / "file" / "below")])
    assert str(raised.value) == (
        f"no writable runtime directory (tried {link} refused: it is a symbolic link,"
        f" {tmp_path}/file/below)"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another uid")
def test_health_ignores_a_status_file_pyinit_did_not_write(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A "healthy" status.json planted by another user (in a sticky directory,
    before pyinit could write its own) is not believed."""
    run.chmod(0o1777)
    monkeypatch.setenv("PYINIT_RUNTIME_DIR", str(run))
    write_snapshot(str(run), Snapshot(pid=os.getpid()))
    assert health_main([]) == 0
    os.chown(run / "status.json", 65534, 65534)
    assert health_main([]) == 1
    assert "owned by uid 65534, not by pyinit" in capsys.readouterr().out
    (run / "status.json").unlink()
    (run / "status.json").symlink_to(run / "elsewhere")
    assert health_main([]) == 1
