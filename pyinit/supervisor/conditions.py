"""Whether a dependency condition holds, and whether the main command may start.

Pure: no os, no I/O, no clock. The supervisor answers two questions through
``Facts`` (a service's state machine, and whether its latest health verdict is
healthy); everything else here is a function of those answers.

A verdict is ``(True, "")`` when the condition holds, ``(False, why)`` when it
never can, ``(None, "")`` when it may yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from pyinit.config.model import Condition, ServiceConfig, ServiceType
from pyinit.service import ServiceMachine, State

Verdict = tuple[bool | None, str]


class Facts(Protocol):
    def machine(self, name: str) -> ServiceMachine: ...

    def healthy(self, name: str) -> bool: ...


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


def dependencies(facts: Facts, cfg: ServiceConfig) -> Verdict:
    """True when every condition of ``cfg`` holds, False when one never can, else None."""
    verdict: bool | None = True
    for dep in cfg.depends_on:
        holds, reason = condition(facts, dep.name, dep.condition)
        if holds is False:
            return False, reason
        if holds is None:
            verdict = None
    return verdict, ""


def waiting_for(facts: Facts, cfg: ServiceConfig) -> list[str]:
    """The dependencies of ``cfg`` whose condition does not hold yet."""
    return [d.name for d in cfg.depends_on if condition(facts, d.name, d.condition)[0] is not True]


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


def dependants_of(name: str, services: Iterable[ServiceConfig]) -> list[str]:
    """The services that depend on ``name`` directly, in the order given."""
    return [cfg.name for cfg in services if any(d.name == name for d in cfg.depends_on)]


def dependants_map(services: Iterable[ServiceConfig]) -> dict[str, list[str]]:
    """``dependants_of`` for every name at once (names nothing depends on are absent):
    one pass over the graph instead of one per service."""
    found: dict[str, list[str]] = {}
    for cfg in services:
        for dep in cfg.depends_on:
            names = found.setdefault(dep.name, [])
            if not names or names[-1] != cfg.name:  # a name listed twice counts once
                names.append(cfg.name)
    return found


def with_dependants(
    names: list[str], dependants: Callable[[str], list[str]], alive: Callable[[str], bool]
) -> list[str]:
    """``names`` plus, transitively, every live service that depends on them."""
    found: list[str] = []
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.append(name)
        todo.extend(d for d in dependants(name) if alive(d))
    return found
