"""The supervisor's public requests (control socket, HTTP): each served by its
Operator (pyinit/supervisor/actions.py) or, for scale, pyinit/supervisor/scaling.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyinit.config.model import ServiceConfig
    from pyinit.supervisor.actions import Operator


class OperatorRequests:
    """The supervisor's public requests (control socket, HTTP), served by its Operator."""

    actions: Operator

    def stop_services(self, names: list[str]) -> tuple[list[str], list[str]]:
        return self.actions.stop_services(names)

    def start_services(self, names: list[str]) -> tuple[list[str], list[str]]:
        return self.actions.start_services(names)

    def restart_services(self, names: list[str]) -> tuple[list[str], list[str]]:
        return self.actions.restart_services(names)

    def signal_services(self, signum: int, names: list[str]) -> tuple[list[str], list[str]]:
        return self.actions.signal_services(signum, names)

    def scale_service(self, name: str, count: int) -> tuple[list[str], list[str], list[str]]:
        from pyinit.supervisor.scaling import scale

        return scale(self.actions, name, count)

    @property
    def stop_set(self) -> set[str]:
        return self.actions.stop_set

    @property
    def restart_set(self) -> set[str]:
        return self.actions.restart_set

    @property
    def unselected(self) -> set[str]:
        return self.actions.unselected

    @property
    def replacements(self) -> dict[str, ServiceConfig]:
        """Names waiting for their instance to stop before a new definition starts."""
        return self.actions.replacements
