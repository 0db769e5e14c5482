"""Durations as users write them: ``10s``, ``1m30s``, ``500ms``, ``1.5`` (seconds)."""

from __future__ import annotations

import math
import re
import sys

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_MAX_FLOAT = int(sys.float_info.max)


_EXPECTED = "expected a duration such as 10s, 1m30s or 500ms; got {!r}"


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(_EXPECTED.format(value))
    if isinstance(value, int) and abs(value) > _MAX_FLOAT:
        # An int too large for a float is no duration (float() raises OverflowError).
        raise ValueError(f"a duration must be a finite number; got {value!r}")
    if isinstance(value, int | float):
        return _checked(float(value), value)
    if isinstance(value, str):
        seconds = _from_text(value.strip().replace(" ", ""))
        if seconds is not None:
            return _checked(seconds, value)
    raise ValueError(_EXPECTED.format(value))


def _from_text(text: str) -> float | None:
    """A plain number (``1.5``) or a run of number+unit parts (``1m30s``); None
    when ``text`` is neither."""
    try:
        return float(text)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if text and pos == len(text) else None


def _checked(seconds: float, value: object) -> float:
    """``seconds`` if it is a duration; the error quotes what the user wrote."""
    # float() and YAML both produce inf and nan; neither is a duration (an
    # infinite timer crashes selectors' select(), nan compares false to all).
    # Parts add up to inf too: 400 digits, or 1e308 hours.
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number; got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative; got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``1.5s``, ``250ms``: what parse_duration reads back, never in exponent form."""
    value, unit = (seconds * 1000, "ms") if seconds < 1 and seconds != 0 else (seconds, "s")
    text = f"{value:g}"
    if "e" in text:  # 1e+06s, 1e-05ms: write the digits out
        text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text + unit
