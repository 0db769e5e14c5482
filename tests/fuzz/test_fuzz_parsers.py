"""Fuzzing the duration and signal parsers: ValueError is their only failure, and
what pyinit prints reads back as what it meant."""

from __future__ import annotations

import math
import signal

from hypothesis import given
from hypothesis import strategies as st

from pyinit.durations import format_duration, parse_duration
from pyinit.signals import parse_signal, signal_name

# Text that looks like a duration often enough to reach past the first check.
_NUMBER = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.from_regex(r"\A[0-9]{1,400}(\.[0-9]{1,20})?\Z"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from([(9, 400), (1, 309), (1, 305), (0, 50)]).map(lambda t: str(t[0]) * t[1]),
)
_DURATION_TEXT = st.lists(
    st.tuples(_NUMBER, st.sampled_from(["ms", "s", "m", "h", "", "us", "d", " ", "S"])),
    min_size=1,
    max_size=4,
).map(lambda parts: "".join(n + u for n, u in parts))
_ANY_TEXT = st.one_of(st.text(), _DURATION_TEXT, st.text(alphabet="0123456789.msh-+e _"))


def _check_duration(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(seconds, float)
    assert math.isfinite(seconds) and seconds >= 0, (value, seconds)


@given(_ANY_TEXT)
def test_duration_text_is_a_finite_duration_or_a_value_error(text: str) -> None:
    _check_duration(text)


@given(
    st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.integers(300, 420).map(lambda e: -(10**e) if e % 2 else 10**e),
        st.floats(),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.binary(max_size=8),
    )
)
def test_duration_of_any_value_is_a_finite_duration_or_a_value_error(value: object) -> None:
    _check_duration(value)


@given(st.floats(min_value=0, allow_infinity=False, allow_nan=False))
def test_format_duration_reads_back(seconds: float) -> None:
    text = format_duration(seconds)
    assert math.isclose(parse_duration(text), seconds, rel_tol=1e-5, abs_tol=1e-6), text


@given(st.one_of(st.text(), st.text(alphabet="SIGRTMAXINTERM+-0123456789 sigrtmaxin")))
def test_signal_text_is_a_signal_or_a_value_error(text: str) -> None:
    valid = set(signal.valid_signals())
    for allow_zero in (False, True):
        try:
            signum = parse_signal(text, allow_zero=allow_zero)
        except ValueError as exc:
            assert str(exc)
            continue
        assert isinstance(signum, int)
        assert signum in valid or (allow_zero and signum == 0), (text, signum)


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_signal_numbers(number: int) -> None:
    try:
        signum = parse_signal(str(number))
    except ValueError:
        assert number not in signal.valid_signals()
    else:
        assert signum == number


def test_every_signal_name_reads_back() -> None:
    for signum in signal.valid_signals():
        name = signal_name(signum)
        assert parse_signal(name) == signum, name
        assert parse_signal(name.lower()) == signum, name
        assert parse_signal(name.removeprefix("SIG")) == signum, name
        assert parse_signal(f" {signum} ") == signum


def test_regressions() -> None:
    # Found by fuzzing: a huge number overflowed to inf (or raised OverflowError)
    # instead of being refused; a non-ASCII digit raised int()'s own message.
    for value in ("9" * 400 + "s", "1" * 306 + "h", 10**400, "9" * 308 + "m"):
        try:
            seconds = parse_duration(value)
        except ValueError:
            continue
        raise AssertionError(f"{value!r} parsed as {seconds}")
    for text in ("²", "¹⁵", "١٥"):
        try:
            parse_signal(text)
        except ValueError as exc:
            assert "int()" not in str(exc)
        else:
            raise AssertionError(f"{text!r} parsed as a signal")
    # format_duration wrote exponents (1e+06s) that parse_duration refuses.
    assert format_duration(1e6) == "1000000s"
    assert format_duration(1e-9) == "0.000001ms"
    assert format_duration(1.5) == "1.5s" and format_duration(0.25) == "250ms"
