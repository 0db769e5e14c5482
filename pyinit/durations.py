"""Durations as users write them: ``10s``, ``1m30s``, ``500ms``, ``1.5`` (seconds)."""

from __future__ import annotations

import math
import re
import sys

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_MAX_FLOAT = int(sys.float_info.max)


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 10s, 1m30s or 500ms; got {value!r}")
    if isinstance(value, int | float):
        # float() and YAML both produce inf and nan; neither is a duration (an
        # infinite timer crashes selectors' select(), nan compares false to all).
        # An int too large for a float is no duration either (OverflowError).
        if (isinstance(value, int) and abs(value) > _MAX_FLOAT) or not math.isfinite(value):
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
            if not math.isfinite(total):  # 400 digits, or 1e308 hours
                raise ValueError(f"a duration must be a finite number; got {value!r}")
            return total
    raise ValueError(f"expected a duration such as 10s, 1m30s or 500ms; got {value!r}")


def format_duration(seconds: float) -> str:
    """``1.5s``, ``250ms``: what parse_duration reads back, never in exponent form."""
    value, unit = (seconds * 1000, "ms") if seconds < 1 and seconds != 0 else (seconds, "s")
    text = f"{value:g}"
    if "e" in text:  # 1e+06s, 1e-05ms: write the digits out
        text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text + unit
