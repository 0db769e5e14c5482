"""Fuzzing the config loader: whatever the text, it either loads a sound Config or
raises ConfigError whose every problem says where and what; nothing else escapes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from pyinit.config import Config, ConfigError, ServiceType, load_config, load_config_text
from pyinit.config import extras as config_extras
from pyinit.config.load import SETTINGS_KEYS, TOP_KEYS
from pyinit.config.probes import HEALTHCHECK_KEYS, READY_KEYS
from pyinit.config.replicas import MAX_INSTANCES, MAX_SCALE, split_instance
from pyinit.config.services import BACKOFF_KEYS, SERVICE_KEYS, START_LIMIT_KEYS

ROOT = Path(__file__).resolve().parents[2]
# A directory that does not exist: relative env_file paths resolve to nothing.
PATH = "/nonexistent-pyinit-fuzz/services.yaml"
ENV = {"PORT": "8080", "EMPTY": "", "DEMO_DIR": "/tmp/demo", "NAME": "web"}

SEEDS = [
    (ROOT / "services.example.yaml").read_text(),
    "services:\n  a:\n    command: [true]\n",
    "services:\n  a: {command: sleep 1, restart: always}\n  b:\n    command: x\n"
    "    depends_on: [a]\n    stop_signal: INT\n",
    "settings: {shutdown_timeout: 5s, log_format: json}\n"
    "services:\n"
    "  db:\n    command: [db]\n    healthcheck: {test: [CMD, ok], interval: 1s, retries: 2}\n"
    "    ready: {tcp: 5432, timeout: 10s}\n"
    "  migrate:\n    type: oneshot\n    command: migrate\n    restart: on-failure\n"
    "    depends_on: {db: {condition: service_healthy}}\n"
    "  app:\n    command: app --port ${PORT:-80}\n"
    "    depends_on:\n      migrate: {condition: service_completed_successfully}\n"
    "      db: {condition: service_ready}\n"
    "    ready: {http: 'http://127.0.0.1:80/health', expect_status: 204}\n"
    "    backoff: {initial: 1s, max: 1m, multiplier: 3, jitter: 0.5, reset_after: 1m}\n"
    "    start_limit: {burst: 3, interval: 30s}\n"
    "    environment: [A=1, B, PORT]\n    user: '1000:1000'\n    logging: inherit\n"
    "    critical: true\n    working_dir: /srv\n",
    "x-base: &base\n  restart: always\n  stop_grace_period: 2s\n"
    "services:\n  a:\n    <<: *base\n    command: a\n  b:\n    <<: *base\n    command: b\n"
    "    ready: notify\n",
    # Scheduled jobs, file watching, log files (issue 15).
    "services:\n"
    "  backup:\n    type: oneshot\n    command: backup\n    schedule: '*/5 * * * *'\n"
    "    concurrency: replace\n    critical: true\n"
    "  tick:\n    type: oneshot\n    command: tick\n    schedule: '@every 30s'\n"
    "    depends_on: [web]\n"
    "  web:\n    command: web\n"
    "    develop:\n      watch:\n"
    "        - {path: ./src, action: restart, ignore: ['*.pyc', .git/]}\n"
    "    logging:\n      driver: file\n"
    "      options: {path: /var/log/app/web.log, max-size: 10m, max-file: 3, stdout: false}\n",
    # Replicas: two spellings of a count, a dependant of a scaled service, scale 0.
    "services:\n"
    "  web:\n    command: sh -c 'exec web --id $$PYINIT_REPLICA'\n    scale: 3\n"
    "    logging:\n      driver: file\n      options: {path: /var/log/web.log}\n"
    "  worker:\n    command: work\n    deploy: {replicas: 2}\n    depends_on: [web]\n"
    "  idle:\n    command: idle\n    scale: 0\n"
    "  api:\n    command: api\n    depends_on: {web: {condition: service_started}, idle: {}}\n",
]

KEYS = sorted(
    {
        *TOP_KEYS,
        *SETTINGS_KEYS,
        *SERVICE_KEYS,
        *BACKOFF_KEYS,
        *START_LIMIT_KEYS,
        *HEALTHCHECK_KEYS,
        *READY_KEYS,
        *config_extras._DEVELOP_KEYS,
        *config_extras._WATCH_KEYS,
        *config_extras._LOGGING_KEYS,
        *config_extras._FILE_OPTIONS,
        "condition",
        "replicas",
        "resources",
        "restart_policy",
        "path",
        "required",
        "version",
        "x-extra",
        "comand",
        "<<",
        "a",
        "b",
    }
)
PLAUSIBLE = [
    "10s", "1m30s", "500ms", "0", "-1", "1e400", ".inf", "no", "always", "on-failure",
    "unless-stopped", "oneshot", "longrun", "SIGTERM", "TERM", "RTMIN+3", "99", "capture",
    "inherit", "json", "text", "service_started", "service_ready", "service_healthy",
    "service_completed_successfully", "notify", "CMD", "CMD-SHELL", "NONE", "6379",
    "localhost:80", "[::1]:6379", "::1:80", "http://127.0.0.1:8000/x", "https://x/",
    "http://h:0/", "http://h:99999/", "root", "1000:1000", "$1", "${PORT}", "${X:?gone}",
    "${EMPTY:-d}", "${", "$$", "${A:-${B:-c}}", "(", "a.*b", "", " ", ":9000", "[::]:0",
    "a", "b", "db", "web",
    "@every 1s", "@every 0s", "@every", "*/5 * * * *", "@daily", "@hourly", "61 * * * *",
    "0 0 30 2 *", "* * * *", "forbid", "replace", "allow", "restart", "sync", "rebuild", "file",
    "json-file", "10m", "10", "1k", "0k", "/var/log/x.log", "rel/x.log", "/var/log/", "*.pyc",
    ".git/", "./src", "**/x", "web.2", "a.1", "$PYINIT_REPLICA", "$${PYINIT_SERVICE}",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(300, 420).map(lambda e: -(10**e) if e % 2 else 10**e),  # past float
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(PLAUSIBLE),
    st.integers(300, 5000).map(lambda n: "9" * n),  # quoted: a string past float, int()
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=20,
)
service_names = st.one_of(
    st.sampled_from(["a", "b", "db", "web", "bad name", "-x", "web.2", "a.1"]), st.text()
)
services = st.dictionaries(
    service_names,
    st.one_of(
        st.dictionaries(st.sampled_from(SERVICE_KEYS), values, max_size=6).map(
            lambda d: {"command": "true", **d}
        ),
        values,
    ),
    max_size=4,
)
documents = st.one_of(
    values,
    st.fixed_dictionaries({"services": services}, optional={"settings": values}),
)


# Services built around the keys of issue 15, so that deep paths are reached often.
_small = st.one_of(scalars, st.lists(scalars, max_size=3))
_watch_entries = st.lists(
    st.dictionaries(st.sampled_from([*config_extras._WATCH_KEYS, "target"]), _small, max_size=4),
    max_size=3,
)
_logging = st.one_of(
    scalars,
    st.fixed_dictionaries(
        {"driver": st.sampled_from(["file", "json-file", "", "syslog"])},
        optional={
            "options": st.dictionaries(
                st.sampled_from([*config_extras._FILE_OPTIONS, "compress"]), scalars, max_size=5
            )
        },
    ),
)
feature_services = st.dictionaries(
    st.sampled_from(["a", "b", "db", "web"]),
    st.fixed_dictionaries(
        {"command": st.just("true")},
        optional={
            "type": st.sampled_from(["oneshot", "longrun"]),
            "schedule": scalars,
            "concurrency": scalars,
            "critical": st.booleans(),
            "develop": st.one_of(values, st.fixed_dictionaries({"watch": _watch_entries})),
            "logging": _logging,
            "depends_on": st.lists(st.sampled_from(["a", "b", "db", "web"]), max_size=2),
        },
    ),
    min_size=1,
    max_size=4,
)


# Services built around replicas: counts valid and not, both spellings (and both
# at once), Compose's other deploy keys, names an instance has or may have. Half
# are plain enough to load, so that what follows the key checks is reached too
# (instances, dependants of a group, the limit on services once scaled).
_NAMES = ["a", "b", "web", "web.2", "web.7", "a.1"]
# Mostly small; now and then one at the limit, alone or beside others.
_fine_counts = st.sampled_from([0, 1, 2, 3] * 4 + [5001, 9999, 10_000])
_counts = st.one_of(_fine_counts, st.sampled_from([-1, 10_001, True, "2", 2.5]), scalars)
_deploy = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "replicas": _counts,
            "resources": values,
            "restart_policy": values,
            "mode": scalars,
            "replica": scalars,
        },
    ),
)
_plain_service = st.one_of(
    st.fixed_dictionaries({"command": st.just("true")}),
    st.fixed_dictionaries({"command": st.just("true"), "scale": _fine_counts}),
    st.fixed_dictionaries(
        {"command": st.just("true"), "deploy": st.fixed_dictionaries({"replicas": _fine_counts})}
    ),
)
_odd_service = st.fixed_dictionaries(
    {"command": st.sampled_from(["true", "run $PYINIT_REPLICA", "run $$PYINIT_SERVICE"])},
    optional={
        "type": st.sampled_from(["oneshot", "longrun"]),
        "scale": _counts,
        "deploy": _deploy,
        "schedule": st.sampled_from(["@every 1m", "@daily"]),
        "logging": _logging,
    },
)


@st.composite
def replica_services(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=4, unique=True))
    services: dict[str, Any] = {}
    for i, name in enumerate(names):
        service = draw(st.one_of(_plain_service, _plain_service, _odd_service))
        # mostly on services declared before (no cycle); now and then on any name
        # (itself, a later one, one not declared, an instance: mistakes among many)
        others = names[:i] if draw(st.integers(0, 4)) else _NAMES
        depends = draw(st.lists(st.sampled_from(others), max_size=2, unique=True)) if others else []
        services[name] = {**service, "depends_on": depends} if depends else service
    return services


def _yaml_node(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def _acyclic(config: Config) -> bool:
    state: dict[str, int] = {}

    def visit(name: str) -> bool:
        if state.get(name) == 1:
            return False
        if state.get(name) == 2:
            return True
        state[name] = 1
        deps = config.services[name].depends_on
        ok = all(visit(m) for d in deps for m in config.members(d.name))
        state[name] = 2
        return ok

    return all(visit(name) for name in config.services)


def check(text: str, path: str = PATH) -> Config | None:
    """The property: a sound Config, or a ConfigError whose problems are all usable."""
    try:
        config = load_config_text(text, path, ENV)
    except ConfigError as exc:
        assert exc.problems
        parsed = _yaml_node(text) is not None
        for problem in exc.problems:
            assert problem.message, problem
            assert str(problem).startswith(problem.file), problem
            assert problem.file == path or problem.key, problem  # env files: key says where
            if parsed:
                assert isinstance(problem.line, int) and problem.line >= 1, problem
        return None
    assert config.services or config.scaled
    for name, svc in config.services.items():
        assert svc.name == name and svc.command
        for dep in svc.depends_on:
            assert dep.name in config.services or dep.name in config.scaled
            assert dep.name not in (name, svc.replica_of)
    _check_replicas(config)
    assert _acyclic(config)
    for svc in config.services.values():
        if svc.schedule is not None:
            assert svc.type is ServiceType.ONESHOT
        if svc.watch:
            assert svc.type is ServiceType.LONGRUN
        if svc.log_file is not None:
            assert os.path.isabs(svc.log_file.path) and svc.log_file.max_files >= 1
        for dep in svc.depends_on:
            target = config.scaled.get(dep.name) or config.services[dep.name]
            assert target.schedule is None
    tiers = config.start_tiers()
    flat = [name for tier in tiers for name in tier]
    assert sorted(flat) == sorted(config.services) and len(flat) == len(set(flat))
    tier_of = {name: i for i, tier in enumerate(tiers) for name in tier}
    for name, svc in config.services.items():
        members = [m for d in svc.depends_on for m in config.members(d.name)]
        assert all(tier_of[m] < tier_of[name] for m in members)
    return config


def _check_replicas(config: Config) -> None:
    """Each scaled longrun is exactly its instances NAME.1..N, each told who it is;
    no other service has a name an instance has or may have; within the limit."""
    assert len(config.services) <= MAX_INSTANCES
    for name, declared in config.scaled.items():
        assert declared.scale is not None and 0 <= declared.scale <= MAX_SCALE
        assert declared.type is ServiceType.LONGRUN and name not in config.services
        members = config.members(name)
        assert [n for n, s in config.services.items() if s.replica_of == name] == list(members)
        for i, member in enumerate(members, 1):
            svc = config.services[member]
            assert (svc.replica, svc.scale, svc.command) == (i, None, declared.command)
            assert svc.environment["PYINIT_SERVICE"] == name
            assert svc.environment["PYINIT_REPLICA"] == str(i)
            if declared.log_file is not None:
                assert svc.log_file is not None and svc.log_file.path != declared.log_file.path
    for name, svc in config.services.items():
        if svc.replica_of is None:
            assert svc.scale is None and svc.replica == 0
            parts = split_instance(name)
            assert parts is None or parts[0] not in config.scaled, name


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        assert check(seed) is not None, seed


@given(documents)
def test_random_documents(doc: Any) -> None:
    check(yaml.safe_dump(doc, allow_unicode=True))


@given(feature_services)
def test_schedule_watch_and_log_file_keys(services: Any) -> None:
    """schedule, concurrency, develop.watch and logging's file driver, in any shape."""
    check(yaml.safe_dump({"services": services}, allow_unicode=True))


