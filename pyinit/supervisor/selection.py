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
    from pyinit.config.profiles import unselected_in
    from pyinit.reload import plan_reload

    if plan is None:
        plan = plan_reload(op.config, new)
    if plan.added:
        skipped, _problems = unselected_in(new, *selection)
        held = [n for n in plan.added if n in skipped]
        if held:
            op.unselected.update(held)
            op.log(
                f"reload: not started (profiles, --only; `pyinit start NAME`): {', '.join(held)}"
            )
    return op._apply_reload(new, plan)
