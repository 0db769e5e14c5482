"""Fixtures and hooks shared by every test. The shared test library (running the
CLI as PID 1 of a fresh PID namespace, reading its output with deadlines, config
writing, processes) is the package tests/helpers/, beside the child scripts it runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.cli import Runner


@pytest.fixture
def cli() -> Iterator[Runner]:
    """A ``Runner`` that kills whatever the test's CLI runs left behind."""
    runner = Runner()
    try:
        yield runner
    finally:
        runner.cleanup()
