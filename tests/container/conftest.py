"""Fixtures of the container suite: the images (built once per session from this
tree's wheel), a per-test set of containers whose logs are printed when the test
fails, and a summary of the measured `podman stop` times."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.podman import Containers, build_images, workdir

STOP_TIMES: list[str] = []


@pytest.fixture(scope="session")
def images() -> Iterator[Path]:
    """Builds the images once; the directory of the wheels they were built from."""
    with workdir() as work:
        yield build_images(work)


@pytest.fixture
def containers(images: Path, request: pytest.FixtureRequest) -> Iterator[Containers]:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    running = Containers(f"pyinit-t-{name}")
    yield running
    running.cleanup()


@pytest.fixture
def report_stop() -> Iterator[list[str]]:
    """Tests append 'what: N.NNs' lines; printed in the terminal summary."""
    yield STOP_TIMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STOP_TIMES:
        terminalreporter.section("podman stop times")
        for line in STOP_TIMES:
            terminalreporter.write_line(line)
