"""What reloads still owe each service name: a pure table, no I/O, no clock.

Per name it keeps the definition of the instance the supervisor holds (``running``,
None once dropped), what the latest file wants (``desired``, None when the file
has no such service) and the phase in between. Two events move it: a reload
(the file's definition of every name) and "the instance finished stopping".
Each returns the decisions the supervisor carries out: add a runtime, stop an
instance, withdraw a stop not yet sent, drop the runtime, or replace it.

Whatever the interleaving of reloads and slow stops, once every pending stop has
finished the running definitions are the last file's (line numbers aside): a
re-added name turns its retirement into a replacement by the newest definition
and is never lost; a name changed again while stopping starts the newest one.
Allowed (phase, event) pairs are one table; any other pair raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from enum import Enum

from pyinit.config.model import ServiceConfig
from pyinit.reload import definition


class Phase(Enum):
    ABSENT = "absent"  # no instance, and the file does not want one
    CURRENT = "current"  # the instance runs what the file says
    RETIRING = "retiring"  # stopping; then the name goes
    REPLACING = "replacing"  # stopping; then a runtime for ``desired`` starts


class Want(Enum):
    GONE = "gone"  # the new file has no such service
    SAME = "same"  # the new file's definition is the running instance's
    OTHER = "other"  # a different definition (or no instance to compare with)
    STOPPED = "stopped"  # the instance this table asked to stop has stopped


@dataclass(frozen=True)
class Add:
    cfg: ServiceConfig  # a new runtime: the name had none


@dataclass(frozen=True)
class Stop:
    name: str  # stop the instance (in dependency order)


@dataclass(frozen=True)
class Withdraw:
    name: str  # forget the stop asked for earlier: it was never sent


@dataclass(frozen=True)
class Drop:
    name: str  # the stopped instance goes, and the name with it


@dataclass(frozen=True)
class Replace:
    cfg: ServiceConfig  # the stopped instance gives way to a runtime for cfg


Decision = Add | Stop | Withdraw | Drop | Replace


class IllegalReloadTransition(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    running: ServiceConfig | None
    desired: ServiceConfig | None
    phase: Phase
    # The reload alone asked for the stop (no operator stop or restart shared
    # it), so it may be withdrawn while the instance has not been told yet.
    own_stop: bool = False


@dataclass(frozen=True)
class _Input:
    name: str
    cfg: ServiceConfig | None
    withdrawable: bool  # a stop of this instance may still be taken back
    shared: bool  # an operator stop or restart of it is in progress


_Handler = Callable[[Entry, _Input], tuple[Entry, list[Decision]]]


def _nothing(e: Entry, i: _Input) -> tuple[Entry, list[Decision]]:
    return dataclasses.replace(e, desired=i.cfg), []


def _add(e: Entry, i: _Input) -> tuple[Entry, list[Decision]]:
    assert i.cfg is not None
    return Entry(i.cfg, i.cfg, Phase.CURRENT), [Add(i.cfg)]


def _stop_then(phase: Phase) -> _Handler:
    def handler(e: Entry, i: _Input) -> tuple[Entry, list[Decision]]:
        return Entry(e.running, i.cfg, phase, own_stop=not i.shared), [Stop(i.name)]

    return handler


def _redirect(phase: Phase) -> _Handler:
    # The stop is under way already; only what follows it changes.
    def handler(e: Entry, i: _Input) -> tuple[Entry, list[Decision]]:
        return dataclasses.replace(e, desired=i.cfg, phase=phase), []

    return handler


def _keep(e: Entry, i: _Input) -> tuple[Entry, list[Decision]]:
    # Back to the running definition: withdraw the stop if it was never sent,
    # else let it finish and start the same definition again (a restart).
    if e.own_stop and i.withdrawable:
        return Entry(e.running, i.cfg, Phase.CURRENT), [Withdraw(i.name)]
    return dataclasses.replace(e, desired=i.cfg, phase=Phase.REPLACING), []


def _drop(e: Entry, i: _Input) -> tuple[Entry, list[Decision]]:
    return Entry(None, None, Phase.ABSENT), [Drop(i.name)]


def _replace(e: Entry, i: _Input) -> tuple[Entry, list[Decision]]:
    assert e.desired is not None
    return Entry(e.desired, e.desired, Phase.CURRENT), [Replace(e.desired)]


P, W = Phase, Want
_TRANSITIONS: dict[tuple[Phase, Want], _Handler] = {
    (P.ABSENT, W.GONE): _nothing,
    (P.ABSENT, W.OTHER): _add,
    (P.CURRENT, W.GONE): _stop_then(P.RETIRING),
    (P.CURRENT, W.SAME): _nothing,
    (P.CURRENT, W.OTHER): _stop_then(P.REPLACING),
    (P.RETIRING, W.GONE): _nothing,
    (P.RETIRING, W.SAME): _keep,
    (P.RETIRING, W.OTHER): _redirect(P.REPLACING),
    (P.RETIRING, W.STOPPED): _drop,
    (P.REPLACING, W.GONE): _redirect(P.RETIRING),
    (P.REPLACING, W.SAME): _keep,
    (P.REPLACING, W.OTHER): _redirect(P.REPLACING),
    (P.REPLACING, W.STOPPED): _replace,
}


class ReloadTable:
    """Every name the supervisor holds a runtime for, or a reload still owes."""

    def __init__(self, services: Mapping[str, ServiceConfig]) -> None:
        self.entries = {n: Entry(cfg, cfg, Phase.CURRENT) for n, cfg in services.items()}

    def phase(self, name: str) -> Phase:
        entry = self.entries.get(name)
        return entry.phase if entry is not None else Phase.ABSENT

    def pending(self, name: str) -> bool:
        return self.phase(name) in (Phase.RETIRING, Phase.REPLACING)

    def replacements(self) -> dict[str, ServiceConfig]:
        return {
            n: e.desired
            for n, e in self.entries.items()
            if e.phase is Phase.REPLACING and e.desired is not None
        }

    def running(self) -> dict[str, ServiceConfig]:
        return {n: e.running for n, e in self.entries.items() if e.running is not None}

    def desired(self) -> dict[str, ServiceConfig]:
        return {n: e.desired for n, e in self.entries.items() if e.desired is not None}

    def reload(
        self,
        new: Mapping[str, ServiceConfig],
        signalled: Set[str] = frozenset(),
        shared: Set[str] = frozenset(),
        unchanged: Set[str] = frozenset(),
    ) -> list[Decision]:
        """The file now says ``new``. ``signalled``: names whose instance has been
        told to stop or is not running (a stop can no longer be withdrawn);
        ``shared``: names an operator is stopping or restarting; ``unchanged``:
        names whose definition the previous file had too (a reload's plan): while
        current they take (current, same) directly, which keeps the loop's pass
        short with 10,000 services."""
        decisions: list[Decision] = []
        for name in [*self.entries, *(n for n in new if n not in self.entries)]:
            cfg = new.get(name)
            entry = self.entries.get(name, Entry(None, None, Phase.ABSENT))
            if name in unchanged and entry.phase is Phase.CURRENT:
                # (current, same) without the transition lookup: only desired moves.
                self.entries[name] = Entry(entry.running, cfg, Phase.CURRENT, entry.own_stop)
                continue
            if cfg is None:
                want = Want.GONE
            elif entry.running is not None and definition(entry.running) == definition(cfg):
                want = Want.SAME
            else:
                want = Want.OTHER
            inp = _Input(name, cfg, name not in signalled, name in shared)
            decisions += self._step(name, entry, want, inp)
        return decisions

    def stopped(self, name: str) -> list[Decision]:
        """The instance of ``name`` this table asked to stop has stopped."""
        entry = self.entries.get(name, Entry(None, None, Phase.ABSENT))
        return self._step(name, entry, Want.STOPPED, _Input(name, None, False, False))

    def _step(self, name: str, entry: Entry, want: Want, inp: _Input) -> list[Decision]:
        handler = _TRANSITIONS.get((entry.phase, want))
        if handler is None:
            raise IllegalReloadTransition(f"{name}: {want.value} while {entry.phase.value}")
        after, decisions = handler(entry, inp)
        if after.phase is Phase.ABSENT:
            self.entries.pop(name, None)
        else:
            self.entries[name] = after
        return decisions
