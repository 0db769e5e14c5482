"""Replicas: a service declared with ``scale: N`` runs as N instances NAME.1 … NAME.N.

Each instance is an ordinary service (its own state, restarts, backoff and log
prefix) whose definition is the declared one plus ``PYINIT_SERVICE=NAME`` and
``PYINIT_REPLICA=i`` in its environment, and a log file of its own. An instance's
definition depends only on the declaration and its number, never on the count:
when the count changes (a reload, ``pyinit scale``) the other instances compare
equal, so only the difference starts or stops. Pure: no YAML, no I/O.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace

from pyinit.config.model import Config, Problem, ServiceConfig

# A scaled service may not be scaled past this, nor a config hold more services
# once every instance is counted (config/load.py's limit for declared ones).
MAX_SCALE = 10_000
MAX_INSTANCES = 10_000
_INSTANCE = re.compile(r"(.+)\.([0-9]+)\Z")


def instance_name(name: str, replica: int) -> str:
    return f"{name}.{replica}"


def split_instance(name: str) -> tuple[str, int] | None:
    """``web.2`` -> (web, 2); None for a name that cannot be an instance's."""
    match = _INSTANCE.match(name)
    return None if match is None else (match[1], int(match[2]))


def instance_log_path(path: str, replica: int) -> str:
    """Instance ``replica``'s log file: the number goes before the extension
    (``web.log`` -> ``web.2.log``), or last when there is none; rotation then
    appends its own numbers (``web.2.log.1``)."""
    head, tail = posixpath.split(path)
    stem, dot, ext = tail.rpartition(".")
    if not stem:
        return f"{path}.{replica}"
    return posixpath.join(head, f"{stem}.{replica}{dot}{ext}")


def instance(declared: ServiceConfig, replica: int) -> ServiceConfig:
    environment = dict(declared.environment)
    environment["PYINIT_SERVICE"] = declared.name
    environment["PYINIT_REPLICA"] = str(replica)
    log_file = declared.log_file
    if log_file is not None:
        log_file = replace(log_file, path=instance_log_path(log_file.path, replica))
    return replace(
        declared,
        name=instance_name(declared.name, replica),
        environment=environment,
        log_file=log_file,
        scale=None,
        replica_of=declared.name,
        replica=replica,
    )


def expand(
    declared: Mapping[str, ServiceConfig],
) -> tuple[dict[str, ServiceConfig], dict[str, ServiceConfig]]:
    """Declared services (file order) -> (services with each scaled one as its
    instances, the scaled declarations)."""
    services: dict[str, ServiceConfig] = {}
    scaled: dict[str, ServiceConfig] = {}
    for name, cfg in declared.items():
        if cfg.scale is None:
            services[name] = cfg
            continue
        scaled[name] = cfg
        for i in range(1, cfg.scale + 1):
            services[instance_name(name, i)] = instance(cfg, i)
    return services, scaled


def name_problems(
    path: str, declared: Mapping[str, ServiceConfig], services_line: int | None
) -> list[Problem]:
    """A declared name that an instance of a scaled service has, or could have
    once scaled up (``web.2`` beside a scaled ``web``); too many instances (said
    at ``services_line``, the ``services`` key's, as the limit on declared ones)."""
    problems: list[Problem] = []
    for name, cfg in declared.items():
        parts = split_instance(name)
        owner = declared.get(parts[0]) if parts is not None else None
        if owner is not None and owner.scale is not None:
            problems.append(
                Problem(
                    path,
                    cfg.line,
                    f"services.{name}",
                    f"this name belongs to the instances of {owner.name!r} "
                    f"(scale: {owner.scale} runs {_range(owner.name, owner.scale)}); "
                    "rename the service",
                )
            )
    total = sum(c.scale if c.scale is not None else 1 for c in declared.values())
    if total > MAX_INSTANCES:
        problems.append(
            Problem(
                path,
                services_line,
                "services",
                f"{total} services once scaled; the limit is {MAX_INSTANCES}",
            )
        )
    return problems


def _range(name: str, count: int) -> str:
    if count == 0:
        return "no instance"
    if count == 1:
        return instance_name(name, 1)
    return f"{instance_name(name, 1)} … {instance_name(name, count)}"


def rescale(config: Config, name: str, count: int) -> Config:
    """``config`` with scaled service ``name`` at ``count`` instances: the ones it
    keeps are the same objects, new ones go after them (or where the declaration
    sits, when there were none). ValueError when it cannot be scaled so."""
    declared = config.scaled.get(name)
    if declared is None:
        raise ValueError(_not_scaled(config, name))
    if not 0 <= count <= MAX_SCALE:
        raise ValueError(f"expected a count from 0 to {MAX_SCALE}; got {count}")
    others = len(config.services) - len(config.members(name))
    if others + count > MAX_INSTANCES:
        raise ValueError(f"{others + count} services once scaled; the limit is {MAX_INSTANCES}")
    declared = replace(declared, scale=count)
    kept = {n: c for n, c in config.services.items() if c.replica_of == name and c.replica <= count}
    group = {
        instance_name(name, i): kept.get(instance_name(name, i)) or instance(declared, i)
        for i in range(1, count + 1)
    }
    services: dict[str, ServiceConfig] = {}
    for n, cfg in config.services.items():
        if cfg.replica_of == name:
            services.update(group)  # where the instances were (once)
            group = {}
        elif group and cfg.line > declared.line:
            services.update(group)  # none before: where the declaration sits
            group = {}
            services[n] = cfg
        else:
            services[n] = cfg
    services.update(group)
    scaled = {n: (declared if n == name else c) for n, c in config.scaled.items()}
    return replace(config, services=services, scaled=scaled)


def _not_scaled(config: Config, name: str) -> str:
    if name in config.services:
        owner = config.services[name].replica_of
        if owner is not None:
            return f"{name} is one instance of {owner}; scale {owner}"
        return f"{name} is not scaled; give it 'scale: 1' in the file to scale it at run time"
    return f"no service named {name!r}"
