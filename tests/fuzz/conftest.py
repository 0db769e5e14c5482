"""Hypothesis profiles for the fuzz tests.

``default`` (local) and ``ci`` (env ``CI`` set: derandomized, no example database,
so a CI run is deterministic) keep the whole directory well under 30 s;
``HYPOTHESIS_PROFILE=long`` digs much deeper for local runs.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}

settings.register_profile("default", max_examples=150, **_COMMON)
settings.register_profile("ci", max_examples=150, derandomize=True, database=None, **_COMMON)
settings.register_profile("long", max_examples=3000, **_COMMON)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long profile takes minutes per test: lift pytest-timeout's 60 s for it."""
    if settings.default.max_examples > 1000:
        here = os.path.dirname(__file__)
        for item in items:
            if str(item.path).startswith(here):
                item.add_marker(pytest.mark.timeout(0))
