"""Durations as users write them: ``10s``, ``1m30s``, ``500ms``, ``1.5`` (seconds)."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 10s, 1m30s or 500ms; got {value!r}")
    if isinstance(value, int | float):
        # float() and YAML both produce inf and nan; neither is a duration (an
        # infinite timer crashes selectors' select(), nan compares false to all).
        if not math.isfinite(value):
            raise ValueError(f"a duration must be a finite number; got {value!r}")
        if value < 0:
            raise ValueError(f"a duration cannot be negative; got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if not math.isfinite(number):
                raise ValueError(f"a duration must be a finite number; got {value!r}")
            if number < 0:
                raise ValueError(f"a duration cannot be negative; got {value!r}")
            return number
        pos = 0
        total = 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if text and pos == len(text):
            return total
    raise ValueError(f"expected a duration such as 10s, 1m30s or 500ms; got {value!r}")


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