@given(replica_services())
def test_scale_and_deploy_keys(services: Any) -> None:
    """scale and deploy.replicas in any shape, names like web.2, dependants."""
    check(yaml.safe_dump({"services": services}, allow_unicode=True))


@given(st.text())
def test_random_text(text: str) -> None:
    check(text)


# -- mutations of valid documents -----------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def structural_mutants(draw: st.DrawFn) -> str:
    doc = yaml.safe_load(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["delete", "replace", "insert"]))
        if not path:
            doc = draw(values) if how == "replace" else doc
            continue
        parent, last = _get(doc, path[:-1]), path[-1]
        if how == "delete":
            del parent[last]
        elif how == "replace":
            parent[last] = draw(values)
        else:
            target = _get(doc, path)
            if isinstance(target, dict):
                target[draw(keys)] = draw(values)
            elif isinstance(target, list):
                target.insert(draw(st.integers(0, len(target))), draw(values))
            else:
                parent[last] = draw(values)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@given(structural_mutants())
def test_mutated_documents(text: str) -> None:
    check(text)


SPECIAL = [
    "\x00", "\t", "\r", "\n", "\ufeff", "\x85", "\u2028", "\ud800", "\x7f", "\x1b",
    ": ", "- ", "&a ", "*a", "*nope", "<<: *a\n", "!!python/object:os.system ", "!!binary ",
    "!!int ", "!!float ", "!!timestamp ", "%YAML 1.1\n", "---\n", "...\n", "{", "}", "[", "]",
    "#", "'", '"', "|", ">", "?", "@", "`", "${", "$", "\\", ",", "é", "😀", "0x1F", "~",
    "1.0e+400", "-.inf", ".nan", "²",
]  # fmt: skip
# Numbers past a float (400 digits) and past int()'s limit (4300 digits).
HUGE = st.sampled_from([400, 5000]).map(lambda n: "9" * n)


