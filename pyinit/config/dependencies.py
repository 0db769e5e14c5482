"""``depends_on``: read per service, then checked across services (names, conditions
the target can meet, cycles)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from pyinit.config.extras import scheduled_dependency
from pyinit.config.graph import find_cycles
from pyinit.config.model import Condition, Dependency, Problem, ServiceType
from pyinit.config.nodes import Reader, enum_member, enum_values
from pyinit.config.replicas import split_instance
from pyinit.config.yamltree import line


@dataclass
class Draft:
    """What was understood of one service; turned into a ServiceConfig at the end."""

    name: str
    line: int
    fields: dict[str, object]
    deps: list[tuple[Dependency, str, int]]  # (dependency, key path, line)
    # healthcheck: "absent", "disabled" (test: [NONE] or disable: true), "invalid"
    # (already reported) or "set"; service_healthy dependants need "set".
    health: str = "absent"


def depends_on(r: Reader, node: yaml.Node, key: str) -> list[tuple[Dependency, str, int]]:
    """A list of names, or Compose's mapping of name: {condition: ...}."""
    if isinstance(node, yaml.SequenceNode):
        return _listed(r, node, key)
    deps: list[tuple[Dependency, str, int]] = []
    entries = r.mapping(node, key, "a list of service names or a mapping of name: {condition: ...}")
    for name, (knode, vnode) in (entries or {}).items():
        dep_key = f"{key}.{name}"
        options = r.mapping(vnode, dep_key, "a mapping such as {condition: service_started}")
        if options is None:
            continue
        r.check_keys(options, ("condition",), dep_key)
        condition = Condition.STARTED
        if "condition" in options:
            cnode = options["condition"][1]
            parsed = enum_member(
                Condition, r.choice(cnode, f"{dep_key}.condition", enum_values(Condition))
            )
            if parsed is None:
                continue
            condition = parsed
        deps.append((Dependency(name, condition), dep_key, line(knode) or 0))
    return deps


def _listed(r: Reader, node: yaml.SequenceNode, key: str) -> list[tuple[Dependency, str, int]]:
    deps: list[tuple[Dependency, str, int]] = []
    for i, item in enumerate(node.value):
        name = r.text(item, f"{key}[{i}]", "a service name")
        if name is None:
            continue
        if any(d.name == name for d, _, _ in deps):
            r.add(item, f"{key}.{name}", "listed twice")
            continue
        deps.append((Dependency(name), f"{key}.{name}", line(item) or 0))
    return deps


def check_dependencies(path: str, drafts: list[Draft]) -> list[Problem]:
    """Dependencies on no service or on itself, conditions the target can never meet,
    and cycles (each once, starting from its service declared first)."""
    problems: list[Problem] = []
    by_name = {d.name: d for d in drafts}
    graph: dict[str, list[str]] = {d.name: [] for d in drafts}
    for draft in drafts:
        for dep, key, at in draft.deps:
            target = by_name.get(dep.name)
            if dep.name == draft.name:
                problems.append(Problem(path, at, key, "a service cannot depend on itself"))
            elif target is None:
                problems.append(Problem(path, at, key, _missing(dep.name, by_name)))
            else:
                graph[draft.name].append(dep.name)
                problems += (Problem(path, at, key, m) for m in _unmet(dep, target))
    order = {d.name: i for i, d in enumerate(drafts)}
    for cycle in find_cycles(graph):
        start = min(cycle, key=order.__getitem__)
        at = cycle.index(start)
        cycle = cycle[at:] + cycle[:at]
        problems.append(
            Problem(
                path,
                by_name[start].line,
                f"services.{start}.depends_on",
                "dependency cycle: " + " -> ".join([*cycle, start]),
            )
        )
    return problems


def _missing(name: str, by_name: dict[str, Draft]) -> str:
    parts = split_instance(name)
    owner = by_name.get(parts[0]) if parts is not None else None
    if owner is not None and owner.fields.get("scale") is not None:
        return (
            f"{name!r} is one instance of the scaled service {owner.name!r}; depend on "
            f"{owner.name!r} (it waits for every instance)"
        )
    return f"no service named {name!r}"


def _unmet(dep: Dependency, target: Draft) -> list[str]:
    """Why ``target`` can never meet ``dep.condition``, if it cannot."""
    messages: list[str] = []
    # Only a oneshot reaches `completed`: a longrun that exits is exited or
    # restarted, never completed, so waiting for it to complete would hang the
    # dependant (Compose allows it because a container has no such distinction;
    # pyinit has).
    if (
        dep.condition is Condition.COMPLETED_SUCCESSFULLY
        and target.fields.get("type", ServiceType.LONGRUN) is ServiceType.LONGRUN
    ):
        messages.append(
            f"service_completed_successfully needs {dep.name!r} to be a "
            "oneshot (type: oneshot); a longrun never completes"
        )
    if target.fields.get("schedule") is not None:
        messages.append(scheduled_dependency(dep.name, target.fields["schedule"]))
    if dep.condition is Condition.HEALTHY and target.health in ("absent", "disabled"):
        has = "no healthcheck" if target.health == "absent" else "its healthcheck disabled"
        messages.append(
            f"service_healthy: {dep.name!r} has {has}, so it is never "
            "healthy; give it a healthcheck or use service_ready"
        )
    return messages
