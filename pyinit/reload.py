"""What a reload changes: the pure diff between the running config and a new one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pyinit.config.model import Config, ServiceConfig


@dataclass(frozen=True)
class ReloadPlan:
    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: list[str]

    def describe(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
            if names
        ]
        return "; ".join(parts) if parts else "no service changed"


def definition(cfg: ServiceConfig) -> ServiceConfig:
    # Where the service sits in the file is not part of what it is.
    return dataclasses.replace(cfg, line=0)


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Compare service definitions (not their line numbers) by name."""
    added = [name for name in new.services if name not in old.services]
    removed = [name for name in old.services if name not in new.services]
    changed: list[str] = []
    unchanged: list[str] = []
    for name in new.services:
        if name in old.services:
            same = definition(old.services[name]) == definition(new.services[name])
            (unchanged if same else changed).append(name)
    return ReloadPlan(added, removed, changed, unchanged)