@st.composite
def textual_mutants(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        lines = text.splitlines(keepends=True)
        how = draw(st.sampled_from(["truncate", "insert", "duplicate", "drop", "indent"]))
        at = draw(st.integers(0, len(text)))
        if how == "truncate":
            text = text[:at]
        elif how == "insert":
            piece = draw(st.one_of(st.sampled_from(SPECIAL), st.text(max_size=4), HUGE))
            text = text[:at] + piece + text[at:]
        elif lines:
            i = draw(st.integers(0, len(lines) - 1))
            if how == "duplicate":  # duplicate keys, usually
                lines.insert(i, lines[i])
            elif how == "drop":
                del lines[i]
            else:
                lines[i] = draw(st.sampled_from([" ", "  ", "\t", ""])) + lines[i].lstrip(" ")
            text = "".join(lines)
    return text


@given(textual_mutants())
def test_textually_mutated_documents(text: str) -> None:
    check(text)


@st.composite
def byte_mutants(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(SEEDS)).encode()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
        else:
            data = data[:at]
    return data


@given(byte_mutants())
def test_byte_mutated_files(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pyinit-fuzz-") as tmp:
        path = os.path.join(tmp, "services.yaml")
        with open(path, "wb") as f:
            f.write(data)
        try:
            load_config(path, ENV)
        except ConfigError as exc:
            for problem in exc.problems:
                assert problem.message and str(problem).startswith(problem.file), problem
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return
            check(text, path)


def test_regressions() -> None:
    """Found by fuzzing: numbers too large for a float or for int(), and tags PyYAML
    cannot construct, escaped as OverflowError, ValueError or AttributeError instead
    of a problem report."""
    huge, huger = "9" * 400, "9" * 5000
    for service in (
        f"backoff: {{multiplier: {huge}}}",
        f"stop_grace_period: {huge}",
        f"stop_grace_period: {huger}",
        f"stop_grace_period: {huge}s",
        f"ready: {{tcp: {huger}}}",
        f"ready: {{tcp: 'h:{huger}'}}",
        f"stop_signal: {huger}",
        f"stop_signal: RTMIN+{huger}",
        "stop_signal: '²'",
        f"start_limit: {{burst: {huger}}}",
        f"healthcheck: {{test: [CMD, x], retries: {huger}}}",
        # An explicit tag PyYAML cannot construct raised AttributeError/ValueError.
        "stop_grace_period: !!timestamp x",
        "critical: !!int x",
    ):
        text = f"services:\n  a:\n    command: x\n    {service}\n"
        try:
            load_config_text(text, PATH, ENV)
        except ConfigError as exc:
            (problem,) = exc.problems
            assert problem.line == 4 and problem.key.startswith("services.a."), problem
            assert "int()" not in problem.message and "4300" not in problem.message, problem
        else:
            raise AssertionError(f"{service!r} loaded")
