"""services.yaml -> frozen dataclasses, with every user mistake reported at once.

Only supervisor mode imports this module (it imports PyYAML, ~30 ms).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import resource
import shlex
import signal
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Literal, TypeVar

import yaml

from pyinit.config_ext import (
    LogFileOptions,
    check_service,
    read_concurrency,
    read_develop,
    read_logging,
    read_schedule,
    scheduled_dependency,
)
from pyinit.durations import parse_duration
from pyinit.safefile import CONFIG_CAP, ENV_FILE_CAP, UnsafeFile, read_bytes
from pyinit.schedule import Schedule
from pyinit.signals import parse_signal
from pyinit.watch import WatchSpec


class ServiceType(Enum):
    LONGRUN = "longrun"
    ONESHOT = "oneshot"


class RestartPolicy(Enum):
    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"


class Condition(Enum):
    STARTED = "service_started"
    READY = "service_ready"
    HEALTHY = "service_healthy"
    COMPLETED_SUCCESSFULLY = "service_completed_successfully"


@dataclass(frozen=True)
class Dependency:
    name: str
    condition: Condition = Condition.STARTED


@dataclass(frozen=True)
class Backoff:
    """Delay before restart number n (1-based): initial * multiplier**(n-1), capped
    at ``max``, then spread by +-``jitter`` (a fraction). The count resets once the
    service stayed up for ``reset_after`` seconds."""

    initial: float = 0.5
    multiplier: float = 2.0
    max: float = 30.0
    jitter: float = 0.1
    reset_after: float = 10.0


@dataclass(frozen=True)
class StartLimit:
    """More than ``burst`` starts within ``interval`` seconds: the service is failed."""

    burst: int = 5
    interval: float = 60.0


@dataclass(frozen=True)
class Probe:
    """One check: run a command, connect to a TCP port, or GET a URL.

    exec: ``command`` (a ``["CMD-SHELL", s]`` test becomes ``("/bin/sh", "-c", s)``);
    tcp: ``host``:``port``; http: ``url`` (http:// only), success on 2xx/3xx or on
    exactly ``expect_status`` when set.
    """

    kind: Literal["exec", "tcp", "http"]
    command: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    url: str = ""
    expect_status: int | None = None

    def describe(self) -> str:
        if self.kind == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
            return f"tcp {host}:{self.port}"
        if self.kind == "http":
            scheme, sep, rest = self.url.partition("://")
            authority, slash, path = rest.partition("/")
            # user:password@ never reaches a log line, a reason or /status
            return f"http {scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"
        return "exec " + " ".join(self.command)


@dataclass(frozen=True)
class HealthCheck:
    """Compose's healthcheck: liveness. ``retries`` consecutive failures after
    ``start_period`` make the service unhealthy; failures inside it do not count,
    and probes run every ``start_interval`` there until the first success."""

    probe: Probe
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float = 5.0


@dataclass(frozen=True)
class Readiness:
    """When the service counts as ready. ``kind``:
    notify: ``READY=1`` on $NOTIFY_SOCKET (sd_notify); ``watchdog`` > 0 also expects
    ``WATCHDOG=1`` at least that often once ready, or the service is restarted;
    log_line: a line of its output matches the regex ``pattern``;
    fd: it writes a newline to file descriptor ``fd`` (s6's notification-fd);
    probe: ``probe`` polled every ``interval`` until it first passes.
    Not ready within ``timeout`` (0: no limit) fails the start."""

    kind: Literal["notify", "log_line", "fd", "probe"]
    pattern: str = ""
    fd: int = 0
    probe: Probe | None = None
    interval: float = 1.0
    probe_timeout: float = 1.0
    timeout: float = 60.0
    watchdog: float = 0.0


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    command: tuple[str, ...]
    type: ServiceType = ServiceType.LONGRUN
    depends_on: tuple[Dependency, ...] = ()
    # env_file entries first, then ``environment``; applied over pyinit's own env.
    # Never in a repr: the values may be secrets (pyinit prints no environment value).
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    working_dir: str | None = None
    user: str | None = None  # "name", "uid", "name:group" or "uid:gid"; resolved at start
    # Hardening, applied in the child before exec: PR_SET_NO_NEW_PRIVS, the file
    # mode creation mask, and resource limits as (name, soft, hard), -1 = unlimited.
    no_new_privs: bool = False
    umask: int | None = None
    ulimits: tuple[tuple[str, int, int], ...] = ()
    restart: RestartPolicy = RestartPolicy.NO
    backoff: Backoff = Backoff()
    start_limit: StartLimit = StartLimit()
    stop_signal: int = signal.SIGTERM
    stop_grace_period: float = 10.0
    critical: bool = False
    logging: Literal["capture", "inherit"] = "capture"
    healthcheck: HealthCheck | None = None
    ready: Readiness | None = None
    # A scheduled job (a oneshot run at each due time; pyinit/jobs.py) and what a run
    # due while one is going does; develop.watch paths (restart on change); a log file.
    schedule: Schedule | None = None
    concurrency: Literal["forbid", "replace"] = "forbid"
    watch: tuple[WatchSpec, ...] = ()
    log_file: LogFileOptions | None = None
    line: int = 0  # where the service is declared, for messages


@dataclass(frozen=True)
class Settings:
    shutdown_timeout: float = 30.0
    log_format: Literal["text", "json"] = "text"
    http: str | None = None  # "[host]:port" for /healthz /readyz /metrics /status; off if None


@dataclass(frozen=True)
class Config:
    path: str
    services: Mapping[str, ServiceConfig]  # in file order
    settings: Settings = Settings()

    def start_tiers(self) -> list[list[str]]:
        """Services grouped by dependency depth: tier 0 has no dependencies, tier n
        depends only on earlier tiers. Assumes a validated (acyclic) config."""
        depth: dict[str, int] = {}
        # Iterative: a chain of thousands of services must not hit the recursion limit.
        for root in self.services:
            stack = [root]
            while stack:
                name = stack[-1]
                if name in depth:
                    stack.pop()
                    continue
                todo = [d.name for d in self.services[name].depends_on if d.name not in depth]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                deps = self.services[name].depends_on
                depth[name] = 1 + max((depth[d.name] for d in deps), default=-1)
        tiers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for name in self.services:
            tiers[depth[name]].append(name)
        return tiers


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str  # dotted key path, e.g. services.web.restart
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """One or more user mistakes in a config file, each with file, line and key path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --------------------------------------------------------------------------------------
# Loading: YAML nodes (they keep line numbers) -> the types above, all problems at once.
# --------------------------------------------------------------------------------------

# The interpolation grammar (Compose's): $$ | $NAME | ${NAME} | ${NAME<op>arg}, with
# op one of :- - :? ? :+ +. Anything else after a '$' is an error, not literal text,
# so a shell snippet such as `echo $1` fails loudly instead of being half-expanded.
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A malformed ``$`` expression, or a required variable that is not set.

    ``quotes_text``: the message shows part of the string, which must not be printed
    for an environment value (it may be a secret)."""

    def __init__(self, message: str, quotes_text: bool = True) -> None:
        super().__init__(message)
        self.quotes_text = quotes_text


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?message}``, ``${VAR?message}``, ``${VAR:+alt}``, ``${VAR+alt}`` and
    ``$$``. An unset ``$VAR``/``${VAR}`` expands to the empty string, as in Compose."""
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        after = text[dollar + 1 : dollar + 2]
        if after == "$":
            out.append("$")
            i = dollar + 2
        elif after == "{":
            end = _closing_brace(text, dollar + 2)
            if end < 0:
                raise InterpolationError(f"unclosed '${{' in {text!r}")
            out.append(_expand(text[dollar + 2 : end], environ))
            i = end + 1
        else:
            match = _VAR_NAME.match(text, dollar + 1)
            if match is None:
                raise InterpolationError(
                    f"invalid interpolation at {text[dollar : dollar + 8]!r}: '$' must be "
                    "followed by a name or '{'; write '$$' for a literal '$'"
                )
            out.append(environ.get(match.group(), ""))
            i = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the '}' closing a '${' whose body starts at ``start``; nested
    ``${...}`` in defaults are allowed, so braces are counted."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _expand(body: str, environ: Mapping[str, str]) -> str:
    match = _VAR_NAME.match(body)
    if match is None:
        raise InterpolationError(
            f"invalid interpolation '${{{body}}}'; expected ${{NAME}}, ${{NAME:-default}} "
            "or ${NAME:?message}"
        )
    name = match.group()
    rest = body[match.end() :]
    value = environ.get(name)
    if not rest:
        return value or ""
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(
            f"invalid interpolation '${{{body}}}'; after the name expected '}}', ':-', '-', "
            "':?', '?', ':+' or '+'"
        )
    arg = rest[len(op) :]
    # ':' makes an empty value count as unset, as in the shell.
    is_set = bool(value) if op.startswith(":") else value is not None
    if op in (":-", "-"):
        return value if is_set and value is not None else interpolate(arg, environ)
    if op in (":+", "+"):
        return interpolate(arg, environ) if is_set else ""
    if is_set and value is not None:
        return value
    state = "is empty" if value == "" else "is not set"
    message = interpolate(arg, environ).strip()
    raise InterpolationError(
        f"required variable {name} {state}" + (f": {message}" if message else ""),
        quotes_text=False,
    )


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
# Environment names: POSIX allows almost anything, but Compose-style names with '.'
# and '-' (Java properties) are the widest set worth accepting without surprises.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_USER_PART = r"(?:\d+|[A-Za-z_][A-Za-z0-9_.-]*\$?)"
_USER = re.compile(rf"{_USER_PART}(?::{_USER_PART})?\Z")

_TOP_KEYS = ("services", "settings")
_SETTINGS_KEYS = ("shutdown_timeout", "log_format", "http")
_SERVICE_KEYS = (
    "command",
    "type",
    "depends_on",
    "environment",
    "env_file",
    "working_dir",
    "user",
    "no_new_privs",
    "umask",
    "ulimits",
    "restart",
    "backoff",
    "start_limit",
    "stop_signal",
    "stop_grace_period",
    "critical",
    "logging",
    "healthcheck",
    "ready",
    "schedule",
    "concurrency",
    "develop",
)
_BACKOFF_KEYS = ("initial", "max", "multiplier", "jitter", "reset_after")
_START_LIMIT_KEYS = ("burst", "interval")
_PROBE_KEYS = ("tcp", "http", "exec")
_HEALTHCHECK_KEYS = (
    "test",
    *_PROBE_KEYS,
    "expect_status",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
)
_READY_SOURCES = ("notify", "log_line", "fd", *_PROBE_KEYS)
_READY_KEYS = (*_READY_SOURCES, "watchdog", "expect_status", "interval", "probe_timeout", "timeout")
_TCP_WHAT = "a port number or host:port"
_URL_WHAT = "a URL such as http://127.0.0.1:8000/health"
_DIGITS = re.compile(r"[0-9]+\Z")
_OCTAL_MODE = re.compile(r"[0-7]{1,4}\Z")
# Compose's ulimits names are the RLIMIT_* constants without the prefix, lower case.
_ULIMIT_NAMES = tuple(
    sorted(n[7:].lower() for n in dir(resource) if n.startswith("RLIMIT_") and n != "RLIMIT_OFILE")
)
_ULIMIT_WHAT = "a whole number >= 0, or unlimited"
_UNLIMITED = -1  # as Docker's --ulimit writes it
_LIMIT_MAX = 2**63 - 1  # what setrlimit takes from Python (a C long long)
_HOST = re.compile(r"[^\s/\[\]]*\Z")  # empty: the default, 127.0.0.1
# Limits far beyond any real file, so that a hostile or generated one is a problem
# line, not a RecursionError (PyYAML composes recursively) or a long stall.
MAX_DEPTH = 64  # nested lists/mappings
MAX_SERVICES = 10_000


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark | None, path: str) -> None:
        self.mark = mark
        self.path = path


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_DEPTH while composing,
    before PyYAML's recursion gets anywhere near Python's limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str] = []  # key path of the node being composed

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # ``index``: PyYAML passes an int (a list item), a key node (a mapping's
        # value) or None (the root, or a mapping key).
        if isinstance(index, yaml.ScalarNode):
            self._path.append(f".{index.value}")
        elif isinstance(index, int):
            self._path.append(f"[{index}]")
        else:  # the root, or a mapping key
            self._path.append("")
        try:
            if len(self._path) > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _TooDeep(mark, "".join(self._path).lstrip("."))
            node: yaml.Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._path.pop()


