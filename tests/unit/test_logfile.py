"""Unit tests for log files (pyinit.logfile): timestamps, size rotation that never
splits a line, and failures that are reported and counted. No processes."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest

from pyinit import logfile
from pyinit.logfile import LogFile

STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def lines_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path} ends mid-line"
    return data.splitlines()


def test_lines_are_timestamped_and_prefix_free(tmp_path: Path) -> None:
    """Each line gets an RFC 3339 UTC millisecond timestamp and nothing else."""
    log = LogFile(str(tmp_path / "web.log"), clock=lambda: 1_780_000_000.0625)
    log.write(b"hello\nworld")
    log.write(b"")  # an empty line is a line
    assert lines_of(tmp_path / "web.log") == [
        b"2026-05-28T20:26:40.062Z hello",
        b"2026-05-28T20:26:40.062Z world",
        b"2026-05-28T20:26:40.062Z ",
    ]
    mode = os.stat(tmp_path / "web.log").st_mode
    assert stat.S_IMODE(mode) & 0o007 == 0  # not world-readable


def test_missing_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "log" / "app" / "web.log"
    LogFile(str(path)).write(b"x")
    assert len(lines_of(path)) == 1


def test_appends_to_an_existing_file(tmp_path: Path) -> None:
    """A restart of pyinit continues the file (and counts its size for rotation)."""
    path = tmp_path / "web.log"
    path.write_bytes(b"old\n")
    LogFile(str(path)).write(b"new")
    assert lines_of(path)[0] == b"old"
    assert lines_of(path)[1].endswith(b" new")


def test_rotation_keeps_max_files_and_whole_lines(tmp_path: Path) -> None:
    """Rotation renames web.log -> web.log.1 -> web.log.2; with max_files 3 there are
    never more than 3 files, none over max_size, each made of whole lines, and the
    newest lines are all there in order."""
    path = tmp_path / "web.log"
    log = LogFile(str(path), max_size=200, max_files=3)
    for block in range(40):
        log.write(b"\n".join(b"line %03d-%d" % (block, i) for i in range(block % 4 + 1)))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["web.log", "web.log.1", "web.log.2"]
    kept: list[bytes] = []
    for name in ["web.log.2", "web.log.1", "web.log"]:
        assert (tmp_path / name).stat().st_size <= 200
        for line in lines_of(tmp_path / name):
            assert STAMP.match(line), line
            kept.append(line[STAMP.match(line).end() :])  # type: ignore[union-attr]
    every = [b"line %03d-%d" % (b, i) for b in range(40) for i in range(b % 4 + 1)]
    assert kept == every[-len(kept) :]
    assert log.rotations > 5 and log.errors == 0


def test_line_longer_than_max_size_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "web.log"
    log = LogFile(str(path), max_size=50, max_files=2)
    log.write(b"short")
    log.write(b"x" * 120)
    log.write(b"after")
    assert [len(line) for line in lines_of(tmp_path / "web.log.1")] == [25 + 120]
    assert lines_of(path)[0].endswith(b" after")


def test_one_file_is_truncated(tmp_path: Path) -> None:
    """max-file 1 (Docker's default) truncates instead of renaming."""
    path = tmp_path / "web.log"
    log = LogFile(str(path), max_size=100, max_files=1)
    for i in range(20):
        log.write(b"line %d" % i)
    assert [p.name for p in tmp_path.iterdir()] == ["web.log"]
    assert path.stat().st_size <= 100
    assert lines_of(path)[-1].endswith(b" line 19")


def test_symlink_is_not_followed(tmp_path: Path) -> None:
    """The path is opened with O_NOFOLLOW: a symlink planted there is an error,
    reported once and counted, and its target is untouched."""
    target = tmp_path / "target"
    target.write_bytes(b"")
    (tmp_path / "web.log").symlink_to(target)
    reports: list[str] = []
    log = LogFile(str(tmp_path / "web.log"), report=reports.append)
    log.write(b"a")
    assert target.read_bytes() == b""
    assert reports == [
        f"log file {tmp_path}/web.log: cannot open: a symlink, not followed;"
        " its lines are dropped from the file until this works again"
    ]
    assert log.errors == 1 and log.dropped_lines == 1


def test_fifo_is_refused_and_open_retried_later(tmp_path: Path) -> None:
    """A FIFO (which could block) is not a log file. Opening is retried at most
    every RETRY seconds, and works once the path is a file."""
    path = tmp_path / "web.log"
    os.mkfifo(path)
    now = [0.0]
    reports: list[str] = []
    log = LogFile(str(path), report=reports.append, retry_clock=lambda: now[0])
    log.write(b"a")
    log.write(b"b")
    assert log.errors == 1 and log.dropped_lines == 2
    assert "not a regular file" in reports[0]
    path.unlink()
    log.write(b"c")  # too early for another try
    now[0] += logfile.RETRY
    log.write(b"d")
    assert [line[25:] for line in lines_of(path)] == [b"d"]
    assert reports[1] == f"log file {path}: writing again; 3 lines were dropped"


def test_full_disk_cuts_back_to_whole_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that stops short (the disk filled up mid-chunk) leaves the file
    ending at its last whole line; the failure is one report; lines are counted."""
    path = tmp_path / "web.log"
    reports: list[str] = []
    log = LogFile(str(path), report=reports.append)
    log.write(b"first")
    real_write = os.write
    room = [40]

    def full_disk(fd: int, data: bytes) -> int:
        if room[0] == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, data[: room[0]])
        room[0] -= n
        return n

    monkeypatch.setattr(logfile.os, "write", full_disk)
    monkeypatch.setattr(logfile.os, "writev", lambda fd, parts: full_disk(fd, b"".join(parts)))
    log.write(b"second\nthird\nfourth")  # 3 lines of 31-32 bytes: one fits
    log.write(b"fifth")
    assert [line[25:] for line in lines_of(path)] == [b"first", b"second"]
    assert log.errors == 2 and log.dropped_lines == 3
    assert reports == [
        f"log file {path}: cannot write: No space left on device;"
        " its lines are dropped from the file until this works again"
    ]
    room[0] = 10_000
    log.write(b"sixth")
    assert lines_of(path)[-1].endswith(b" sixth")
    assert reports[-1] == f"log file {path}: writing again; 3 lines were dropped"
