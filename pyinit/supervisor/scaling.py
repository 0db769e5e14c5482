"""``pyinit scale NAME N``: a scaled service's count changed at run time.

The new count becomes a config whose other services are the running objects,
applied as a reload with a plan made here (nothing else changed): instances
above N stop gracefully, the highest first being no different from the others
(each stops on its own stop semantics, at once), and new ones start. The next
reload of the file brings back the file's count, as ``docker compose up`` does
after ``--scale``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyinit.config.replicas import rescale
from pyinit.reload import ReloadPlan
from pyinit.supervisor.selection import held_back

if TYPE_CHECKING:
    from pyinit.supervisor.actions import Operator


def scale(op: Operator, name: str, count: int) -> tuple[list[str], list[str], list[str]]:
    """(the instances that start, those that stop, errors). New instances of a
    group left out at boot are added stopped, and not among those that start."""
    if op.host.shutting_down:
        return [], [], ["pyinit is shutting down"]
    old = op.config
    try:
        new = rescale(old, name, count)
    except ValueError as exc:
        return [], [], [str(exc)]
    before, after = old.members(name), new.members(name)
    was, will = set(before), set(after)
    added = [n for n in after if n not in was]
    removed = [n for n in before if n not in will]
    if not added and not removed:
        op.log(f"scale {name}: already {count}")
        return [], [], []
    # A group left out at boot (profiles, --only) stays out as it grows.
    held = held_back(op, op.host.selection, new, added)
    unchanged = [n for n in new.services if n in old.services]
    label = f"scale {name} {len(before)} -> {count}"
    if held:
        op.unselected.update(held)
        op.log(f"{label}: {', '.join(held)} added stopped (profiles, --only; `pyinit start`)")
    op._apply_reload(new, ReloadPlan(added, removed, [], unchanged), label)
    return [n for n in added if n not in op.unselected], removed, []