@dataclass
class _Scalar:
    value: object  # as YAML types it (after interpolation, for plain scalars)
    text: str  # as written (after interpolation)
    interpolated: bool


@dataclass
class _Draft:
    """What was understood of one service; turned into a ServiceConfig at the end."""

    name: str
    line: int
    fields: dict[str, object]
    deps: list[tuple[Dependency, str, int]]  # (dependency, key path, line)
    # healthcheck: "absent", "disabled" (test: [NONE] or disable: true), "invalid"
    # (already reported) or "set"; service_healthy dependants need "set".
    health: str = "absent"


def _code(character: object) -> int:
    """PyYAML's ReaderError holds the offending character as an int or a 1-char str."""
    return character if isinstance(character, int) else ord(str(character)[:1] or "\0")


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None and node.start_mark else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def user_switch_problem(user: str, euid: int, egid: int) -> str | None:
    """Why a process running as ``euid``:``egid`` cannot start a service as ``user``,
    or None: only root may switch to another uid or gid. A ``user`` naming pyinit's
    own uid (and its own gid, or none) switches nothing. Names are looked up in the
    passwd and group files; an unknown one cannot be pyinit's own."""
    if euid == 0:
        return None
    from pyinit.spawn import group_id, user_id

    who, _, group = user.partition(":")
    if user_id(who) != euid:
        return f"switching to another user needs root; pyinit runs as uid {euid}"
    if group and group_id(group) != egid:
        return f"switching to another group needs root; pyinit runs as uid {euid}, gid {egid}"
    return None


