"""Fixtures for unit tests (the helpers themselves live in tests/helpers/)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.fakesup import FakeSupervisor

MakeFake = Callable[..., FakeSupervisor]


@pytest.fixture
def fakesup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeFake]:
    """``fakesup(services_yaml, main=None, selection=([], []))``: a started
    FakeSupervisor, its status file in the test's own runtime directory."""
    monkeypatch.setenv("PYINIT_RUNTIME_DIR", str(tmp_path / "rt"))
    made: list[FakeSupervisor] = []

    def make(
        text: str,
        main: list[str] | None = None,
        selection: tuple[list[str], list[str]] = ([], []),
    ) -> FakeSupervisor:
        fake = FakeSupervisor(tmp_path, text, main, selection)
        made.append(fake)
        return fake.start()

    yield make
    for fake in made:
        fake.close()
