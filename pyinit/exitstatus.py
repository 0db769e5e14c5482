"""How a process ended, decoded, and the names of signals: pure (no os, no I/O).

The service state machine keeps exit statuses; it must not import anything that
touches the system, so the decoded form lives here and ``reaper`` (the only
``waitpid``) builds it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs start-up time; annotations only
if TYPE_CHECKING:
    import signal
else:
    # The C module behind ``signal`` (see pyinit/signals.py): no enum import.
    import _signal as signal

_ALIASES = frozenset({"SIGIOT", "SIGCLD", "SIGPOLL"})  # = ABRT, CHLD, IO
SIGNAL_NUMBERS: dict[str, int] = {
    name: int(value)
    for name, value in vars(signal).items()
    if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(value, int)
}
_NAMES: dict[int, str] = {num: name for name, num in SIGNAL_NUMBERS.items() if name not in _ALIASES}


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, ``SIGRTMIN+2`` for real-time signals."""
    name = _NAMES.get(signum)
    if name is not None:
        return name
    if signal.SIGRTMIN <= signum <= signal.SIGRTMAX:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
    return f"signal {signum}"


class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it. Immutable.

    A plain class rather than a dataclass: importing dataclasses costs wrapper
    mode several milliseconds of start-up.
    """

    __slots__ = ("code", "signal", "core_dumped")
    code: int | None
    signal: int | None
    core_dumped: bool

    def __init__(
        self, code: int | None = None, signal: int | None = None, core_dumped: bool = False
    ) -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "signal", signal)
        object.__setattr__(self, "core_dumped", core_dumped)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ExitStatus is immutable; cannot set {name}")

    def _key(self) -> tuple[int | None, int | None, bool]:
        return (self.code, self.signal, self.core_dumped)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExitStatus) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = f"code={self.code!r}, signal={self.signal!r}, core_dumped={self.core_dumped!r}"
        return f"ExitStatus({fields})"

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        """Decode a raw waitpid(2) status the way the os.W* macros do on Linux:
        low 7 bits the terminating signal (0: a normal exit, 0x7f: stopped), bit 7
        a core dump, bits 8-15 the exit code."""
        low = status & 0x7F
        if low == 0:
            return cls(code=(status >> 8) & 0xFF)
        if low == 0x7F:  # os.waitstatus_to_exitcode refuses a stopped child too
            raise ValueError(f"not an exit status: {status:#x} (stopped)")
        return cls(signal=low, core_dumped=bool(status & 0x80))

    @property
    def shell_code(self) -> int:
        """The code a shell would report: the exit code, or 128+N for signal N."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code if self.code is not None else 0

    @property
    def success(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        if self.signal is not None:
            core = ", core dumped" if self.core_dumped else ""
            return f"killed by {signal_name(self.signal)}{core}"
        return f"status {self.code}"
