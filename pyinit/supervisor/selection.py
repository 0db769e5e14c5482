"""The boot's selection (active profiles, ``--only``) applied to what a reload adds.

A service a reload adds is started only if the selection pyinit booted with
would have started it: one of an inactive profile, or outside ``--only``, is
added stopped (``pyinit start NAME`` starts it), as at boot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyinit.config.model import Config
    from pyinit.reload import ReloadPlan
    from pyinit.supervisor.actions import Operator

Selection = tuple[list[str], list[str]]  # (active profiles, --only names)


def apply_file_reload(
    op: Operator, selection: Selection, new: Config, plan: ReloadPlan | None = None
) -> list[str]:
    """Apply a reload of the file, holding back what the selection leaves out."""
    from pyinit.reload import plan_reload

    if plan is None:
        plan = plan_reload(op.config, new)
    held = held_back(op, selection, new, plan.added)
    if held:
        op.unselected.update(held)
        op.log(f"reload: not started (profiles, --only; `pyinit start NAME`): {', '.join(held)}")
    return op._apply_reload(new, plan)


def held_back(op: Operator, selection: Selection, new: Config, added: list[str]) -> list[str]:
    """Which of ``added`` (names of ``new``) stay stopped. A new instance of a
    scaled service that has instances follows them: held when all of them are
    (left out at boot and not started since), started when one was started. Any
    other service, or an instance of a group with none yet, follows the boot's
    selection, as at boot."""
    from pyinit.config.profiles import unselected_in

    skipped: set[str] | None = None
    group_held: dict[str, bool | None] = {}  # None: no instance to follow
    held: list[str] = []
    for name in added:
        group = new.services[name].replica_of
        if group is not None and group not in group_held:
            current = [m for m in op.config.members(group) if m in op.services]
            group_held[group] = all(m in op.unselected for m in current) if current else None
        follows = group_held[group] if group is not None else None
        if follows is None:
            if skipped is None:
                skipped = unselected_in(new, *selection)[0]
            follows = name in skipped
        if follows:
            held.append(name)
    return held


def pull_unselected(op: Operator, names: list[str]) -> list[str]:
    """What ``names`` depend on (transitively) that was not started at boot, taken
    out of the unselected, in the order to start them."""
    found: list[str] = []
    members, services, unselected = op.config.members, op.services, op.unselected
    todo = [m for n in names for d in services[n].cfg.depends_on for m in members(d.name)]
    while todo:
        name = todo.pop()
        if name in unselected and name not in found:
            found.append(name)
            todo.extend(m for d in services[name].cfg.depends_on for m in members(d.name))
    unselected.difference_update(found)
    return found[::-1]
