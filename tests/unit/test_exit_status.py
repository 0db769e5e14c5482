"""Unit tests for ExitStatus decoding from raw wait statuses (no processes).

A raw status is what waitpid(2) returns: ``code << 8`` for a normal exit,
the signal number for death by signal, plus 0x80 when a core was dumped.
"""

from __future__ import annotations

import signal

import pytest

from pyinit.reaper import ExitStatus

CORE = 0x80


@pytest.mark.parametrize("code", [0, 1, 2, 42, 126, 127, 128, 255])
def test_normal_exit(code: int) -> None:
    """An exit code is decoded as such and reported unchanged as the shell code."""
    status = ExitStatus.from_wait_status(code << 8)
    assert status == ExitStatus(code=code)
    assert status.shell_code == code
    assert status.success is (code == 0)
    assert status.describe() == f"status {code}"


@pytest.mark.parametrize("signum", [1, 2, 9, 15, int(signal.SIGRTMIN) + 1, int(signal.SIGRTMAX)])
def test_killed_by_signal(signum: int) -> None:
    """Death by signal N is 128+N, not a success, and names the signal."""
    status = ExitStatus.from_wait_status(signum)
    assert status.signal == signum
    assert status.code is None
    assert not status.core_dumped
    assert status.shell_code == 128 + signum
    assert not status.success
    assert status.describe().startswith("killed by SIG")


def test_core_dump_bit() -> None:
    """The core bit is decoded and reported; the shell code is still 128+N."""
    status = ExitStatus.from_wait_status(int(signal.SIGSEGV) | CORE)
    assert status == ExitStatus(signal=int(signal.SIGSEGV), core_dumped=True)
    assert status.shell_code == 128 + int(signal.SIGSEGV)
    assert status.describe() == "killed by SIGSEGV, core dumped"


def test_killed_describe_exact() -> None:
    """The log vocabulary for a signal death."""
    assert ExitStatus.from_wait_status(int(signal.SIGTERM)).describe() == "killed by SIGTERM"


def test_exit_code_with_high_bits_is_not_a_signal() -> None:
    """Exit code 128+N (a normal exit) is not confused with death by signal N."""
    status = ExitStatus.from_wait_status((128 + 9) << 8)
    assert status.signal is None
    assert status.code == 137



def test_a_nul_byte_in_the_command_is_a_spawn_error() -> None:
    """An embedded NUL (only possible from a config) is a failed start with a reason,
    not a ValueError escaping into PID 1's loop."""
    import pytest

    from pyinit.spawn import SpawnError, SpawnSpec, spawn

    with pytest.raises(SpawnError) as info:
        spawn(SpawnSpec(["echo", "a\0b"]))
    assert info.value.pid is None and info.value.exit_code == 126


def test_pure_decoding_matches_the_os_macros() -> None:
    """ExitStatus decodes without os (pyinit/exitstatus.py is pure); it must agree
    with the os.W* macros for every exit code and signal, with and without core."""
    import os

    for status in [code << 8 for code in range(256)] + [
        sig | core for sig in range(1, 0x7F) for core in (0, CORE)
    ]:
        decoded = ExitStatus.from_wait_status(status)
        if os.WIFSIGNALED(status):
            assert decoded == ExitStatus(
                signal=os.WTERMSIG(status), core_dumped=os.WCOREDUMP(status)
            )
        else:
            assert decoded == ExitStatus(code=os.waitstatus_to_exitcode(status))


def test_a_stopped_status_is_refused_as_the_os_does() -> None:
    """0x7f in the low bits is a stopped child, not an exit (never reaped without
    WUNTRACED): refused, as os.waitstatus_to_exitcode refuses it."""
    import os

    stopped = (int(signal.SIGSTOP) << 8) | 0x7F
    with pytest.raises(ValueError):
        os.waitstatus_to_exitcode(stopped)
    with pytest.raises(ValueError):
        ExitStatus.from_wait_status(stopped)