class _Loader:
    def __init__(
        self,
        text: str,
        path: str,
        environ: Mapping[str, str],
        ids: tuple[int, int] | None = None,
    ) -> None:
        self.source = text
        self.path = path
        self.environ = environ
        # Whom pyinit runs as (euid, egid): only root may set another `user:`.
        self.euid, self.egid = (os.geteuid(), os.getegid()) if ids is None else ids
        self.base_dir = os.path.dirname(path)
        self.problems: list[Problem] = []
        self.yaml: yaml.SafeLoader | None = None

    # -- reporting ------------------------------------------------------------------

    def add(self, node: yaml.Node | None, key: str, message: str) -> None:
        self.problems.append(Problem(self.path, _line(node), key, message))

    def found(self, node: yaml.Node, scalar: _Scalar | None = None) -> str:
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        if scalar is None:
            scalar = _Scalar(self.construct(node), node.value, False)
        value = scalar.value
        if value is None:
            return "nothing (null)"
        if isinstance(value, bool):
            return f"a boolean ({scalar.text})"
        if isinstance(value, int | float):
            return f"a number ({scalar.text})"
        if isinstance(value, str):
            return f"a string ({value!r})"
        return f"a {type(value).__name__} ({scalar.text!r})"

    def expected(self, node: yaml.Node, key: str, what: str, scalar: _Scalar | None = None) -> None:
        self.add(node, key, f"expected {what}; got {self.found(node, scalar)}")

    # -- YAML -----------------------------------------------------------------------

    def compose(self) -> yaml.Node | None:
        try:
            self.yaml = _DepthLimitedLoader(self.source)
            return self.yaml.get_single_node()
        except _TooDeep as e:
            line = e.mark.line + 1 if e.mark else None
            path = e.path if len(e.path) <= 60 else e.path[:57] + "..."
            self.problems.append(
                Problem(self.path, line, path, f"nested deeper than {MAX_DEPTH} levels")
            )
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            what = "; ".join(p for p in (e.context, e.problem) if p)
            where = f" (column {mark.column + 1})" if mark else ""
            line = mark.line + 1 if mark else None
            self.problems.append(Problem(self.path, line, "", f"YAML syntax error: {what}{where}"))
        except yaml.reader.ReaderError as e:
            line = self.source.count("\n", 0, e.position) + 1
            self.problems.append(
                Problem(
                    self.path,
                    line,
                    "",
                    f"YAML syntax error: {e.reason} (#x{_code(e.character):04x})",
                )
            )
        except yaml.YAMLError as e:
            self.problems.append(Problem(self.path, None, "", f"YAML syntax error: {e}"))
        return None

    def construct(self, node: yaml.Node) -> object:
        assert self.yaml is not None
        try:
            value: object = self.yaml.construct_object(node, deep=True)
        except Exception:  # `!!timestamp x`, `!!int x`, an int() of 4300+ digits...
            return node.value
        return value

    def prepare(self, root: yaml.Node) -> None:
        """Report duplicate keys, then apply ``<<`` merge keys (YAML anchors are how
        Compose files share settings). Aliased nodes are visited once. Iterative
        (aliases can nest deeper than the text does); a mapping is flattened after
        its values, so PyYAML's own recursion in flatten_mapping stays shallow."""
        seen: set[int] = set()
        stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
        while stack:
            node, key, values_done = stack.pop()
            if values_done:
                assert self.yaml is not None and isinstance(node, yaml.MappingNode)
                try:
                    self.yaml.flatten_mapping(node)
                except yaml.MarkedYAMLError as e:
                    self.add(node, key, f"bad merge key '<<': {e.problem}")
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                items = [(item, f"{key}[{i}]", False) for i, item in enumerate(node.value)]
                stack.extend(reversed(items))
            elif isinstance(node, yaml.MappingNode):
                first: dict[str, int | None] = {}
                values: list[tuple[yaml.Node, str, bool]] = []
                for knode, vnode in node.value:
                    name = str(knode.value) if isinstance(knode, yaml.ScalarNode) else "?"
                    if isinstance(knode, yaml.ScalarNode) and knode.tag != _MERGE_TAG:
                        if name in first:
                            self.add(
                                knode,
                                _join(key, name),
                                f"duplicate key (first at line {first[name]})",
                            )
                        else:
                            first[name] = _line(knode)
                    merge = knode.tag == _MERGE_TAG
                    values.append((vnode, key if merge else _join(key, name), False))
                stack.append((node, key, True))
                stack.extend(reversed(values))

    # -- typed readers (each returns None after reporting a problem) ---------------------

    def scalar(self, node: yaml.Node, key: str, secret: bool = False) -> _Scalar | None:
        """The node's value, interpolated. ``secret``: an environment value, never
        quoted in a problem."""
        if not isinstance(node, yaml.ScalarNode):
            return None
        text = str(node.value)
        if node.tag != _STR_TAG or "$" not in text:
            return _Scalar(self.construct(node), text, False)
        try:
            text = interpolate(text, self.environ)
        except InterpolationError as e:
            message = str(e)
            if secret and e.quotes_text:
                message = (
                    "invalid interpolation in the value (not shown: environment values may "
                    "be secrets); '$' must be followed by a name or '{', and '${' closed by "
                    "'}'; write '$$' for a literal '$'"
                )
            self.add(node, key, message)
            return None
        # A plain (unquoted) scalar is typed after interpolation as if the result had
        # been written there: `stop_grace_period: ${GRACE:-10}` is the number 10.
        assert self.yaml is not None
        tag = _STR_TAG
        if not node.style:
            tag = str(self.yaml.resolve(yaml.ScalarNode, text, (True, False)))  # type: ignore[no-untyped-call]
        typed = yaml.ScalarNode(tag, text, node.start_mark, node.end_mark, style=node.style)
        return _Scalar(self.construct(typed), text, True)

    def mapping(
        self, node: yaml.Node, key: str, what: str = "a mapping"
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """Key text -> (key node, value node); a null value reads as an empty mapping."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.expected(node, key, what)
            return None
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:  # merged entries come first: later ones win
            if not isinstance(knode, yaml.ScalarNode):
                self.add(knode, key, f"keys must be plain names; got {self.found(knode)}")
                continue
            entries[str(knode.value)] = (knode, vnode)
        return entries

    def check_keys(
        self, entries: Mapping[str, tuple[yaml.Node, yaml.Node]], allowed: tuple[str, ...], key: str
    ) -> bool:
        """Report unknown keys; True when there was one."""
        unknown = False
        for name, (knode, _) in entries.items():
            if name in allowed or name.startswith("x-"):  # x-*: Compose extension fields
                continue
            message = "unknown key"
            close = difflib.get_close_matches(name, allowed, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
            elif not key and name == "version":
                message += " (Compose's 'version' is not used by pyinit; remove it)"
            self.add(knode, _join(key, name), message)
            unknown = True
        return unknown

    def text(
        self, node: yaml.Node, key: str, what: str = "a string", secret: bool = False
    ) -> str | None:
        """Any scalar but null, as written: `user: 1000:50` stays "1000:50" rather than
        YAML 1.1's base-60 integer, and `ZIP: 01234` keeps its leading zero."""
        scalar = self.scalar(node, key, secret)
        if not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, what)
            return None
        if scalar is None:
            return None
        if scalar.value is None and not scalar.interpolated:
            self.expected(node, key, what, scalar)
            return None
        return scalar.text

    def choice(
        self, node: yaml.Node, key: str, options: tuple[str, ...], scalar: _Scalar | None = None
    ) -> str | None:
        if scalar is None:
            scalar = self.scalar(node, key)
        if scalar is None and isinstance(node, yaml.ScalarNode):
            return None
        if scalar is not None and isinstance(scalar.value, str) and scalar.value in options:
            return scalar.value
        got = repr(scalar.value) if scalar is not None and isinstance(scalar.value, str) else None
        self.add(
            node,
            key,
            f"expected one of {', '.join(options)}; got {got or self.found(node, scalar)}",
        )
        return None

    def boolean(self, node: yaml.Node, key: str) -> bool | None:
        scalar = self.scalar(node, key)
        if scalar is not None and isinstance(scalar.value, bool):
            return scalar.value
        if scalar is not None or not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, "true or false", scalar)
        return None

    def number(self, node: yaml.Node, key: str, what: str = "a number") -> float | None:
        scalar = self.scalar(node, key)
        value = scalar.value if scalar is not None else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an int too large for a float
                number = math.inf
            if math.isfinite(number):
                return number
            self.add(node, key, f"expected a finite number; got {scalar.text if scalar else value}")
            return None
        if scalar is not None or not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, what, scalar)
        return None

    def duration(self, node: yaml.Node, key: str) -> float | None:
        scalar = self.scalar(node, key)
        if scalar is None:
            if not isinstance(node, yaml.ScalarNode):
                self.expected(node, key, "a duration such as 10s, 1m30s or 500ms")
            return None
        try:
            return parse_duration(scalar.value)
        except ValueError as e:
            self.add(node, key, str(e))
            return None

    # -- the file -------------------------------------------------------------------

    def load(self) -> Config:
        root = self.compose()
        if root is None and not self.problems:
            self.add(None, "", "the file is empty; expected a mapping with a 'services' key")
        if root is not None:
            self.prepare(root)
            config = self.top(root)
            if config is not None and not self.problems:
                return config
        own = self.path
        raise ConfigError(sorted(self.problems, key=lambda p: (p.file != own, p.file, p.line or 0)))

    def top(self, root: yaml.Node) -> Config | None:
        entries = self.mapping(root, "", "a mapping with a 'services' key")
        if entries is None:
            return None
        self.check_keys(entries, _TOP_KEYS, "")
        settings = Settings()
        if "settings" in entries:
            settings = self.settings(entries["settings"][1]) or settings
        if "services" not in entries:
            self.add(root, "services", "required key missing")
            return None
        knode, vnode = entries["services"]
        services = self.mapping(vnode, "services", "a mapping of service names to services")
        if services is None:
            return None
        if not services:
            if not isinstance(vnode, yaml.MappingNode) or not vnode.value:
                self.add(knode, "services", "expected at least one service")
            return None
        if len(services) > MAX_SERVICES:
            self.add(knode, "services", f"{len(services)} services; the limit is {MAX_SERVICES}")
            return None
        drafts = [self.service(name, k, v) for name, (k, v) in services.items()]
        self.check_dependencies(drafts)
        if self.problems:
            return None
        built = {
            d.name: ServiceConfig(
                name=d.name,
                line=d.line,
                depends_on=tuple(dep for dep, _, _ in d.deps),
                **d.fields,  # type: ignore[arg-type]
            )
            for d in drafts
        }
        return Config(path=self.path, services=built, settings=settings)

    def settings(self, node: yaml.Node) -> Settings | None:
        entries = self.mapping(node, "settings")
        if entries is None:
            return None
        self.check_keys(entries, _SETTINGS_KEYS, "settings")
        fields: dict[str, object] = {}
        if "shutdown_timeout" in entries:
            fields["shutdown_timeout"] = self.duration(
                entries["shutdown_timeout"][1], "settings.shutdown_timeout"
            )
        if "log_format" in entries:
            fields["log_format"] = self.choice(
                entries["log_format"][1], "settings.log_format", ("text", "json")
            )
        if "http" in entries:  # "[host]:port"; null or "" (say ${PYINIT_HTTP:-}) is off
            from pyinit.httpd import parse_address

            vnode = entries["http"][1]
            if not (isinstance(vnode, yaml.ScalarNode) and vnode.tag == _NULL_TAG):
                address = self.text(vnode, "settings.http", "an address such as ':9000'")
                try:
                    if address:
                        parse_address(address)
                        fields["http"] = address
                except ValueError as exc:
                    self.add(vnode, "settings.http", str(exc))
                    address = None
                if address is None:
                    fields["http"] = None  # a problem was reported
        if any(v is None for v in fields.values()):
            return None
        return Settings(**fields)  # type: ignore[arg-type]

    # -- one service ----------------------------------------------------------------

    def service(self, name: str, knode: yaml.Node, vnode: yaml.Node) -> _Draft:
        key = f"services.{name}"
        draft = _Draft(name, _line(knode) or 0, {}, [])
        if not _SERVICE_NAME.match(name):
            self.add(
                knode,
                key,
                "invalid service name; use letters, digits, '_', '.' and '-', "
                "starting with a letter or digit",
            )
        entries = self.mapping(vnode, key, "a mapping of service settings")
        if entries is None:
            return draft
        self.check_keys(entries, _SERVICE_KEYS, key)
        fields = draft.fields

        if "command" not in entries:
            self.add(knode, f"{key}.command", "required key missing")
        else:
            command = self.command(entries["command"][1], f"{key}.command")
            if command is not None:
                fields["command"] = command

        def read(field_name: str, reader: Callable[[yaml.Node, str], object]) -> None:
            if field_name in entries:
                value = reader(entries[field_name][1], f"{key}.{field_name}")
                if value is not None:
                    fields[field_name] = value

        read("type", lambda n, k: _enum(ServiceType, self.choice(n, k, _values(ServiceType))))
        read("restart", self.restart)
        read("working_dir", self.working_dir)
        read("user", self.user)
        user = fields.get("user")
        if isinstance(user, str):
            problem = user_switch_problem(user, self.euid, self.egid)
            if problem is not None:
                self.add(entries["user"][1], f"{key}.user", problem)
        read("no_new_privs", self.boolean)
        read("umask", self.umask)
        read("ulimits", self.ulimits)
        read("backoff", self.backoff)
        read("start_limit", self.start_limit)
        read("stop_signal", self.stop_signal)
        read("stop_grace_period", self.duration)
        read("critical", self.boolean)
        if "logging" in entries:
            logging = read_logging(self, entries["logging"][1], f"{key}.logging")
            if isinstance(logging, LogFileOptions):
                fields["log_file"] = logging
            elif logging is not None:
                fields["logging"] = logging
        read("schedule", lambda n, k: read_schedule(self, n, k))
        read("concurrency", lambda n, k: read_concurrency(self, n, k))
        if "develop" in entries:
            watch = read_develop(self, entries["develop"][1], f"{key}.develop")
            if watch:
                fields["watch"] = watch
        check_service(self, key, fields, entries)
        if "healthcheck" in entries:
            before = len(self.problems)
            check = self.healthcheck(*entries["healthcheck"], f"{key}.healthcheck")
            if len(self.problems) > before:
                draft.health = "invalid"
            else:
                fields["healthcheck"] = check
                draft.health = "disabled" if check is None else "set"
        if "ready" in entries:
            ready = self.ready(*entries["ready"], f"{key}.ready")
            if ready is not None:
                fields["ready"] = ready
        if "depends_on" in entries:
            draft.deps = self.depends_on(entries["depends_on"][1], f"{key}.depends_on")

        environment: dict[str, str] = {}
        if "env_file" in entries:
            environment.update(self.env_files(entries["env_file"][1], f"{key}.env_file"))
        if "environment" in entries:
            environment.update(self.environment(entries["environment"][1], f"{key}.environment"))
        fields["environment"] = environment

        # A oneshot that is restarted after exiting 0 never stays completed, so
        # service_completed_successfully dependants could start and then see it run
        # again; only retrying failures makes sense for a oneshot.
        restart = fields.get("restart")
        if fields.get("type") is ServiceType.ONESHOT and restart in (
            RestartPolicy.ALWAYS,
            RestartPolicy.UNLESS_STOPPED,
        ):
            assert isinstance(restart, RestartPolicy)
            self.add(
                entries["restart"][1],
                f"{key}.restart",
                f"a oneshot is not restarted after it completes; {restart.value!r} would run "
                "it forever (use no or on-failure)",
            )
        return draft

    def command(self, node: yaml.Node, key: str) -> tuple[str, ...] | None:
        if isinstance(node, yaml.SequenceNode):
            words = [self.text(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
            if any(w is None for w in words):
                return None
            argv = tuple(w for w in words if w is not None)
        elif isinstance(node, yaml.ScalarNode):
            text = self.text(node, key, "a list of strings or a string")
            if text is None:
                return None
            try:
                # Split like a shell would, but never run through one: no globbing,
                # no expansion beyond our own interpolation, no pipes.
                argv = tuple(shlex.split(text))
            except ValueError as e:
                self.add(node, key, f"cannot split the command like a shell would: {e}")
                return None
        else:
            self.expected(node, key, "a list of strings or a string")
            return None
        if not argv or not argv[0]:
            self.add(node, key, "the command is empty")
            return None
        return argv

    def restart(self, node: yaml.Node, key: str) -> RestartPolicy | None:
        # YAML 1.1 reads a bare `no` as false; Compose users write exactly that.
        scalar = self.scalar(node, key)
        if scalar is None and isinstance(node, yaml.ScalarNode):
            return None
        if scalar is not None and scalar.value is False:
            return RestartPolicy.NO
        return _enum(RestartPolicy, self.choice(node, key, _values(RestartPolicy), scalar))

    def working_dir(self, node: yaml.Node, key: str) -> str | None:
        text = self.text(node, key, "a directory path")
        if text == "":
            self.add(node, key, "expected a directory path; got an empty string")
            return None
        return text

    def user(self, node: yaml.Node, key: str) -> str | None:
        text = self.text(node, key, "a user: name, uid, name:group or uid:gid")
        if text is not None and not _USER.match(text):
            self.add(node, key, f"expected a user: name, uid, name:group or uid:gid; got {text!r}")
            return None
        return text

    def umask(self, node: yaml.Node, key: str) -> int | None:
        """Always octal, as the umask command and systemd's UMask= read it: `0027`,
        `"027"`, `0o027`. (Unquoted YAML 1.1 would read 0027 as octal but 22 as
        decimal; the text as written is used instead.)"""
        what = 'an octal mode such as "0027"'
        text = self.text(node, key, what)
        if text is None:
            return None
        digits = text.strip()
        if digits[:2] in ("0o", "0O"):
            digits = digits[2:]
        if not _OCTAL_MODE.match(digits) or int(digits, 8) > 0o777:
            self.add(node, key, f"expected {what} (000-777); got {text!r}")
            return None
        return int(digits, 8)

    def ulimits(self, node: yaml.Node, key: str) -> tuple[tuple[str, int, int], ...] | None:
        """Compose's ``ulimits``: NAME: N (soft and hard), [soft, hard] or
        {soft: N, hard: N}; NAME is an RLIMIT_* constant without the prefix."""
        entries = self.mapping(node, key, "a mapping such as {nofile: 1024, core: 0}")
        if entries is None:
            return None
        before = len(self.problems)
        limits: list[tuple[str, int, int]] = []
        for name, (knode, vnode) in entries.items():
            item_key = f"{key}.{name}"
            if name not in _ULIMIT_NAMES:
                close = difflib.get_close_matches(name, _ULIMIT_NAMES, n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else "expected one of " + ", ".join(_ULIMIT_NAMES)
                )
                self.add(knode, item_key, f"unknown limit; {hint}")
                continue
            pair = self.ulimit(vnode, item_key)
            if pair is not None:
                limits.append((name, *pair))
        if len(self.problems) > before:
            return None
        return tuple(limits)

    def ulimit(self, node: yaml.Node, key: str) -> tuple[int, int] | None:
        if isinstance(node, yaml.SequenceNode):
            if len(node.value) != 2:
                self.add(node, key, f"expected [soft, hard]; got a list of {len(node.value)}")
                return None
            soft = self.limit(node.value[0], f"{key}[0]")
            hard = self.limit(node.value[1], f"{key}[1]")
        elif isinstance(node, yaml.MappingNode):
            entries = self.mapping(node, key) or {}
            if self.check_keys(entries, ("soft", "hard"), key):
                return None
            missing = [n for n in ("soft", "hard") if n not in entries]
            if missing:
                self.add(node, f"{key}.{missing[0]}", "required key missing")
                return None
            soft = self.limit(entries["soft"][1], f"{key}.soft")
            hard = self.limit(entries["hard"][1], f"{key}.hard")
        else:
            soft = hard = self.limit(node, key)  # Compose: one number sets both
        if soft is None or hard is None:
            return None
        if hard != _UNLIMITED and (soft == _UNLIMITED or soft > hard):
            shown = "unlimited" if soft == _UNLIMITED else str(soft)
            self.add(node, key, f"the soft limit ({shown}) is above the hard limit ({hard})")
            return None
        return soft, hard

    def limit(self, node: yaml.Node, key: str) -> int | None:
        """One limit: a whole number >= 0, or ``unlimited`` (also -1, as Docker writes it)."""
        scalar = self.scalar(node, key)
        value = scalar.value if scalar is not None else None
        if value in ("unlimited", "infinity", -1):
            return _UNLIMITED
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            if value > _LIMIT_MAX:
                self.add(node, key, f"{value} is too large; write unlimited")
                return None
            return value
        if scalar is not None or not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, _ULIMIT_WHAT, scalar)
        return None

    def stop_signal(self, node: yaml.Node, key: str) -> int | None:
        text = self.text(node, key, "a signal name or number")
        if text is None:
            return None
        try:
            return parse_signal(text)
        except ValueError as e:
            self.add(node, key, f"{e}; expected a name such as SIGTERM or TERM, or a number")
            return None

    def backoff(self, node: yaml.Node, key: str) -> Backoff | None:
        entries = self.mapping(node, key)
        if entries is None:
            return None
        self.check_keys(entries, _BACKOFF_KEYS, key)
        fields: dict[str, float | None] = {}
        for name in ("initial", "max", "reset_after"):
            if name in entries:
                fields[name] = self.duration(entries[name][1], f"{key}.{name}")
        if "multiplier" in entries:
            vnode = entries["multiplier"][1]
            value = fields["multiplier"] = self.number(vnode, f"{key}.multiplier")
            if value is not None and value < 1:
                self.add(vnode, f"{key}.multiplier", f"expected a number >= 1; got {value:g}")
                fields["multiplier"] = None
        if "jitter" in entries:
            vnode = entries["jitter"][1]
            value = fields["jitter"] = self.number(vnode, f"{key}.jitter", "a fraction 0..1")
            if value is not None and not 0 <= value <= 1:
                self.add(vnode, f"{key}.jitter", f"expected a fraction 0..1; got {value:g}")
                fields["jitter"] = None
        if any(v is None for v in fields.values()):
            return None
        backoff = Backoff(**fields)  # type: ignore[arg-type]
        if backoff.initial > backoff.max:
            self.add(
                node,
                key,
                f"initial ({backoff.initial:g}s) is longer than max ({backoff.max:g}s)",
            )
            return None
        return backoff

    def start_limit(self, node: yaml.Node, key: str) -> StartLimit | None:
        entries = self.mapping(node, key)
        if entries is None:
            return None
        self.check_keys(entries, _START_LIMIT_KEYS, key)
        limit = StartLimit()
        if "burst" in entries:
            vnode = entries["burst"][1]
            scalar = self.scalar(vnode, f"{key}.burst")
            value = scalar.value if scalar is not None else None
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                limit = StartLimit(burst=value, interval=limit.interval)
            elif scalar is not None or not isinstance(vnode, yaml.ScalarNode):
                self.expected(vnode, f"{key}.burst", "a whole number >= 1", scalar)
                return None
            else:
                return None
        if "interval" in entries:
            vnode = entries["interval"][1]
            interval = self.duration(vnode, f"{key}.interval")
            if interval is None:
                return None
            if interval <= 0:
                self.add(vnode, f"{key}.interval", "expected a duration longer than 0")
                return None
            limit = StartLimit(burst=limit.burst, interval=interval)
        return limit

    # -- healthcheck and ready ---------------------------------------------------------

    def positive_duration(self, node: yaml.Node, key: str) -> float | None:
        value = self.duration(node, key)
        if value is not None and value <= 0:
            self.add(node, key, "expected a duration longer than 0")
            return None
        return value

    def whole_number(
        self, node: yaml.Node, key: str, low: int, high: int | None, what: str
    ) -> int | None:
        scalar = self.scalar(node, key)
        value = scalar.value if scalar is not None else None
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and low <= value
            and (high is None or value <= high)
        ):
            return value
        if scalar is not None or not isinstance(node, yaml.ScalarNode):
            self.expected(node, key, what, scalar)
        return None

    def healthcheck(self, knode: yaml.Node, vnode: yaml.Node, key: str) -> HealthCheck | None:
        """Compose's healthcheck; None when disabled (``test: [NONE]``, ``disable: true``)
        and, after reporting, when invalid: the caller tells them apart by the problems."""
        entries = self.mapping(vnode, key, "a mapping such as {test: [CMD, ...], interval: 10s}")
        if entries is None:
            return None
        typo = self.check_keys(entries, _HEALTHCHECK_KEYS, key)
        timing: dict[str, float | int | None] = {}
        for name in ("interval", "timeout", "start_interval"):
            if name in entries:
                timing[name] = self.positive_duration(entries[name][1], f"{key}.{name}")
        if "start_period" in entries:
            timing["start_period"] = self.duration(
                entries["start_period"][1], f"{key}.start_period"
            )
        if "retries" in entries:
            timing["retries"] = self.whole_number(
                entries["retries"][1], f"{key}.retries", 1, None, "a whole number >= 1"
            )
        sources = [name for name in ("test", *_PROBE_KEYS) if name in entries]
        if "disable" in entries:
            disable = self.boolean(entries["disable"][1], f"{key}.disable")
            if disable is None:
                return None
            if disable:
                if sources:
                    self.add(
                        entries["disable"][0],
                        f"{key}.disable",
                        f"disable: true turns the healthcheck off, yet it has a probe "
                        f"({sources[0]}); remove one of them",
                    )
                return None
        source = self.one_source(
            knode,
            key,
            entries,
            sources,
            "probe",
            "test (as in Compose) or one of tcp, http, exec",
            typo,
        )
        probe: Probe | None = None
        if source == "test":
            test = self.test(entries["test"][1], f"{key}.test")
            if test == "none":
                return None
            probe = test
        elif source is not None:
            probe = self.probe(source, entries[source][1], f"{key}.{source}")
        probe = self.expect_status(entries, key, probe, source)
        if probe is None or any(v is None for v in timing.values()):
            return None
        return HealthCheck(probe, **timing)  # type: ignore[arg-type]

    def one_source(
        self,
        knode: yaml.Node,
        key: str,
        entries: Mapping[str, tuple[yaml.Node, yaml.Node]],
        sources: list[str],
        what: str,
        choices: str,
        typo: bool,
    ) -> str | None:
        """The one source among ``sources`` (present keys); report none or several.
        None without a word when an unknown key was reported: likely the misspelt
        source, whose did-you-mean says it all."""
        if not sources:
            if not typo:
                self.add(knode, key, f"no {what}: set {choices}")
            return None
        if len(sources) > 1:
            self.add(
                entries[sources[1]][0],
                key,
                f"more than one {what} ({', '.join(sources)}); keep one",
            )
            return None
        return sources[0]

    def test(self, node: yaml.Node, key: str) -> Probe | Literal["none"] | None:
        """Compose's ``test``: [CMD, arg...], [CMD-SHELL, command], [NONE] or a string
        (= CMD-SHELL)."""
        what = "a list such as [CMD, arg, ...] or a shell command string"
        if isinstance(node, yaml.ScalarNode):
            text = self.text(node, key, what)
            if text is None:
                return None
            if not text.strip():
                self.add(node, key, "the command is empty")
                return None
            return Probe("exec", ("/bin/sh", "-c", text))
        if not isinstance(node, yaml.SequenceNode):
            self.expected(node, key, what)
            return None
        words = [self.text(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
        if any(w is None for w in words):
            return None
        args = [w for w in words if w is not None]
        if not args:
            self.add(
                node,
                key,
                "the list is empty; expected [CMD, arg, ...], [CMD-SHELL, command] or [NONE]",
            )
            return None
        head, rest = args[0], args[1:]
        if head == "NONE":
            if rest:
                self.add(node, key, "NONE disables the healthcheck and takes nothing after it")
                return None
            return "none"
        if head == "CMD":
            if not rest or not rest[0]:
                self.add(node, key, "CMD needs a command after it, as in [CMD, pg_isready]")
                return None
            return Probe("exec", tuple(rest))
        if head == "CMD-SHELL":
            if len(rest) != 1 or not rest[0].strip():
                self.add(
                    node,
                    key,
                    "CMD-SHELL takes exactly one string, the shell command; for separate "
                    "arguments use CMD",
                )
                return None
            return Probe("exec", ("/bin/sh", "-c", rest[0]))
        self.add(
            node.value[0],
            f"{key}[0]",
            f"expected CMD, CMD-SHELL or NONE first (as in Compose); got {head!r}",
        )
        return None

    def probe(self, kind: str, node: yaml.Node, key: str) -> Probe | None:
        if kind == "tcp":
            return self.tcp(node, key)
        if kind == "http":
            return self.http(node, key)
        command = self.command(node, key)
        return None if command is None else Probe("exec", command)

    def tcp(self, node: yaml.Node, key: str) -> Probe | None:
        """``6379`` or ``"host:port"`` (IPv6 in brackets: ``"[::1]:6379"``)."""
        text = self.text(node, key, _TCP_WHAT)
        if text is None:
            return None
        text = text.strip()
        host, port_text = "", text
        if not _DIGITS.match(text):
            host, sep, port_text = text.rpartition(":")
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            elif ":" in host:
                self.add(
                    node, key, f"write an IPv6 address in brackets, as in [::1]:6379; got {text!r}"
                )
                return None
            if not sep or not _DIGITS.match(port_text) or not _HOST.match(host):
                self.add(node, key, f"expected {_TCP_WHAT}; got {text!r}")
                return None
        port = int(port_text) if len(port_text) <= 20 else 0  # int() refuses 4300+ digits
        if not 1 <= port <= 65535:
            self.add(node, key, f"port {port_text.lstrip('0') or '0'} is out of range 1-65535")
            return None
        return Probe("tcp", host=host or "127.0.0.1", port=port)

    def http(self, node: yaml.Node, key: str) -> Probe | None:
        """A full ``http://host[:port]/path`` URL; https is not spoken."""
        text = self.text(node, key, _URL_WHAT)
        if text is None:
            return None
        url = text.strip()
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            self.add(node, key, f"expected {_URL_WHAT} with a port 1-65535; got {text!r}")
            return None
        if parts.scheme == "https":
            self.add(
                node,
                key,
                "https is not supported: the http probe speaks plain HTTP only; probe a "
                "plain-HTTP port, or use exec with a client such as curl -f https://...",
            )
        elif parts.scheme != "http" or not parts.hostname:
            self.add(node, key, f"expected {_URL_WHAT}; got {text!r}")
        elif any(c.isspace() for c in url):
            self.add(node, key, f"a URL cannot contain spaces (write %20); got {text!r}")
        elif port == 0:
            self.add(node, key, f"port 0 is out of range 1-65535 in {text!r}")
        else:
            return Probe("http", url=url)
        return None

    def expect_status(
        self,
        entries: Mapping[str, tuple[yaml.Node, yaml.Node]],
        key: str,
        probe: Probe | None,
        source: str | None,
    ) -> Probe | None:
        """``probe`` with the optional ``expect_status`` applied; it needs an http probe."""
        if "expect_status" not in entries:
            return probe
        knode, vnode = entries["expect_status"]
        status = self.whole_number(
            vnode, f"{key}.expect_status", 100, 599, "an HTTP status code 100-599"
        )
        if source is not None and source != "http":
            self.add(
                knode, f"{key}.expect_status", f"applies only to an http probe, not to {source}"
            )
            return None
        if probe is None or status is None:
            return None
        return replace(probe, expect_status=status)

    def ready(self, knode: yaml.Node, vnode: yaml.Node, key: str) -> Readiness | None:
        what = "a mapping such as {tcp: 6379} or {log_line: regex}, or notify"
        if isinstance(vnode, yaml.ScalarNode) and vnode.tag != _NULL_TAG:
            scalar = self.scalar(vnode, key)
            if scalar is None:
                return None
            if scalar.value == "notify":
                return Readiness("notify")
            self.expected(vnode, key, what, scalar)
            return None
        entries = self.mapping(vnode, key, what)
        if entries is None:
            return None
        typo = self.check_keys(entries, _READY_KEYS, key)
        before = len(self.problems)
        # notify: false is no source at all (handy with ${NOTIFY:-false}); an invalid
        # value counts as one, so that its problem is the only one reported.
        notify = "notify" in entries and (
            self.boolean(entries["notify"][1], f"{key}.notify") is not False
        )
        sources = [n for n in _READY_SOURCES if n in entries and (n != "notify" or notify)]
        source = self.one_source(
            knode,
            key,
            entries,
            sources,
            "readiness source",
            "one of " + ", ".join(_READY_SOURCES),
            typo,
        )
        fields: dict[str, object] = {}
        if "timeout" in entries:
            fields["timeout"] = self.duration(entries["timeout"][1], f"{key}.timeout")
        if "watchdog" in entries:
            wknode, wvnode = entries["watchdog"]
            fields["watchdog"] = self.duration(wvnode, f"{key}.watchdog")
            if source is not None and source != "notify":
                self.add(
                    wknode,
                    f"{key}.watchdog",
                    f"applies only to notify: true (WATCHDOG=1 comes over $NOTIFY_SOCKET), "
                    f"not to {source}",
                )
        for name in ("interval", "probe_timeout"):
            if name in entries:
                fields[name] = self.positive_duration(entries[name][1], f"{key}.{name}")
                if source is not None and source not in _PROBE_KEYS:
                    self.add(
                        entries[name][0],
                        f"{key}.{name}",
                        f"applies only to a probe (tcp, http or exec), not to {source}",
                    )
        probe: Probe | None = None
        if source == "log_line":
            fields["pattern"] = self.regex(entries["log_line"][1], f"{key}.log_line")
        elif source == "fd":
            fields["fd"] = self.whole_number(
                entries["fd"][1],
                f"{key}.fd",
                3,
                255,
                "a file descriptor 3-255 (0-2 are stdin, stdout and stderr)",
            )
        elif source in _PROBE_KEYS:
            probe = self.probe(source, entries[source][1], f"{key}.{source}")
        probe = self.expect_status(entries, key, probe, source)
        if source is None or len(self.problems) > before:
            return None
        kind = "probe" if source in _PROBE_KEYS else source
        return Readiness(kind, probe=probe, **fields)  # type: ignore[arg-type]

    def regex(self, node: yaml.Node, key: str) -> str | None:
        text = self.text(node, key, "a regular expression")
        if text is None:
            return None
        if not text:
            self.add(node, key, "the pattern is empty; it would match any line")
            return None
        try:
            re.compile(text)
        except re.error as e:
            where = f" at position {e.pos}" if e.pos is not None else ""
            self.add(node, key, f"invalid regular expression {text!r}: {e.msg}{where}")
            return None
        return text

    def depends_on(self, node: yaml.Node, key: str) -> list[tuple[Dependency, str, int]]:
        deps: list[tuple[Dependency, str, int]] = []
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                name = self.text(item, f"{key}[{i}]", "a service name")
                if name is None:
                    continue
                if any(d.name == name for d, _, _ in deps):
                    self.add(item, f"{key}.{name}", "listed twice")
                    continue
                deps.append((Dependency(name), f"{key}.{name}", _line(item) or 0))
            return deps
        entries = self.mapping(
            node, key, "a list of service names or a mapping of name: {condition: ...}"
        )
        for name, (knode, vnode) in (entries or {}).items():
            dep_key = f"{key}.{name}"
            options = self.mapping(vnode, dep_key, "a mapping such as {condition: service_started}")
            if options is None:
                continue
            self.check_keys(options, ("condition",), dep_key)
            condition = Condition.STARTED
            if "condition" in options:
                cnode = options["condition"][1]
                parsed = _enum(
                    Condition, self.choice(cnode, f"{dep_key}.condition", _values(Condition))
                )
                if parsed is None:
                    continue
                condition = parsed
            deps.append((Dependency(name, condition), dep_key, _line(knode) or 0))
        return deps

    def environment(self, node: yaml.Node, key: str) -> dict[str, str]:
        env: dict[str, str] = {}
        pairs: list[tuple[str, str | None, yaml.Node, str]] = []  # name, value, node, key
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                text = self.text(item, f"{key}[{i}]", "NAME=value", secret=True)
                if text is not None:
                    name, sep, rest = text.partition("=")
                    pairs.append((name, rest if sep else None, item, f"{key}[{i}]"))
        else:
            entries = self.mapping(node, key, "a mapping of NAME: value or a list of NAME=value")
            for name, (knode, vnode) in (entries or {}).items():
                item_key = f"{key}.{name}"
                if isinstance(vnode, yaml.ScalarNode) and vnode.tag == _NULL_TAG:
                    pairs.append((name, None, knode, item_key))  # `NAME:` alone
                    continue
                text = self.text(vnode, item_key, "a string, number or boolean", secret=True)
                if text is not None:
                    pairs.append((name, text, knode, item_key))
        for name, value, item_node, item_key in pairs:
            if not _ENV_NAME.match(name):
                # Never echo the value: environments carry secrets.
                self.add(item_node, item_key, f"invalid variable name {name!r}")
            elif value is not None:
                env[name] = value
            elif name in self.environ:  # NAME alone: pass pyinit's own value through
                env[name] = self.environ[name]
        return env

    def env_files(self, node: yaml.Node, key: str) -> dict[str, str]:
        items: list[tuple[yaml.Node, str]]
        if isinstance(node, yaml.SequenceNode):
            items = [(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.ScalarNode):
            items = [(node, key)]
        else:
            self.expected(node, key, "a path or a list of paths")
            return {}
        env: dict[str, str] = {}
        for item, item_key in items:
            required = True
            path_node = item
            if isinstance(item, yaml.MappingNode):  # Compose's {path: ..., required: false}
                options = self.mapping(item, item_key) or {}
                self.check_keys(options, ("path", "required"), item_key)
                if "path" not in options:
                    self.add(item, f"{item_key}.path", "required key missing")
                    continue
                path_node = options["path"][1]
                if "required" in options:
                    required = (
                        self.boolean(options["required"][1], f"{item_key}.required") is not False
                    )
            rel = self.text(path_node, item_key, "a path")
            if rel is None:
                continue
            env.update(
                self.env_file(os.path.join(self.base_dir, rel), path_node, item_key, required)
            )
        return env

    def env_file(self, path: str, node: yaml.Node, key: str, required: bool) -> dict[str, str]:
        """``NAME=value`` lines; ``#`` comments, blank lines and an ``export `` prefix
        are allowed; one pair of surrounding quotes is removed. Values are taken
        literally (no interpolation, no escapes) so secrets with '$' survive."""
        try:
            lines = read_bytes(path, ENV_FILE_CAP).decode("utf-8").splitlines()
        except UnsafeFile as e:
            if e.missing:
                if required:
                    self.add(node, key, f"env file {path!r} not found")
            else:
                self.add(node, key, f"cannot read env file {path!r}: {e}")
            return {}
        except UnicodeDecodeError:
            self.add(node, key, f"env file {path!r} is not UTF-8 text")
            return {}
        env: dict[str, str] = {}
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export ") :].lstrip()
            name, sep, value = line.partition("=")
            name = name.strip()
            if not _ENV_NAME.match(name):
                # The line is not echoed: it may hold a secret.
                self.problems.append(
                    Problem(path, number, key, "expected NAME=value, a # comment or a blank line")
                )
                continue
            if not sep:
                if name in self.environ:
                    env[name] = self.environ[name]
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[name] = value
        return env

    # -- across services ------------------------------------------------------------

    def check_dependencies(self, drafts: list[_Draft]) -> None:
        by_name = {d.name: d for d in drafts}
        graph: dict[str, list[str]] = {d.name: [] for d in drafts}
        for draft in drafts:
            for dep, key, line in draft.deps:
                target = by_name.get(dep.name)
                if dep.name == draft.name:
                    self.problems.append(
                        Problem(self.path, line, key, "a service cannot depend on itself")
                    )
                elif target is None:
                    self.problems.append(
                        Problem(self.path, line, key, f"no service named {dep.name!r}")
                    )
                else:
                    graph[draft.name].append(dep.name)
                    schedule = target.fields.get("schedule")
                    if isinstance(schedule, Schedule):
                        message = scheduled_dependency(dep.name, schedule)
                        self.problems.append(Problem(self.path, line, key, message))
                    # Only a oneshot reaches `completed`: a longrun that exits is
                    # exited or restarted, never completed, so waiting for it to
                    # complete would hang the dependant (Compose allows it because a
                    # container has no such distinction; pyinit has).
                    if (
                        dep.condition is Condition.COMPLETED_SUCCESSFULLY
                        and target.fields.get("type", ServiceType.LONGRUN) is ServiceType.LONGRUN
                    ):
                        self.problems.append(
                            Problem(
                                self.path,
                                line,
                                key,
                                f"service_completed_successfully needs {dep.name!r} to be a "
                                "oneshot (type: oneshot); a longrun never completes",
                            )
                        )
                    if dep.condition is Condition.HEALTHY and target.health in (
                        "absent",
                        "disabled",
                    ):
                        has = (
                            "no healthcheck"
                            if target.health == "absent"
                            else "its healthcheck disabled"
                        )
                        self.problems.append(
                            Problem(
                                self.path,
                                line,
                                key,
                                f"service_healthy: {dep.name!r} has {has}, so it is never "
                                "healthy; give it a healthcheck or use service_ready",
                            )
                        )
        order = {d.name: i for i, d in enumerate(drafts)}
        for cycle in _find_cycles(graph):
            start = min(cycle, key=order.__getitem__)
            at = cycle.index(start)
            cycle = cycle[at:] + cycle[:at]
            self.problems.append(
                Problem(
                    self.path,
                    by_name[start].line,
                    f"services.{start}.depends_on",
                    "dependency cycle: " + " -> ".join([*cycle, start]),
                )
            )


def _find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle per back edge found by a depth-first search, each reported once.
    Iterative: a chain of thousands of services must not hit the recursion limit."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        path.append(root)
        stack = [iter(graph[root])]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                stack.pop()
                state[path.pop()] = 2
            elif state.get(dep) == 1:
                cycle = path[path.index(dep) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append(cycle)
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                stack.append(iter(graph[dep]))
    return cycles


_E = TypeVar("_E", bound=Enum)


def _values(enum: type[Enum]) -> tuple[str, ...]:
    return tuple(str(member.value) for member in enum)


def _enum(enum: type[_E], value: str | None) -> _E | None:
    return None if value is None else enum(value)


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
        return _Loader(text, path, os.environ if environ is None else environ, ids).load()
    except RecursionError:  # a last resort: MAX_DEPTH is meant to stop it first
        raise ConfigError([Problem(path, None, "", "nested too deeply to load")]) from None


def load_config(
    path: str, environ: Mapping[str, str] | None = None, ids: tuple[int, int] | None = None
) -> Config:
    """Read, parse and validate a services file; ConfigError for any user mistake,
    including an unreadable file."""
    try:
        text = read_bytes(path, CONFIG_CAP).decode("utf-8")
    except UnsafeFile as e:
        raise ConfigError([Problem(path, None, "", f"cannot read: {e}")]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            [Problem(path, None, "", f"not UTF-8 text (bad byte at offset {e.start})")]
        ) from None
    return load_config_text(text, path, environ, ids)
