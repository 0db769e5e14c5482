"""The dependency graph, as names only: cycles (for problems) and start tiers.

Both iterative: a chain of thousands of services must not hit the recursion limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def start_tiers(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Names grouped by dependency depth (``graph``: name -> the names it depends
    on): tier 0 has no dependencies, tier n depends only on earlier tiers; each tier
    in ``graph``'s order. Assumes an acyclic graph whose every edge names a node."""
    depth: dict[str, int] = {}
    for root in graph:
        stack = [root]
        while stack:
            name = stack[-1]
            if name in depth:
                stack.pop()
                continue
            todo = [d for d in graph[name] if d not in depth]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            depth[name] = 1 + max((depth[d] for d in graph[name]), default=-1)
    tiers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in graph:
        tiers[depth[name]].append(name)
    return tiers


def find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per back edge found by a depth-first search, each reported once."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        path.append(root)
        stack = [iter(graph[root])]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                stack.pop()
                state[path.pop()] = 2
            elif state.get(dep) == 1:
                cycle = path[path.index(dep) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append(cycle)
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                stack.append(iter(graph[dep]))
    return cycles
