"""Unit tests for reading files a config names (pyinit/safefile.py) and for the
limits of the config loader: only regular files, size caps, nesting depth, number
of services, dependency chains far longer than Python's recursion limit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pyinit.config import MAX_DEPTH, ConfigError, load_config, load_config_text
from pyinit.config import load as config_load
from pyinit.safefile import CONFIG_CAP, ENV_FILE_CAP, UnsafeFile, read_bytes


def refused(path: str | Path, cap: int = 1024) -> UnsafeFile:
    with pytest.raises(UnsafeFile) as info:
        read_bytes(str(path), cap)
    return info.value


def test_regular_file_up_to_the_cap(tmp_path: Path) -> None:
    """A regular file is read whole; a file of exactly the cap still is; one byte
    more is refused."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1024)
    assert read_bytes(str(path), 1024) == b"x" * 1024
    path.write_bytes(b"x" * 1025)
    assert str(refused(path)) == "too large (1025 bytes; the limit is 1024 bytes)"


def test_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    """Kubernetes mounts ConfigMaps as symlinks: they are followed."""
    (tmp_path / "real").write_text("A=1\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_bytes(str(tmp_path / "link"), 100) == b"A=1\n"


def test_fifo_without_writer_returns_at_once(tmp_path: Path) -> None:
    """A FIFO nobody writes would block open() and read() forever: refused promptly."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    began = time.monotonic()
    error = refused(fifo)
    assert time.monotonic() - began < 1.0
    assert str(error) == "a FIFO (named pipe), not a regular file"


def test_dev_zero_and_directory_are_refused(tmp_path: Path) -> None:
    assert str(refused("/dev/zero")) == "a character device, not a regular file"
    assert str(refused(tmp_path)) == "a directory, not a regular file"


def test_missing_file_is_flagged_missing(tmp_path: Path) -> None:
    error = refused(tmp_path / "nope")
    assert error.missing and str(error) == "No such file or directory"


def test_config_file_that_is_not_regular_is_one_problem(tmp_path: Path) -> None:
    """load_config on /dev/zero, a FIFO or an oversized file: one problem, at once."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (CONFIG_CAP + 1))
    expected = {
        "/dev/zero": "/dev/zero: cannot read: a character device, not a regular file",
        str(fifo): f"{fifo}: cannot read: a FIFO (named pipe), not a regular file",
        str(big): f"{big}: cannot read: too large (4.0 MiB; the limit is 4 MiB)",
    }
    for path, message in expected.items():
        with pytest.raises(ConfigError) as info:
            load_config(path, {})
        assert [str(p) for p in info.value.problems] == [message]


def env_file_problems(tmp_path: Path, env_file: str) -> list[str]:
    config = tmp_path / "services.yaml"
    config.write_text(f"services:\n  web:\n    command: [web]\n    env_file: {env_file}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(config), {})
    return [str(p) for p in info.value.problems]


def test_env_file_dev_zero_fifo_and_oversized(tmp_path: Path) -> None:
    """An env_file that is a device, a FIFO or over 1 MiB is a problem at its line,
    naming the key."""
    config = tmp_path / "services.yaml"
    assert env_file_problems(tmp_path, "/dev/zero") == [
        f"{config}:4: services.web.env_file: cannot read env file '/dev/zero': "
        "a character device, not a regular file"
    ]
    fifo = tmp_path / "env.fifo"
    os.mkfifo(fifo)
    assert env_file_problems(tmp_path, str(fifo)) == [
        f"{config}:4: services.web.env_file: cannot read env file '{fifo}': "
        "a FIFO (named pipe), not a regular file"
    ]
    big = tmp_path / "big.env"
    big.write_bytes(b"A=" + b"x" * ENV_FILE_CAP + b"\n")
    assert env_file_problems(tmp_path, "big.env") == [
        f"{config}:4: services.web.env_file: cannot read env file '{big}': "
        "too large (1.0 MiB; the limit is 1 MiB)"
    ]


def test_deeply_nested_command_is_one_problem() -> None:
    """10,000 nested lists: one problem at the line, no RecursionError."""
    text = "services:\n  a:\n    command: " + "[" * 10_000 + "]" * 10_000 + "\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "s.yaml", {})
    assert [str(p) for p in info.value.problems] == [
        "s.yaml:3: services.a.command[0][0][0][0][0][0][0][0][0][0][0][0][0]...: "
        "nested deeper than 64 levels"
    ]


def test_nesting_within_the_limit_loads() -> None:
    """Nesting up to MAX_DEPTH is only the usual type error."""
    depth = MAX_DEPTH - 4  # root, services, a, command
    text = "services:\n  a:\n    command: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "s.yaml", {})
    assert "expected a string; got a list" in str(info.value)


def test_aliases_nesting_deeper_than_the_text_do_not_recurse() -> None:
    """Anchors chained 600 times nest far deeper than the text does: still no
    RecursionError (duplicate-key and merge pass is iterative)."""
    lines = ["x-0: &a0 [1]"]
    lines += [f"x-{i}: &a{i} [*a{i - 1}]" for i in range(1, 600)]
    lines += ["services:", "  a:", "    command: *a599"]
    with pytest.raises(ConfigError) as info:
        load_config_text("\n".join(lines) + "\n", "s.yaml", {})
    assert "services.a.command[0]: expected a string; got a list" in str(info.value)


def test_too_many_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_load, "MAX_SERVICES", 3)
    text = "services:\n" + "".join(f"  s{i}: {{command: [x]}}\n" for i in range(4))
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "s.yaml", {})
    assert [str(p) for p in info.value.problems] == [
        "s.yaml:1: services: 4 services; the limit is 3"
    ]


def test_long_dependency_chain_and_cycle() -> None:
    """A chain of 1,500 services (depth past the recursion limit) loads and is
    ordered; closed into a loop it is one cycle problem."""
    n = 1500
    chain = "services:\n" + "".join(
        f"  s{i}: {{command: [x]{f', depends_on: [s{i - 1}]' if i else ''}}}\n" for i in range(n)
    )
    tiers = load_config_text(chain, "s.yaml", {}).start_tiers()
    assert len(tiers) == n and tiers[-1] == [f"s{n - 1}"]
    loop = chain.replace("  s0: {command: [x]}", f"  s0: {{command: [x], depends_on: [s{n - 1}]}}")
    with pytest.raises(ConfigError) as info:
        load_config_text(loop, "s.yaml", {})
    assert len(info.value.problems) == 1
    assert f"dependency cycle: s0 -> s{n - 1} -> s{n - 2}" in str(info.value)


def test_billion_laughs_is_a_short_list_of_problems() -> None:
    """Anchors that would expand to 10**9 strings (nine levels of ten aliases each)
    are rejected at the first level that is not a string, without expanding them:
    a handful of problems, at once (a hostile file never costs PID 1 memory)."""
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"x-{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    levels[0] = "x-" + levels[0]
    text = "\n".join(levels) + "\nservices:\n  web:\n    command: *i\n"
    started = time.process_time()
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "s.yaml", {})
    assert time.process_time() - started < 5.0
    problems = [str(p) for p in caught.value.problems]
    assert 0 < len(problems) <= 20
    assert any("services.web.command[0]: expected a string; got a list" in p for p in problems)
