"""services.yaml -> frozen dataclasses, with every user mistake reported at once.

Only supervisor mode (and ``pyinit check``) imports this package: the loader
imports PyYAML, ~30 ms. The modules, bottom to top:

- model: the dataclasses and enums a Config is made of; Problem, ConfigError
- graph: cycles and start tiers of the dependency graph (names only)
- interpolation: Compose's ``${VAR:-default}`` expansion
- yamltree: text -> YAML nodes, with depth, duplicate-key and merge-key checks
- nodes: the generic typed reader of nodes (scalars, mappings, durations, ...)
- environment, hardening, probes, dependencies: readers of a service's sections
- services: one service; load: the file, and the entry points
"""

from typing import TYPE_CHECKING, Any

from pyinit.config.model import (
    Backoff,
    Condition,
    Config,
    ConfigError,
    Dependency,
    HealthCheck,
    Probe,
    Problem,
    Readiness,
    RestartPolicy,
    ServiceConfig,
    ServiceType,
    Settings,
    StartLimit,
)

if TYPE_CHECKING:
    from pyinit.config.hardening import user_switch_problem
    from pyinit.config.interpolation import InterpolationError, interpolate
    from pyinit.config.load import MAX_SERVICES, load_config, load_config_text
    from pyinit.config.yamltree import MAX_DEPTH

# The loader's names are imported on first use: the model alone (what service.py,
# the supervisor's parts and the health probes need) must not load PyYAML.
_LAZY = {
    "user_switch_problem": "hardening",
    "InterpolationError": "interpolation",
    "interpolate": "interpolation",
    "MAX_SERVICES": "load",
    "load_config": "load",
    "load_config_text": "load",
    "MAX_DEPTH": "yamltree",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyinit.config' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"pyinit.config.{module}"), name)


__all__ = [
    "MAX_DEPTH",
    "MAX_SERVICES",
    "Backoff",
    "Condition",
    "Config",
    "ConfigError",
    "Dependency",
    "HealthCheck",
    "InterpolationError",
    "Probe",
    "Problem",
    "Readiness",
    "RestartPolicy",
    "ServiceConfig",
    "ServiceType",
    "Settings",
    "StartLimit",
    "interpolate",
    "load_config",
    "load_config_text",
    "user_switch_problem",
]
