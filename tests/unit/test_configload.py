"""Unit tests for the off-loop config load (pyinit/configload.py): a real forked
loader and a real EventLoop; the test stands in for pyinit's reaper (waitpid on
the registered pids), so exits are routed the way the supervisor routes them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from pyinit.config import Config
from pyinit.configload import MAX_PROBLEMS, ConfigLoad, LoadResult, Reloader, problem_lines
from pyinit.loop import EventLoop
from pyinit.reaper import ExitStatus
from pyinit.reload import ReloadPlan
from tests.helpers.configload import FakeReaper

VALID = "services:\n  a:\n    command: [sleep, '1']\n"


def load_once(path: Path, **kwargs: float) -> tuple[LoadResult, FakeReaper, ConfigLoad]:
    loop = EventLoop()
    reaper = FakeReaper(loop)
    results: list[LoadResult] = []
    load = ConfigLoad(loop, str(path), reaper.register, results.append, **kwargs)
    load.start()
    reaper.run_until(lambda: bool(results) and not reaper.owners)
    assert len(results) == 1
    return results[0], reaper, load


def test_valid_file_comes_back_as_a_config(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(VALID)
    result, _, load = load_once(path)
    assert isinstance(result.config, Config) and list(result.config.services) == ["a"]
    assert load.fd == -1  # the pipe is closed


def test_problems_are_capped_and_counted(tmp_path: Path) -> None:
    """120 invalid services: the child sends the first 50 and the count."""
    path = tmp_path / "s.yaml"
    path.write_text("services:\n" + "".join(f"  s{i}: {{restart: x}}\n" for i in range(120)))
    result, _, _ = load_once(path)
    assert result.config is None and result.total == 240  # no command, bad restart
    assert len(result.problems) == MAX_PROBLEMS
    lines = problem_lines(result)
    assert len(lines) == MAX_PROBLEMS + 1 and lines[-1] == "... and 190 more problems"


def test_loader_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    """A load over its time limit: SIGKILLed, a failure, and its exit still reaped."""
    path = tmp_path / "s.yaml"
    path.write_text(VALID)
    loop = EventLoop()
    reaper = FakeReaper(loop)
    results: list[LoadResult] = []
    load = ConfigLoad(loop, str(path), reaper.register, results.append, timeout=0.0)
    load.start()
    reaper.run_until(lambda: bool(results) and not reaper.owners)
    assert results == [LoadResult(failure="loading took longer than 0s")]


def test_loader_killed_or_writing_garbage_is_a_failure(tmp_path: Path) -> None:
    """A dead loader or an unreadable result is a failed load, not an exception."""
    path = tmp_path / "s.yaml"
    path.write_text(VALID)
    loop = EventLoop()
    load = ConfigLoad(loop, str(path), lambda pid, cb: None, lambda r: None)
    load.data = bytearray(b"not a pickle")
    garbage = load._decode(ExitStatus.from_wait_status(0))
    assert garbage.failure.startswith("the loader's result is unreadable: ")
    killed = load._decode(ExitStatus.from_wait_status(signal.SIGKILL))
    assert killed.failure == "the loader failed (killed by SIGKILL)"


def test_kill_abandons_the_load(tmp_path: Path) -> None:
    """kill (shutdown): the child dies, on_done is never called, the exit is reaped."""
    path = tmp_path / "s.yaml"
    path.write_text(VALID)
    loop = EventLoop()
    reaper = FakeReaper(loop)
    results: list[LoadResult] = []
    load = ConfigLoad(loop, str(path), reaper.register, results.append)
    load.start()
    load.kill()
    reaper.run_until(lambda: not reaper.owners)
    assert results == [] and load.fd == -1


def test_requests_during_a_load_are_coalesced(tmp_path: Path) -> None:
    """Three requests while a load runs make one more load, not three; every
    requester gets an answer, from the load that read the file after its request."""
    path = tmp_path / "s.yaml"
    path.write_text(VALID)
    loop = EventLoop()
    reaper = FakeReaper(loop)
    applied: list[Config] = []
    answers: list[tuple[str, bool]] = []

    def apply(config: Config, plan: ReloadPlan | None) -> list[str]:
        applied.append(config)
        return ["no service changed"]

    reloader = Reloader(loop, lambda: str(path), reaper.register, apply, lambda m: None)
    reloader.request(lambda ok, msgs: answers.append(("first", ok)))
    for name in ("second", "third", "fourth"):
        reloader.request(lambda ok, msgs, name=name: answers.append((name, ok)))
    assert reloader.busy
    reaper.run_until(lambda: len(answers) == 4 and not reloader.busy and not reaper.owners)
    assert len(reaper.started) == 2 and len(applied) == 2
    assert answers == [("first", True), ("second", True), ("third", True), ("fourth", True)]


def test_cancel_answers_every_waiter(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(VALID)
    loop = EventLoop()
    reaper = FakeReaper(loop)
    answers: list[tuple[bool, list[str]]] = []
    reloader = Reloader(loop, lambda: str(path), reaper.register, lambda c, p: [], lambda m: None)
    reloader.request(lambda ok, msgs: answers.append((ok, msgs)))
    reloader.request(lambda ok, msgs: answers.append((ok, msgs)))
    reloader.cancel("pyinit is shutting down")
    assert answers == [(False, ["pyinit is shutting down"])] * 2
    reaper.run_until(lambda: not reaper.owners)
    assert not reloader.busy and len(reaper.started) == 1


@pytest.mark.parametrize("bad", ["/dev/zero", "fifo"])
def test_reloader_logs_problems_and_keeps_going(tmp_path: Path, bad: str) -> None:
    """An env_file that is a device or a FIFO: logged problem, answered, nothing applied."""
    target = bad
    if bad == "fifo":
        target = str(tmp_path / "env.fifo")
        os.mkfifo(target)
    path = tmp_path / "s.yaml"
    path.write_text(f"services:\n  a:\n    command: [x]\n    env_file: {target}\n")
    loop = EventLoop()
    reaper = FakeReaper(loop)
    logged: list[str] = []
    answers: list[tuple[bool, list[str]]] = []

    def apply(config: Config, plan: ReloadPlan | None) -> list[str]:
        raise AssertionError("an invalid config was applied")

    reloader = Reloader(loop, lambda: str(path), reaper.register, apply, logged.append)
    reloader.request(lambda ok, msgs: answers.append((ok, msgs)))
    reaper.run_until(lambda: bool(answers) and not reaper.owners, timeout=10)
    assert answers[0][0] is False and "not a regular file" in answers[0][1][0]
    assert logged[-1] == "reload: 1 problem; keeping the running configuration"
