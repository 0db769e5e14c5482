"""Whether a dependency condition holds, and whether the main command may start.

Pure: no os, no I/O, no clock. The supervisor answers two questions through
``Facts`` (a service's state machine, and whether its latest health verdict is
healthy); everything else here is a function of those answers.

A verdict is ``(True, "")`` when the condition holds, ``(False, why)`` when it
never can, ``(None, "")`` when it may yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from pyinit.config.model import Condition, ServiceConfig, ServiceType
from pyinit.service import ServiceMachine, State

Verdict = tuple[bool | None, str]


class Facts(Protocol):
    def machine(self, name: str) -> ServiceMachine: ...

    def healthy(self, name: str) -> bool: ...

    def members(self, name: str) -> Sequence[str]:
        """The services a dependency on ``name`` waits for: a scaled service's
        instances (none at scale 0), else ``name``."""
        ...


def condition(facts: Facts, name: str, wanted: Condition) -> Verdict:
    """Whether ``wanted`` on service ``name`` holds, never will, or may yet."""
    m = facts.machine(name)
    why = m.reason or m.state.value
    if wanted is Condition.COMPLETED_SUCCESSFULLY:
        if m.state in (State.COMPLETED, State.EXITED):
            return True, ""
        if m.state in (State.FAILED, State.STOPPED):
            return False, f"dependency {name} did not complete successfully ({why})"
        return None, ""
    if wanted is Condition.HEALTHY:
        if facts.healthy(name):
            return True, ""
        if m.state.final:
            return False, f"dependency {name} {m.state.value} before it was healthy ({why})"
        return None, ""
    started = wanted is Condition.STARTED
    if m.ever_started if started else m.ever_ready:
        return True, ""
    if m.state.final:
        goal = "started" if started else "was ready"
        return False, f"dependency {name} {m.state.value} before it {goal} ({why})"
    return None, ""


def dependency(facts: Facts, name: str, wanted: Condition) -> Verdict:
    """``wanted`` on every service ``name`` stands for (each instance of a scaled one)."""
    verdict: Verdict = True, ""
    for member in facts.members(name):
        holds, reason = condition(facts, member, wanted)
        if holds is False:
            return False, reason
        if holds is None:
            verdict = None, ""
    return verdict


def dependencies(facts: Facts, cfg: ServiceConfig) -> Verdict:
    """True when every condition of ``cfg`` holds, False when one never can, else None."""
    verdict: bool | None = True
    for dep in cfg.depends_on:
        holds, reason = dependency(facts, dep.name, dep.condition)
        if holds is False:
            return False, reason
        if holds is None:
            verdict = None
    return verdict, ""


def waiting_for(facts: Facts, cfg: ServiceConfig) -> list[str]:
    """The dependencies of ``cfg`` whose condition does not hold yet."""
    return [d.name for d in cfg.depends_on if dependency(facts, d.name, d.condition)[0] is not True]


def main_gate(facts: Facts, services: Iterable[ServiceConfig]) -> Verdict:
    """The main command depends on every service: oneshots completed, longruns ready.
    It waits at the first that may yet hold; one that never can stops it for good."""
    for cfg in services:
        if cfg.schedule is not None:
            continue  # a scheduled job runs at times: nothing waits for it
        wanted = (
            Condition.COMPLETED_SUCCESSFULLY if cfg.type is ServiceType.ONESHOT else Condition.READY
        )
        holds, reason = condition(facts, cfg.name, wanted)
        if holds is not True:
            return holds, reason
    return True, ""


class Dependants:
    """Who depends on each name, as a reverse index built on first use after the
    definitions changed (``invalidate``): stopping 10,000 services looks each up
    instead of scanning every service for each one."""

    def __init__(self, services: Callable[[], Iterable[ServiceConfig]]) -> None:
        self._services = services
        self._index: dict[str, list[str]] | None = None

    def invalidate(self) -> None:
        self._index = None

    def of(self, name: str, replica_of: str | None = None) -> list[str]:
        """The services that depend on ``name`` directly, in the services' order; for
        an instance (``replica_of`` its scaled service), those depending on that after."""
        index = self._index
        if index is None:
            index = self._index = {}
            for cfg in self._services():
                for dep in cfg.depends_on:
                    index.setdefault(dep.name, []).append(cfg.name)
        found = index.get(name, [])
        return found + index.get(replica_of, []) if replica_of is not None else list(found)


def with_dependants(
    names: list[str], dependants: Callable[[str], list[str]], alive: Callable[[str], bool]
) -> list[str]:
    """``names`` plus, transitively, every live service that depends on them."""
    found: list[str] = []
    seen: set[str] = set()  # found, as a set: 10,000 names are looked up in it
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found.append(name)
        todo.extend(d for d in dependants(name) if alive(d))
    return found


def group_dependants(
    dependants_of: Callable[[str, bool], list[str]],
    owner: Callable[[str], str | None],
    members: Callable[[str], Sequence[str]],
    counts: Callable[[str], bool],
) -> Callable[[str], list[str]]:
    """``dependants(name)`` where what depends on a name's scaled service (``owner``;
    ``members``: its instances) counts only once ``counts`` holds for every instance;
    worked out once per group. ``dependants_of(name, whole_group)``."""
    whole: dict[str, bool] = {}

    def dependants(name: str) -> list[str]:
        group = owner(name)
        if group is not None and group not in whole:
            whole[group] = all(counts(m) for m in members(group))
        return dependants_of(name, group is None or whole[group])

    return dependants


def with_group_dependants(
    names: list[str],
    dependants_of: Callable[[str, bool], list[str]],
    alive: Callable[[str], bool],
    owner: Callable[[str], str | None],
    members: Callable[[str], Sequence[str]],
) -> list[str]:
    """``with_dependants`` where what depends on a scaled service joins only once
    none of its instances stays up (see ``group_dependants``). Repeated until
    nothing more joins: a group is whole only once all of it was found (stopping
    db, that each instance depends on, takes what depends on the group)."""
    chosen: set[str] = set()
    found = list(names)
    while chosen != set(found):
        chosen = set(found)
        gone = _stopping(chosen, alive)
        found = with_dependants(names, group_dependants(dependants_of, owner, members, gone), alive)
    return found


def _stopping(chosen: set[str], alive: Callable[[str], bool]) -> Callable[[str], bool]:
    """An instance that is one of ``chosen`` or not alive (it will not stay up)."""
    return lambda m: m in chosen or not alive(m)
