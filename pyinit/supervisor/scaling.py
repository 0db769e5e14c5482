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

if TYPE_CHECKING:
    from pyinit.supervisor.actions import Operator


def scale(op: Operator, name: str, count: int) -> tuple[list[str], list[str], list[str]]:
    """(the instances that start, those that stop, errors)."""
    if op.host.shutting_down:
        return [], [], ["pyinit is shutting down"]
    old = op.config
    try:
        new = rescale(old, name, count)
    except ValueError as exc:
        return [], [], [str(exc)]
    before, after = old.members(name), new.members(name)
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    if not added and not removed:
        op.log(f"scale {name}: already {count}")
        return [], [], []
    # A group left out at boot (profiles, --only) stays out as it grows.
    held = bool(before) and all(n in op.unselected for n in before)
    unchanged = [n for n in new.services if n in old.services]
    if held:
        op.unselected.update(added)
    label = f"scale {name} {len(before)} -> {count}"
    op._apply_reload(new, ReloadPlan(added, removed, [], unchanged), label)
    # held ones are added stopped: a client must not wait for them to be ready
    return [] if held else added, removed, []
