"""The entry points: a services file (or its text) -> a Config, or ConfigError with
every problem at once, sorted by line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

import yaml

from pyinit.addresses import parse_address
from pyinit.config.dependencies import check_dependencies
from pyinit.config.dotenv import with_dotenv
from pyinit.config.merge import compose_all, split
from pyinit.config.model import Config, ConfigError, Problem, ServiceConfig, Settings
from pyinit.config.nodes import Reader, is_null
from pyinit.config.replicas import expand, name_problems
from pyinit.config.services import read_service
from pyinit.config.yamltree import line
from pyinit.safefile import CONFIG_CAP, UnsafeFile, read_bytes

TOP_KEYS = ("services", "settings")
SETTINGS_KEYS = ("shutdown_timeout", "log_format", "log_timestamps", "http")
# Far beyond any real file: a generated or hostile one is a problem, not a stall.
MAX_SERVICES = 10_000


def load_config_text(
    text: str,
    path: str = "services.yaml",
    environ: Mapping[str, str] | None = None,
    ids: tuple[int, int] | None = None,
) -> Config:
    """Parse and validate ``text`` as if read from ``path`` (used in messages and as
    the base for relative ``env_file`` paths). ``ids``: the (euid, egid) pyinit runs
    as, default its own; `user:` needs 0. Raises ConfigError with every problem,
    sorted by line."""
    try:
        return _load([(path, text)], os.environ if environ is None else environ, ids)
    except RecursionError:  # a last resort: MAX_DEPTH is meant to stop it first
        raise ConfigError([Problem(path, None, "", "nested too deeply to load")]) from None


def load_config(
    path: str, environ: Mapping[str, str] | None = None, ids: tuple[int, int] | None = None
) -> Config:
    """Read, parse and validate a services file; ConfigError for any user mistake,
    including an unreadable file. Several files (``path`` joined by merge.SEPARATOR)
    merge in order, as Compose merges ``-f`` files."""
    sources = [(one, _read(one)) for one in split(path)]
    try:
        return _load(sources, os.environ if environ is None else environ, ids, path)
    except RecursionError:
        raise ConfigError([Problem(path, None, "", "nested too deeply to load")]) from None


def _read(path: str) -> str:
    try:
        return read_bytes(path, CONFIG_CAP).decode("utf-8")
    except UnsafeFile as e:
        raise ConfigError([Problem(path, None, "", f"cannot read: {e}")]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            [Problem(path, None, "", f"not UTF-8 text (bad byte at offset {e.start})")]
        ) from None


def _load(
    sources: list[tuple[str, str]],
    environ: Mapping[str, str],
    ids: tuple[int, int] | None,
    joined: str | None = None,
) -> Config:
    path = sources[0][0]
    problems: list[Problem] = []
    tree = compose_all(sources, problems)
    if tree is None and not problems:
        problems.append(
            Problem(path, None, "", "the file is empty; expected a mapping with a 'services' key")
        )
    if tree is not None:
        loader, root = tree
        # Whom pyinit runs as (euid, egid): only root may set another `user:`.
        own_ids = (os.geteuid(), os.getegid()) if ids is None else ids
        environ = with_dotenv(Reader(path, environ, loader, problems), root, environ)
        config = _top(Reader(path, environ, loader, problems), root, own_ids)
        if config is not None and not problems:
            return config if joined is None else replace(config, path=joined)
    raise ConfigError(sorted(problems, key=lambda p: (p.file != path, p.file, p.line or 0)))


def _top(r: Reader, root: yaml.Node, ids: tuple[int, int]) -> Config | None:
    entries = r.mapping(root, "", "a mapping with a 'services' key")
    if entries is None:
        return None
    r.check_keys(entries, TOP_KEYS, "")
    settings = Settings()
    if "settings" in entries:
        settings = _settings(r, entries["settings"][1]) or settings
    if "services" not in entries:
        r.add(root, "services", "required key missing")
        return None
    declared = _services(r, *entries["services"], ids)
    if declared is None:
        return None
    r.problems += name_problems(r.path, declared, line(entries["services"][0]))
    if r.problems:
        return None
    services, scaled = expand(declared)
    return Config(path=r.path, services=services, settings=settings, scaled=scaled)


def _services(
    r: Reader, knode: yaml.Node, vnode: yaml.Node, ids: tuple[int, int]
) -> dict[str, ServiceConfig] | None:
    services = r.mapping(vnode, "services", "a mapping of service names to services")
    if services is None:
        return None
    if not services:
        if not isinstance(vnode, yaml.MappingNode) or not vnode.value:
            r.add(knode, "services", "expected at least one service")
        return None
    if len(services) > MAX_SERVICES:
        r.add(knode, "services", f"{len(services)} services; the limit is {MAX_SERVICES}")
        return None
    base_dir = os.path.dirname(r.path)
    drafts = [read_service(r, name, k, v, ids, base_dir) for name, (k, v) in services.items()]
    r.problems += check_dependencies(r.path, drafts)
    if r.problems:
        return None
    return {
        d.name: ServiceConfig(
            name=d.name,
            line=d.line,
            depends_on=tuple(dep for dep, _, _ in d.deps),
            **d.fields,  # type: ignore[arg-type]
        )
        for d in drafts
    }


def _settings(r: Reader, node: yaml.Node) -> Settings | None:
    entries = r.mapping(node, "settings")
    if entries is None:
        return None
    r.check_keys(entries, SETTINGS_KEYS, "settings")
    fields: dict[str, object] = {}
    if "shutdown_timeout" in entries:
        fields["shutdown_timeout"] = r.duration(
            entries["shutdown_timeout"][1], "settings.shutdown_timeout"
        )
    if "log_format" in entries:
        fields["log_format"] = r.choice(
            entries["log_format"][1], "settings.log_format", ("text", "json")
        )
    if "log_timestamps" in entries:
        fields["log_timestamps"] = r.boolean(
            entries["log_timestamps"][1], "settings.log_timestamps"
        )
    # "[host]:port"; null or "" (say ${PYINIT_HTTP:-}) is off
    if "http" in entries and not is_null(entries["http"][1]):
        vnode = entries["http"][1]
        address = r.text(vnode, "settings.http", "an address such as ':9000'")
        try:
            if address:
                parse_address(address)
                fields["http"] = address
        except ValueError as exc:
            r.add(vnode, "settings.http", str(exc))
            address = None
        if address is None:
            fields["http"] = None  # a problem was reported
    if any(v is None for v in fields.values()):
        return None
    return Settings(**fields)  # type: ignore[arg-type]
