"""Unit tests for duration parsing (pyinit.durations), no processes."""

from __future__ import annotations

import pytest

from pyinit.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("2h", 7200.0),
        ("1h2m3s", 3723.0),
        ("1m 30s", 90.0),
        (" 5s ", 5.0),
        ("2.5", 2.5),
        ("0", 0.0),
        ("0s", 0.0),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_accepted(value: object, seconds: float) -> None:
    """Unit suffixes combine; bare numbers (strings or numbers) are seconds."""
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "s",
        "5x",
        "1.5.2s",
        "ten",
        "-1",
        "-1s",
        "5s-",
        "ms5",
        -1,
        -0.5,
        True,
        None,
        [],
        "nan",
        "inf",
        "-inf",
        "infinity",
        float("nan"),
        float("inf"),
    ],
)
def test_rejected(value: object) -> None:
    """Garbage, negatives, booleans and non-finite values (inf, nan) are errors."""
    with pytest.raises(ValueError):
        parse_duration(value)


def test_error_names_accepted_forms() -> None:
    """The message tells the user what a duration looks like."""
    with pytest.raises(ValueError, match="10s, 1m30s or 500ms"):
        parse_duration("soon")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (0.5, "500ms"), (5, "5s"), (1.5, "1.5s")])
def test_format(seconds: float, text: str) -> None:
    """format_duration gives a form parse_duration reads back."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
